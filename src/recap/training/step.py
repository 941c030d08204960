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
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DistributedType
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
    """One optimiser step (``rl.updates`` of them on one batch of rollouts); its metrics row.

    The whole update, top to bottom. Data parallelism (``no_sync`` until the last micro-batch,
    gathers inside the helpers) and the metrics row are kept out of the way.
    """
    cfg, weighting = run.cfg, run.weighting
    times = {"start": time.perf_counter(), "rollout": 0.0, "weighting": 0.0}
    beta, on_rewards = run.kl.beta(run.step), cfg.weighting.apply == "rewards"
    with _timed(times, "rollout"):  # 1. G completions per prompt, every reward, advantages,
        # reference log-probs, and the SFT batches, per micro-batch; no grad
        micro = [_collect(run, run.sampler.next_batch()) for _ in range(cfg.train.grad_accum)]
    with _timed(times, "weighting"):  # 2. one signal per objective: RL from the rewards
        signals, offsets = _signals_before_forward(run, micro)
        if on_rewards:  # the RECAP authors' code: lambda weighs the rewards, then advantages
            lambdas = weighting.update(signals)  # (grad_accum = 1: RL signals only)
            micro = [_weigh_rewards(mb, lambdas, cfg.rl.std_eps) for mb in micro]
    for update in range(cfg.rl.updates):  # mu >= 1 updates; pi_old stays the sampling policy
        terms, ok = [], True
        for m, mb in enumerate(micro):
            with _accumulating(run, last=m == len(micro) - 1):
                out, backward = _forward(run, mb)  # 3. per-objective losses L_k, KL, diagnostics
                losses = {k: v + offsets[k] if k in offsets else v
                          for k, v in out["losses"].items()}
                if m == 0:  # 4. lambda from the signals, on the batch's first update only
                    with _timed(times, "weighting"):
                        lambdas, signals = _weights(run, out, losses, signals, update == 0)
                loss = _combine(weighting, losses, on_rewards)  # 5. sum_k lambda_k L_k
                if out["kl"] is not None and beta > 0:
                    loss = loss + beta * out["kl"]  # + beta KL(pi || pi_ref)
                ok = ok and bool(torch.isfinite(loss.detach()))  # sync: one flag per micro-batch
                backward(loss / len(micro))  # 6. gradients, averaged over micro-batches
            terms += _logged_terms(losses, loss, out)
        run.combined_once = True
        grad_norm = _optimizer_step(run, ok)  # 7. clip, step (skipped if anything non-finite)
    return _metrics_row(run, beta, grad_norm, lambdas, signals, micro, terms, times)


