"""Building the pieces a run needs from its recipe: policy, domain records, weighting.

Kept apart from the loop so :mod:`recap.training.trainer` reads top to bottom.
"""

from __future__ import annotations

import torch

from recap.config import DomainSpec, RunConfig
from recap.models.loading import load_policy
from recap.models.policy import Policy
from recap.tasks.loaders import load_records
from recap.tasks.record import Record
from recap.tasks.registry import make_task
from recap.training.objectives import surrogate_lower_bound
from recap.weighting import Weighting, build_weighting, weighting_options


def load_run_policy(cfg: RunConfig, device: torch.device | str) -> Policy:
    """The policy of ``cfg.model`` on ``device`` (also used for the frozen reference)."""
    spec = cfg.model
    return load_policy(spec.path, dtype=spec.dtype, device=device, lora=spec.lora,
                       gradient_checkpointing=spec.gradient_checkpointing)


def domain_records(domain: DomainSpec, seed: int) -> list[Record]:
    """A domain's training pool: generated (built-in task) or read from disk (loaders)."""
    if isinstance(domain.source, str):
        return make_task(domain.source, domain.split, domain.n or 0, seed=seed, **domain.knobs)
    src = domain.source
    return load_records(src.path, format=src.format, domain=domain.name, limit=domain.n,
                        split=src.split, **src.options).records


def build_run_weighting(cfg: RunConfig) -> Weighting:
    """The recipe's weighting over ``cfg.objective_names`` with the options it accepts."""
    w = cfg.weighting
    accepted = weighting_options(w.name)
    given = {"window": w.window, "temperature": w.temperature, "alpha": w.alpha,
             "weights": w.weights or None, "seed": cfg.train.seed, "variant": w.variant,
             "max_steps": cfg.train.steps if w.variant == "official" else None}
    kwargs = {k: v for k, v in given.items() if k in accepted and v is not None}
    if w.name == "famo":  # the GRPO surrogate can be negative; FAMO takes logs of losses
        bound = surrogate_lower_bound(cfg.rl.num_generations, cfg.rl.clip_eps)
        kwargs["min_losses"] = {k: bound for k in cfg.objective_names if not k.startswith("sft:")}
    return build_weighting(w.name, cfg.objective_names, **kwargs)
