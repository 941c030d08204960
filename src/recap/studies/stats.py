"""Statistics of a study: intervals over training seeds and paired differences.

Every study evaluates every run on the same fixed held-out records, so a metric of an arm is a
matrix ``x[s, j]``: the score of record ``j`` under the model trained with seed ``s`` (S seeds,
N records). Two sources of uncertainty matter for a claim about a method:

- **training seeds**: another seed gives another model. Its share of the variance of the
  grand mean is ``var_s(m_s) / S``, with ``m_s`` the mean of seed ``s`` over the records;
- **test records**: another draw of the held-out set gives another mean. Its share is
  ``var_j(xbar_j) / N``, with ``xbar_j`` the mean of record ``j`` over the seeds.

The standard error used here adds the two, ``se = sqrt(var_s(m_s) / S + var_j(xbar_j) / N)``
(unbiased variances), and the 95 % interval is ``mean +- t(0.975, S - 1) * se``. The second term
also holds a little seed noise (``xbar_j`` averages only S models), so the interval errs wide;
the t quantile with S - 1 degrees of freedom is the usual choice when S is small. With one seed
there is no seed variance to estimate: the interval is the records' alone (normal quantile) and
the study says so.

A difference between two arms (or an arm and the base) is paired twice: by seed (both arms were
trained with the same seeds) and by record (both were evaluated on the same records), so the
same formula applies to ``d[s, j] = a[s, j] - b[s, j]``; a one-model reference (the base) is
broadcast over seeds. ``p`` is the two-sided t test of ``diff = 0`` with the same ``se`` and
degrees of freedom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as sps

__all__ = ["Estimate", "estimate", "paired_difference"]

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A mean (or a difference) with its 95 % interval; ``p`` only for differences."""

    mean: float
    ci_low: float
    ci_high: float
    se: float
    n_seeds: int
    n_records: int
    per_seed: list[float]
    p: float | None = None

    def as_dict(self, key: str = "mean") -> dict[str, object]:
        """JSON form; ``key`` names the point estimate (``mean`` or ``diff``)."""
        out = asdict(self)
        out[key] = out.pop("mean")
        if self.p is None:
            out.pop("p")
        return out


def _matrix(x: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=float)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"expected a [seeds, records] matrix, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("scores must be finite")
    return a


def _se_and_df(a: np.ndarray) -> tuple[float, float]:
    """Standard error of the grand mean from seeds and records (module docstring), and df."""
    s, n = a.shape
    seed_var = a.mean(axis=1).var(ddof=1) / s if s > 1 else 0.0
    record_var = a.mean(axis=0).var(ddof=1) / n if n > 1 else 0.0
    return math.sqrt(seed_var + record_var), (s - 1 if s > 1 else math.inf)


def _quantile(df: float) -> float:
    q = 0.5 + CONFIDENCE / 2
    return float(sps.norm.ppf(q) if math.isinf(df) else sps.t.ppf(q, df))


def estimate(x: Sequence[Sequence[float]] | np.ndarray,
             bounds: tuple[float, float] | None = None) -> Estimate:
    """Mean of ``x[seed, record]`` with a 95 % interval over training seeds and test records.

    ``bounds``: the range a score can take (``(0, 1)`` for a rate); the interval is clipped to
    it, since the normal approximation can reach past it near 0 or 1 with few records.
    """
    a = _matrix(x)
    se, df = _se_and_df(a)
    mean, half = float(a.mean()), _quantile(df) * se
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return Estimate(mean, low, high, se, a.shape[0], a.shape[1],
                    [float(v) for v in a.mean(axis=1)])


def paired_difference(a: Sequence[Sequence[float]] | np.ndarray,
                      b: Sequence[Sequence[float]] | np.ndarray) -> Estimate:
    """``mean(a - b)`` paired by seed and record, with its 95 % interval and two-sided ``p``.

    ``a`` and ``b`` are ``[seeds, records]`` on the same records; ``b`` may have one row (a
    single model such as the base), which is compared with every seed of ``a``.
    """
    x, y = _matrix(a), _matrix(b)
    if y.shape[0] == 1:
        y = np.repeat(y, x.shape[0], axis=0)
    if x.shape != y.shape:
        raise ValueError(f"paired scores must have the same [seeds, records] shape, got "
                         f"{x.shape} and {y.shape}")
    d = x - y
    se, df = _se_and_df(d)
    diff, half = float(d.mean()), _quantile(df) * se
    if se > 0:
        z = abs(diff) / se
        p = float(2 * (sps.norm.sf(z) if math.isinf(df) else sps.t.sf(z, df)))
    else:  # identical scores everywhere: no evidence of a difference (or of none)
        p = 1.0 if diff == 0 else 0.0
    return Estimate(diff, diff - half, diff + half, se, d.shape[0], d.shape[1],
                    [float(v) for v in d.mean(axis=1)], p)
