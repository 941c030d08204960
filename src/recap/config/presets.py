"""Named training variants of the three papers, as changes to one lab base recipe.

``recap train --preset NAME`` (or ``preset: NAME`` in a YAML recipe) starts from
:data:`LAB_BASE`, a miniature of RECAP's hybrid setting on the built-in tasks — a reasoning
domain trained with GRPO on thinking-format + accuracy (like ThinkLite-VL), a grounding domain
replayed with GRPO on answer-format + IoU (like RefCOCO) and an OCR-like digits domain replayed
with SFT (like LLaVA-OneVision-OCR) — and applies the preset's changes (mappings merge, lists
replace). The YAML file and ``--set`` overrides apply on top. As in RECAP Table 3, general data
outnumbers reasoning data (1408 vs 256 records, about the 5.5 : 1 of the hybrid setting), so the
size-proportional ``default``, the ``uniform`` and the capped ``coreset`` mixtures differ.

RECAP sec. 5.1: ``reasoning-only``, ``default``, ``uniform``, ``coreset``, ``lwf``; RECAP in its
three readings (recap.weighting.recap): ``recap`` (the paper's runs), ``recap-eq1`` (its eq. 1),
``recap-official`` (its authors' code).
OThink-MR1 sec. 3-4: ``grpo`` (constant beta 0.04) and ``grpo-d`` (beta in [0.04, 0.1], counting),
both with R = R_acc + 1 * R_format. Jigsaw-RFT sec. 4-5.6: ``sft-gt`` (SFT on the jigsaw ground
truth) and ``grpo-restart`` (G = 4, temperature 1.0, beta 0.04, restart every 2 epochs).

Departure: learning rates are raised for the ~1 M-parameter lab model (the papers use 1e-6 on
3B/7B models); the numbers of records and steps are lab-sized.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recap.config.overrides import deep_merge

# The tiny base model shipped with the package (built by `recap pretrain`, see the trainer's
# `recap.models.resolve_model_path`).
LAB_MODEL_PATH = "builtin:base"

LAB_BASE: dict[str, Any] = {
    "model": {"path": LAB_MODEL_PATH},
    "domains": [
        {"name": "arith", "source": "arith", "role": "reasoning", "mode": "rl",
         "template": "think", "rewards": ["think_format", "accuracy"], "n": 256},
        {"name": "ground", "source": "ground", "role": "general", "mode": "rl",
         "template": "answer", "rewards": ["answer_format", "iou"], "n": 1024,
         "knobs": {"coord_scale": 16}},  # the box frame the base model was pretrained on
        {"name": "digits", "source": "digits", "role": "general", "mode": "sft",
         "template": "answer", "n": 384},
    ],
    "sampling": {"strategy": "uniform"},
    "weighting": {"name": "equal"},
    "rl": {"num_generations": 4, "temperature": 1.0, "max_new_tokens": 48, "clip_eps": 0.2},
    "kl": {"schedule": "none"},
    "optim": {"lr": 1e-4, "warmup_fraction": 0.1, "max_grad_norm": 1.0},
    "train": {"steps": 60, "batch_size": 6, "batch_per": "total", "seed": 0},
    "checkpoint": {"every": 20},
    "output_dir": "runs/lab",
}


@dataclass(frozen=True)
class Preset:
    """A named change to :data:`LAB_BASE` and where it comes from."""

    source: str
    summary: str
    changes: dict[str, Any] = field(default_factory=dict)


def _single(domain: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {"domains": [domain], **changes}


_COUNT = {"name": "count", "source": "count", "role": "reasoning", "mode": "rl",
          "template": "think", "rewards": ["accuracy", "think_format"], "n": 256}
_JIGSAW_RL = {"name": "jigsaw", "source": "jigsaw", "role": "reasoning", "mode": "rl",
              "template": "think", "rewards": ["jigsaw_hit", "jigsaw_acc", "jigsaw_format"],
              "n": 64}
_JIGSAW_SFT = {"name": "jigsaw", "source": "jigsaw", "role": "reasoning", "mode": "sft",
               "template": "answer", "n": 64}

PRESETS: dict[str, Preset] = {
    "reasoning-only": Preset("RECAP paper sec. 5.1", "reasoning domain only, no replay",
                             {"sampling": {"strategy": "reasoning_only"}}),
    "default": Preset("RECAP paper sec. 5.1", "replay, domains sampled by size",
                      {"sampling": {"strategy": "default"}}),
    "uniform": Preset("RECAP paper sec. 5.1", "replay, domains sampled uniformly",
                      {"sampling": {"strategy": "uniform"}}),
    "coreset": Preset("RECAP paper sec. 5.1", "general data capped at half the reasoning volume",
                      {"sampling": {"strategy": "coreset", "coreset_ratio": 0.5}}),
    "lwf": Preset("RECAP paper sec. 5.1", "uniform + reference KL, beta = 0.01",
                  {"sampling": {"strategy": "uniform"},
                   "kl": {"schedule": "constant", "beta": 0.01}}),
    "recap": Preset("RECAP paper, sec. 4 + appendix (its runs)",
                    "uniform + RECAP as the paper ran it (W=10, T=5, alpha=0.5), KL off",
                    {"sampling": {"strategy": "uniform"}, "kl": {"schedule": "none"},
                     "weighting": {"name": "recap", "variant": "paper", "window": 10,
                                   "temperature": 5.0}}),
    "recap-eq1": Preset("RECAP paper, sec. 4, eq. 1", "uniform + RECAP eq. 1 (s = c + i, W=10, "
                        "T=5), KL off",
                        {"sampling": {"strategy": "uniform"}, "kl": {"schedule": "none"},
                         "weighting": {"name": "recap", "variant": "eq1", "window": 10,
                                       "temperature": 5.0}}),
    "recap-official": Preset("RECAP authors' code (mixed_trainer.py, configs/template.yaml)",
                             "uniform + RECAP as the authors' code runs it: two softmaxes, "
                             "weights on the rewards (W=10, T=5, alpha=0.5), KL off",
                             {"sampling": {"strategy": "uniform"}, "kl": {"schedule": "none"},
                              "rl": {"loss_aggregation": "token"},
                              "weighting": {"name": "recap", "variant": "official",
                                            "window": 10, "temperature": 5.0, "alpha": 0.5,
                                            "apply": "rewards"}}),
    "grpo": Preset("OThink-MR1 sec. 4.1", "GRPO on counting, constant beta = 0.04",
                   _single(_COUNT, rl={"advantage": "combined"},
                           kl={"schedule": "constant", "beta": 0.04},
                           train={"batch_size": 2, "batch_per": "domain"})),
    "grpo-d": Preset("OThink-MR1 eq. 3", "GRPO-D on counting, beta 0.07 -> 0.04 -> 0.1",
                     _single(_COUNT, rl={"advantage": "combined"},
                             kl={"schedule": "grpo_d", "beta_min": 0.04, "beta_max": 0.1,
                                 "warm_fraction": 0.3},
                             train={"batch_size": 2, "batch_per": "domain"})),
    "sft-gt": Preset("jigsaw RFT paper sec. 5.2", "SFT on the jigsaw ground truth",
                     _single(_JIGSAW_SFT, train={"batch_size": 4, "batch_per": "domain"})),
    "grpo-restart": Preset("jigsaw RFT paper sec. 5.6", "GRPO on jigsaw, G=4, T=1.0, beta=0.04, "
                           "restart every 2 epochs",
                           _single(_JIGSAW_RL,
                                   rl={"advantage": "combined", "num_generations": 4,
                                       "temperature": 1.0},
                                   kl={"schedule": "constant", "beta": 0.04},
                                   restart={"every_epochs": 2},
                                   train={"batch_size": 4, "batch_per": "domain"})),
}


def preset_recipe(name: str) -> dict[str, Any]:
    """:data:`LAB_BASE` with preset ``name`` applied, as a plain mapping (not yet validated)."""
    try:
        preset = PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None
    recipe = deep_merge(LAB_BASE, preset.changes)
    recipe["output_dir"] = f"runs/{name}"
    return recipe
