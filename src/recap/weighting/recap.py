"""RECAP dynamic objective reweighting as the paper writes it (eq. 1) and as it ran it.

The RECAP paper ("Beyond Reasoning Gains: Mitigating General Capabilities Forgetting in Large
Reasoning Models", sec. 4, eq. 1 and Algorithm 2) is read three ways (``variant``):

- ``eq1``: the formulas below with s = c + i (or the ablation's alpha blend when alpha is given);
- ``paper``: the paper's runs (appendix, hyper-parameters: T = 5, alpha = 0.5), i.e. eq. 1 with
  s = 0.5 c + 0.5 i: half the score, weights half as sharp as eq1's at the same T;
- ``official``: the authors' public code, a different formula
  (:mod:`recap.weighting.recap_official`).

:func:`make_recap` builds any of them (``build_weighting("recap", names, variant=...)``).

For every objective k a FIFO history of its last 2W values is kept. Once every objective has 2W
values, each update computes

    mu_k     = mean of the newest W values          (current window)
    mu_old_k = mean of the W values before those    (previous window)
    sigma_k  = unbiased standard deviation of all 2W values
    c_k      = mu_old_k / mu_k                      (convergence rate)
    i_k      = sigma_k / (mu_k + mu_old_k)          (inverse signal-to-noise ratio)
    s_k      = c_k + i_k        or  alpha * c_k + (1 - alpha) * i_k   (ablation)
    lambda_k = K * softmax(s / T)_k

and before that all weights are 1. The values are used exactly as given: in the trainer they are
reward-like signals in [0, 1] (the quantities tracked in the paper's figures 4 and 13).

Choices where the paper is silent or ambiguous (each one is tested):

* sigma: the text centres the deviations on mu (the newest window mean), Algorithm 2 calls
  `hist.std(unbiased=True)`, which centres them on the mean of all 2W values. We follow
  Algorithm 2 (the executable reference).
* Degenerate windows. c is a ratio of magnitudes and only means something for non-negative
  signals with a non-zero current mean, so c_k = 1 (neutral: "no measurable progress") when
  mu_k <= 1e-12 or mu_old_k < 0. i_k = 0 (neutral: "no measurable noise") when
  mu_k + mu_old_k <= 1e-12. A constant history gives sigma = 0 hence i = 0 by the formula.
  A term that still overflows to a non-finite number is replaced by its neutral value.
* NaN / infinite values are rejected: they are not pushed, the objective's history is left
  unchanged (as if it had been absent that step) and `num_rejected` counts them. Weights are then
  recomputed from the finite histories, so they are never NaN.
* An objective missing from a step's values keeps its history unchanged and still gets a weight
  from that history; the returned dict always covers all objectives. Unknown names raise.
* The warm-up is per objective: weights stay all 1 until every objective holds 2W values (the
  paper's step counter t >= 2W, which coincides when every objective is reported every step).
* K = 1 gives lambda = 1 always (softmax of one score).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from recap.weighting.base import WindowedWeighting, softmax_weights

# Window means whose magnitude is below this are treated as zero: a ratio with such a
# denominator is floating-point noise, not a convergence rate.
_ZERO = 1e-12


def recap_signals(
    history: Sequence[float], *, window: int, alpha: float | None = None
) -> dict[str, float]:
    """Per-objective RECAP statistics of one full history of 2W values (oldest first).

    Returns a dict with mu, mu_old, sigma, c, i and s (RECAP sec. 4 / Algorithm 2, lines 12-14),
    with the degenerate-case rules of the module docstring.
    """
    if len(history) != 2 * window:
        raise ValueError(f"need exactly 2W = {2 * window} values, got {len(history)}")
    old, recent = history[:window], history[window:]
    mu = sum(recent) / window
    mu_old = sum(old) / window
    # Algorithm 2: hist.std(unbiased=True), i.e. centred on the mean of all 2W values.
    mean_all = (mu + mu_old) / 2.0
    # x * x, not x ** 2: float power raises OverflowError where a product gives inf.
    sigma = math.sqrt(sum((x - mean_all) * (x - mean_all) for x in history) / (2 * window - 1))
    c = mu_old / mu if mu > _ZERO and mu_old >= 0.0 else 1.0
    i = sigma / (mu + mu_old) if mu + mu_old > _ZERO else 0.0
    if not math.isfinite(c):
        c = 1.0
    if not math.isfinite(i):
        i = 0.0
    s = c + i if alpha is None else alpha * c + (1.0 - alpha) * i
    return {"mu": mu, "mu_old": mu_old, "sigma": sigma, "c": c, "i": i, "s": s}


class RecapWeighting(WindowedWeighting):
    """RECAP: lambda = K softmax((c + i) / T) from windowed progress and instability.

    RECAP sec. 4 (eq. 1) and Algorithm 2; see the module docstring for the exact statistics and
    the degenerate-input rules. One `update` costs Theta(K W) scalar operations in plain Python.

    Args:
        objectives: objective names (K of them).
        window: W, length of each of the two averaging windows (history holds 2W values).
        temperature: T > 0 of the softmax; larger is closer to uniform.
        alpha: None for the variant's default (eq1: s = c + i; paper: 0.5); a number in [0, 1]
            for s = alpha c + (1 - alpha) i. Note alpha = 0.5 halves s, i.e. acts like doubling T.
        variant: ``eq1`` or ``paper`` (module docstring).

    Attributes:
        last_stats: after warm-up, {objective: {mu, mu_old, sigma, c, i, s}} of the last update.
        num_rejected: number of NaN / infinite values rejected so far.
    """

    name = "recap"

    def __init__(
        self,
        objectives: Sequence[str],
        window: int = 10,
        temperature: float = 5.0,
        alpha: float | None = None,
        variant: str = "eq1",
    ) -> None:
        super().__init__(objectives, window)
        if variant not in ("eq1", "paper"):
            raise ValueError(f"RecapWeighting variant must be eq1 or paper, got {variant!r} "
                             f"(official: recap.weighting.recap_official)")
        if alpha is None and variant == "paper":
            alpha = 0.5  # the paper's runs (appendix, hyper-parameters)
        self.variant = variant
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        if alpha is not None and not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be None or in [0, 1], got {alpha!r}")
        self.temperature = float(temperature)
        self.alpha = None if alpha is None else float(alpha)
        self.num_rejected = 0

    @property
    def ready(self) -> bool:
        """True once every objective holds 2W values (weights are no longer forced to 1)."""
        return all(len(h) == 2 * self.window for h in self._history.values())

    def update(self, values: Mapping[str, float]) -> dict[str, float]:
        """Push this step's values (Algorithm 2, lines 8-9) and recompute lambda (lines 10-18)."""
        finite, rejected = self._finite_values(values)
        self.num_rejected += len(rejected)
        for name, value in finite.items():
            self._history[name].append(value)
        if not self.ready:
            self.last_stats = {}
            self._weights = dict.fromkeys(self.objectives, 1.0)
            return self.weights
        self.last_stats = {
            name: recap_signals(list(self._history[name]), window=self.window, alpha=self.alpha)
            for name in self.objectives
        }
        scores = [self.last_stats[name]["s"] for name in self.objectives]
        lambdas = softmax_weights(scores, self.temperature)
        self._weights = dict(zip(self.objectives, lambdas, strict=True))
        return self.weights

    def state_dict(self) -> dict[str, Any]:
        """Histories, weights and counters as plain JSON-serialisable data."""
        return {**super().state_dict(), "variant": self.variant,
                "num_rejected": self.num_rejected}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore histories, weights and the rejection counter (the variant must match)."""
        if state.get("variant", "eq1") != self.variant:  # states before variants were eq1
            raise ValueError(f"state is for RECAP variant {state.get('variant')!r}, not "
                             f"{self.variant!r}")
        super().load_state_dict(state)
        self.num_rejected = int(state["num_rejected"])


RECAP_VARIANTS = ("eq1", "paper", "official")


def make_recap(objectives: Sequence[str], window: int = 10, temperature: float = 5.0,
               alpha: float | None = None, variant: str = "eq1",
               max_steps: int | None = None) -> WindowedWeighting:
    """A RECAP weighting of ``variant`` (``eq1``, ``paper`` or ``official``; module docstring).

    ``max_steps`` is read by the official variant's alpha schedule only (alpha outside [0, 1]).
    """
    if variant == "official":
        from recap.weighting.recap_official import OfficialRecapWeighting

        return OfficialRecapWeighting(objectives, window, temperature,
                                      0.5 if alpha is None else alpha, max_steps)
    if variant not in RECAP_VARIANTS:
        raise ValueError(f"unknown RECAP variant {variant!r}; known: {', '.join(RECAP_VARIANTS)}")
    return RecapWeighting(objectives, window, temperature, alpha, variant)
