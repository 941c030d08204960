"""One optimiser step of the hybrid trainer, and the state it works on (:class:`Run`).

:func:`train_step`: sample records by the replay strategy -> rollouts (generate G completions,
score every reward, advantages, reference log-probs) and SFT batches -> the weighting turns one
signal per objective into lambda -> per micro-batch the loss terms (:class:`StepObjectives`: one
module call, so DDP/DeepSpeed see one forward per backward), loss = combine(lambda, L) + beta * KL,
backward -> clip, optimiser step. The loop around it (set-up, restarts, evaluation, probe,
checkpoints) is :mod:`recap.training.trainer`.
"""

from __future__ import annotations

import math
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import gather_object

from recap.config import RunConfig
from recap.models.policy import Policy
from recap.rewards import RewardFn
from recap.rewards.pool import RewardPool, pool_can_score
from recap.tasks.prompts import render_prompt, render_target
from recap.tasks.record import Record
from recap.training.kl import KLSchedule
from recap.training.objectives import (
    MicroBatch,
    Rollouts,
    SFTBatch,
    mean_over_domains,
    objective_advantages,
    reward_weighted_advantages,
    rl_domain_losses,
    rl_weighting_values,
    score,
    sft_weighting_values,
)
from recap.training.sampler import DomainSampler
from recap.training.tracking import RunLog, gather_step_stats
from recap.weighting import Weighting

__all__ = ["Run", "StepObjectives", "train_step"]


class StepObjectives(torch.nn.Module):
    """Every model forward of one micro-batch, as one module call returning the loss terms."""

    def __init__(self, policy: Policy, clip_eps: float, aggregation: str = "sequence",
                 max_tokens: int | None = None) -> None:
        super().__init__()
        self.model = policy.model  # registered, so DDP/DeepSpeed manage exactly its parameters
        self.policy, self.clip_eps = policy, clip_eps
        self.aggregation, self.max_tokens = aggregation, max_tokens

    def forward(self, micro: MicroBatch, rows: tuple[int, list[int]] | None = None,
                logprobs: dict[int, torch.Tensor] | None = None) -> Any:
        """The loss terms of ``micro``; with ``logprobs`` (RL domain index -> [B*G, L]) those
        log-probs stand in for the policy's. ``rows=(domain index, rows)`` returns only the
        log-probs of those rows (a chunk of :func:`_forward`'s two-pass backward)."""
        if rows is not None:
            return self.policy.completion_logprobs(
                micro.rollouts[rows[0]].generation.select(rows[1]))
        per_domain: list[dict[str, torch.Tensor]] = []
        kls, clip, drift, sft_acc = [], [], [], {}
        for i, ro in enumerate(micro.rollouts):
            logp = (logprobs[i] if logprobs is not None and i in logprobs
                    else self.policy.completion_logprobs(ro.generation))  # [B*G, L]
            losses, kl, m = rl_domain_losses(logp, ro, clip_eps=self.clip_eps,
                                             aggregation=self.aggregation,
                                             max_tokens=self.max_tokens)
            per_domain.append(losses)
            clip.append(m["clip_frac"])
            drift.append(m["sample_kl"])
            if kl is not None:
                kls.append(kl)
        for name, sb in micro.sft.items():
            loss, acc = self.policy.sft_loss(sb.records, sb.prompts, sb.targets)
            per_domain.append({f"sft:{name}": loss})
            sft_acc[f"sft:{name}"] = acc
        return {
            "losses": mean_over_domains(per_domain),
            "kl": torch.stack(kls).mean() if kls else None,  # mean over RL domains
            "clip_frac": torch.stack(clip).mean().detach() if clip else None,
            "sample_kl": torch.stack(drift).mean().detach() if drift else None,
            "sft_acc": sft_acc,
        }


@dataclass
class Run:
    """Everything the loop mutates, built once by :func:`_setup`."""

    cfg: RunConfig
    out: Path
    acc: Accelerator
    policy: Policy
    reference: Policy | None
    objectives: torch.nn.Module  # prepared StepObjectives
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    sampler: DomainSampler
    weighting: Weighting
    kl: KLSchedule
    eval_sets: dict[str, list[Record]]
    restart_every: int | None
    reward_fns: dict[str, RewardFn] = field(default_factory=dict)  # name -> total function
    rewards: RewardPool | None = None  # worker processes scoring rewards (rl.reward_workers)
    probe: dict[str, tuple[list[Record], list[str], list[str]]] | None = None  # eval.probe_every
    probe_last: dict[str, list[float]] | None = None  # the probe's last log-likelihoods
    log: RunLog | None = None  # opened once the start step is known
    step: int = 0
    skipped: int = 0
    restarts: int = 0
    combined_once: bool = False  # a combine() happened: post_step has something to follow


