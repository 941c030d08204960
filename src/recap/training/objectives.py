"""Per-objective losses and signals of one step (the RECAP paper sec. 4, Algorithm 1 lines 4-6).

RL objectives are named by reward (decoupled advantages: objective ``k`` uses the advantage of
reward ``k``) or, with combined advantages, ``"reward"`` for the weighted reward sum (OThink-MR1
eq. 1). SFT objectives are ``sft:<domain>``. ``L_k`` is the mean of ``l_{n,k}`` over the domains
``n`` that carry ``k`` in the micro-batch (the RECAP paper sec. 4 averages over domains).

Signals: every RL objective's mean raw reward (combined: the weighted sum divided by the sum of
weights); the trainer turns them, and the SFT losses and accuracies, into what the weighting
declares it consumes (``Weighting.consumes``): reward-like values in [0, 1] as tracked in the
RECAP paper's figures 4 and 13 (SFT: next-token accuracy), losses (RL: 1 - mean reward; SFT: the
loss), or raw values (RL: mean reward; SFT: the loss).

With ``weighting.apply: rewards`` an RL objective is a (domain, reward) pair ``<domain>/<reward>``
and its weight multiplies that reward before group normalisation
(:func:`reward_weighted_advantages`); each RL domain then has one surrogate, ``rl:<domain>``.

The KL penalty is not an objective: :func:`rl_domain_losses` returns it separately and the trainer
adds ``beta * KL`` (mean over RL domains) to the weighted loss, so reweighting never scales it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from recap.config import COMBINED_OBJECTIVE
from recap.rewards import RewardFn
from recap.tasks.record import Record
from recap.training.grpo import clipped_surrogate, combine_rewards, group_advantages, k3_kl


@dataclass(frozen=True)
class Rollouts:
    """One RL domain's rollouts in a micro-batch (B prompts, G samples each, L tokens).

    Attributes:
        domain: domain name.
        records: the B prompts' records.
        generation: the policy's ``Generation`` (token ids and model inputs; opaque here).
        texts: B*G completions; record ``i``'s samples are rows ``i*G .. i*G+G-1``.
        mask: ``[B*G, L]`` completion-token mask.
        old_logprobs: ``[B*G, L]`` log-probs under the sampling policy (no grad).
        ref_logprobs: ``[B*G, L]`` reference log-probs, or None when beta = 0.
        rewards: reward name -> ``[B, G]`` scores in [0, 1].
        advantages: objective name -> ``[B*G]`` group-normalised advantages.
        signals: objective name -> reward-like mean in [0, 1] (a 0-dim tensor).
    """

    domain: str
    records: list[Record]
    generation: Any
    texts: list[str]
    mask: Tensor
    old_logprobs: Tensor
    ref_logprobs: Tensor | None
    rewards: dict[str, Tensor]
    advantages: dict[str, Tensor]
    signals: dict[str, Tensor]


@dataclass(frozen=True)
class SFTBatch:
    """One SFT domain's records with their prompts and targets (``render_target``)."""

    records: list[Record]
    prompts: list[str]
    targets: list[str]


@dataclass(frozen=True)
class MicroBatch:
    """Everything one forward/backward needs: RL rollouts and SFT batches, by domain."""

    rollouts: list[Rollouts]
    sft: dict[str, SFTBatch]


