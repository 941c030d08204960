"""The toy two-task study of RECAP appendix A.6 (figures 5, 14, 16, 17, 18): `recap bench toy`.

Every method optimises the five start points under three noise seeds (Adam, lr 1e-2, 10 000
steps). Metrics per run come from the distance in loss space to the analytic Pareto front
(`recap.toy.metrics`); per-step cost comes from a separate timing pass in which every method runs
the same batch (five runs, one process, one thread, interleaved repeats), so the ratios to equal
weighting compare like with like.

Deliberate choices (also written into results.json):
* Methods that never read loss values (equal weighting, every gradient aggregator) follow the
  same path for every noise seed, because the noise is additive and constant in x. They are run
  once and their metrics reused for all seeds (``replicate_seed_free=False`` runs every seed).
* CAGrad and Nash-MTL (torchjd, a cvxpy solve per call: ~9 and ~30 ms here) are not in the
  default method list: at 50 000 calls each they took 9 and 33 CPU minutes on the 2-core
  benchmark machine. Pass them in ``methods`` to include them.
* The ``shift`` ablation group (loss shift 21 instead of 40) is opt-in.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import platform
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from recap.toy.cost import time_recap_update, time_step_costs
from recap.toy.front import distance_to_front, pareto_front
from recap.toy.functions import NOISE_STD, START_POINTS, toy_losses
from recap.toy.metrics import (
    FRONT_TOLERANCE,
    TAIL_STEPS,
    RunMetrics,
    run_metrics,
    summarise_seed_runs,
)
from recap.toy.runner import LEARNING_RATE, LOSS_SHIFT, MethodSpec, run_batch

MAIN_METHODS: tuple[MethodSpec, ...] = (
    MethodSpec("recap", "loss", "recap"),
    MethodSpec("equal", "loss", "equal"),
    MethodSpec("dwa", "loss", "dwa"),
    MethodSpec("uw", "loss", "uw"),
    MethodSpec("rlw", "loss", "rlw"),
    MethodSpec("famo", "loss", "famo"),
    MethodSpec("pcgrad", "grad", "pcgrad"),
    MethodSpec("mgda", "grad", "mgda"),
    MethodSpec("imtlg", "grad", "imtlg"),
    MethodSpec("upgrad", "grad", "upgrad"),
    # c = 0.5 as in the CAGrad reference toy (the library default 0.4 is its NYUv2 setting).
    MethodSpec("cagrad", "grad", "cagrad", (("c", 0.5),)),
    MethodSpec("nashmtl", "grad", "nashmtl"),
)
METHODS: dict[str, MethodSpec] = {spec.key: spec for spec in MAIN_METHODS}
#: Methods whose aggregator solves a cvxpy problem every call (see the module docstring).
SOLVER_BOUND: tuple[str, ...] = ("cagrad", "nashmtl")
DEFAULT_METHODS: tuple[str, ...] = tuple(k for k in METHODS if k not in SOLVER_BOUND)
QUICK_METHODS: tuple[str, ...] = ("recap", "equal", "famo", "upgrad")
QUICK_STEPS = 300


def _recap(key: str, **options: float) -> MethodSpec:
    return MethodSpec(key, "loss", "recap", tuple(sorted(options.items())))


#: RECAP ablations (the RECAP paper A.6, figs 17, 18 and table 5) as (value, spec) per group, plus a
#: sensitivity check of the loss shift: the tighter bound 21 (FAMO's reference toy uses
#: min_losses = -21) lets the noisy L1 + 21 go negative, which FAMO's log cannot take.
#: The defaults (T = 5, W = 10, s = c + i, shift 40) are the main ``recap`` run.
ABLATIONS: dict[str, list[tuple[float | str, MethodSpec]]] = {
    "alpha": [(a, _recap(f"recap[alpha={a:g}]", alpha=a)) for a in (0.0, 0.25, 0.5, 0.75, 1.0)],
    "temperature": [
        (1.0, _recap("recap[T=1]", temperature=1.0)),
        (5.0, METHODS["recap"]),
        (30.0, _recap("recap[T=30]", temperature=30.0)),
    ],
    "window": [
        (5, _recap("recap[W=5]", window=5)),
        (10, METHODS["recap"]),
        (25, _recap("recap[W=25]", window=25)),
    ],
    "shift": [
        (name, MethodSpec(f"{name}[shift=21]", "loss", name, shift=21.0))
        for name in ("recap", "dwa", "uw", "famo")
    ],
}
#: Groups run by ``ablations=True``: the paper's three (the shift check is opt-in, ~25% more CPU).
DEFAULT_ABLATIONS: tuple[str, ...] = ("alpha", "temperature", "window")
ABLATION_TITLES = {
    "alpha": "RECAP, s = alpha c + (1 - alpha) i (T = 5, W = 10)",
    "temperature": "RECAP, temperature T (s = c + i, W = 10)",
    "window": "RECAP, window W (s = c + i, T = 5)",
    "shift": "loss shift 21 instead of 40 (noisy L1 + 21 can be negative)",
}


def _label(group: str, value: float | str) -> str:
    if group == "shift":
        return f"{value}, shift 21"
    return f"{group} = {value:g}"


def _init_worker() -> None:
    torch.set_num_threads(1)


def _run_job(spec: MethodSpec, seeds: tuple[int, ...], steps: int) -> dict[str, Any]:
    """Run one batch and reduce it to distances (what the parent needs), in a worker."""
    result = run_batch(spec, seeds, steps)
    losses = toy_losses(torch.from_numpy(result.traj)).numpy()  # [T+1, R, 2], noise-free
    return {
        "spec": spec,
        "seeds": seeds,
        "distance": distance_to_front(losses),  # [T+1, R]
        "losses_seed0": losses[:, : len(START_POINTS)],  # [T+1, 5, 2]
        "wall_s": result.wall_s,
        "cpu_s": result.cpu_s,
        "nonpositive": result.nonpositive,
        "error": result.error,
        "run_errors": result.run_errors,
    }


def _job_cost(spec: MethodSpec, seeds: tuple[int, ...]) -> float:
    """Rough relative cost for longest-first scheduling (per-call aggregator solves dominate)."""
    per_run = {
        "cagrad": 20.0,
        "nashmtl": 40.0,
        "mgda": 3.0,
        "upgrad": 2.5,
        "uw": 1.5,
        "famo": 3.0,
    }.get(spec.name, 1.0)
    return per_run * len(seeds)


def _run_jobs(
    jobs: list[tuple[MethodSpec, tuple[int, ...]]], steps: int, workers: int
) -> list[dict[str, Any]]:
    jobs = sorted(jobs, key=lambda job: -_job_cost(*job))
    total = sum(len(seeds) * len(START_POINTS) for _, seeds in jobs)
    out: list[dict[str, Any]] = []
    with tqdm(total=total, desc="toy study (runs)", unit="run") as bar:
        if workers <= 1:
            for spec, seeds in jobs:
                bar.set_postfix_str(spec.key)
                out.append(_run_job(spec, seeds, steps))
                bar.update(len(seeds) * len(START_POINTS))
            return out
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker) as pool:
            futures = [pool.submit(_run_job, spec, seeds, steps) for spec, seeds in jobs]
            for fut in as_completed(futures):
                res = fut.result()
                bar.set_postfix_str(res["spec"].key)
                out.append(res)
                bar.update(len(res["seeds"]) * len(START_POINTS))
    return out


def _summarise_job(res: dict[str, Any], seeds: int, tail: int) -> dict[str, Any]:
    """Metrics per seed and start, replicated over seeds for seed-free single runs."""
    spec: MethodSpec = res["spec"]
    dist = res["distance"]  # [T+1, R]
    n = len(START_POINTS)
    per_seed: list[list[RunMetrics]] = [
        [run_metrics(dist[:, s * n + i], FRONT_TOLERANCE, tail) for i in range(n)]
        for s in range(len(res["seeds"]))
    ]
    replicated = len(res["seeds"]) < seeds
    if replicated:  # identical by construction (see MethodSpec.seed_free)
        per_seed = per_seed * seeds
    per_start = [
        {
            "start": list(START_POINTS[i]),
            "reached": sum(runs[i].reached for runs in per_seed),
            "final_distance_mean": float(np.mean([runs[i].final_distance for runs in per_seed])),
        }
        for i in range(n)
    ]
    return {
        "kind": spec.kind,
        "name": spec.name,
        "options": dict(spec.options),
        "loss_shift": (LOSS_SHIFT if spec.shift is None else spec.shift)
        if spec.kind == "loss"
        else None,
        "seeds_run": list(res["seeds"]),
        "replicated_over_seeds": replicated,
        "summary": summarise_seed_runs(per_seed),
        "per_start": per_start,
        "per_seed": [[m.to_dict() for m in runs] for runs in per_seed],
        "study_wall_s": res["wall_s"],
        "study_cpu_s": res["cpu_s"],
        "nonpositive_values": res["nonpositive"],
        "error": res["error"],
        # per run (seed-major, 5 starts per seed): None or the step and message of a failure
        "run_errors": res["run_errors"],
    }


def time_methods(
    specs: Sequence[MethodSpec], steps: int, repeats: int = 3
) -> dict[str, dict[str, float]]:
    """Per-step cost of every method on the same batch (5 runs, seed 0), in this process.

    Round-robin over methods, ``repeats`` times, after a 5-step warm-up of each; reports the
    median wall and CPU microseconds per step and run. One torch thread, like the study workers.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for spec in specs:
            run_batch(spec, (0,), 5)
        samples: dict[str, list[tuple[float, float]]] = {s.key: [] for s in specs}
        for _ in range(repeats):
            for spec in specs:
                res = run_batch(spec, (0,), steps)
                scale = 1e6 / (steps * len(START_POINTS))
                samples[spec.key].append((res.wall_s * scale, res.cpu_s * scale))
    finally:
        torch.set_num_threads(threads)
    out: dict[str, dict[str, float]] = {}
    for key, vals in samples.items():
        wall = statistics.median(v[0] for v in vals)
        cpu = statistics.median(v[1] for v in vals)
        out[key] = {"us_per_step_run_wall": wall, "us_per_step_run_cpu": cpu}
    ref = out.get("equal")
    for entry in out.values():
        for unit in ("wall", "cpu"):
            entry[f"ratio_to_equal_{unit}"] = (
                entry[f"us_per_step_run_{unit}"] / ref[f"us_per_step_run_{unit}"]
                if ref
                else math.nan
            )
    return out


