"""The base build, top to bottom: setup -> loop {batch -> losses -> update -> log -> eval ->
checkpoint} -> final evaluation, ``card.json`` and ``pretraining.png``.

It runs on the trainer's infrastructure: the model and the object head are one module prepared by
``accelerate``, checkpoints are the trainer's (:mod:`recap.training.checkpoint`), the rows go to
``metrics.jsonl`` through the trainer's :class:`~recap.training.tracking.RunLog` and the learning
rate follows a ``LambdaLR``. All of it lives in the run folder beside the output
(:func:`run_folder`), since the default output is the packaged asset folder.
"""

from __future__ import annotations

import json
import math
import platform
import random
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from torch.optim.lr_scheduler import LambdaLR
from tqdm.auto import tqdm

from recap.config.pretrain import ANNEAL_FIELDS, PretrainConfig, changed_fields
from recap.evaluation.evaluator import generate_texts
from recap.evaluation.metrics import reward_scores
from recap.evaluation.report import load_run_metrics
from recap.models import Policy, TinyConfig, build_tiny_model, load_policy
from recap.pretraining.data import batch_loss, sample_batch
from recap.pretraining.object_head import (
    new_object_head,
    object_head_loss,
    object_head_outputs,
    vision_feature_norm,
)
from recap.tasks.prompts import render_prompt
from recap.tasks.registry import make_task
from recap.training.checkpoint import (
    STATE_FILE,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from recap.training.tracking import RunLog

KEEP_LAST = 2  # checkpoints kept, as the trainer's default: the newest and the one before


def run_folder(out_dir: str | Path) -> Path:
    """The run folder of a build writing to ``out_dir``: ``OUT.run`` beside it, holding
    ``checkpoints/step-N`` (the trainer's layout), ``metrics.jsonl`` and the initial model
    ``init/``."""
    out_dir = Path(out_dir)
    return out_dir.with_name(out_dir.name + ".run")


class _Trained(torch.nn.Module):
    """The weights a build trains, as the one module accelerate prepares, saves and restores: the
    model and the object head, which lives outside the Hugging Face model (``None``: no head)."""

    def __init__(self, model: torch.nn.Module, head: torch.nn.Linear | None) -> None:
        super().__init__()
        self.model = model
        self.head = head


@dataclass
class _Build:
    """What the loop works on, made once by :func:`_setup`."""

    cfg: PretrainConfig
    run: Path  # the run folder
    acc: Accelerator
    policy: Policy
    head: torch.nn.Linear | None
    optimizer: torch.optim.Optimizer  # prepared by accelerate
    scheduler: LambdaLR
    log: RunLog
    start: int  # steps done before this call
    elapsed_before: float  # wall-clock seconds of those steps


def pretrain(out_dir: str | Path, cfg: PretrainConfig | None = None,
             resume: bool = False) -> Path:
    """Train the tiny base model and write it (plus ``card.json`` and ``pretraining.png``) to
    ``out_dir``.

    Checkpoints and per-step rows go to :func:`run_folder`; ``resume`` continues from its newest
    checkpoint with identical data and RNG state, so a resumed build equals an uninterrupted one.
    A build without ``resume``, or with no checkpoint to resume, starts afresh and replaces the
    run folder. Runs with ``cfg.threads`` torch threads and gives the process its thread count
    back.
    """
    cfg = cfg or PretrainConfig()
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _pretrain(Path(out_dir), cfg, resume)
    finally:
        torch.set_num_threads(threads)


def _pretrain(out_dir: Path, cfg: PretrainConfig, resume: bool) -> Path:
    build = _setup(out_dir, cfg, resume)
    model = build.policy.model
    total = cfg.total_steps
    t0 = time.time()
    bar = tqdm(range(build.start, total), initial=build.start, total=total, desc="pretrain")
    try:
        for step in bar:
            row = _train_step(build, step)
            row["time/elapsed_s"] = build.elapsed_before + time.time() - t0
            bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{row['token_acc']:.3f}")
            if (step + 1) % cfg.eval_every == 0 or step + 1 == total:
                model.eval()
                row.update(quick_eval(build.policy, cfg, cfg.eval_n))
                row["vision_feature_norm"] = vision_feature_norm(build.policy)
                model.train()
                tqdm.write(json.dumps({k: round(v, 4) for k, v in row.items()}))
            build.log.write(row)
            if (step + 1) % cfg.save_every == 0 or step + 1 == total:
                save_checkpoint(build.acc, build.run, step + 1, keep_last=KEEP_LAST, trainer_state={
                    "recipe": cfg.model_dump(mode="json"),
                    "object_head": None if build.head is None else build.head.out_features})
    finally:
        build.log.close()

    model.eval()
    final = quick_eval(build.policy, cfg, n=cfg.final_eval_n, seed=999)
    build.policy.save(out_dir)
    rows = load_run_metrics(build.run)
    card = {
        "recipe": cfg.model_dump(mode="json"),
        "seed": cfg.seed,
        "wall_time_s": rows[-1]["time/elapsed_s"] if rows else 0.0,
        "hardware": f"{platform.processor() or platform.machine()}, {cfg.threads} threads, CPU",
        "torch": torch.__version__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "test_metrics": final,
        "test_n_per_task": cfg.final_eval_n,
        "command": "recap pretrain",
    }
    (out_dir / "card.json").write_text(json.dumps(card, indent=2))
    plot_pretraining(rows, out_dir / "pretraining.png")
    return out_dir


def _setup(out_dir: Path, cfg: PretrainConfig, resume: bool) -> _Build:
    """The policy, object head, optimiser and schedule of a build: fresh, or restored from the
    newest checkpoint of its run folder."""
    run = run_folder(out_dir)
    found = latest_checkpoint(run) if resume else None
    saved = json.loads((found / STATE_FILE).read_text()) if found is not None else None
    if found is None:
        shutil.rmtree(run, ignore_errors=True)  # an earlier build's checkpoints and rows
    else:
        _check_resume(cfg, saved, found)
    width = _head_width(cfg, saved, found)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    # A resumed build rebuilds the architecture it was started with; the checkpoint then
    # restores its weights.
    tiny = saved["recipe"]["model_config"] if saved is not None else cfg.tiny_config
    policy = load_policy(build_tiny_model(run / "init", TinyConfig(**tiny), seed=cfg.seed))
    model = policy.model
    model.train()
    vision = [p for n, p in model.named_parameters() if ".visual." in f".{n}"]
    vision_ids = {id(p) for p in vision}
    text = [p for p in model.parameters() if id(p) not in vision_ids]
    groups = [{"params": text, "lr_ratio": 1.0},
              {"params": vision, "lr_ratio": cfg.vision_lr_ratio}]
    head = None
    if width is not None:
        head = new_object_head(model.config.text_config.hidden_size, width, cfg.seed)
        groups.append({"params": list(head.parameters()), "lr_ratio": 1.0})
    # Base rate 1: the schedule's lambda returns each step's rate itself (_schedule).
    optimizer = torch.optim.AdamW(groups, lr=1.0, betas=(0.9, 0.95),
                                  weight_decay=cfg.weight_decay)
    # Not Accelerator(cpu=True): accelerate's state is one per process, and cpu=True would keep a
    # trainer started later in the process (quickstart --from-scratch) off the GPU. Without device
    # placement the build stays on the CPU, where its policy was loaded.
    acc = Accelerator(device_placement=False)
    _, prepared = acc.prepare(_Trained(model, head), optimizer)
    rows: list[dict[str, Any]] = []
    if found is not None:
        load_checkpoint(acc, found, output_dir=run)  # weights, head, optimiser, RNG, rows
        rows = load_run_metrics(run)
    start = saved["step"] if saved is not None else 0
    log = RunLog(run, active=acc.is_main_process, tensorboard=False, progress=False,
                 total_steps=cfg.total_steps, start_step=start)
    return _Build(cfg, run, acc, policy, head, prepared, _schedule(optimizer, cfg, start), log,
                  start, rows[-1]["time/elapsed_s"] if rows else 0.0)


def _check_resume(cfg: PretrainConfig, saved: dict[str, Any], found: Path) -> None:
    """Warn when the recipe differs from the checkpoint's in fields that change the steps taken.

    The lr schedule and the curriculum are fractions of ``steps``: a changed recipe still resumes,
    but no longer equals an uninterrupted build. The annealing fields act only after ``steps``.
    """
    changed = [k for k in changed_fields(cfg, saved["recipe"])
               if not (k in ANNEAL_FIELDS and saved["step"] <= cfg.steps)]
    if changed:
        warnings.warn(f"resuming {found} with a changed recipe ({', '.join(changed)}): the "
                      "result will differ from an uninterrupted build", stacklevel=5)


def _head_width(cfg: PretrainConfig, saved: dict[str, Any] | None,
                found: Path | None) -> int | None:
    """Outputs of the object head (``None``: no head): this recipe's, or the resumed build's.

    A build resumed with the head switched off keeps the head and its parameter group (no loss
    reaches it) so that the saved optimiser state still fits; a build without a head cannot grow
    one, and the width (box term on or off) cannot change.
    """
    want = object_head_outputs(cfg.object_head_box_weight) if cfg.object_head_weight > 0 else None
    if saved is None:
        return want
    have = saved["object_head"]
    if have is None and want is not None:
        raise ValueError(f"{found} was built without the object head; resume it with "
                         "object_head_weight=0")
    if want is not None and have != want:
        raise ValueError(
            f"{found} was built with an object head of {have} outputs, this recipe's has "
            f"{want}: object_head_box_weight must stay on or off as in the build being resumed")
    return have


def _lr_at(step: int, cfg: PretrainConfig) -> float:
    """Linear warm-up then cosine decay to ``min_lr_ratio * lr``; in the annealing phase a
    linear decay from ``anneal_lr`` to ``min_lr_ratio * lr``."""
    if cfg.annealing(step):
        progress = (step - cfg.steps) / cfg.anneal_steps
        return cfg.anneal_lr + (cfg.min_lr_ratio * cfg.lr - cfg.anneal_lr) * progress
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def _schedule(optimizer: torch.optim.Optimizer, cfg: PretrainConfig, start: int) -> LambdaLR:
    """Each group's rate at each step: :func:`_lr_at` times the group's ``lr_ratio``.

    Not transformers' ``get_cosine_with_min_lr_schedule_with_warmup``: it gives 0 at step 0 where
    the shipped base was built with ``lr * (step + 1) / warmup_steps``, so a rebuild would no
    longer equal it. The lambda returns the rate itself (the base rate is 1): a factor of ``lr``
    multiplied back would round differently. The schedule is a function of the step, so a
    resumed build starts it at its step (``last_epoch``) instead of restoring it, and a recipe
    resumed with another schedule (an annealing phase added) follows the new one.
    """
    lambdas = [lambda step, ratio=group["lr_ratio"]: _lr_at(step, cfg) * ratio
               for group in optimizer.param_groups]
    return LambdaLR(optimizer, lambdas, last_epoch=start - 1)


def _train_step(build: _Build, step: int) -> dict[str, Any]:
    """One optimiser step on the batch of ``step`` (0-based); its metrics row."""
    cfg = build.cfg
    records, templates = sample_batch(cfg, step)
    loss, token_acc = batch_loss(build.policy, records, templates, cfg.loss_average)
    # .item(): one sync per loss term, where the row is made
    row = {"step": step + 1, "loss": loss.item(), "token_acc": float(token_acc)}
    objects = (object_head_loss(build.policy, build.head, records, cfg.object_head_box_weight)
               if cfg.object_head_weight > 0 and build.head is not None else None)
    if objects is not None:
        row |= {"object_loss": objects[0].item()} | objects[1]
        loss = loss + cfg.object_head_weight * objects[0]
    build.optimizer.zero_grad(set_to_none=True)
    build.acc.backward(loss)
    build.acc.clip_grad_norm_([p for g in build.optimizer.param_groups for p in g["params"]],
                              cfg.grad_clip)
    build.optimizer.step()
    row["lr"] = build.scheduler.get_last_lr()[0]  # the text group's (ratio 1): _lr_at(step)
    build.scheduler.step()
    return row


@torch.no_grad()
def quick_eval(policy: Policy, cfg: PretrainConfig, n: int, seed: int = 12345) -> dict[str, float]:
    """Greedy accuracy per pretraining task on the held-out test split (reward-based)."""
    out: dict[str, float] = {}
    for name, (template, _) in cfg.mixture.items():
        records = make_task(name, "test", n, seed=seed, **cfg.task_knobs.get(name, {}))
        prompts = [render_prompt(r, template) for r in records]
        # describe lists every object with its box (~20 tokens each); the rest answer briefly.
        budget = 96 if template == "think" else 200 if name == "describe" else 32
        texts, _ = generate_texts(policy, records, prompts, 32, budget)
        rewards = {"accuracy": "accuracy"} | ({"iou": "iou"} if name == "ground" else {})
        for metric, scores in reward_scores(rewards, texts, records).items():
            out[f"{name}/{metric}"] = float(np.mean(scores))
    return out


def plot_pretraining(log: list[dict], out_png: Path) -> Path:
    """Training loss / token accuracy and the periodic held-out accuracies of a build (its
    ``metrics.jsonl`` rows)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    steps = [r["step"] for r in log]
    ax_loss.plot(steps, [r["loss"] for r in log], lw=0.5, alpha=0.6, label="loss")
    ax_loss.plot(steps, [r["token_acc"] for r in log], lw=0.5, alpha=0.6, label="token accuracy")
    ax_loss.set_xlabel("step")
    ax_loss.legend()
    ax_loss.set_title("training batches")
    evals = [r for r in log if any(k.endswith("/accuracy") for k in r)]
    for key in sorted({k for r in evals for k in r if k.endswith("/accuracy")}):
        ax_acc.plot([r["step"] for r in evals], [r[key] for r in evals], marker="o", label=key)
    ax_acc.set_ylim(0, 1)
    ax_acc.set_xlabel("step")
    ax_acc.set_title("held-out greedy accuracy")
    ax_acc.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return out_png
