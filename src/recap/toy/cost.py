"""Micro-benchmarks behind the "about K times cheaper per step" claim (RECAP A.6, fig. 16).

Two measurements, both single-threaded:

* `time_recap_update`: the RECAP weight update alone (K objectives, window W), microseconds per
  call, next to equal weighting's update as the floor of the interface.
* `time_step_costs`: one optimiser step of a shared MLP with K outputs, (a) loss weighting
  (RECAP update + weighted sum + one backward) versus (b) gradient aggregation (the K-row
  Jacobian via `recap.weighting.gradient_step`, torchjd, then the aggregator). On the toy problem
  itself P = 2 and the step is pure interpreter overhead; this model has a realistic P.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

import torch

from recap.weighting import build_weighting, gradient_step, make_aggregator


def time_recap_update(
    num_objectives: int = 8, window: int = 10, calls: int = 20000, seed: int = 0
) -> dict[str, Any]:
    """Microseconds per `update` call of RECAP (after its 2W warm-up) and of equal weighting.

    The values are reward-like numbers in [0, 1], as in the trainer. Median of 5 repeats of
    ``calls // 5`` calls each.
    """
    rng = random.Random(seed)
    names = [f"obj{k}" for k in range(num_objectives)]
    values = [{n: rng.random() for n in names} for _ in range(max(calls // 5, 1))]
    out: dict[str, Any] = {"K": num_objectives, "W": window, "calls": calls}
    for label, kwargs in (("recap", {"window": window}), ("equal", {})):
        strategy = build_weighting(label, objectives=names, **kwargs)
        for v in values[: 2 * window]:  # fill the 2W history so every timed call is a full one
            strategy.update(v)
        per_call = []
        for _ in range(5):
            start = time.perf_counter()
            for v in values:
                strategy.update(v)
            per_call.append((time.perf_counter() - start) / len(values) * 1e6)
        out[f"{label}_us_per_call"] = statistics.median(per_call)
    return out


def _mlp(width: int, num_objectives: int) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Linear(width, width),
        torch.nn.ReLU(),
        torch.nn.Linear(width, width),
        torch.nn.ReLU(),
        torch.nn.Linear(width, num_objectives),
    )


def time_step_costs(
    num_objectives: int,
    width: int = 512,
    batch: int = 256,
    reps: int = 10,
    aggregators: tuple[str, ...] = ("upgrad", "mgda"),
    seed: int = 0,
) -> dict[str, Any]:
    """Milliseconds per optimiser step: RECAP loss weighting vs gradient aggregation.

    Model: a 3-layer MLP (``width`` units, ~2 width^2 parameters, all shared) with one output per
    objective; objective k is the MSE of output k against a fixed random target. Every variant
    does forward, its backward work, and an SGD step. Median over ``reps`` steps after 2 warm-up
    steps.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen = torch.Generator().manual_seed(seed)
        inputs = torch.randn(batch, width, generator=gen)  # [B, width]
        targets = torch.randn(batch, num_objectives, generator=gen)  # [B, K]
        names = [f"obj{k}" for k in range(num_objectives)]
        model = _mlp(width, num_objectives)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)

        def losses() -> list[torch.Tensor]:
            err = (model(inputs) - targets) ** 2  # [B, K]
            return list(err.mean(dim=0).unbind())

        recap = build_weighting("recap", objectives=names)

        def loss_weighting_step() -> None:
            per_obj = losses()
            recap.update({n: float(v.detach()) for n, v in zip(names, per_obj, strict=True)})
            opt.zero_grad(set_to_none=True)
            recap.combine(dict(zip(names, per_obj, strict=True))).backward()
            opt.step()

        variants = {"recap (1 backward)": loss_weighting_step}
        for name in aggregators:
            agg = make_aggregator(name, num_objectives)

            def grad_step(agg: Any = agg) -> None:
                opt.zero_grad(set_to_none=True)
                gradient_step(model.parameters(), losses(), agg)
                opt.step()

            variants[f"{name} (K-row Jacobian)"] = grad_step

        out: dict[str, Any] = {
            "K": num_objectives,
            "params": sum(p.numel() for p in model.parameters()),
            "batch": batch,
            "ms_per_step": {},
        }
        for label, step in variants.items():
            for _ in range(2):
                step()
            samples = []
            for _ in range(reps):
                start = time.perf_counter()
                step()
                samples.append((time.perf_counter() - start) * 1e3)
            out["ms_per_step"][label] = statistics.median(samples)
        base = out["ms_per_step"]["recap (1 backward)"]
        out["ratio_to_recap"] = {k: v / base for k, v in out["ms_per_step"].items()}
        return out
    finally:
        torch.set_num_threads(threads)