def _hardware() -> dict[str, Any]:
    import os

    return {
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads_per_worker": 1,
    }


def _select(methods: Sequence[str] | None, quick: bool) -> list[MethodSpec]:
    names = list(methods) if methods else list(QUICK_METHODS if quick else DEFAULT_METHODS)
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise ValueError(f"unknown toy method(s) {unknown}; known: {', '.join(METHODS)}")
    return [METHODS[n] for n in names]


def run_toy_study(
    out_dir: Path,
    quick: bool = False,
    seeds: int = 3,
    steps: int = 10000,
    methods: list[str] | None = None,
    *,
    ablations: bool | Sequence[str] = True,
    workers: int = 2,
    replicate_seed_free: bool = True,
    timing_steps: int = 200,
    verbose: bool = True,
) -> dict[str, Any]:
    """Run the toy study and write results.json, results.md, pareto_front.csv and PNGs.

    Args:
        out_dir: output directory (created).
        quick: smoke mode: at most 300 steps, 1 seed, methods recap / equal / famo / upgrad
            (unless ``methods`` is given), short timing pass and micro-benchmarks.
        seeds: number of noise seeds (0 .. seeds-1).
        steps: Adam steps per run (the RECAP paper: 10 000).
        methods: method keys (``METHODS``); default ``DEFAULT_METHODS``.
        ablations: ablation groups of ``ABLATIONS`` to run (True: ``DEFAULT_ABLATIONS``, the
            paper's alpha, temperature and window; or a list of names, e.g. adding ``shift``).
        workers: worker processes (1 = run in this process).
        replicate_seed_free: run methods that cannot see the noise once (see module docstring).
        timing_steps: steps per method and repeat of the timing pass.
        verbose: print a short summary (``render_summary``) at the end.

    Returns:
        The results dictionary written to results.json.
    """
    from recap.toy.plots import write_plots
    from recap.toy.report import render_markdown, render_summary

    t0 = time.perf_counter()
    if quick:
        steps, seeds, timing_steps = min(steps, QUICK_STEPS), 1, min(timing_steps, 30)
    if steps < 1 or seeds < 1:
        raise ValueError(f"steps and seeds must be >= 1, got steps={steps}, seeds={seeds}")
    main = _select(methods, quick)
    specs = {s.key: s for s in main}
    if isinstance(ablations, bool):
        groups = {g: ABLATIONS[g] for g in DEFAULT_ABLATIONS} if ablations else {}
    else:
        unknown = [g for g in ablations if g not in ABLATIONS]
        if unknown:
            raise ValueError(f"unknown ablation group(s) {unknown}; known: {', '.join(ABLATIONS)}")
        groups = {g: ABLATIONS[g] for g in ablations}
    for entries in groups.values():
        specs.update({spec.key: spec for _, spec in entries})
    all_seeds = tuple(range(seeds))
    jobs = [
        (spec, (0,) if replicate_seed_free and spec.seed_free else all_seeds)
        for spec in specs.values()
    ]
    tail = min(TAIL_STEPS, steps)

    timing = time_methods(main, timing_steps, repeats=1 if quick else 3)
    results_raw = _run_jobs(jobs, steps, workers)
    runs = {res["spec"].key: _summarise_job(res, seeds, tail) for res in results_raw}
    curves = {res["spec"].key: res for res in results_raw}

    microbench = {
        "recap_update_K8_W10": time_recap_update(8, 10, calls=2000 if quick else 20000),
        "step_cost": [
            time_step_costs(k, width=128 if quick else 512, reps=2 if quick else 10) for k in (2, 8)
        ],
    }
    front = pareto_front()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savetxt(
        out_dir / "pareto_front.csv",
        np.column_stack([front.weights, front.params, front.losses])[::4],
        delimiter=",",
        header="w,x1,x2,L1,L2",
        comments="",
        fmt="%.6f",
    )
    results: dict[str, Any] = {
        "config": {
            "steps": steps,
            "seeds": list(all_seeds),
            "learning_rate": LEARNING_RATE,
            "optimizer": "Adam (torch defaults betas=(0.9, 0.999), eps=1e-8), float64",
            "noise": f"{NOISE_STD:g} * eps, eps ~ N(0, 1), added to L1's value every step",
            "loss_shift": LOSS_SHIFT,
            "start_points": [list(p) for p in START_POINTS],
            "front_tolerance": FRONT_TOLERANCE,
            "tail_steps": tail,
            "replicate_seed_free": replicate_seed_free,
            "quick": quick,
            "timing_steps": timing_steps,
            "functions": "Liu et al. 2021 reference toy (see recap.toy.functions)",
        },
        "front": {
            "x2_at_w_half": float(front.params[len(front.weights) // 2, 1]),
            "x2_range": [float(front.params[:, 1].min()), float(front.params[:, 1].max())],
            "L_range": [float(front.losses.min()), float(front.losses.max())],
        },
        "main": [s.key for s in main],
        "ablations": {
            g: {
                "title": ABLATION_TITLES[g],
                "entries": [{"value": v, "key": s.key, "label": _label(g, v)} for v, s in e],
            }
            for g, e in groups.items()
        },
        "runs": runs,
        "timing": timing,
        "microbench": microbench,
        "hardware": _hardware(),
    }
    write_plots(results, curves, front, out_dir)
    results["wall_time_s"] = time.perf_counter() - t0
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=_json_default))
    (out_dir / "results.md").write_text(render_markdown(results))
    if verbose:
        print(render_summary(results))
        print(
            f"wrote {out_dir}/results.json, results.md and {len(results['plots'])} PNGs "
            f"in {results['wall_time_s']:.0f} s"
        )
    return results


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
