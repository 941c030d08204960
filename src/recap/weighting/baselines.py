"""Loss-magnitude baselines that only need one scalar per objective: equal, static, DWA, RLW.

All of them use the default `Weighting.combine`, (1/K) sum_k lambda_k L_k with constant lambda.
DWA consumes losses (`consumes = "loss"`): the trainer feeds it 1 - mean reward for an RL
objective and the loss of an SFT one (fed rewards, it would favour the objectives that improve
fastest, the opposite of its intent). It is kept here rather than torchjd's
`scalarization.DWA` (compared with it in the tests) because DWA here averages iteration windows
and allows objectives absent from a step, where torchjd's works per epoch on the full [K] tensor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from recap.weighting.base import Weighting, WindowedWeighting, softmax_weights


class EqualWeighting(Weighting):
    """lambda_k = 1 for every objective: the plain mean of the losses."""

    name = "equal"

    def update(self, values: Mapping[str, float]) -> dict[str, float]:
        """Validate the names and return all ones."""
        self._check_names(values)
        return self.weights


class StaticWeighting(Weighting):
    """Fixed user weights, rescaled to mean 1 (a fixed mixture such as MoDoMoDo's, RECAP paper 5.1).

    Args:
        objectives: objective names.
        weights: a positive finite weight for every objective; only the ratios matter.
    """

    name = "static"

    def __init__(self, objectives: Sequence[str], weights: Mapping[str, float]) -> None:
        super().__init__(objectives)
        self._check_names(weights)
        self._require_all(weights, "weights option")
        raw = {name: float(weights[name]) for name in self.objectives}
        bad = {name: w for name, w in raw.items() if not (math.isfinite(w) and w > 0)}
        if bad:
            raise ValueError(f"static weights must be finite and > 0, got {bad}")
        mean = sum(raw.values()) / self.num_objectives
        self._weights = {name: w / mean for name, w in raw.items()}

    def update(self, values: Mapping[str, float]) -> dict[str, float]:
        """Validate the names and return the fixed weights."""
        self._check_names(values)
        return self.weights


class DWAWeighting(WindowedWeighting):
    """Dynamic Weight Average (Liu, Johns & Davison, CVPR 2019, eq. 7) on iteration windows.

        r_k = L_k(t-1) / L_k(t-2),   lambda_k(t) = K softmax(r / T)_k

    The paper averages L over epochs; here L_k(t-1) is the mean of the `window` most recent
    values passed to earlier updates and L_k(t-2) the mean of the `window` values before those
    (window = 1: consecutive iterations). As in the paper the weights at step t use only earlier
    values: each update computes the weights first and then stores this step's values. Weights
    are uniform until every objective has 2 * window earlier values (the first 2 updates for
    window = 1). A ratio that is not a finite positive-denominator quotient (L_k(t-2) <= 0 or
    overflow) is replaced by the neutral r_k = 1; NaN / infinite values are not stored.

    Args:
        objectives: objective names.
        temperature: T > 0 (the paper uses 2).
        window: number of iterations averaged into each of L(t-1) and L(t-2).
    """

    name = "dwa"
    consumes = "loss"

    def __init__(
        self, objectives: Sequence[str], temperature: float = 2.0, window: int = 1
    ) -> None:
        super().__init__(objectives, window)
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        self.temperature = float(temperature)

    def _ratio(self, name: str) -> float:
        hist = list(self._history[name])
        older = sum(hist[: self.window]) / self.window
        newer = sum(hist[self.window :]) / self.window
        ratio = newer / older if older > 0 else 1.0
        return ratio if math.isfinite(ratio) else 1.0

    def update(self, values: Mapping[str, float]) -> dict[str, float]:
        """Weights from the earlier values, then store this step's values."""
        finite, _ = self._finite_values(values)
        if all(len(h) == 2 * self.window for h in self._history.values()):
            ratios = [self._ratio(name) for name in self.objectives]
            lambdas = softmax_weights(ratios, self.temperature)
            self._weights = dict(zip(self.objectives, lambdas, strict=True))
            self.last_stats = {
                name: {"r": r} for name, r in zip(self.objectives, ratios, strict=True)
            }
        for name, value in finite.items():
            self._history[name].append(value)
        return self.weights



class RandomLossWeighting(Weighting):
    """Random Loss Weighting (Lin et al., TMLR 2022, "Reasonable effectiveness of random
    weighting"): fresh lambda = K softmax(z), z ~ N(0, I_K), at every update.

    The draws come from a numpy generator seeded by `seed`; its state is part of `state_dict`, so
    a resumed run draws the same weights as an uninterrupted one.
    """

    name = "rlw"

    def __init__(self, objectives: Sequence[str], seed: int = 0) -> None:
        super().__init__(objectives)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def update(self, values: Mapping[str, float]) -> dict[str, float]:
        """Validate the names and draw new weights (the values themselves are not used)."""
        self._check_names(values)
        z = self._rng.standard_normal(self.num_objectives)  # [K]
        lambdas = softmax_weights([float(x) for x in z], 1.0)
        self._weights = dict(zip(self.objectives, lambdas, strict=True))
        return self.weights

    def state_dict(self) -> dict[str, Any]:
        """Weights and the generator state (plain ints and strings)."""
        state = super().state_dict()
        state["rng"] = self._rng.bit_generator.state
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore weights and the generator state."""
        super().load_state_dict(state)
        self._rng.bit_generator.state = dict(state["rng"])
