"""``recap quickstart``: the main job on the embedded default, as a one-seed ``recap study``.

From the shipped tiny base model (``builtin:base``) the quickstart post-trains on the lab's
reasoning target, **counting asked with the think template** (``count_think``: rewards
``think_format`` + ``accuracy``), three ways, with the same steps, G, token budget, learning rate
and seed:

- ``reasoning-only``: GRPO on the target alone (the RECAP paper, "Beyond Reasoning Gains", sec.
  5.1, "Reasoning-only");
- ``uniform``: the same GRPO with uniform replay of the general suite in the RECAP paper's hybrid
  layout — count and exists (RL, ``answer_format`` + ``accuracy``), ground (RL,
  ``answer_format`` + ``iou``) and digits (SFT) on the ``answer`` template — equal weights;
- ``recap``: uniform replay plus RECAP's dynamic objective weights (the RECAP paper, sec. 4, eq. 1:
  W = 10, T = 5), reference KL off.

Why this target (numbers from ``docs/results/quickstart/base_probe.py``, 500 held-out records):
the base counts well with the answer template (94 % on "how many objects")
but has never reasoned its way to a count: asked with the think template it writes an
arithmetic-style trace, keeps the format most of the time (0.84 sampled, not saturated) and
answers right ~25 % of the time (answers spread over 1-6, so no single guess passes for
counting), so RL has a skill to find and a format reward that still moves (the dynamic of the
RECAP paper's figs. 4 and 6). Visual arithmetic, the previous target, had its format at 1.0 from
the first step and almost no latent skill to sharpen.

Budget (``budget``): ``total`` (default) gives every arm ``batch_size`` prompts per step, so
replay takes slots from the target; ``equal`` gives every arm ``batch_size`` target prompts per
step and the replay arms ``batch_size`` replayed prompts on top (equal reasoning exposure). The
report says which ran.

Base and runs are evaluated greedily on the same held-out records (the ``quickstart`` suite:
general suite + ``count_think``); the report (``report.md``, ``report.html``, PNGs, ``study.json``;
:mod:`recap.studies.report`) gives each metric with a 95 % interval and the paired differences
vs the base and vs ``uniform``. One seed shows the test records' noise only; the committed
evidence (``docs/results/quickstart/``) runs the same arms over five seeds with ``recap study``.

The default budget is sized for under 10 minutes on 2 CPU cores: two worker processes with one
torch thread each (the lab model is ~1 M parameters: its matrix products are too small for a
second thread to pay for the synchronisation). Nothing is downloaded.
"""

from __future__ import annotations

import io
import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from recap.config import RunConfig
from recap.config.presets import LAB_MODEL_PATH

__all__ = [
    "ARMS",
    "QuickstartSettings",
    "headline_table",
    "pretrain_minutes",
    "quickstart_study",
    "run_quickstart",
]

ARMS = ("reasoning-only", "uniform", "recap")
REFERENCE = "uniform"
TARGET = "count_think"
BASE_NAME = "base"
SUMMARY_FORMAT = "recap-quickstart/2"
# Fallback estimate of `recap pretrain` when the shipped base has no card with its build time.
PRETRAIN_MINUTES = 185

# Training pools (records generated per domain).
POOLS = {TARGET: 512, "count": 256, "exists": 256, "ground": 256, "digits": 256}
BUDGETS = {"total": "total prompts per step (replay takes slots from the target)",
           "equal": "equal reasoning exposure (target prompts per step fixed, replay on top)"}


@dataclass(frozen=True)
class QuickstartSettings:
    """Budget and paths of a quickstart run. Every arm gets the same steps, batch and G."""

    out: Path = Path("recap-quickstart")
    model: str = LAB_MODEL_PATH
    steps: int = 60
    batch_size: int = 8  # prompts per optimiser step (see budget)
    num_generations: int = 4  # G
    max_new_tokens: int = 64  # a counting trace is ~55 characters (tokens)
    # 2e-4 so that reasoning-only's forgetting shows within 60 steps: in one-seed probes 1e-4
    # reached about the same target accuracy (84 vs 88 %) with counting -4 instead of -16.
    lr: float = 2e-4
    budget: Literal["total", "equal"] = "total"
    eval_n: int = 200  # held-out records per evaluated task (standard error <= 3.5 points)
    eval_batch_size: int = 50
    eval_max_new_tokens: int = 72
    eval_seed: int = 12345  # the held-out records; not a training seed
    seed: int = 0
    jobs: int = 2  # worker processes, one torch thread each
    from_scratch: bool = False
    threads: int = 1
    overwrite: bool = False
    pools: Mapping[str, int] = field(default_factory=lambda: dict(POOLS))


