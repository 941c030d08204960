"""What a pretraining step trains on: its curriculum stage, its batch and the batch's SFT loss.

Every step draws fresh records from the generators, seeded by (seed, step), so there is no fixed
dataset to overfit and resuming a build needs only the step.
"""

from __future__ import annotations

import itertools
import random
from typing import Literal

import torch

from recap.config.pretrain import PretrainConfig, Stage
from recap.models import Policy
from recap.tasks.prompts import render_prompt, render_target
from recap.tasks.record import Record
from recap.tasks.registry import make_task


def stage_at(step: int, cfg: PretrainConfig) -> Stage:
    """The curriculum stage of ``step`` (an empty stage once every stage has ended; the annealing
    weights in the annealing phase)."""
    if cfg.annealing(step):
        return Stage(until=1.0, weights=dict(cfg.anneal_weights))
    for stage in cfg.curriculum:
        if step < stage.until * cfg.steps:
            return stage
    return Stage(until=1.0)


def sample_batch(cfg: PretrainConfig, step: int) -> tuple[list[Record], list[str]]:
    """The records and templates of one step: a deterministic function of (seed, step).

    Records come grouped by task (so a step can run one padded forward per task).
    """
    stage = stage_at(step, cfg)
    rng = random.Random(cfg.seed * 1_000_003 + step)
    names = list(cfg.mixture)
    weights = [stage.weights.get(n, cfg.mixture[n][1]) for n in names]
    picks = rng.choices(names, weights=weights, k=cfg.batch_size)
    records: list[Record] = []
    templates: list[str] = []
    for name in names:
        count = picks.count(name)
        if count == 0:
            continue
        knobs = cfg.task_knobs.get(name, {}) | stage.knobs.get(name, {})
        seed = (cfg.seed * 7919 + step) * 31 + names.index(name)
        records += make_task(name, "train", count, seed=seed, **knobs)
        templates += [cfg.mixture[name][0]] * count
    return records, templates


def batch_loss(policy: Policy, records: list[Record], templates: list[str],
               average: Literal["token", "record"] = "token") -> tuple[torch.Tensor, float]:
    """SFT loss over the batch, one forward per task, and the token accuracy.

    ``average="token"``: the mean over every target token of the batch, equal to
    ``policy.sft_loss`` on the whole batch. ``average="record"``: each record's token-mean NLL,
    averaged over records, so a yes/no answer weighs as much as a scene description with ten
    times its tokens. Splitting by task pads each forward only to its own longest sequence.
    """
    if average not in ("token", "record"):
        raise ValueError(f"average must be 'token' or 'record', got {average!r}")
    total = 0.0  # becomes a tensor on the policy's device
    count = correct = 0
    rows = zip(records, templates, strict=True)
    for _, group in itertools.groupby(rows, key=lambda row: row[0].domain):
        group = list(group)
        prompts = [render_prompt(r, t) for r, t in group]
        targets = [render_target(r, t) for r, t in group]
        logprobs, mask, right = policy.target_logprobs([r for r, _ in group], prompts, targets)
        if average == "token":
            total = total + logprobs.sum()
        else:
            total = total + (logprobs.sum(1) / mask.sum(1).clamp(min=1)).sum()
        count += int(mask.sum())
        correct += int(right.sum())
    denominator = max(count, 1) if average == "token" else max(len(records), 1)
    return -total / denominator, correct / max(count, 1)
