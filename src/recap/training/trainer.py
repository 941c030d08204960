"""The hybrid multi-objective RLVR trainer: GRPO + SFT in one step (the RECAP paper Algorithm 1).

One optimiser step: sample records by the replay strategy -> for RL domains generate G completions,
score every reward, group-normalise advantages (per reward, or on the weighted sum) and take the
reference log-probs -> the weighting gets one reward-like signal per objective and returns lambda
-> per micro-batch: clipped surrogate per RL objective, next-token loss per SFT domain, L_k averaged
over the domains carrying k, loss = weighting.combine(L) + beta * KL -> backward, clip, AdamW step.
Restarts (the jigsaw RFT paper sec. 5.6) reset the optimiser state and set the reference to the
current policy.

Deliberate choices:
- sequence aggregation by default as in the jigsaw RFT paper app. A: per-sequence token mean, then
  mean over the G samples and the B prompts; ``rl.loss_aggregation`` offers token (DAPO) and
  constant (Dr. GRPO) aggregation (``grpo.aggregate``);
- ``rl.updates`` (mu, GRPO paper Alg. 1) optimiser updates per batch of rollouts, pi_old fixed
  to the sampling policy; with the default mu = 1 the ratio is 1 up to float round-off (the jigsaw
  RFT paper app. A) and the clip never acts. lambda is computed once per batch (first update) and
  the learning-rate schedule advances once per batch;
- the KL term is added once, unweighted, next to the weighted objectives (objectives.py);
- with ``grad_accum > 1`` lambda is computed once per step from all micro-batches' signals, which
  costs one extra no-grad forward of the SFT micro-batches (their token accuracy is needed first);
- data parallel goes through ``accelerate``: all forwards of a micro-batch run inside one module
  call (``StepObjectives``) so DDP/DeepSpeed see one forward per backward; signals and logged
  statistics are gathered from every process so all ranks compute the same lambda.
Not supported: restarts and the reference model under DeepSpeed ZeRO-3 (the reference is a plain
replica); gradient-based MTL weightings (they need per-objective gradients, see recap.weighting).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.utils import set_seed
from transformers import get_linear_schedule_with_warmup

from recap.config import RunConfig, load_config
from recap.evaluation.evaluator import generate_texts, score_task
from recap.evaluation.suites import EvalTask
from recap.rewards import RewardFn, resolve_rewards
from recap.rewards.pool import RewardPool
from recap.tasks.prompts import render_prompt, render_target
from recap.tasks.registry import make_task
from recap.training.build import build_run_weighting, domain_records, load_run_policy
from recap.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from recap.training.kl import KLSchedule
from recap.training.probe import example_logliks, trim_probe_log
from recap.training.sampler import DomainSampler
from recap.training.step import Run, StepObjectives, train_step
from recap.training.tracking import RunLog

__all__ = ["load_config", "train"]


def train(config: RunConfig | str | Path, resume: bool = False,
          overrides: Sequence[str] = (), *, rewards: Mapping[str, RewardFn] | None = None,
          callbacks: Sequence[Callable[[int, dict[str, Any]], None]] = ()) -> Path:
    """Train a recipe; with ``resume`` continue from the newest checkpoint in its output dir.

    ``config`` is a :class:`RunConfig` or a recipe YAML path; ``overrides`` are ``key=value``
    settings applied to the YAML (as ``recap train FILE --set key=value``). ``rewards`` maps
    names the recipe's domains use to functions ``fn(completion, record) -> float`` (made total
    like registered rewards: exceptions and NaN score 0, values clamped to [0, 1]); a RunConfig
    naming them must be loaded with ``load_config(..., rewards=names)``. Each callback is called
    on the main process after every optimiser step with the step number and its metrics row.
    Returns the output directory (metrics.jsonl, tensorboard/, checkpoints/, final/).
    """
    if not isinstance(config, RunConfig):
        config = load_config(config, list(overrides), rewards=list(rewards or {}))
    elif overrides:
        raise ValueError("overrides apply to a recipe path; change a RunConfig with "
                         "config.model_copy(update=...) or load_config(path, overrides)")
    run = _setup(config, resume, rewards)
    cfg = run.cfg
    try:
        while run.step < cfg.train.steps:
            if run.restart_every and run.step > 0 and run.step % run.restart_every == 0:
                _restart(run)
            row = train_step(run)
            run.step += 1
            if run.probe and run.step % cfg.eval.probe_every == 0:
                row |= _probe(run)
            if run.step % cfg.logging.every == 0 or run.step == cfg.train.steps:
                run.log.write(row)
            run.log.advance(run.step, row)
            if run.acc.is_main_process:
                for callback in callbacks:
                    callback(run.step, row)
            if cfg.eval.every and run.step % cfg.eval.every == 0:
                _evaluate(run)
            if cfg.checkpoint.every and run.step % cfg.checkpoint.every == 0:
                _checkpoint(run)
        if not (cfg.checkpoint.every and run.step % cfg.checkpoint.every == 0):
            _checkpoint(run)
        if run.acc.is_main_process:
            run.policy.save(run.out / "final")
        run.acc.wait_for_everyone()
    finally:
        run.log.close()
        if run.rewards is not None:
            run.rewards.close()
    return run.out


def _setup(cfg: RunConfig, resume: bool, rewards: Mapping[str, RewardFn] | None = None) -> Run:
    acc = Accelerator(kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    out = Path(cfg.output_dir)
    found = latest_checkpoint(out) if resume else None
    if not resume and latest_checkpoint(out) is not None:
        raise FileExistsError(f"{out} already holds checkpoints; resume=True (--resume) continues "
                              f"that run, or choose another output_dir (--out)")
    set_seed(cfg.train.seed, device_specific=True)  # rank r samples with seed + r
    policy = load_run_policy(cfg, acc.device)
    policy.model.train()
    reference = None
    if cfg.uses_reference:
        reference = load_run_policy(cfg, acc.device)
        reference.model.eval().requires_grad_(False)
    domains = cfg.active_domains
    sampler = DomainSampler(
        {d.name: domain_records(d, cfg.train.seed) for d in domains},
        {d.name: d.role for d in domains},
        strategy=cfg.sampling.strategy, batch_size=cfg.train.batch_size,
        batch_per=cfg.train.batch_per, seed=cfg.train.seed,
        weights={d.name: d.weight for d in domains if d.weight is not None} or None,
        coreset_ratio=cfg.sampling.coreset_ratio, rank=acc.process_index,
        world_size=acc.num_processes,
    )
    weighting = build_run_weighting(cfg).to(acc.device)
    optimizer = torch.optim.AdamW(
        [{"params": policy.trainable_parameters(), "weight_decay": cfg.optim.weight_decay},
         {"params": weighting.parameters(), "weight_decay": 0.0}],
        lr=cfg.optim.lr, betas=cfg.optim.betas, eps=cfg.optim.eps,
    )
    scheduler = get_linear_schedule_with_warmup(
        optimizer, round(cfg.optim.warmup_fraction * cfg.train.steps), cfg.train.steps)
    step = StepObjectives(policy, cfg.rl.clip_eps, cfg.rl.loss_aggregation,
                          cfg.rl.max_new_tokens)
    objectives, optimizer = acc.prepare(step, optimizer)
    restart_every = cfg.restart.every_steps
    if cfg.restart.every_epochs is not None:
        per_epoch = sampler.steps_per_epoch(cfg.train.grad_accum)
        restart_every = max(1, round(cfg.restart.every_epochs * per_epoch))
    eval_sets = {d.name: make_task(d.source, "test", cfg.eval.n, seed=cfg.train.seed, **d.knobs)
                 for d in domains if cfg.eval.every and d.builtin}
    run = Run(cfg, out, acc, policy, reference, objectives, optimizer, scheduler, sampler,
               weighting, KLSchedule(cfg.kl, cfg.train.steps), eval_sets, restart_every)
    run.reward_fns = resolve_rewards({r for d in domains for r in d.rewards}, rewards)
    if cfg.rl.reward_workers:
        run.rewards = RewardPool(cfg.rl.reward_workers, cfg.rl.reward_timeout_s)
    if cfg.eval.probe_every:
        run.probe = {}
        # held-out answers, disjoint from training: each built-in domain with its template and
        # knobs, then the extra tasks with the answer template
        probed = [(d.name, d.source, d.template, d.knobs) for d in domains if d.builtin]
        probed += [(t, t, "answer", {}) for t in cfg.eval.probe_tasks
                   if t not in {p[0] for p in probed}]
        for name, task, template, knobs in probed:
            recs = make_task(task, "test", cfg.eval.probe_n, seed=cfg.train.seed, **knobs)
            run.probe[name] = (recs, [render_prompt(r, template) for r in recs],
                               [render_target(r, template) for r in recs])
    if found is not None:
        state = load_checkpoint(acc, found, output_dir=out,
                                reference=reference.model if reference else None)
        _load_trainer_state(run, state)
        if acc.is_main_process:
            trim_probe_log(out / "probe.jsonl", run.step)  # rows of the killed run's later steps
    elif acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        for name in ("metrics.jsonl", "eval.jsonl", "probe.jsonl"):
            (out / name).unlink(missing_ok=True)
    if acc.is_main_process:
        (out / "config.yaml").write_text(cfg.to_yaml())
    if run.probe and found is None:
        _probe(run)  # the baseline: log-likelihoods before any update
    run.log = RunLog(out, active=acc.is_main_process, tensorboard=cfg.logging.tensorboard,
                     progress=cfg.logging.progress, total_steps=cfg.train.steps,
                     start_step=run.step)
    return run


def _restart(run: Run) -> None:
    """Jigsaw RFT paper sec. 5.6: reset the optimiser state; reference := current policy."""
    inner = getattr(run.optimizer, "optimizer", run.optimizer)
    inner.state.clear()
    if run.reference is not None:
        run.reference.model.load_state_dict(run.policy.model.state_dict())
    run.restarts += 1


@torch.no_grad()
def _evaluate(run: Run) -> None:
    """Greedy evaluation of the RL domains on held-out records (the evaluator's generation and
    scoring: each reward's mean, format, lengths, truncation) and teacher-forced token accuracy
    of the SFT domains, to ``eval.jsonl``."""
    if run.acc.is_main_process and run.eval_sets:
        row: dict[str, Any] = {"step": run.step}
        for name, records in run.eval_sets.items():
            d = next(x for x in run.cfg.domains if x.name == name)
            prompts = [render_prompt(r, d.template) for r in records]
            if d.mode == "sft":
                targets = [render_target(r, d.template) for r in records]
                row[f"eval/{name}/sft_acc"] = float(
                    run.policy.sft_loss(records, prompts, targets)[1])
                continue
            task = EvalTask(name, name, {r: r for r in d.rewards}, tuple(d.rewards), d.template)
            texts, truncated = generate_texts(run.policy, records, prompts, len(records),
                                              run.cfg.rl.max_new_tokens)
            scored = score_task(task, records, texts, truncated=truncated)
            row |= {f"eval/{name}/{k}": v for k, v in scored["metrics"].items()}
        run.log.write(row, file="eval.jsonl")
    run.acc.wait_for_everyone()


def _probe(run: Run) -> dict[str, float]:
    """Every probe example's log-likelihood now and its change since the last probe, to
    ``probe.jsonl``; returns the per-domain means for the metrics row."""
    now = {name: example_logliks(run.policy, *parts) for name, parts in run.probe.items()}
    last, run.probe_last = run.probe_last, now
    delta = {n: [a - b for a, b in zip(v, last[n], strict=True)] for n, v in now.items()} \
        if last is not None else None
    if run.acc.is_main_process:
        entry = {"step": run.step, "loglik": now, "delta": delta}
        with (run.out / "probe.jsonl").open("a") as f:
            f.write(json.dumps(entry) + "\n")
    row = {f"probe/{n}/loglik": sum(v) / len(v) for n, v in now.items()}
    if delta is not None:
        row |= {f"probe/{n}/delta": sum(v) / len(v) for n, v in delta.items()}
    return row


def _checkpoint(run: Run) -> None:
    state = {
        "scheduler": run.scheduler.state_dict(),
        "weighting": run.weighting.state_dict(),
        "sampler": run.sampler.state_dict(),
        "skipped": run.skipped,
        "restarts": run.restarts,
        "combined_once": run.combined_once,
        "probe_last": run.probe_last,
    }
    reference = run.reference.model if run.reference is not None and run.restarts else None
    save_checkpoint(run.acc, run.out, run.step, trainer_state=state, reference=reference,
                    export=run.policy if run.cfg.checkpoint.export_model else None,
                    keep_last=run.cfg.checkpoint.keep_last)


def _load_trainer_state(run: Run, state: dict[str, Any]) -> None:
    run.step = int(state["step"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.weighting.load_state_dict(state["weighting"])
    run.sampler.load_state_dict(state["sampler"])
    run.skipped, run.restarts = int(state["skipped"]), int(state["restarts"])
    run.combined_once = bool(state["combined_once"])
    run.probe_last = state.get("probe_last")
