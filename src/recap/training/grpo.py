"""GRPO math as pure functions: group advantages, clipped surrogate, k3 KL (the RECAP paper sec. 3).

Letters: B prompts, G samples per prompt, L completion tokens. Token tensors are ``[B*G, L]`` with
record ``i``'s samples in rows ``i*G .. i*G+G-1`` and a 0/1 ``mask`` marking real completion tokens.

Aggregation (jigsaw-RFT appendix A, eq. 1 and 7; RECAP sec. 3): a per-token quantity is averaged
over the tokens of its sequence (``1/|o_i| sum_t``), then over the G sequences of the group and the
B groups (``1/G sum_i``, then the batch mean) — :func:`sequence_mean`. Every function here returns
detached metrics as tensors; nothing calls ``.item()`` (the trainer syncs once per log step).

Departures, on purpose:
- the std in the advantage is the unbiased sample std over the group (``torch.std``, as TRL and
  verl compute it) and ``eps`` is added to it so constant-reward groups get advantage 0;
- the KL penalty is returned as its own term: the trainer adds ``beta * KL`` once per step rather
  than inside every reweighted objective (:mod:`recap.training.objectives`).
"""

from __future__ import annotations

import torch
from torch import Tensor


def group_advantages(rewards: Tensor, *, eps: float) -> Tensor:
    """Group-normalised advantages ``A_i = (R_i - mean(R)) / (std(R) + eps)`` per group.

    RECAP paper sec. 3 (GRPO); OThink-MR1 eq. 2.

    Args:
        rewards: ``[B, G]`` sequence rewards, one row per prompt (G >= 2).
        eps: added to the group's unbiased std so a group with equal rewards gets 0.

    Returns:
        ``[B, G]`` advantages (same dtype as ``rewards``, float).
    """
    if rewards.dim() != 2 or rewards.shape[1] < 2:
        raise ValueError(f"rewards must be [B, G] with G >= 2, got {tuple(rewards.shape)}")
    rewards = rewards.float()
    mean = rewards.mean(dim=1, keepdim=True)  # [B, 1]
    std = rewards.std(dim=1, keepdim=True)  # [B, 1], unbiased
    return (rewards - mean) / (std + eps)  # [B, G]


