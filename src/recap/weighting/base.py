"""The `Weighting` interface shared by every loss-combination strategy.

A strategy turns one scalar signal per objective and step into weights with mean 1 over the K
objectives (`update`), and combines the per-objective loss tensors of the same step into the
scalar that is back-propagated (`combine`). The default combination is the RECAP paper objective
(sec. 4, "Overall training objective"): L = (1/K) sum_k lambda_k L_k with lambda treated as a
constant. Strategies with learnable state (UW, FAMO) override `combine`, `parameters` and
`post_step`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor


def validate_objectives(objectives: Sequence[str]) -> tuple[str, ...]:
    """Return `objectives` as a tuple after checking they are unique non-empty strings."""
    if isinstance(objectives, str):
        raise ValueError(f"objectives must be a list of names, got the string {objectives!r}")
    names = tuple(objectives)
    if not names:
        raise ValueError("objectives must name at least one objective")
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"objective names must be non-empty strings, got {name!r}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"objective names must be unique, duplicated: {duplicates}")
    return names


def softmax_weights(scores: Sequence[float], temperature: float) -> list[float]:
    """K * softmax(scores / T): weights with mean 1 (the RECAP paper eq. 1, also DWA and RLW).

    The maximum score is subtracted before dividing by T and exponentiating, so that large
    finite scores cannot overflow (dividing first turns a score near the float maximum into
    inf at T < 1, and inf - inf into NaN): the result is always finite and sums to K.
    """
    top = max(scores)
    exps = [math.exp((s - top) / temperature) for s in scores]
    total = sum(exps)
    k = len(exps)
    return [k * e / total for e in exps]


class Weighting(ABC):
    """Base class of every loss-combination strategy (see the package docstring for the contract).

    Attributes:
        objectives: the K objective names, in a fixed order.
        last_stats: per-objective diagnostics of the last `update` (strategy-specific keys, plain
            floats, ready for logging); empty when the strategy has none.
    """

    name: ClassVar[str] = ""
    # What `update` expects per objective, so a trainer can feed it (recap.training.trainer):
    # "reward": reward-like values in [0, 1] (an RL objective's mean reward, an SFT objective's
    #           next-token accuracy), higher is better (RECAP eq. 1 and the paper's runs);
    # "loss":   losses, lower is better (1 - mean reward for an RL objective, the SFT loss);
    # "raw":    an RL objective's mean reward and an SFT objective's loss (the authors' RECAP).
    consumes: ClassVar[str] = "reward"

    def __init__(self, objectives: Sequence[str]) -> None:
        self.objectives: tuple[str, ...] = validate_objectives(objectives)
        self._weights: dict[str, float] = dict.fromkeys(self.objectives, 1.0)
        self.last_stats: dict[str, dict[str, float]] = {}

    @property
    def num_objectives(self) -> int:
        """K, the number of objectives."""
        return len(self.objectives)

    @property
    def weights(self) -> dict[str, float]:
        """The current weights (a copy), as returned by the last `update`; all 1 initially."""
        return dict(self._weights)

    @abstractmethod
    def update(self, values: Mapping[str, float]) -> dict[str, float]:
        """Consume one step's scalar signal per objective and return weights with mean 1.

        `values` may omit objectives (their state is left unchanged); unknown names raise
        ValueError. The returned dict always covers every objective.
        """

    def combine(self, losses: Mapping[str, Tensor]) -> Tensor:
        """(1/K) sum_k lambda_k L_k over the objectives present in `losses` (RECAP sec. 4).

        The weights are plain floats, so no gradient flows into them ("lambda detached").
        An objective absent from `losses` contributes nothing, and the sum is still divided by
        the configured K, so each present objective keeps its coefficient lambda_k / K whether or
        not the others were sampled this step.
        """
        tensors = self._check_losses(losses)
        total = sum(self._weights[name] * loss for name, loss in tensors.items())
        return total / self.num_objectives

    def post_step(self, values: Mapping[str, float | Tensor]) -> None:
        """Hook called after the optimiser step; a no-op except for FAMO."""
        self._check_names(values)

    def parameters(self) -> list[torch.nn.Parameter]:
        """Learnable parameters the caller must add to its optimiser (empty for most)."""
        return []

    def to(self, device: torch.device | str) -> Weighting:
        """Move learnable state to `device` (before building the optimiser); no-op by default."""
        return self

    def state_dict(self) -> dict[str, Any]:
        """Plain-data state (JSON-serialisable) for checkpoints."""
        return {
            "name": self.name,
            "objectives": list(self.objectives),
            "weights": dict(self._weights),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a `state_dict`; the strategy name and objectives must match."""
        if state.get("name") != self.name:
            raise ValueError(f"state is for weighting {state.get('name')!r}, not {self.name!r}")
        if tuple(state.get("objectives", ())) != self.objectives:
            raise ValueError(
                f"state objectives {list(state.get('objectives', ()))} do not match "
                f"{list(self.objectives)}"
            )
        self._weights = {name: float(state["weights"][name]) for name in self.objectives}

    # -- helpers for subclasses -------------------------------------------------------------

    def _check_names(self, values: Mapping[str, Any]) -> None:
        unknown = sorted(set(values) - set(self.objectives))
        if unknown:
            raise ValueError(
                f"unknown objective(s) {unknown}; this {self.name!r} weighting knows "
                f"{list(self.objectives)}"
            )

    def _finite_values(self, values: Mapping[str, Any]) -> tuple[dict[str, float], list[str]]:
        """Split `values` into finite floats and the names whose value is NaN or infinite."""
        self._check_names(values)
        finite: dict[str, float] = {}
        rejected: list[str] = []
        for name, value in values.items():
            number = float(value)
            if math.isfinite(number):
                finite[name] = number
            else:
                rejected.append(name)
        return finite, rejected

    def _check_losses(self, losses: Mapping[str, Tensor]) -> dict[str, Tensor]:
        self._check_names(losses)
        if not losses:
            raise ValueError("combine() needs at least one loss")
        tensors: dict[str, Tensor] = {}
        for name, loss in losses.items():
            if not isinstance(loss, Tensor) or loss.numel() != 1:
                raise ValueError(f"loss {name!r} must be a one-element tensor, got {loss!r}")
            tensors[name] = loss.reshape(())
        return tensors

    def _require_all(self, names: Mapping[str, Any], what: str) -> None:
        missing = [name for name in self.objectives if name not in names]
        if missing:
            raise ValueError(f"{self.name!r} {what} needs every objective; missing {missing}")


class WindowedWeighting(Weighting):
    """A strategy that keeps the last 2W values of every objective (RECAP, DWA).

    Owns the histories and their (de)serialisation, so resuming restores them exactly.
    """

    def __init__(self, objectives: Sequence[str], window: int) -> None:
        super().__init__(objectives)
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an integer >= 1, got {window!r}")
        self.window = window
        self._history: dict[str, deque[float]] = {
            name: deque(maxlen=2 * window) for name in self.objectives
        }

    def state_dict(self) -> dict[str, Any]:
        """Histories and weights as plain JSON-serialisable data."""
        state = super().state_dict()
        state.update(window=self.window,
                     history={name: list(h) for name, h in self._history.items()})
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore histories and weights; the window must match the one in the state."""
        super().load_state_dict(state)
        if state["window"] != self.window:
            raise ValueError(f"state window {state['window']} does not match {self.window}")
        self._history = {
            name: deque((float(x) for x in state["history"][name]), maxlen=2 * self.window)
            for name in self.objectives
        }
