"""Convergence metrics of toy trajectories against the Pareto front (RECAP A.6, figs 5, 14).

Every metric reads the distance curve ``d[t]`` of one run: the Euclidean distance in loss space
from the noise-free losses at step ``t`` to the analytic front (``recap.toy.front``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

#: Loss-space distance under which a run counts as on the front (the front spans ~19.6 units in
#: each loss, so 0.1 is ~0.5 % of its extent; Adam's jitter at lr 1e-2 stays well below it).
FRONT_TOLERANCE = 0.1
#: Length of the tail over which stability is measured (the last 1000 of 10 000 steps).
TAIL_STEPS = 1000


@dataclass(frozen=True)
class RunMetrics:
    """Convergence summary of one run (one start point, one noise seed).

    final_distance: distance at the last step.
    reached: final distance <= tolerance.
    first_step: first step with distance <= tolerance (None if never).
    tail_std: standard deviation of the distance over the last ``tail`` steps.
    tail_mean: mean distance over the same tail.
    diverged: the run ended with non-finite losses (NaN distance), e.g. a method that raised.
    """

    final_distance: float
    reached: bool
    first_step: int | None
    tail_std: float
    tail_mean: float
    diverged: bool = False

    def to_dict(self) -> dict[str, float | bool | int | None]:
        return asdict(self)


def run_metrics(
    distance: np.ndarray, tolerance: float = FRONT_TOLERANCE, tail: int = TAIL_STEPS
) -> RunMetrics:
    """Summarise a distance curve ``distance[t]`` (shape ``[T]``, ``t = 0`` is the start)."""
    d = np.asarray(distance, dtype=np.float64)
    hits = np.flatnonzero(d <= tolerance)
    window = d[-min(tail, len(d)) :]
    return RunMetrics(
        final_distance=float(d[-1]),
        reached=bool(d[-1] <= tolerance),
        first_step=int(hits[0]) if hits.size else None,
        tail_std=float(window.std()),
        tail_mean=float(window.mean()),
        diverged=bool(not np.isfinite(d[-1])),
    )


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and population std of a list (NaN, NaN when empty); std is 0 for one value."""
    if not values:
        return math.nan, math.nan
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std())


def summarise_seed_runs(per_seed: list[list[RunMetrics]]) -> dict[str, float]:
    """Aggregate ``per_seed[s][i]`` (seed s, start i) into mean +- std over seeds.

    Per seed: the number of starts that reach the front, the mean final distance, the mean first
    step over the starts that got there, the mean tail std over all starts and the number of
    diverged runs (a diverged run makes the distance means NaN). These per-seed
    numbers are then averaged over seeds (std over seeds reported alongside).
    """
    reached = [sum(m.reached for m in runs) for runs in per_seed]
    final = [float(np.mean([m.final_distance for m in runs])) for runs in per_seed]
    first = [
        float(np.mean(steps))
        for runs in per_seed
        if (steps := [m.first_step for m in runs if m.first_step is not None])
    ]
    tail = [float(np.mean([m.tail_std for m in runs])) for runs in per_seed]
    diverged = [sum(m.diverged for m in runs) for runs in per_seed]
    out: dict[str, float] = {}
    for key, vals in (
        ("reached", reached),
        ("final_distance", final),
        ("first_step", first),
        ("tail_std", tail),
        ("diverged", diverged),
    ):
        out[f"{key}_mean"], out[f"{key}_std"] = mean_std([float(v) for v in vals])
    return out