def _domains(pools: Mapping[str, int]) -> list[dict[str, Any]]:
    """The reasoning target and the general suite in the RECAP paper's hybrid layout."""

    def rl(name: str, source: str, role: str, template: str, rewards: list[str]
           ) -> dict[str, Any]:
        return {"name": name, "source": source, "role": role, "mode": "rl",
                "template": template, "rewards": rewards, "n": pools[name]}

    from recap.evaluation.suites import COUNT_THINK_KNOBS

    target = rl(TARGET, "count", "reasoning", "think", ["think_format", "accuracy"])
    target["knobs"] = {k: list(v) for k, v in COUNT_THINK_KNOBS.items()}
    return [
        target,
        rl("count", "count", "general", "answer", ["answer_format", "accuracy"]),
        rl("exists", "exists", "general", "answer", ["answer_format", "accuracy"]),
        rl("ground", "ground", "general", "answer", ["answer_format", "iou"]),
        {"name": "digits", "source": "digits", "role": "general", "mode": "sft",
         "template": "answer", "n": pools["digits"]},
    ]


ARM_CHANGES: dict[str, dict[str, Any]] = {
    "reasoning-only": {"sampling": {"strategy": "reasoning_only"}, "weighting": {"name": "equal"}},
    "uniform": {"sampling": {"strategy": "uniform"}, "weighting": {"name": "equal"}},
    # the RECAP paper, sec. 4-5: uniform replay + RECAP eq. 1 (W = 10, T = 5), KL off
    "recap": {"sampling": {"strategy": "uniform"},
              "weighting": {"name": "recap", "window": 10, "temperature": 5.0}},
}


def shared_recipe(settings: QuickstartSettings, model_path: str) -> dict[str, Any]:
    """The recipe every arm shares (the arms change only sampling and weighting)."""
    return {
        "model": {"path": model_path},
        "domains": _domains(settings.pools),
        "rl": {"num_generations": settings.num_generations, "temperature": 1.0,
               "max_new_tokens": settings.max_new_tokens, "clip_eps": 0.2},
        "kl": {"schedule": "none"},
        "optim": {"lr": settings.lr, "warmup_fraction": 0.1, "max_grad_norm": 1.0},
        "train": {"steps": settings.steps, "batch_size": settings.batch_size,
                  "batch_per": "total" if settings.budget == "total" else "reasoning",
                  "seed": settings.seed},
        "logging": {"tensorboard": False, "progress": False},
        "checkpoint": {"every": 0, "keep_last": 1, "export_model": False},
        "output_dir": "runs/quickstart",
    }


def quickstart_study(settings: QuickstartSettings, model_path: str | None = None) -> Any:
    """The quickstart as a :class:`recap.studies.StudySpec` (one seed, three arms)."""
    from recap.config import deep_merge
    from recap.studies import EvalPlan, StudySpec

    if settings.budget not in BUDGETS:
        raise ValueError(f"unknown budget {settings.budget!r}; known: {', '.join(BUDGETS)}")
    model = model_path or settings.model
    shared = shared_recipe(settings, model)
    return StudySpec(
        name=f"quickstart ({settings.budget} budget)",
        base=model,
        arms={arm: {"recipe": deep_merge(shared, ARM_CHANGES[arm])} for arm in ARMS},
        seeds=[settings.seed],
        reference=REFERENCE,
        eval=EvalPlan(suite="quickstart", n=settings.eval_n, seed=settings.eval_seed,
                      batch_size=settings.eval_batch_size,
                      max_new_tokens=settings.eval_max_new_tokens),
        budget=BUDGETS[settings.budget],
    )


def quickstart_recipe(arm: str, settings: QuickstartSettings, model_path: str,
                      output_dir: Path) -> RunConfig:
    """The validated training recipe of one arm (what the quickstart trains)."""
    if arm not in ARMS:
        raise ValueError(f"unknown quickstart arm {arm!r}; known: {', '.join(ARMS)}")
    return quickstart_study(settings, model_path).arm_config(arm, settings.seed, output_dir)