def _metrics_row(run: Run, beta: float, grad_norm: float, lambdas: dict[str, float],
                 signals: dict[str, float], micro: list[MicroBatch], terms: list[tuple[str, Any]],
                 times: dict[str, float]) -> dict[str, Any]:
    """The step's metrics (synced to Python once, here); advances the LR schedule."""
    row = {"step": run.step + 1, "lr": run.scheduler.get_last_lr()[0], "beta": beta,
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
    elapsed = time.perf_counter() - times["start"]
    tokens = row.pop("tokens", 0.0)
    row |= {"time/step_s": elapsed, "time/rollout_s": times["rollout"],
            "time/weighting_s": times["weighting"], "time/tokens_per_s": tokens / elapsed}
    return row


@contextmanager
def _timed(times: dict[str, float], key: str) -> Iterator[None]:
    """Add the block's wall time to ``times[key]``."""
    t0 = time.perf_counter()
    yield
    times[key] += time.perf_counter() - t0


def _accumulating(run: Run, last: bool) -> Any:
    """Data parallel: gradients are reduced once, on the last micro-batch's backward."""
    return nullcontext() if last else run.acc.no_sync(run.objectives)


def _signals_before_forward(run: Run, micro: list[MicroBatch]
                            ) -> tuple[dict[str, float], dict[str, float]]:
    """``(signals, loss offsets)``: the signal of every RL objective from the step's rewards, as
    the weighting consumes it (``Weighting.consumes``, :mod:`recap.training.objectives`), and
    with several micro-batches every SFT objective's signal too (a no-grad forward of all of
    them, before any backward; with one, :func:`_weights` reads micro-batch 0's forward).

    The offsets turn an RL surrogate into a real loss value (1 - mean reward: the same policy
    gradient) for weightings that take logs or ratios of losses (``consumes == "loss"``).
    """
    consumes, deficit = run.weighting.consumes, run.cfg.weighting.signal == "deficit"
    rewards = _mean_signals([(k, v) for mb in micro for ro in mb.rollouts
                             for k, v in ro.signals.items()])  # mean raw reward per objective
    deficits = rl_weighting_values(rewards, "loss")
    signals = dict(deficits if deficit else rl_weighting_values(rewards, consumes))  # RECAP eq1
    if len(micro) > 1:
        signals |= _sft_signals(_sft_values(run.policy, micro, consumes), deficit)
    return signals, deficits if consumes == "loss" else {}


def _weights(run: Run, out: dict[str, Any], losses: dict[str, torch.Tensor],
             signals: dict[str, float], first: bool) -> tuple[dict[str, float], dict[str, float]]:
    """``(lambda, signals)`` for the step, at micro-batch 0's forward: FAMO's hook sees the losses
    after the last step; on a batch's ``first`` update the SFT signals (from this forward when
    there is one micro-batch) join the RL ones and the weighting updates. Later updates of the
    same rollouts keep the batch's lambda."""
    weighting, on_rewards = run.weighting, run.cfg.weighting.apply == "rewards"
    if run.combined_once and not on_rewards:
        weighting.post_step({k: v.detach() for k, v in losses.items()})
    if not first:
        return weighting.weights, signals
    sft: dict[str, float] = {}
    if run.cfg.train.grad_accum == 1:  # else _signals_before_forward has them
        detached = {k: v.detach() for k, v in losses.items()}
        pairs = sft_weighting_values(detached, out["sft_acc"], weighting.consumes).items()
        sft = _sft_signals(list(pairs), run.cfg.weighting.signal == "deficit")
    if not on_rewards:
        return weighting.update(signals | sft), signals | sft
    return (weighting.update(sft) if sft else weighting.weights), signals | sft


def _sft_signals(pairs: list[tuple[str, Any]], deficit: bool) -> dict[str, float]:
    """Mean SFT signal per objective over micro-batches and processes; 1 - value as a deficit."""
    sft = _mean_signals(pairs)
    return {k: 1.0 - v for k, v in sft.items()} if deficit else sft


def _logged_terms(losses: dict[str, torch.Tensor], loss: torch.Tensor,
                  out: dict[str, Any]) -> list[tuple[str, Any]]:
    """A micro-batch's loss terms and diagnostics, detached, for :func:`gather_step_stats`."""
    terms = [(f"loss/{k}", v.detach()) for k, v in losses.items()] + [("loss", loss.detach())]
    if out["kl"] is not None:
        terms.append(("kl", out["kl"].detach()))
    if out["clip_frac"] is not None:  # and the sampler-vs-trainer KL beside it
        terms += [("clip_frac", out["clip_frac"]), ("sample_kl", out["sample_kl"])]
    return terms


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
            with _accumulating(run, last=j == len(chunks) - 1):
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
                                  top_p=cfg.rl.top_p, max_new_tokens=cfg.rl.max_new_tokens,
                                  keep_prefill=_one_forward_per_rollout(run))
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


def _one_forward_per_rollout(run: Run) -> bool:
    """Whether the loss forward of these rollouts is the next forward with grad and runs in
    this process, so the sampling's prompt pass can serve it (:mod:`recap.models.prefill`):
    not with gradient accumulation or a chunked backward (other graphs in between), nor under
    a distributed wrapper (DDP, FSDP, DeepSpeed: the pass would bypass it)."""
    cfg = run.cfg.train
    return (cfg.grad_accum == 1 and not cfg.backward_prompts
            and run.acc.distributed_type == DistributedType.NO)


def _mean_signals(pairs: list[tuple[str, Any]]) -> dict[str, float]:
    """Mean signal per objective over domains, micro-batches and processes (one gather)."""
    local = [(k, float(v)) for k, v in pairs]  # sync: K scalars per step
    merged: dict[str, list[float]] = {}
    for part in gather_object([local]):
        for k, v in part:
            merged.setdefault(k, []).append(v)
    return {k: sum(v) / len(v) for k, v in merged.items()}