def sequence_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Per-sequence token mean, then mean over sequences: ``mean_i (1/|o_i|) sum_t v_it``.

    Jigsaw-RFT appendix A eq. 1 (``1/G sum_i 1/|o_i| sum_t``). An empty sequence (no real token)
    contributes 0 but still counts in the mean over sequences.

    Args:
        values: ``[N, L]`` per-token values.
        mask: ``[N, L]`` 1 for real completion tokens, 0 for padding.
    """
    mask = mask.to(values.dtype)
    per_seq = (values * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)  # [N]
    return per_seq.mean()


AGGREGATIONS = ("sequence", "token", "constant")


def aggregate(values: Tensor, mask: Tensor, *, how: str = "sequence",
              max_tokens: int | None = None) -> Tensor:
    """Reduce ``[N, L]`` per-token values to a scalar, as the GRPO family does.

    - ``sequence``: ``mean_i (1/|o_i|) sum_t v_it`` (:func:`sequence_mean`; the GRPO paper,
      the RECAP paper's eq. 2);
    - ``token``: ``sum_it v_it / sum_i |o_i|``, every token of the batch weighs the same (DAPO,
      Yu et al. 2025; the RECAP authors' code);
    - ``constant``: ``sum_it v_it / (N * max_tokens)``, a constant normaliser, so a sequence's
      length does not scale its tokens' weight (Dr. GRPO, Liu et al. 2025).

    ``mask`` is 1 on real completion tokens; ``max_tokens`` (the generation budget) is needed by
    ``constant``.
    """
    if how == "sequence":
        return sequence_mean(values, mask)
    m = mask.to(values.dtype)
    total = (values * m).sum()
    if how == "token":
        return total / m.sum().clamp(min=1.0)
    if how == "constant":
        if not max_tokens or max_tokens < 1:
            raise ValueError("constant aggregation needs max_tokens >= 1 (the generation budget)")
        return total / (values.shape[0] * max_tokens)
    raise ValueError(f"unknown aggregation {how!r}; known: {', '.join(AGGREGATIONS)}")


def clipped_surrogate(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_eps: float,
    aggregation: str = "sequence",
    max_tokens: int | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Negated PPO/GRPO clipped surrogate (the RECAP paper sec. 3, the J_GRPO min term).

    Per token: ``r = exp(logp - old_logp)``, ``J = min(r A, clip(r, 1-eps, 1+eps) A)``; the loss
    is ``-aggregate(J)`` (:func:`aggregate`; ``sequence`` by default). With one update per batch
    of rollouts ``old_logp`` equals ``logp`` numerically (r = 1), and the gradient is
    ``-A grad log pi`` (the jigsaw RFT paper appendix A eq. 9).

    Args:
        logp: ``[B*G, L]`` log-probs of the sampled tokens under the current policy (with grad).
        old_logp: ``[B*G, L]`` log-probs under the sampling policy (no grad).
        advantages: ``[B*G]`` one advantage per sequence (broadcast over its tokens).
        mask: ``[B*G, L]`` completion-token mask.
        clip_eps: epsilon of the ratio clip.
        aggregation, max_tokens: see :func:`aggregate`.

    Returns:
        ``(loss, metrics)``; metrics (detached): ``clip_frac`` (share of tokens whose clipped
        term is active, i.e. the gradient is cut), ``clip_low`` / ``clip_high`` (ratio below
        ``1-eps`` with ``A < 0`` / above ``1+eps`` with ``A > 0``), ``ratio_mean``, and
        ``sample_kl``: the token mean of the k3 estimate ``r - 1 - log r`` of KL(pi_old || pi)
        on the sampled tokens (Schulman's k3, as in :func:`k3_kl`), 0 only when the training-time
        log-probs equal the sampling-time ones. On the first update of a batch it measures how
        far the training forward drifts from the sampler's numerics (dropout, precision,
        kernels); after that, how far the updates moved the policy.
    """
    adv = advantages.to(logp.dtype).unsqueeze(1)  # [B*G, 1]
    ratio = torch.exp(logp - old_logp.detach())  # [B*G, L]
    unclipped = ratio * adv  # [B*G, L]
    clipped = ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps) * adv  # [B*G, L]
    loss = -aggregate(torch.minimum(unclipped, clipped), mask, how=aggregation,
                      max_tokens=max_tokens)
    with torch.no_grad():
        m = mask.to(logp.dtype)
        n = m.sum().clamp(min=1.0)
        low = ((ratio < 1.0 - clip_eps) & (adv < 0)).to(logp.dtype) * m
        high = ((ratio > 1.0 + clip_eps) & (adv > 0)).to(logp.dtype) * m
        metrics = {
            "clip_frac": (low + high).sum() / n,
            "clip_low": low.sum() / n,
            "clip_high": high.sum() / n,
            "ratio_mean": (ratio * m).sum() / n,
            "sample_kl": ((ratio - 1.0 - (logp - old_logp)) * m).sum() / n,
        }
    return loss, metrics


def k3_kl(logp: Tensor, ref_logp: Tensor, mask: Tensor, *, aggregation: str = "sequence",
          max_tokens: int | None = None) -> Tensor:
    """k3 estimate of KL(pi || pi_ref): per token ``pi_ref/pi - log(pi_ref/pi) - 1``.

    Jigsaw-RFT appendix A eq. 7 (also OThink-MR1 eq. 5). Non-negative per token; aggregated with
    :func:`aggregate` like the surrogate.

    Args:
        logp: ``[B*G, L]`` current-policy log-probs (with grad).
        ref_logp: ``[B*G, L]`` reference-policy log-probs (no grad).
        mask: ``[B*G, L]`` completion-token mask.
    """
    log_ratio = ref_logp.detach() - logp  # [B*G, L], log(pi_ref / pi)
    per_token = torch.exp(log_ratio) - log_ratio - 1.0  # [B*G, L]
    return aggregate(per_token, mask, how=aggregation, max_tokens=max_tokens)


def grpo_loss(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_eps: float,
    beta: float,
    ref_logp: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """The negated GRPO objective: ``clipped_surrogate + beta * k3_kl`` (the RECAP paper sec. 3).

    Jigsaw-RFT eq. 1 with the k3 KL of appendix A eq. 7; OThink-MR1 eq. 4 with a scheduled beta.
    ``ref_logp`` is required when ``beta > 0``. Shapes as in :func:`clipped_surrogate`.

    Returns:
        ``(loss, metrics)`` with the surrogate's metrics plus ``surrogate`` and ``kl``.
    """
    surrogate, metrics = clipped_surrogate(logp, old_logp, advantages, mask, clip_eps=clip_eps)
    if beta > 0:
        if ref_logp is None:
            raise ValueError("grpo_loss: beta > 0 needs ref_logp")
        kl = k3_kl(logp, ref_logp, mask)
        loss = surrogate + beta * kl
    else:
        kl = torch.zeros((), dtype=surrogate.dtype, device=surrogate.device)
        loss = surrogate
    metrics = {**metrics, "surrogate": surrogate.detach(), "kl": kl.detach()}
    return loss, metrics


def combine_rewards(rewards: dict[str, Tensor], weights: dict[str, float]) -> Tensor:
    """Weighted reward sum ``R = sum_k c_k R_k`` (OThink-MR1 eq. 1, alpha = c_format = 1).

    Args:
        rewards: name -> ``[B, G]`` rewards.
        weights: name -> ``c_k``; names absent here weigh 1.

    Returns:
        ``[B, G]`` combined rewards.
    """
    total = None
    for name, r in rewards.items():
        term = weights.get(name, 1.0) * r.float()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("combine_rewards: no rewards")
    return total
