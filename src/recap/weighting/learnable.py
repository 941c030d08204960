"""Loss-magnitude baselines with learnable state that need the loss tensors: UW and FAMO.

Both override `combine` (their loss is not a weighted mean with constant weights) and keep their
learnable state as torch tensors; `state_dict` still returns plain lists and numbers.

Why not torchjd's `scalarization.UW` / `FAMO` (which the tests compare these with, value for
value): a replay step may lack some objectives, while torchjd's scalarizers take the full [K]
tensor on every call; and checkpoints here are JSON-serialisable plain data, torchjd's state is
tensors. The trainer feeds both a real loss value per RL objective (see `Weighting.consumes`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from recap.weighting.base import Weighting


class UncertaintyWeighting(Weighting):
    """Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018) with learnable log-variances.

        combine = sum_k ( 0.5 exp(-s_k) L_k + 0.5 s_k ),   s_k = log sigma_k^2

    Halving convention: the paper's regression form 1/(2 sigma^2) L + log sigma, written with
    s = log sigma^2 (as in LibMTL and torchjd's `scalarization.UW`). It is a sum over objectives,
    not a mean; at s = 0 it equals (K/2) mean_k L_k. Only the objectives present in `losses`
    contribute (with their s_k term), so an absent objective's s_k gets no gradient.

    The caller must add `parameters()` (the log-variances) to its optimiser, preferably without
    weight decay. `update` ignores the values and returns the current exp(-s_k) rescaled to mean
    1, for logging.

    Args:
        objectives: objective names.
        init_log_var: initial s_k (0: sigma = 1, uniform weights).
    """

    name = "uw"
    consumes = "loss"

    def __init__(self, objectives: Sequence[str], init_log_var: float = 0.0) -> None:
        super().__init__(objectives)
        if not math.isfinite(init_log_var):
            raise ValueError(f"init_log_var must be finite, got {init_log_var!r}")
        self.log_var = torch.nn.Parameter(torch.full((self.num_objectives,), float(init_log_var)))
        self._index = {name: k for k, name in enumerate(self.objectives)}

    def parameters(self) -> list[torch.nn.Parameter]:
        """The log-variances s, shape [K], to be optimised jointly with the model."""
        return [self.log_var]

    def to(self, device: torch.device | str) -> UncertaintyWeighting:
        """Move the log-variances in place (call before building the optimiser)."""
        self.log_var.data = self.log_var.data.to(device)
        return self

    def update(self, values: Mapping[str, float]) -> dict[str, float]:
        """Return exp(-s_k) / mean_j exp(-s_j); the values are only checked for names."""
        self._check_names(values)
        log_var = self.log_var.detach().cpu().double().tolist()  # sync: K scalars, once per step
        precision = [math.exp(-s) for s in log_var]
        mean = sum(precision) / self.num_objectives
        self._weights = {n: p / mean for n, p in zip(self.objectives, precision, strict=True)}
        self.last_stats = {n: {"log_var": s} for n, s in zip(self.objectives, log_var, strict=True)}
        return self.weights

    def combine(self, losses: Mapping[str, Tensor]) -> Tensor:
        """sum_k 0.5 exp(-s_k) L_k + 0.5 s_k over the present objectives (differentiable in s)."""
        tensors = self._check_losses(losses)
        index = torch.tensor([self._index[n] for n in tensors], device=self.log_var.device)
        log_var = self.log_var[index]  # [K_present]
        stacked = torch.stack(list(tensors.values())).to(log_var.dtype)  # [K_present]
        return (0.5 * torch.exp(-log_var) * stacked + 0.5 * log_var).sum()

    def state_dict(self) -> dict[str, Any]:
        """Weights and log-variances as plain lists."""
        state = super().state_dict()
        state["log_var"] = self.log_var.detach().cpu().tolist()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Copy the log-variances in place, so an optimiser holding them stays valid."""
        super().load_state_dict(state)
        values = torch.tensor(state["log_var"], dtype=self.log_var.dtype)
        if values.shape != self.log_var.shape:
            raise ValueError(f"log_var has shape {tuple(values.shape)}, expected [K]")
        with torch.no_grad():
            self.log_var.copy_(values.to(self.log_var.device))


class FAMOWeighting(Weighting):
    """FAMO, Fast Adaptive Multitask Optimization (Liu et al., NeurIPS 2023, Algorithm 1).

    FAMO keeps its own logits xi (shape [K]) and task weights z = softmax(xi). The model loss is

        combine = sum_k z_k log(L_k - b_k + eps) / c,   c = sum_k z_k / (L_k - b_k + eps)

    with z and c constant, so its gradient is the convex combination
    sum_k z_k / (c (L_k - b_k + eps)) grad L_k. After the optimiser step, `post_step(new_losses)`
    measures the per-objective decrease of the log-losses,
    delta_k = log(L_k^before - b_k + eps) - log(L_k^after - b_k + eps), and takes one step of
    FAMO's own Adam (lr, weight decay) on xi along J_softmax(xi)^T delta, which favours the
    objectives that decreased least. L^before are the losses of the last `combine`; L^after should
    be the losses recomputed on the same batch after the step (paper), or, more cheaply, the next
    step's losses.

    Requirement: every loss must stay strictly above its lower bound b_k (`min_losses`, default
    0), because of the logarithm. `combine` and `post_step` raise ValueError otherwise; a GRPO
    surrogate, which can be negative, needs a shift or a bound. Both need every objective.

    `parameters()` is empty: xi is learnt only by FAMO's own optimiser, never by the caller's.
    `update` ignores the values and returns K z (mean 1), for logging.

    Args:
        objectives: objective names.
        lr: learning rate of the logits' Adam (paper: 0.025).
        weight_decay: weight decay of that Adam (paper's regularisation gamma, 1e-3).
        min_losses: optional lower bound b_k per objective (missing names: 0).
        eps: the small constant inside the logarithm.
    """

    name = "famo"
    consumes = "loss"

    def __init__(
        self,
        objectives: Sequence[str],
        lr: float = 0.025,
        weight_decay: float = 1e-3,
        min_losses: Mapping[str, float] | None = None,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(objectives)
        for label, value in (("lr", lr), ("weight_decay", weight_decay), ("eps", eps)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{label} must be a finite number >= 0, got {value!r}")
        bounds = dict(min_losses or {})
        self._check_names(bounds)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.eps = float(eps)
        self.min_losses = torch.tensor([float(bounds.get(n, 0.0)) for n in self.objectives])
        self.logits = torch.zeros(self.num_objectives, requires_grad=True)  # xi, [K]
        self._optimizer = torch.optim.Adam([self.logits], lr=self.lr, weight_decay=weight_decay)
        self._before: Tensor | None = None  # detached losses of the last combine, [K]
        self._skipped = False  # the last combine() saw a non-finite loss

    def to(self, device: torch.device | str) -> FAMOWeighting:
        """Move logits, bounds and optimiser state in place."""
        self.logits.data = self.logits.data.to(device)
        self.min_losses = self.min_losses.to(device)
        for state in self._optimizer.state.values():
            for key, value in state.items():
                if isinstance(value, Tensor) and key != "step":
                    state[key] = value.to(device)
        return self

    def _task_weights(self) -> Tensor:
        return torch.softmax(self.logits.detach(), dim=0)  # z, [K]

    def _shifted(self, losses: Mapping[str, Any], what: str) -> Tensor:
        """L - b + eps as a [K] tensor in objective order, checked to be positive."""
        self._check_names(losses)
        self._require_all(losses, what)
        stacked = torch.stack(
            [
                torch.as_tensor(losses[n], dtype=self.logits.dtype).reshape(())
                for n in self.objectives
            ]
        ).to(self.logits.device)  # [K]
        shifted = stacked - self.min_losses + self.eps
        # One host sync per step: a log of a non-positive number would silently give NaN.
        if not bool(torch.all(shifted.detach() > 0)):
            raise ValueError(
                f"FAMO needs every loss above its lower bound min_losses; got "
                f"{dict(zip(self.objectives, stacked.detach().cpu().tolist(), strict=True))}"
            )
        return shifted

    def update(self, values: Mapping[str, float]) -> dict[str, float]:
        """Return K softmax(xi); the values are only checked for names."""
        self._check_names(values)
        z = self._task_weights().cpu().tolist()
        self._weights = {
            n: self.num_objectives * w for n, w in zip(self.objectives, z, strict=True)
        }
        return self.weights

    def combine(self, losses: Mapping[str, Tensor]) -> Tensor:
        """sum_k z_k log(L_k - b_k + eps) / c with z and c constant; remembers L for post_step.

        A non-finite loss is returned as it is (non-finite), so the trainer skips the step like
        on every other path, and the logits learn nothing from it.
        """
        tensors = self._check_losses(losses)
        if not _all_finite(tensors.values()):
            self._before, self._skipped = None, True
            return torch.stack(list(tensors.values())).sum()
        shifted = self._shifted(losses, "combine")
        self._before = shifted.detach().clone()
        z = self._task_weights()
        c = (z / shifted.detach()).sum()
        return (z * torch.log(shifted)).sum() / c

    def post_step(self, values: Mapping[str, float | Tensor]) -> None:
        """One Adam step on xi from the log-loss decrease since the last `combine`; skipped
        when that combine or these values were not finite (a skipped step)."""
        if not _all_finite(values.values()) or (self._before is None and self._skipped):
            self._before, self._skipped = None, False
            return
        if self._before is None:
            raise RuntimeError("FAMO post_step() needs a preceding combine() on the same step")
        after = self._shifted(values, "post_step").detach()
        delta = torch.log(self._before) - torch.log(after)  # [K]
        z = self._task_weights()
        # J_softmax(xi)^T delta = z * (delta - <z, delta>): the softmax Jacobian is symmetric.
        self.logits.grad = z * (delta - (z * delta).sum())
        self._optimizer.step()
        self.logits.grad = None
        self._before = None
        self.last_stats = {
            n: {"delta": d} for n, d in zip(self.objectives, delta.cpu().tolist(), strict=True)
        }

    def state_dict(self) -> dict[str, Any]:
        """Logits, Adam moments and pending losses as plain lists and numbers."""
        state = super().state_dict()
        adam = self._optimizer.state.get(self.logits)
        state.update(
            logits=self.logits.detach().cpu().tolist(),
            adam=None
            if not adam
            else {
                "step": float(adam["step"]),
                "exp_avg": adam["exp_avg"].cpu().tolist(),
                "exp_avg_sq": adam["exp_avg_sq"].cpu().tolist(),
            },
            before=None if self._before is None else self._before.cpu().tolist(),
        )
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore logits, Adam moments and pending losses."""
        super().load_state_dict(state)
        device, dtype = self.logits.device, self.logits.dtype
        with torch.no_grad():
            self.logits.copy_(torch.tensor(state["logits"], dtype=dtype, device=device))
        self._optimizer = torch.optim.Adam(
            [self.logits], lr=self.lr, weight_decay=self.weight_decay
        )
        adam = state["adam"]
        if adam is not None:
            self._optimizer.load_state_dict(
                {
                    "state": {
                        0: {
                            "step": torch.tensor(float(adam["step"])),
                            "exp_avg": torch.tensor(adam["exp_avg"], dtype=dtype, device=device),
                            "exp_avg_sq": torch.tensor(
                                adam["exp_avg_sq"], dtype=dtype, device=device
                            ),
                        }
                    },
                    "param_groups": self._optimizer.state_dict()["param_groups"],
                }
            )
        before = state["before"]
        self._before = None if before is None else torch.tensor(before, dtype=dtype, device=device)


def _all_finite(values: Any) -> bool:
    """True when every value (float or tensor) is finite; one host sync per tensor."""
    return all(bool(torch.isfinite(torch.as_tensor(v).detach()).all()) for v in values)