def headline_table(result: Mapping[str, Any]) -> str:
    """The terminal table: each metric per model with its 95 % interval, as text."""
    from rich.console import Console
    from rich.table import Table

    arms = list(result["arms"])
    table = Table(title="Base vs arms (percent; [95 % interval]; change vs base in parentheses, "
                        "!x!: a general metric whose interval of change lies below 0)")
    for col in ("metric", "base", *arms):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for key in result["metrics"]:
        if key.endswith("/format") and not key.startswith(f"{TARGET}/"):
            continue
        rate = not key.endswith("length")
        scale = 100 if rate else 1
        b = result["base_metrics"][key]
        cells = [f"{scale * b['mean']:.1f}"]
        for arm in arms:
            e = result["arms"][arm]["metrics"][key]
            c = result["comparisons"][f"{arm} vs base"][key]
            mark = "!" if c["ci_high"] < 0 and key.split("/")[0] != TARGET else ""
            cells.append(f"{scale * e['mean']:.1f} [{scale * e['ci_low']:.1f}, "
                         f"{scale * e['ci_high']:.1f}] ({mark}{scale * c['diff']:+.1f}{mark})")
        table.add_row(key, *cells)
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()


def pretrain_minutes() -> float:
    """How long building the shipped base took (its ``card.json``), else an estimate."""
    from recap.models.loading import BASE_CHECKPOINT

    try:
        card = json.loads((BASE_CHECKPOINT / "card.json").read_text())
        return float(card["wall_time_s"]) / 60
    except (OSError, ValueError, KeyError, TypeError):
        return float(PRETRAIN_MINUTES)


# ---- the job ----------------------------------------------------------------------------------


def _prepare_out(out: Path, overwrite: bool) -> None:
    ours = ["runs", "evals", "base", "study.yaml", "study.json", "summary.json", "headline.txt",
            "report.md", "report.html"]
    existing = [p for p in ours if (out / p).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{out} already holds a quickstart ({', '.join(existing)}); pass "
                              f"--overwrite to replace it or choose another --out")
    for p in existing:
        target = out / p
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    if existing:  # the report's figures of the previous run
        for png in out.glob("*.png"):
            png.unlink()
    out.mkdir(parents=True, exist_ok=True)


def run_quickstart(settings: QuickstartSettings = QuickstartSettings(),
                   echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the quickstart (module docstring) and return its summary (also in summary.json).

    ``echo`` receives the progress and result lines (the CLI passes a rich console's print).
    """
    from recap.models.loading import resolve_model_path
    from recap.studies import run_study

    t0 = time.perf_counter()
    out = Path(settings.out)
    _prepare_out(out, settings.overwrite)
    model, pretrain_s = settings.model, None
    if settings.from_scratch:
        from recap.pretraining import PretrainConfig, pretrain

        echo(f"--from-scratch: rebuilding the base model first; this takes about "
             f"{pretrain_minutes():.0f} min on one CPU core (the post-training comparison "
             f"follows).")
        cfg = PretrainConfig(seed=settings.seed, threads=settings.threads)
        model = str(pretrain(out / BASE_NAME, cfg))
        pretrain_s = round(time.perf_counter() - t0, 1)
    resolve_model_path(model)  # fail before any work when the base is missing
    spec = quickstart_study(settings, model)
    result = run_study(spec, out, jobs=settings.jobs, threads=settings.threads, echo=echo)
    table = headline_table(result)
    (out / "headline.txt").write_text(table)
    total = round(time.perf_counter() - t0, 1)
    summary = {
        "format": SUMMARY_FORMAT,
        "command": "recap quickstart",
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in
                     asdict(replace(settings, pools=dict(settings.pools))).items()},
        "base_model": str(model),
        "arms": list(ARMS),
        "budget": BUDGETS[settings.budget],
        "study": str(out / "study.json"),
        "reading": result["reading"],
        "train_s": {arm: a["train_s"] for arm, a in result["arms"].items()},
        "pretrain_s": pretrain_s,
        "wall_s": total,
        "hardware": f"{platform.machine()} CPU, {os.cpu_count()} cores visible, "
                    f"{settings.jobs} worker processes x {settings.threads} torch thread(s)",
        "report": str(out / "report.md"),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    echo(table)
    for line in result["reading"]:
        echo(line)
    echo(f"report: {out / 'report.md'} (+ report.html, study.json); total wall time {total:.0f} s "
         f"({total / 60:.1f} min)")
    return summary
