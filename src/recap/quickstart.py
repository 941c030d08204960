"""``recap quickstart``: the main job on the embedded default, base -> two post-trainings -> report.

From the shipped tiny base model (``builtin:base``) the quickstart post-trains on the reasoning
domain (``arith``: visual arithmetic, ``think`` template, rewards ``think_format`` + ``accuracy``)
twice, with the same budget — the same number of optimiser steps, prompts per step and G:

- ``reasoning-only``: GRPO on the reasoning domain alone (seed 000 sec. 5.1, "Reasoning-only");
- ``recap``: the same GRPO with uniform replay of the general suite in seed 000's hybrid layout —
  count and exists (RL, ``answer_format`` + ``accuracy``), ground (RL, ``answer_format`` +
  ``iou``) and digits (SFT) on the ``answer`` template — and RECAP's dynamic objective weights
  (seed 000 sec. 4, eq. 1: window W = 10, temperature T = 5), reference KL off.

Then it evaluates the base and both runs greedily on the general suite and the target (arith),
writes the forgetting report (``report.md``, ``report.html``, PNGs; :mod:`recap.evaluation.report`)
with the evaluation JSONs and run directories into one folder, prints the headline table and a
plain reading of it, and stores the wall time of every phase in ``summary.json``.

The default budget is sized for about 10 minutes on 2 busy CPU cores with one torch thread (the
lab model is ~1 M parameters: its matrix products are too small for a second thread to pay for
the synchronisation). Nothing is downloaded.

Layout of the output folder::

    report.md, report.html, *.png   forgetting report (recap.evaluation.report.write_report)
    headline.txt                    the terminal table
    summary.json                    settings, phase times, headline numbers, the reading
    results/<model>.json            evaluations (recap-eval/1)
    runs/<arm>/                     metrics.jsonl, config.yaml, final/ (the trained model)
    base/                           only with --from-scratch: the rebuilt base model
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from recap.config import RunConfig, validate_config
from recap.training.presets import LAB_MODEL_PATH

__all__ = [
    "ARMS",
    "QuickstartSettings",
    "eval_suite",
    "forgetting_verdict",
    "pretrain_minutes",
    "quickstart_recipe",
    "reading",
    "run_quickstart",
]

ARMS = ("reasoning-only", "recap")
BASE_NAME = "base"
SUMMARY_FORMAT = "recap-quickstart/1"
# Fallback estimate of `recap pretrain` when the shipped base has no card with its build time.
PRETRAIN_MINUTES = 185

# Training pools (records generated per domain). Reasoning data is the smaller pool, general
# data the larger one, as in seed 000 Table 3; the sampler is uniform over domains anyway.
POOLS = {"arith": 256, "count": 256, "exists": 256, "ground": 256, "digits": 256}


@dataclass(frozen=True)
class QuickstartSettings:
    """Budget and paths of a quickstart run. Both arms get the same steps, batch and G."""

    out: Path = Path("recap-quickstart")
    model: str = LAB_MODEL_PATH
    steps: int = 60
    batch_size: int = 8  # prompts per optimiser step (all domains together)
    num_generations: int = 4  # G
    max_new_tokens: int = 96  # a worked arith solution is ~85 characters (tokens)
    lr: float = 1e-4  # the lab presets' rate (5e-4 wrecked counting and arith on the base)
    eval_n: int = 200  # held-out records per evaluated task (standard error <= 3.5 points)
    eval_batch_size: int = 32
    eval_max_new_tokens: int = 112
    seed: int = 0
    from_scratch: bool = False
    threads: int = 1
    overwrite: bool = False
    progress: bool = True
    pools: Mapping[str, int] = field(default_factory=lambda: dict(POOLS))


def _domains(pools: Mapping[str, int]) -> list[dict[str, Any]]:
    """The reasoning domain and the general suite in seed 000's hybrid layout."""

    def rl(name: str, role: str, template: str, rewards: list[str]) -> dict[str, Any]:
        return {"name": name, "source": name, "role": role, "mode": "rl", "template": template,
                "rewards": rewards, "n": pools[name]}

    return [
        rl("arith", "reasoning", "think", ["think_format", "accuracy"]),
        rl("count", "general", "answer", ["answer_format", "accuracy"]),
        rl("exists", "general", "answer", ["answer_format", "accuracy"]),
        rl("ground", "general", "answer", ["answer_format", "iou"]),
        {"name": "digits", "source": "digits", "role": "general", "mode": "sft",
         "template": "answer", "n": pools["digits"]},
    ]


