"""Optimise the toy problem from the five start points with one MTL method (the RECAP paper A.6).

One *batch* is one method and a few noise seeds: the five start points of every seed are
optimised together as one ``[R, 2]`` parameter tensor (R = 5 x seeds). The runs are independent
(every loss term of run r depends on row r only, and Adam is element-wise), so one batched
forward/backward gives every run its own gradient, while each run keeps its own weighting object
(loss-magnitude methods) or its own aggregator (gradient methods).

Two method families, with the cost each really pays per step and run:

* ``loss``: a `recap.weighting` strategy sees the *shifted noisy* values
  ``L1 + 3 eps + shift`` and ``L2 + shift`` (floats) and combines the same shifted tensors; one
  backward pass of the combined loss.
* ``grad``: K = 2 backward passes give the Jacobian ``[K, P]`` of the noise-free losses, then a
  torchjd aggregator (``recap.weighting.make_aggregator``) turns it into the update direction.
  The additive noise is constant in x, so it would not change the Jacobian and is not computed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from recap.toy.functions import NOISE_STD, OBJECTIVES, START_POINTS, start_points, toy_losses
from recap.weighting import Weighting, build_weighting, make_aggregator, weighting_options

#: Constant added to both losses before loss-magnitude methods see them. The noise-free losses
#: are > -20 everywhere, so L + 40 >= 20 - 3|eps| stays positive unless |eps| > 6.67 (probability
#: ~3e-11 per step). FAMO's log and RECAP's / DWA's ratios need positive values.
LOSS_SHIFT = 40.0
#: Adam learning rate of the RECAP paper A.6.
LEARNING_RATE = 1e-2


@dataclass(frozen=True)
class MethodSpec:
    """One method configuration of the study.

    key: unique label used in tables and plots (e.g. ``recap``, ``recap[T=1]``).
    kind: ``loss`` (a `build_weighting` strategy) or ``grad`` (an `aggregate_gradients` name).
    name: the strategy / aggregator name.
    options: keyword options of the strategy, as sorted ``(name, value)`` pairs.
    shift: constant added to the losses a loss-magnitude method sees (None: ``LOSS_SHIFT``).
    """

    key: str
    kind: str
    name: str
    options: tuple[tuple[str, Any], ...] = ()
    shift: float | None = None

    @property
    def seed_free(self) -> bool:
        """True when the noise cannot change the trajectory: the method never reads loss values
        (gradient aggregators, equal / static weights), so every noise seed gives the same path."""
        return self.kind == "grad" or self.name in ("equal", "static")


@dataclass
class BatchResult:
    """Trajectories and cost of one batch (one method, R = 5 x seeds runs).

    traj: parameters before every step and after the last one, ``[steps + 1, R, 2]``.
    wall_s / cpu_s: wall-clock and process CPU seconds of the optimisation loop alone.
    nonpositive: number of shifted values <= 0 shown to a loss-magnitude method.
    error: message if the whole batch failed (the rest of the trajectory is NaN), else None.
    run_errors: per run, None or "step t: message" when that run's strategy raised; the run's
        trajectory is NaN after step t.
    """

    traj: np.ndarray
    wall_s: float
    cpu_s: float
    nonpositive: int = 0
    error: str | None = None
    run_errors: list[str | None] | None = None


def noise_for_seed(seed: int, steps: int, runs: int) -> torch.Tensor:
    """Standard normal draws eps, shape ``[steps, runs]``, from a generator seeded by ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(steps, runs, generator=gen, dtype=torch.float64)


def _build_weightings(spec: MethodSpec, run_seeds: list[int]) -> list[Any]:
    options = dict(spec.options)
    weightings = []
    for r, seed in enumerate(run_seeds):
        opts = dict(options)
        # Strategies with their own randomness (RLW) get a distinct stream per start and seed.
        if "seed" in weighting_options(spec.name) and "seed" not in opts:
            opts["seed"] = 1000 * seed + r % len(START_POINTS)
        weightings.append(build_weighting(spec.name, objectives=list(OBJECTIVES), **opts))
    return weightings


