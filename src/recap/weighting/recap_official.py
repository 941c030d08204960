"""RECAP as its authors' public code runs it (``variant="official"``).

The RECAP paper's eq. 1 is ``lambda = K softmax((c + i) / T)`` over windowed statistics
(:mod:`recap.weighting.recap`). The authors' trainer (repository VietHoang1512/recap,
``src/open_r1/trainers/mixed_trainer.py``, weights around its lines 1724-1802 for GRPO and
1990-2042 for SFT; defaults in ``configs/template.yaml``: W = 10, T = 5, alpha = 0.5) computes
something else, reproduced here:

1. ``lambda_k = K [alpha softmax(c / T)_k + (1 - alpha) softmax(i / T)_k]``: two softmaxes
   blended, not one softmax of a blended score. ``alpha`` outside [0, 1] means the schedule
   ``alpha = 1 - step / max_steps`` (step = updates before this one).
2. K counts the objectives seen so far (those with a non-empty history), not those of the recipe;
   an objective never seen keeps weight 1 and is left out of the softmaxes.
3. Each objective keeps at most 2W values, appended whenever it is reported (no uniform warm-up).
   With n values, the last ``2 floor(n / 2)`` are split into an older and a newer half:
   ``c = sum(old) / (sum(new) + 1e-15)`` for rewards and ``sum(new) / (sum(old) + 1e-15)`` for
   SFT losses (either way c < 1 means improving), c = 1 while n < 2;
   ``i = population std / (mean + 1e-15)`` over the same values (0 for a single value).
4. The value of an RL objective is its mean raw reward, of an SFT objective its loss (objectives
   named ``sft:<domain>`` are SFT losses, any other an RL reward).
5. **Quirk, kept on purpose**: one weight computation per path. The GRPO path computes c for
   *every* objective as old/new (SFT losses included) and keeps the RL weights; the SFT path
   computes every c as new/old (rewards included) and keeps the SFT weights. Both softmaxes run
   over all objectives seen so far. An update that reports both kinds runs the GRPO path first,
   then appends the SFT values and runs the SFT path (the authors' batches hold one source each,
   so one step of theirs runs one path).

Where the weights act (on the rewards before group normalisation, SFT losses times lambda, no
1/K) is the trainer's business (``weighting.apply: rewards``); here ``combine`` is the plain
weighted sum ``sum_k lambda_k L_k`` (no 1/K), as the authors' loss.

Departures: a NaN or infinite value is rejected (counted in ``num_rejected``) instead of entering
the history, where the authors' code would turn every weight into NaN. Nothing guards zero or
negative means, as in the original: zero rewards give c = 0 or ~1e15.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

from recap.weighting.base import WindowedWeighting, softmax_weights

_EPS = 1e-15  # the authors' denominator guard


def is_sft(name: str) -> bool:
    """Objectives named ``sft:<domain>`` are SFT losses; any other is an RL reward."""
    return name.startswith("sft:")


def official_signals(history: Sequence[float], *, sft_direction: bool) -> dict[str, float]:
    """c and i of one history (oldest first) in the authors' formulas (module docstring, 3).

    ``sft_direction``: c = new / old (the SFT path) instead of old / new (the GRPO path).
    """
    values = list(history)
    n = len(values)
    m = n // 2
    used = values[n - 2 * m:] if m else values
    if m == 0:
        c = 1.0
    else:
        old, new = sum(used[:m]), sum(used[m:])
        c = new / (old + _EPS) if sft_direction else old / (new + _EPS)
    mean = sum(used) / len(used) if used else 0.0
    pstd = math.sqrt(sum((x - mean) * (x - mean) for x in used) / len(used)) if used else 0.0
    return {"c": c, "i": pstd / (mean + _EPS), "n": float(n)}


class OfficialRecapWeighting(WindowedWeighting):
    """RECAP as the authors' code runs it (module docstring).

    Args:
        objectives: objective names; ``sft:<domain>`` ones are SFT losses, the rest RL rewards.
        window: W; each history keeps at most 2W values.
        temperature: T of both softmaxes.
        alpha: weight of the convergence softmax; outside [0, 1]: ``1 - step / max_steps``.
        max_steps: the run's optimiser steps, needed by the alpha schedule.

    Attributes:
        last_stats: ``{objective: {c, i, n, alpha, path}}`` of the last update (path 0: GRPO,
            1: SFT), for the objectives whose weight that update set.
    """

    name = "recap"
    variant = "official"
    consumes = "raw"

    def __init__(self, objectives: Sequence[str], window: int = 10, temperature: float = 5.0,
                 alpha: float = 0.5, max_steps: int | None = None) -> None:
        super().__init__(objectives, window)
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        if not math.isfinite(alpha):
            raise ValueError(f"alpha must be finite, got {alpha!r}")
        scheduled = not 0.0 <= alpha <= 1.0
        if scheduled and (max_steps is None or max_steps < 1):
            raise ValueError(f"alpha {alpha} outside [0, 1] means alpha = 1 - step / max_steps: "
                             f"pass max_steps >= 1")
        self.temperature, self.alpha, self.max_steps = float(temperature), float(alpha), max_steps
        self.steps = 0  # updates so far (the authors' global_step)
        self.num_rejected = 0

    def current_alpha(self) -> float:
        """alpha of this update: fixed, or ``1 - step / max_steps`` (must stay in [0, 1])."""
        if 0.0 <= self.alpha <= 1.0:
            return self.alpha
        a = 1.0 - self.steps / self.max_steps  # type: ignore[operator]
        if not 0.0 <= a <= 1.0:
            raise ValueError(f"scheduled alpha {a} left [0, 1] at step {self.steps} of "
                             f"max_steps {self.max_steps}")
        return a

    def _path(self, kind_is_sft: bool, alpha: float) -> None:
        seen = [k for k in self.objectives if self._history[k]]
        stats = {k: official_signals(self._history[k], sft_direction=kind_is_sft) for k in seen}
        k = len(seen)
        soft_c = softmax_weights([stats[n]["c"] for n in seen], self.temperature)
        soft_i = softmax_weights([stats[n]["i"] for n in seen], self.temperature)
        for j, name in enumerate(seen):  # softmax_weights is K * softmax: blend, no extra K
            if is_sft(name) == kind_is_sft:
                self._weights[name] = alpha * soft_c[j] + (1.0 - alpha) * soft_i[j]
                self.last_stats[name] = stats[name] | {"alpha": alpha,
                                                       "path": float(kind_is_sft), "k": float(k)}

    def update(self, values: Mapping[str, float]) -> dict[str, float]:
        """Append this step's values and recompute the weights of each path that has values."""
        finite, rejected = self._finite_values(values)
        self.num_rejected += len(rejected)
        alpha = self.current_alpha()
        self.last_stats = {}
        for kind_is_sft in (False, True):  # the GRPO path first, then the SFT path
            mine = {k: v for k, v in finite.items() if is_sft(k) == kind_is_sft}
            if not mine:
                continue
            for name, value in mine.items():
                self._history[name].append(value)
            self._path(kind_is_sft, alpha)
        self.steps += 1
        return self.weights

    def combine(self, losses: Mapping[str, Tensor]) -> Tensor:
        """``sum_k lambda_k L_k`` (no 1/K: the authors multiply each loss by its weight)."""
        tensors = self._check_losses(losses)
        return sum(self._weights[name] * loss for name, loss in tensors.items())  # type: ignore[return-value]

    def state_dict(self) -> dict[str, Any]:
        """Histories, weights, the step counter and the rejection counter."""
        return {**super().state_dict(), "variant": self.variant, "steps": self.steps,
                "num_rejected": self.num_rejected}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (the variant must match)."""
        if state.get("variant") != self.variant:
            raise ValueError(f"state is for RECAP variant {state.get('variant', 'eq1')!r}, "
                             f"not {self.variant!r}")
        super().load_state_dict(state)
        self.steps, self.num_rejected = int(state["steps"]), int(state["num_rejected"])
