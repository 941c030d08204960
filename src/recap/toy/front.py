"""Pareto front of the noise-free toy problem, and distances to it (the RECAP paper A.6, figure 5).

Derivation (reference definitions of ``recap.toy.functions``). For ``x2 > 0`` both losses are at
least ``g_k f1 >= log(5e-6) + 6 > -6.3``, while for ``x2 < 0`` they reach ``-20``; the front
therefore lies in ``x2 < 0``, where ``L_k = c(x2) h_k(x)`` with ``c = tanh(-x2 / 2) in (0, 1)``.
Minimising the convex combination ``w L1 + (1 - w) L2`` for a fixed ``x2`` is a quadratic in
``x1`` with minimiser ``x1* = 14 w - 7`` (in ``[-7, 7]``), where

    w h1 + (1 - w) h2 = 19.6 w (1 - w) - 20 + 0.01 (x2 + 8)^2,

so the remaining 1-D problem ``min_{x2 < 0} tanh(-x2 / 2) (19.6 w (1 - w) - 20 + 0.01 (x2 + 8)^2)``
is solved numerically for each ``w``; the optimum lies at ``x2 ~ -8.355`` (w = 1/2) to ``-8.434``
(w in {0, 1}). A dense grid sweep confirms that this family is the whole non-dominated set
(``tests/test_toy.py``), i.e. the front is convex and no part is missed by the scalarisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from scipy.spatial import cKDTree

from recap.toy.functions import toy_losses


@dataclass(frozen=True)
class ParetoFront:
    """The analytic front: ``weights [N]``, ``params [N, 2]`` (x space), ``losses [N, 2]``."""

    weights: np.ndarray
    params: np.ndarray
    losses: np.ndarray


def _optimal_x2(w: float) -> float:
    """Minimiser over ``x2 < 0`` of ``tanh(-x2/2) (19.6 w (1-w) - 20 + 0.01 (x2+8)^2)``."""
    a = 19.6 * w * (1.0 - w) - 20.0

    def objective(x2: float) -> float:
        return float(np.tanh(-0.5 * x2) * (a + 0.01 * (x2 + 8.0) ** 2))

    # The bracket is generous: the minimiser is within [-8.5, -8.3] for every w.
    res = minimize_scalar(
        objective, bounds=(-12.0, -4.0), method="bounded", options={"xatol": 1e-10}
    )
    return float(res.x)


@lru_cache(maxsize=4)
def pareto_front(num: int = 4001) -> ParetoFront:
    """Compute the noise-free Pareto front with ``num`` points, ``w`` from 0 to 1.

    ``w`` is the weight of L1 in the scalarisation; ``w = 0`` is L2's optimum (x1 = -7) and
    ``w = 1`` is L1's (x1 = 7). The points are ordered along the front.
    """
    weights = np.linspace(0.0, 1.0, num)
    x1 = 14.0 * weights - 7.0
    x2 = np.array([_optimal_x2(float(w)) for w in weights])
    params = np.stack([x1, x2], axis=1)  # [N, 2]
    losses = toy_losses(torch.from_numpy(params)).numpy()  # [N, 2]
    return ParetoFront(weights=weights, params=params, losses=losses)


@lru_cache(maxsize=4)
def _front_tree(num: int) -> cKDTree:
    return cKDTree(pareto_front(num).losses)


def distance_to_front(losses: np.ndarray, num: int = 4001) -> np.ndarray:
    """Euclidean distance in loss space from noise-free losses to the nearest front point.

    Args:
        losses: ``[..., 2]`` noise-free ``(L1, L2)`` values.
        num: front resolution. With 4001 points the spacing along the front is under 0.01, so
            the nearest-point distance over-estimates the distance to the curve by < 0.005.

    Returns:
        Distances of shape ``[...]``; NaN where a loss is not finite (a diverged run).
    """
    flat = np.asarray(losses, dtype=np.float64).reshape(-1, 2)
    finite = np.isfinite(flat).all(axis=1)
    dist = np.full(len(flat), np.nan)
    if finite.any():
        dist[finite], _ = _front_tree(num).query(flat[finite])
    return dist.reshape(np.shape(losses)[:-1])


def non_dominated(points: np.ndarray) -> np.ndarray:
    """Boolean mask of the points of ``[N, 2]`` not dominated by any other (minimisation)."""
    order = np.lexsort((points[:, 1], points[:, 0]))  # by L1, then L2
    keep = np.zeros(len(points), dtype=bool)
    best_l2 = np.inf
    for idx in order:
        # Sorted by L1: a point is non-dominated iff its L2 beats every point with smaller L1.
        if points[idx, 1] < best_l2:
            keep[idx] = True
            best_l2 = points[idx, 1]
    return keep
