"""Gradient-based multi-objective baselines through torchjd's aggregators.

These methods need one gradient per objective, i.e. the Jacobian J [K, P] of the K losses with
respect to the P shared parameters, and reduce it to a single update direction [P]. They are a
separate, explicit path from the `Weighting` strategies, which only see one scalar per objective:

    aggregator = make_aggregator("upgrad", num_objectives=K)      # once (some are stateful)
    optimizer.zero_grad()
    gradient_step(model.parameters(), [loss_1, ..., loss_K], aggregator)  # fills .grad
    optimizer.step()

The aggregation itself is torchjd's (`torchjd.aggregation`); each returns the update direction at
its own scale (e.g. PCGrad sums the projected gradients, UPGrad and MGDA average / take a convex
combination). CAGrad and Nash-MTL need `cvxpy` (`pip install "torchjd[full]"`). torchjd is
imported lazily: importing it pulls cvxpy, about a second of start-up.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from torch import Tensor

if TYPE_CHECKING:
    from torchjd.aggregation import Aggregator

# name -> (torchjd.aggregation class, default options). Defaults: CAGrad c = 0.4 (the CAGrad
# paper's multi-task setting; its toy uses 0.5), FairGrad alpha = 1 (proportional fairness).
_AGGREGATORS: dict[str, tuple[str, dict[str, Any]]] = {
    "upgrad": ("UPGrad", {}),  # Quinton & Rey 2024, Jacobian descent
    "mgda": ("MGDA", {}),  # Sener & Koltun 2018, min-norm point (Frank-Wolfe)
    "pcgrad": ("PCGrad", {}),  # Yu et al. 2020, gradient surgery
    "cagrad": ("CAGrad", {"c": 0.4}),  # Liu et al. 2021, conflict-averse
    "nashmtl": ("NashMTL", {}),  # Navon et al. 2022, bargaining solution
    "imtlg": ("IMTLG", {}),  # Liu et al. 2021, impartial MTL (gradient part)
    "alignedmtl": ("AlignedMTL", {}),  # Senushkin et al. 2023
    "dualproj": ("DualProj", {}),  # Quinton & Rey 2024, projection of the mean
    "fairgrad": ("FairGrad", {"alpha": 1.0}),  # Ban & Ji 2024
    "graddrop": ("GradDrop", {}),  # Chen et al. 2020 (random sign dropout)
    "mean": ("Mean", {}),  # plain mean of the gradients (reference)
}

GRADIENT_AGGREGATORS: tuple[str, ...] = tuple(_AGGREGATORS)
"""Names accepted by `make_aggregator` (case-insensitive)."""


def make_aggregator(name: str, num_objectives: int, **kwargs: Any) -> Aggregator:
    """Build the torchjd aggregator `name` for K = `num_objectives` objectives.

    `kwargs` override the defaults and are checked against the torchjd constructor; Nash-MTL's
    `n_tasks` is filled from `num_objectives`. Stateful aggregators (Nash-MTL) must be built once
    and reused across steps.
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in _AGGREGATORS:
        raise ValueError(
            f"unknown gradient aggregator {name!r}; known: {', '.join(GRADIENT_AGGREGATORS)}"
        )
    if num_objectives < 1:
        raise ValueError(f"num_objectives must be >= 1, got {num_objectives}")
    import torchjd.aggregation as aggregation

    class_name, defaults = _AGGREGATORS[key]
    cls = getattr(aggregation, class_name)
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    if "n_tasks" in kwargs:
        raise ValueError("n_tasks is set from num_objectives; do not pass it")
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        options = sorted(set(accepted) - {"n_tasks"})
        raise ValueError(f"aggregator {key!r} got unknown option(s) {unknown}; accepted: {options}")
    options = {**defaults, **kwargs}
    if "n_tasks" in accepted:
        options["n_tasks"] = num_objectives
    return cls(**options)


def aggregate_gradients(aggregator: str | Aggregator, jacobian: Tensor, **kwargs: Any) -> Tensor:
    """Reduce the Jacobian J [K, P] (row k = gradient of objective k) to one direction [P].

    `aggregator` is a name of `GRADIENT_AGGREGATORS` (a fresh aggregator is built with `kwargs`,
    so stateful ones start over each call) or an aggregator from `make_aggregator`.
    """
    if jacobian.ndim != 2:
        raise ValueError(f"jacobian must have shape [K, P], got {tuple(jacobian.shape)}")
    if isinstance(aggregator, str):
        aggregator = make_aggregator(aggregator, jacobian.shape[0], **kwargs)
    elif kwargs:
        raise ValueError("options are only accepted together with an aggregator name")
    return aggregator(jacobian)  # [P]


def gradient_step(
    params: Iterable[Tensor],
    losses: Sequence[Tensor] | Mapping[str, Tensor],
    aggregator: str | Aggregator,
) -> Tensor | None:
    """Compute each loss's gradient w.r.t. `params` and accumulate the aggregated one in `.grad`.

    Uses `torchjd.autojac.backward` (one backward pass per objective, vectorised) and
    `torchjd.autojac.jac_to_grad`. Like `loss.backward()` it adds to existing `.grad`, so zero the
    gradients first. Parameters that do not require grad are skipped. Returns the K combination
    weights when the aggregator is a weighted one (most are), else None.
    """
    from torchjd.autojac import backward, jac_to_grad

    loss_list = list(losses.values()) if isinstance(losses, Mapping) else list(losses)
    if not loss_list:
        raise ValueError("gradient_step needs at least one loss")
    trainable = [p for p in params if p.requires_grad]
    if not trainable:
        raise ValueError("gradient_step got no parameter that requires grad")
    if isinstance(aggregator, str):
        aggregator = make_aggregator(aggregator, len(loss_list))
    backward(loss_list, inputs=trainable)  # fills p.jac, [K, *p.shape]
    return jac_to_grad(trainable, aggregator)