def train_step(run: Run) -> dict[str, Any]:
    """One optimiser step; returns its metrics row (synced to Python once, here)."""
    cfg, step = run.cfg, run.step
    t0 = time.perf_counter()
    beta = run.kl.beta(step)
    micro = [_collect(run, run.sampler.next_batch()) for _ in range(cfg.train.grad_accum)]
    t_rollout = time.perf_counter() - t0
    t_weight = 0.0
    for update in range(cfg.rl.updates):  # pi_old stays the sampling policy (gen.logprobs)
        lambdas, signals, terms, ok, seconds, micro = _weighted_backward(
            run, micro, beta, first=update == 0)
        grad_norm = _optimizer_step(run, ok)
        t_weight += seconds
    row = {"step": step + 1, "lr": run.scheduler.get_last_lr()[0], "beta": beta,
           "grad_norm": grad_norm, "skipped": run.skipped, "restarts": run.restarts}
    with warnings.catch_warnings():  # the schedule follows the step count, skipped or not
        warnings.filterwarnings("ignore", "Detected call of", UserWarning)
        run.scheduler.step()
    row |= {f"lambda/{k}": v for k, v in lambdas.items()}
    row |= {f"signal/{k}": v for k, v in signals.items()}
    row |= {f"weighting/{k}/{stat}": v for k, stats in run.weighting.last_stats.items()
            for stat, v in stats.items()}
    row |= gather_step_stats(micro, terms)
    if run.rewards is not None:
        row["rewards/timeouts"] = run.rewards.timeouts
    elapsed = time.perf_counter() - t0
    tokens = row.pop("tokens", 0.0)
    row |= {"time/step_s": elapsed, "time/rollout_s": t_rollout, "time/weighting_s": t_weight,
            "time/tokens_per_s": tokens / elapsed}
    return row


def _weighted_backward(run: Run, micro: list[MicroBatch], beta: float, first: bool = True
                       ) -> tuple[dict[str, float], dict[str, float], list[tuple[str, Any]], bool,
                                  float, list[MicroBatch]]:
    """Signals -> lambda (on the ``first`` update of a batch of rollouts), then backward of the
    weighted loss + beta * KL per micro-batch.

    The weighting is fed what it declares it consumes (``Weighting.consumes``; module
    :mod:`recap.training.objectives`). With ``weighting.apply: rewards`` the RL weights come first
    (from this step's rewards) and set the advantages; the SFT weights follow the forward.
    Returns ``(lambda, signals, loss terms to log, all losses finite, seconds in weighting,
    the micro-batches as used: with their reward-weighted advantages, for later updates)``.
    """
    acc, weighting = run.acc, run.weighting
    consumes, on_rewards = weighting.consumes, run.cfg.weighting.apply == "rewards"
    tw = time.perf_counter()
    rewards = _mean_signals([(k, v) for mb in micro for ro in mb.rollouts
                             for k, v in ro.signals.items()])  # mean raw reward per objective
    deficits = rl_weighting_values(rewards, "loss")  # an RL objective's loss value
    rl_values = rl_weighting_values(rewards, consumes)
    if run.cfg.weighting.signal == "deficit":  # RECAP eq1/paper ablation
        rl_values = deficits
    signals: dict[str, float] = dict(rl_values)
    lambdas = weighting.weights  # later updates of the same rollouts keep the batch's lambda
    if on_rewards and first:  # the GRPO path: weights first, then the advantages they shape
        lambdas = weighting.update(rl_values)
        micro = [_weigh_rewards(mb, lambdas, run.cfg.rl.std_eps) for mb in micro]
    sft_pairs = _sft_values(run.policy, micro, consumes) if len(micro) > 1 and first else []
    terms: list[tuple[str, Any]] = []
    t_weight, ok = time.perf_counter() - tw, True
    for m, mb in enumerate(micro):
        sync = acc.no_sync(run.objectives) if m < len(micro) - 1 else nullcontext()
        with sync:
            out, backward = _forward(run, mb)
            tw = time.perf_counter()
            losses = out["losses"]
            if consumes == "loss":  # a constant offset: same policy gradient, a real loss value
                losses = {k: v + deficits[k] if k in deficits else v for k, v in losses.items()}
            if m == 0:
                if len(micro) == 1:
                    detached = {k: v.detach() for k, v in losses.items()}
                    sft_pairs = list(sft_weighting_values(detached, out["sft_acc"],
                                                          consumes).items())
                if run.combined_once and not on_rewards:  # FAMO: losses after the last step
                    weighting.post_step({k: v.detach() for k, v in losses.items()})
                sft = _mean_signals(sft_pairs)
                if run.cfg.weighting.signal == "deficit":
                    sft = {k: 1.0 - v for k, v in sft.items()}
                signals |= sft
                if first and not on_rewards:
                    lambdas = weighting.update(signals)
                elif first and sft:  # the SFT path
                    lambdas = weighting.update(sft)
            loss = _combine(weighting, losses, on_rewards)
            run.combined_once = True
            t_weight += time.perf_counter() - tw
            if out["kl"] is not None and beta > 0:
                loss = loss + beta * out["kl"]
            ok = ok and bool(torch.isfinite(loss.detach()))  # sync: one flag per micro-batch
            backward(loss / len(micro))
        terms += [(f"loss/{k}", v.detach()) for k, v in losses.items()]
        terms.append(("loss", loss.detach()))
        if out["kl"] is not None:
            terms.append(("kl", out["kl"].detach()))
        if out["clip_frac"] is not None:  # and the sampler-vs-trainer KL beside it
            terms += [("clip_frac", out["clip_frac"]), ("sample_kl", out["sample_kl"])]
    return lambdas, signals, terms, ok, t_weight, micro