def quickstart_recipe(arm: str, settings: QuickstartSettings, model_path: str,
                      output_dir: Path) -> RunConfig:
    """The validated training recipe of one arm (``reasoning-only`` or ``recap``).

    The two recipes differ only in the sampling strategy and the weighting: same domains, steps,
    prompts per step (``batch_per: total``), G, token budget, learning rate and seed.
    """
    if arm not in ARMS:
        raise ValueError(f"unknown quickstart arm {arm!r}; known: {', '.join(ARMS)}")
    recipe: dict[str, Any] = {
        "model": {"path": model_path},
        "domains": _domains(settings.pools),
        "rl": {"num_generations": settings.num_generations, "temperature": 1.0,
               "max_new_tokens": settings.max_new_tokens, "clip_eps": 0.2},
        "kl": {"schedule": "none"},
        "optim": {"lr": settings.lr, "warmup_fraction": 0.1, "max_grad_norm": 1.0},
        "train": {"steps": settings.steps, "batch_size": settings.batch_size,
                  "batch_per": "total", "seed": settings.seed},
        "logging": {"tensorboard": False, "progress": settings.progress},
        "checkpoint": {"every": 0, "keep_last": 1, "export_model": False},
        "output_dir": str(output_dir),
    }
    if arm == "reasoning-only":
        recipe |= {"sampling": {"strategy": "reasoning_only"}, "weighting": {"name": "equal"}}
    else:  # seed 000 sec. 4-5: uniform replay + RECAP (W = 10, T = 5), KL off
        recipe |= {"sampling": {"strategy": "uniform"},
                   "weighting": {"name": "recap", "window": 10, "temperature": 5.0}}
    return validate_config(recipe, source=f"quickstart {arm}")


def eval_suite() -> Any:
    """The evaluated tasks: the general suite plus the target (arith; jigsaw is not trained)."""
    from recap.evaluation.evaluator import GENERAL, TARGET, EvalSuite

    arith = next(t for t in TARGET.tasks if t.name == "arith")
    return EvalSuite("quickstart", (*GENERAL.tasks, arith),
                     "general capabilities + the trained reasoning target")


# ---- reading the numbers ----------------------------------------------------------------------


def _primary(entry: Mapping[str, Any]) -> str:
    return entry["headline"][0]


def forgetting_verdict(base: Mapping[str, Any], runs: Mapping[str, Mapping[str, Any]],
                       target: str = "arith") -> dict[str, Any]:
    """Per run: target change, general changes and which general metrics dropped significantly.

    A drop is significant by the report's rule (``ReportRow.significant_drop``: more than two
    standard errors of the difference). ``general_mean_change`` averages each general task's
    first headline metric (in [0, 1] units).
    """
    from recap.evaluation.report import forgetting_rows

    rows = forgetting_rows(base, runs)
    tasks = base["tasks"]
    out: dict[str, Any] = {}
    for run in runs:
        drops = [f"{r.task}/{r.metric}" for r in rows
                 if r.task != target and r.significant_drop(run)]
        changes = {}
        for task, entry in tasks.items():
            metric = _primary(entry)
            value = runs[run]["tasks"].get(task, {}).get("metrics", {}).get(metric)
            b = entry["metrics"].get(metric)
            changes[f"{task}/{metric}"] = None if value is None or b is None else value - b
        general = [v for k, v in changes.items() if not k.startswith(f"{target}/")
                   and v is not None]
        t_key = f"{target}/{_primary(tasks[target])}" if target in tasks else None
        out[run] = {
            "target_change": changes.get(t_key) if t_key else None,
            "general_changes": {k: v for k, v in changes.items() if k != t_key},
            "general_mean_change": sum(general) / len(general) if general else None,
            "significant_drops": drops,
        }
    return out


