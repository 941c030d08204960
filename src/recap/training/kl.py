"""KL coefficient schedules: constant beta and GRPO-D's dynamic beta (OThink-MR1 eq. 3).

A schedule is a pure function of the step: nothing to save in a checkpoint. Steps are 0-based
optimiser-step indices ``s = 0 .. T-1``; GRPO-D's ``t`` (its last step) is ``T - 1`` so the first
step uses ``beta_mid`` and the last one ``beta_max``.

OThink-MR1 eq. 3 prints ``beta_min = (beta_min + beta_max) / 2``; the mid-point it defines is
``beta_mid`` (the value the schedule starts from), which is what is implemented.
"""

from __future__ import annotations

from dataclasses import dataclass

from recap.config import KLSpec


def grpo_d_beta(
    step: float, *, last_step: float, beta_min: float, beta_max: float, warm_fraction: float
) -> float:
    """GRPO-D's beta at ``step`` (OThink-MR1 eq. 3).

    ``beta_mid = (beta_min + beta_max) / 2``, ``w = warm_fraction * t`` with ``t = last_step``:
    ``beta = beta_mid - (beta_mid - beta_min) * s / w`` for ``s <= w`` (exploration: beta falls),
    then ``beta = beta_min + (beta_max - beta_min) * (s - w) / (t - w)`` up to ``s = t``.
    Steps past ``t`` keep ``beta_max``.
    """
    if last_step <= 0:
        raise ValueError(f"grpo_d_beta: last_step must be > 0, got {last_step}")
    beta_mid = 0.5 * (beta_min + beta_max)
    w = warm_fraction * last_step
    s = min(max(step, 0.0), last_step)
    if s <= w:
        return beta_mid - (beta_mid - beta_min) * s / w
    return beta_min + (beta_max - beta_min) * (s - w) / (last_step - w)


@dataclass(frozen=True)
class KLSchedule:
    """``beta(step)`` for a run of ``total_steps`` optimiser steps, built from ``kl:``."""

    spec: KLSpec
    total_steps: int

    def beta(self, step: int) -> float:
        """The KL coefficient for 0-based optimiser step ``step``."""
        kind = self.spec.schedule
        if kind == "none":
            return 0.0
        if kind == "constant":
            return self.spec.beta
        return grpo_d_beta(
            step,
            last_step=max(self.total_steps - 1, 1),
            beta_min=self.spec.beta_min,
            beta_max=self.spec.beta_max,
            warm_fraction=self.spec.warm_fraction,
        )