def _forward(run: Run, mb: MicroBatch) -> tuple[dict[str, Any], Any]:
    """The micro-batch's loss terms and the function that back-propagates its loss.

    By default one forward with grad and one backward. With ``train.backward_prompts = k`` the
    RL rows are back-propagated k prompts (k x G rows) at a time, so activation memory does not
    grow with B x G: (1) the log-probs of every chunk without grad; (2) the step's loss on those
    values as leaves (the SFT terms go through the model as usual), whose backward gives
    dL/d logp; (3) per chunk, the log-probs again with grad, back-propagated with that slice of
    dL/d logp. The gradient is the one-pass gradient (any weighting, aggregation or KL), for one
    extra no-grad forward of the RL rows.
    """
    k = run.cfg.train.backward_prompts
    chunks = [(i, list(range(start, min(start + k * ro.generation.num_samples, len(ro.texts)))))
              for i, ro in enumerate(mb.rollouts) if k and len(ro.records) > k
              for start in range(0, len(ro.texts), k * ro.generation.num_samples)]
    if not chunks:
        return run.objectives(mb), run.acc.backward
    with torch.no_grad():
        parts: dict[int, list[torch.Tensor]] = {}
        for i, rows in chunks:
            parts.setdefault(i, []).append(run.objectives(mb, rows=(i, rows)))
    leaves = {i: torch.cat(p).requires_grad_() for i, p in parts.items()}
    out = run.objectives(mb, logprobs=leaves)

    def backward(loss: torch.Tensor) -> None:
        with run.acc.no_sync(run.objectives):  # data parallel: reduce once, after the last
            run.acc.backward(loss)  # SFT terms into the weights, RL terms into the leaves
        for j, (i, rows) in enumerate(chunks):
            last = j == len(chunks) - 1
            with nullcontext() if last else run.acc.no_sync(run.objectives):
                grad = leaves[i].grad.index_select(0, torch.tensor(rows, device=loss.device))
                run.objectives(mb, rows=(i, rows)).backward(grad)

    return out, backward


def _combine(weighting: Weighting, losses: dict[str, torch.Tensor],
             on_rewards: bool) -> torch.Tensor:
    """The step's loss: ``weighting.combine`` (lambda on the losses), or with lambda on the
    rewards the mean of the RL domains' surrogates plus ``sum_s lambda_s L_s`` over SFT
    domains, no 1/K (the RECAP authors' code)."""
    if not on_rewards:
        return weighting.combine(losses)
    rl = [v for k, v in losses.items() if k.startswith("rl:")]
    sft = {k: v for k, v in losses.items() if not k.startswith("rl:")}
    total = torch.stack(rl).mean() if rl else 0.0
    return total + sum(weighting.weights[k] * v for k, v in sft.items())  # type: ignore[return-value]