def score(
    texts: Sequence[str], records: Sequence[Record], rewards: Mapping[str, RewardFn], group: int
) -> dict[str, Tensor]:
    """Every reward of every completion: name -> ``[B, G]`` (completion j is record j // G)."""
    out: dict[str, Tensor] = {}
    for name, fn in rewards.items():
        values = [fn(text, records[j // group]) for j, text in enumerate(texts)]
        out[name] = torch.tensor(values, dtype=torch.float32).view(len(records), group)
    return out


def objective_advantages(
    rewards: Mapping[str, Tensor],
    *,
    mode: str,
    reward_weights: Mapping[str, float],
    eps: float,
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Advantages and signals per RL objective from ``[B, G]`` rewards.

    ``decoupled``: objective ``k`` gets ``(R_k - mean) / (std + eps)`` of its own reward.
    ``combined``: the single objective ``"reward"`` gets the advantage of ``sum_k c_k R_k``
    (OThink-MR1 eq. 1-2). Returns ``(advantages name -> [B*G], signals name -> 0-dim tensor)``.
    """
    if mode == "decoupled":
        adv = {k: group_advantages(r, eps=eps).reshape(-1) for k, r in rewards.items()}
        return adv, {k: r.mean() for k, r in rewards.items()}
    if mode == "combined":
        total = combine_rewards(dict(rewards), dict(reward_weights))  # [B, G]
        norm = sum(reward_weights.get(k, 1.0) for k in rewards)
        advantage = group_advantages(total, eps=eps).reshape(-1)  # [B*G]
        return {COMBINED_OBJECTIVE: advantage}, {COMBINED_OBJECTIVE: total.mean() / norm}
    raise ValueError(f"unknown advantage mode {mode!r}; known: decoupled, combined")


def reward_weighted_advantages(
    rewards: Mapping[str, Tensor], weights: Mapping[str, float], *, eps: float
) -> Tensor:
    """Group-normalised advantage of ``sum_f lambda_f R_f`` (``[B*G]``), the rewards weighted
    *before* normalisation: the RECAP authors' code (``weighting.apply: rewards``) and TRL's
    ``reward_weights``. ``weights`` holds lambda per reward name."""
    total = combine_rewards(dict(rewards), dict(weights))  # [B, G]
    return group_advantages(total, eps=eps).reshape(-1)


def rl_weighting_values(mean_rewards: Mapping[str, float], consumes: str) -> dict[str, float]:
    """What a weighting that consumes ``consumes`` gets for RL objectives: the mean reward
    (``reward``, ``raw``) or, for loss consumers (DWA, UW, FAMO), the deficit ``1 - reward``."""
    if consumes == "loss":
        return {k: 1.0 - float(v) for k, v in mean_rewards.items()}
    return {k: float(v) for k, v in mean_rewards.items()}


def sft_weighting_values(losses: Mapping[str, Any], accuracies: Mapping[str, Any],
                         consumes: str) -> dict[str, Any]:
    """What a weighting gets for SFT objectives: next-token accuracy for reward consumers
    (RECAP eq. 1), the loss otherwise (loss consumers, the authors' RECAP)."""
    return dict(accuracies) if consumes == "reward" else {k: losses[k] for k in accuracies}


def rl_domain_losses(
    logp: Tensor, rollouts: Rollouts, *, clip_eps: float, aggregation: str = "sequence",
    max_tokens: int | None = None,
) -> tuple[dict[str, Tensor], Tensor | None, dict[str, Tensor]]:
    """Clipped-surrogate loss per objective of one RL domain, and its k3 KL.

    Args:
        logp: ``[B*G, L]`` current-policy log-probs of the rollouts (with grad).
        rollouts: the domain's rollouts.
        clip_eps: ratio clip epsilon.
        aggregation, max_tokens: token aggregation (``recap.training.grpo.aggregate``).

    Returns:
        ``(losses objective -> scalar, kl or None, metrics)``; the metrics (detached):
        ``clip_frac`` averaged over the domain's objectives, ``sample_kl`` (the same for each).
    """
    losses: dict[str, Tensor] = {}
    clip: list[Tensor] = []
    m: dict[str, Tensor] = {}
    for name, adv in rollouts.advantages.items():
        losses[name], m = clipped_surrogate(
            logp, rollouts.old_logprobs, adv.to(logp.device), rollouts.mask, clip_eps=clip_eps,
            aggregation=aggregation, max_tokens=max_tokens)
        clip.append(m["clip_frac"])
    kl = None
    if rollouts.ref_logprobs is not None:
        kl = k3_kl(logp, rollouts.ref_logprobs, rollouts.mask, aggregation=aggregation,
                   max_tokens=max_tokens)
    metrics = {"clip_frac": torch.stack(clip).mean(), "sample_kl": m["sample_kl"]}
    return losses, kl, metrics


def mean_over_domains(per_domain: Sequence[Mapping[str, Tensor]]) -> dict[str, Tensor]:
    """``L_k = mean_n l_{n,k}`` over the domains ``n`` that carry objective ``k``."""
    grouped: dict[str, list[Tensor]] = {}
    for losses in per_domain:
        for name, value in losses.items():
            grouped.setdefault(name, []).append(value)
    return {name: torch.stack(vals).mean() for name, vals in grouped.items()}


def surrogate_lower_bound(num_generations: int, clip_eps: float) -> float:
    """A floor under any clipped-surrogate loss, for weightings that take logs of losses (FAMO).

    ``|A| <= (G-1)/sqrt(G)`` for a z-score with the unbiased std (Samuelson's inequality) and the
    clipped term is at most ``(1+eps)|A|``, so ``loss >= -(1+eps)(G-1)/sqrt(G)``; a margin of
    0.01 keeps ``L - bound`` strictly positive.
    """
    g = num_generations
    return -(1.0 + clip_eps) * (g - 1) / math.sqrt(g) - 0.01