def _loss_loop(
    spec: MethodSpec,
    x: torch.Tensor,
    traj: torch.Tensor,
    eps: torch.Tensor,
    lr: float,
    shift: float,
    scale_first: float,
    run_seeds: list[int],
) -> tuple[int, list[tuple[int, str] | None]]:
    """Optimise with a loss-magnitude strategy.

    Returns the count of non-positive values shown to the strategies and, per run, None or
    ``(step, message)`` when its strategy raised at that step (the run is stopped there; the
    other runs of the batch go on).
    """
    steps = eps.shape[0]
    weightings = _build_weightings(spec, run_seeds)
    method_params = [p for w in weightings for p in w.parameters()]
    groups = [{"params": [x]}] + ([{"params": method_params}] if method_params else [])
    opt = torch.optim.Adam(groups, lr=lr)
    # [steps, R, 2]: noise on the first objective only, the shift on both.
    offsets = torch.stack([NOISE_STD * eps + shift, torch.full_like(eps, shift)], dim=-1)
    names = OBJECTIVES
    # Strategies that keep the default combine, (1/K) sum_k lambda_k L_k with constant lambda,
    # are combined for all runs in one tensor op (identical value and gradient, see the tests);
    # UW and FAMO have their own combine and are called run by run.
    batched = all(type(w).combine is Weighting.combine for w in weightings)
    failed: list[tuple[int, str] | None] = [None] * len(weightings)
    nonpositive = 0
    for t in range(steps):
        traj[t] = x.detach()
        noisy = toy_losses(x, scale_first) + offsets[t]  # [R, 2]
        values = noisy.detach().tolist()  # one host sync per step: the strategies read floats
        nonpositive += sum(v <= 0.0 for row in values for v in row)
        lambdas, run_losses = [], []
        for r, (w, vals, row) in enumerate(zip(weightings, values, noisy.unbind(0), strict=True)):
            if failed[r] is not None:
                lambdas.append([0.0] * len(names))
                continue
            named = dict(zip(names, vals, strict=True))
            try:
                if t > 0:
                    # FAMO's post-update with the losses at the new parameters (its reference
                    # toy does the same); a no-op for the other strategies.
                    w.post_step(named)
                weights = w.update(named)
                if not batched:
                    run_losses.append(w.combine(dict(zip(names, row.unbind(0), strict=True))))
            except (ValueError, RuntimeError) as exc:  # e.g. FAMO refusing a loss <= 0
                failed[r] = (t, f"{type(exc).__name__}: {exc}")
                lambdas.append([0.0] * len(names))
                continue
            lambdas.append([weights[n] for n in names])
        if all(f is not None for f in failed):
            break
        if batched:
            lam = torch.tensor(lambdas, dtype=noisy.dtype)  # [R, K], constant
            total = (lam * noisy).sum() / len(names)
        else:
            total = sum(run_losses)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
    return nonpositive, failed


def _grad_loop(
    spec: MethodSpec,
    x: torch.Tensor,
    traj: torch.Tensor,
    steps: int,
    lr: float,
    scale_first: float,
) -> None:
    """Optimise with a gradient aggregator over the per-objective Jacobian."""
    opt = torch.optim.Adam([x], lr=lr)
    num_obj = len(OBJECTIVES)
    # One aggregator per run: Nash-MTL keeps state across steps.
    aggregators = [
        make_aggregator(spec.name, num_obj, **dict(spec.options)) for _ in range(x.shape[0])
    ]
    for t in range(steps):
        traj[t] = x.detach()
        losses = toy_losses(x, scale_first)  # [R, K]
        # K backward passes: row r of each gradient is d L_k(x_r) / d x_r (runs independent).
        jac = torch.stack(
            [
                torch.autograd.grad(losses[:, k].sum(), x, retain_graph=k < num_obj - 1)[0]
                for k in range(num_obj)
            ],
            dim=1,
        )  # [R, K, 2]
        x.grad = torch.stack([agg(j) for agg, j in zip(aggregators, jac.unbind(0), strict=True)])
        opt.step()


def run_batch(
    spec: MethodSpec,
    seeds: tuple[int, ...],
    steps: int,
    lr: float = LEARNING_RATE,
    shift: float | None = None,
    scale_first: float = 1.0,
) -> BatchResult:
    """Optimise the five start points of every noise seed for ``steps`` Adam steps with ``spec``.

    Run ``5 s + i`` is start point i under the s-th seed of ``seeds``. The noise of a seed is the
    same for every method (``noise_for_seed``), so all methods face the same eps sequences.
    ``shift`` overrides ``spec.shift`` (default ``LOSS_SHIFT``). Timing covers the optimisation
    loop only.
    """
    if shift is None:
        shift = LOSS_SHIFT if spec.shift is None else spec.shift
    torch.manual_seed(seeds[0])
    base = start_points()
    starts = base.repeat(len(seeds), 1)  # [R, 2], R = 5 * len(seeds)
    runs = starts.shape[0]
    run_seeds = [s for s in seeds for _ in range(base.shape[0])]
    x = starts.clone().requires_grad_(True)  # [R, 2]
    traj = torch.full((steps + 1, runs, 2), float("nan"), dtype=torch.float64)
    eps = torch.cat([noise_for_seed(s, steps, base.shape[0]) for s in seeds], dim=1)  # [T, R]
    nonpositive, error = 0, None
    failed: list[tuple[int, str] | None] = [None] * runs
    wall0, cpu0 = time.perf_counter(), time.process_time()
    try:
        if spec.kind == "loss":
            nonpositive, failed = _loss_loop(spec, x, traj, eps, lr, shift, scale_first, run_seeds)
        elif spec.kind == "grad":
            _grad_loop(spec, x, traj, steps, lr, scale_first)
        else:
            raise ValueError(f"unknown method kind {spec.kind!r}; known: loss, grad")
        traj[steps] = x.detach()
    except (ValueError, RuntimeError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    for r, fail in enumerate(failed):
        if fail is not None:
            traj[fail[0] + 1 :, r] = float("nan")
    run_errors = [None if f is None else f"step {f[0]}: {f[1]}" for f in failed]
    return BatchResult(traj.numpy(), wall, cpu, nonpositive, error, run_errors)