def _weigh_rewards(mb: MicroBatch, lambdas: dict[str, float], eps: float) -> MicroBatch:
    """Each RL domain's advantages from its rewards weighted by lambda before normalisation."""
    rollouts = []
    for ro in mb.rollouts:
        weights = {r: lambdas[f"{ro.domain}/{r}"] for r in ro.rewards}
        adv = reward_weighted_advantages(ro.rewards, weights, eps=eps)  # [B*G]
        rollouts.append(replace(ro, advantages={f"rl:{ro.domain}": adv}))
    return MicroBatch(rollouts, mb.sft)


def _sft_values(policy: Policy, micro: list[MicroBatch], consumes: str) -> list[tuple[str, Any]]:
    """SFT signals of every micro-batch before any backward (an extra no-grad forward)."""
    out = []
    with torch.no_grad():
        for mb in micro:
            for n, b in mb.sft.items():
                loss, accuracy = policy.sft_loss(b.records, b.prompts, b.targets)
                out += sft_weighting_values({f"sft:{n}": loss}, {f"sft:{n}": accuracy},
                                            consumes).items()
    return out


def _optimizer_step(run: Run, ok: bool) -> float:
    """Average weighting grads, clip, step unless anything is non-finite; returns the norm."""
    acc = run.acc
    for p in run.weighting.parameters():  # not inside the DDP module: average by hand
        if p.grad is not None:
            p.grad = acc.reduce(p.grad, reduction="mean")
    ok = all(gather_object([ok]))  # every process skips, or none does
    params = [p for g in run.optimizer.param_groups for p in g["params"]]
    norm = acc.clip_grad_norm_(params, run.cfg.optim.max_grad_norm or math.inf)
    grad_norm = math.nan if norm is None else float(norm)  # None: DeepSpeed clips internally
    if ok and (norm is None or math.isfinite(grad_norm)):
        run.optimizer.step()
    else:  # a non-finite loss or gradient never reaches the weights
        run.skipped += 1
    run.optimizer.zero_grad(set_to_none=True)
    return grad_norm


def _collect(run: Run, batch: dict[str, list[Record]]) -> MicroBatch:
    """Rollouts (generate, score, advantages, reference log-probs) and SFT batches; no grad."""
    cfg = run.cfg
    rollouts, sft, started = [], {}, []
    for name, records in batch.items():  # generate, and start scoring while the next generates
        d = next(x for x in cfg.domains if x.name == name)
        prompts = [render_prompt(r, d.template) for r in records]
        if d.mode == "sft":
            sft[name] = SFTBatch(records, prompts, [render_target(r, d.template) for r in records])
            continue
        g = cfg.rl.num_generations
        gen = run.policy.generate(records, prompts, num_samples=g, temperature=cfg.rl.temperature,
                                  top_p=cfg.rl.top_p, max_new_tokens=cfg.rl.max_new_tokens)
        pending: Any = None
        if run.rewards is not None and pool_can_score(d.rewards):
            pending = run.rewards.submit(gen.texts, records, d.rewards, g)
        ref = None
        if run.reference is not None:
            with torch.no_grad():
                ref = run.reference.completion_logprobs(gen)  # [B*G, L]
        started.append((name, records, gen, ref, pending, d.rewards))
    for name, records, gen, ref, pending, names in started:
        rewards = (run.rewards.result(pending) if pending is not None
                   else score(gen.texts, records, {k: run.reward_fns[k] for k in names},
                              cfg.rl.num_generations))  # -> [B, G]
        if cfg.weighting.apply == "rewards":  # advantages follow the weights (_weigh_rewards)
            adv, sig = {}, {f"{name}/{k}": r.mean() for k, r in rewards.items()}
        else:
            adv, sig = objective_advantages(rewards, mode=cfg.rl.advantage,
                                            reward_weights=cfg.rl.reward_weights,
                                            eps=cfg.rl.std_eps)
        rollouts.append(Rollouts(name, records, gen, gen.texts, gen.completion_mask,
                                 gen.logprobs, ref, rewards, adv, sig))
    return MicroBatch(rollouts, sft)


def _mean_signals(pairs: list[tuple[str, Any]]) -> dict[str, float]:
    """Mean signal per objective over domains, micro-batches and processes (one gather)."""
    local = [(k, float(v)) for k, v in pairs]  # sync: K scalars per step
    merged: dict[str, list[float]] = {}
    for part in gather_object([local]):
        for k, v in part:
            merged.setdefault(k, []).append(v)
    return {k: sum(v) / len(v) for k, v in merged.items()}