def _reward_trend(run_dir: Path, key: str, window: int = 10) -> tuple[float, float] | None:
    """Mean of ``key`` over the first and the last ``window`` logged steps that have it."""
    from recap.evaluation.report import load_run_metrics

    values = [r[key] for r in load_run_metrics(run_dir) if key in r]
    if not values:
        return None
    w = max(1, min(window, len(values) // 2))
    return sum(values[:w]) / w, sum(values[-w:]) / w


def reading(verdict: Mapping[str, Any], trends: Mapping[str, Any]) -> list[str]:
    """A plain-language reading of the verdict (printed and stored in summary.json).

    One line per run, then what the reasoning-only column says about forgetting: the metrics it
    dropped significantly and whether RECAP kept them, or plainly that nothing dropped and what
    would make forgetting show.
    """

    def pts(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:+.1f} points"

    lines = []
    for run, v in verdict.items():
        trend = trends.get(run)
        curve = ("" if trend is None else
                 f" (training accuracy reward {trend[0]:.2f} -> {trend[1]:.2f})")
        drops = ", ".join(v["significant_drops"]) or "none"
        lines.append(f"{run}: arith accuracy {pts(v['target_change'])}{curve}; general suite "
                     f"mean change {pts(v['general_mean_change'])}; significant drops: {drops}.")
    ro, rc = verdict.get("reasoning-only"), verdict.get("recap")
    if ro is None:
        return lines
    if ro["significant_drops"]:
        dropped = ro["significant_drops"]
        line = (f"Reasoning-only GRPO forgot: {', '.join(dropped)} fell by more than two "
                f"standard errors.")
        if rc is not None:
            kept = [m for m in dropped if m not in rc["significant_drops"]]
            line += f" RECAP kept {len(kept)} of these {len(dropped)} within noise"
            line += f" ({', '.join(kept)})." if kept else "."
        lines.append(line)
    else:
        lines.append(
            "No forgetting under reasoning-only GRPO in this tiny lab at this budget: no general "
            "metric dropped by more than two standard errors (mean change "
            f"{pts(ro['general_mean_change'])}). It would show with longer RL (more steps or a "
            "higher learning rate, so the policy drifts further from the base) or with a target "
            "task whose outputs compete with a general skill (e.g. a think-format task asked on "
            "the same images as counting, or jigsaw permutations in place of bare answers).")
    return lines


def pretrain_minutes() -> float:
    """How long building the shipped base took (its ``card.json``), else an estimate."""
    from recap.models.policy import BASE_CHECKPOINT

    try:
        card = json.loads((BASE_CHECKPOINT / "card.json").read_text())
        return float(card["wall_time_s"]) / 60
    except (OSError, ValueError, KeyError, TypeError):
        return float(PRETRAIN_MINUTES)


# ---- the job ----------------------------------------------------------------------------------


class _Phases:
    """Prints each phase with the elapsed time and records its duration."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo, self.start, self.times = echo, time.perf_counter(), {}

    def run(self, name: str, what: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        self.echo(f"[{self.elapsed():6.0f} s] {what} ...")
        result = fn()
        self.times[name] = round(time.perf_counter() - t0, 1)
        self.echo(f"[{self.elapsed():6.0f} s] {what}: done in {self.times[name]:.0f} s")
        return result

    def elapsed(self) -> float:
        return time.perf_counter() - self.start


def _prepare_out(out: Path, overwrite: bool) -> None:
    ours = ["runs", "results", "base", "summary.json", "headline.txt", "report.md", "report.html"]
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
    import torch

    from recap.evaluation.evaluator import evaluate, save_results
    from recap.evaluation.report import headline_table, write_report
    from recap.training.trainer import train

    torch.set_num_threads(settings.threads)
    out = Path(settings.out)
    _prepare_out(out, settings.overwrite)
    phases = _Phases(echo)
    model = settings.model
    if settings.from_scratch:
        from recap.pretrain import PretrainConfig, pretrain

        echo(f"--from-scratch: rebuilding the base model first; this takes about "
             f"{pretrain_minutes():.0f} min on one CPU core (the post-training comparison "
             f"follows).")
        cfg = PretrainConfig(seed=settings.seed, threads=settings.threads)
        model = str(phases.run("pretrain", "pretraining the base model",
                               lambda: pretrain(out / BASE_NAME, cfg)))
    suite = eval_suite()

    def evaluate_one(name: str, policy_or_path: Any) -> dict[str, Any]:
        res = evaluate(policy_or_path, suite, n_per_task=settings.eval_n,
                       batch_size=settings.eval_batch_size, seed=settings.seed,
                       max_new_tokens=settings.eval_max_new_tokens, progress=settings.progress)
        save_results(res, out / "results" / f"{name}.json")
        return res

    from recap.models.policy import resolve_model_path

    resolve_model_path(model)  # fail before any work when the base is missing
    results = {BASE_NAME: phases.run("eval_base", f"evaluating the base model ({model})",
                                     lambda: evaluate_one(BASE_NAME, model))}
    run_dirs: dict[str, Path] = {}
    for arm in ARMS:
        recipe = quickstart_recipe(arm, settings, model, out / "runs" / arm)
        run_dirs[arm] = phases.run(
            f"train_{arm}", f"training {arm} ({settings.steps} steps, {settings.batch_size} "
            f"prompts x G={settings.num_generations})", lambda r=recipe: train(r))
        results[arm] = phases.run(f"eval_{arm}", f"evaluating {arm}",
                                  lambda a=arm: evaluate_one(a, run_dirs[a] / "final"))
    runs = {arm: results[arm] for arm in ARMS}
    report = phases.run("report", "writing the report",
                        lambda: write_report(results[BASE_NAME], runs, run_dirs, out))
    table = headline_table(results[BASE_NAME], runs)
    (out / "headline.txt").write_text(table)
    verdict = forgetting_verdict(results[BASE_NAME], runs)
    trends = {arm: _reward_trend(d, "reward/arith/accuracy/mean") for arm, d in run_dirs.items()}
    lines = reading(verdict, trends)
    total = round(phases.elapsed(), 1)
    summary = {
        "format": SUMMARY_FORMAT,
        "command": "recap quickstart",
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in
                     asdict(replace(settings, pools=dict(settings.pools))).items()},
        "base_model": str(model),
        "models": {name: {"checkpoint": res["checkpoint"],
                          "results": str(out / "results" / f"{name}.json"),
                          "headline": _headline(res)} for name, res in results.items()},
        "runs": {arm: str(d) for arm, d in run_dirs.items()},
        "verdict": verdict,
        "training_trend": {k: list(v) if v else None for k, v in trends.items()},
        "reading": lines,
        "phases_s": phases.times,
        "wall_s": total,
        "hardware": f"{platform.machine()} CPU, {os.cpu_count()} cores visible, torch threads "
                    f"{settings.threads}",
        "report": str(report),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    echo(table)
    for line in lines:
        echo(line)
    echo(f"report: {report} (+ report.html); total wall time {total:.0f} s "
         f"({total / 60:.1f} min)")
    return summary


def _headline(res: Mapping[str, Any]) -> dict[str, float | None]:
    return {f"{task}/{m}": entry["metrics"].get(m) for task, entry in res["tasks"].items()
            for m in entry["headline"]}
