"""Build the tiny lab's base model: supervised pretraining on the built-in general suite.

`recap pretrain` trains the tiny Qwen2.5-VL (``recap.models.tiny``) from scratch on freshly
generated records of the general-capability tasks (counting, existence, grounding, digits OCR)
plus worked solutions of the reasoning task (so the base can follow the think/answer template and
GRPO has a non-zero success rate to start from). Every step draws new records from the generators
(seeded by the step), so there is no fixed dataset to overfit and resuming needs only the step.

The recipe is a curriculum (:func:`default_curriculum`): single large objects and single digits
first, then gradually the full scenes and digit strings that evaluation uses; and besides the
benchmark tasks, a dense ``describe`` task (every object's colour, shape and box) that supervises
the vision path on every object of every image, and an auxiliary linear head that classifies each
object's shape and colour from its visual token (:func:`object_head_loss`; dropped after the build).
Progress is checkpointed atomically every ``save_every`` steps; ``resume=True`` continues from the
last checkpoint with identical data and RNG state, so a resumed build equals an uninterrupted one.
The result (weights + tokenizer + processor + ``card.json``) is what ships in ``recap/assets/base``.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import platform
import random
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from recap.tasks.prompts import render_prompt, render_target
from recap.tasks.record import Record
from recap.tasks.registry import make_task
from recap.tasks.shapes import COLORS, GROUND_FRAME, SHAPES, scale_box


@dataclass
class Stage:
    """One stage of the curriculum: knob and mixture-weight overrides up to a point of the build.

    ``until`` is the fraction of ``steps`` at which the stage ends (stages are read in order; the
    last stage should end at 1.0, steps past every stage use the plain recipe). ``knobs`` maps a
    task to generator knobs merged over ``PretrainConfig.task_knobs``; ``weights`` maps a task to
    its mixture weight in this stage (0 leaves it out).
    """

    until: float
    knobs: dict[str, dict] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)


SCENE_TASKS = ("count", "exists", "ground", "describe")


def _scene_stage(until: float, scene: dict, n_digits: tuple[int, int]) -> Stage:
    return Stage(until, knobs={t: dict(scene) for t in SCENE_TASKS}
                 | {"digits": {"n_digits": n_digits}})


def default_curriculum() -> list[Stage]:
    """Single large one-shape objects and one digit, then single objects of every shape and up
    to two digits, then up to three objects and digits; the last 60 % of the build is the
    generators' defaults (1-6 objects of 9-15 px, 2-4 digits), the distribution evaluated.

    Every counting question kind is asked throughout: a build that asked only "how many objects"
    from 20 % to 50 % lost 28 points on colour counts and gained nothing on the others
    (docs/results/base_model, build A of the fourth session).
    """
    return [
        _scene_stage(0.08, {"n_objects": (1, 1), "obj_size": (16, 24), "n_shapes": 1}, (1, 1)),
        _scene_stage(0.2, {"n_objects": (1, 1), "obj_size": (12, 20)}, (1, 2)),
        _scene_stage(0.4, {"n_objects": (1, 3), "obj_size": (10, 16)}, (1, 3)),
    ]


@dataclass
class PretrainConfig:
    """The base-model recipe (defaults are the shipped recipe; see the training card)."""

    steps: int = 12000
    batch_size: int = 16
    lr: float = 1e-3
    # The vision tower and merger get a smaller step: at 3e-3 for all weights the merger's
    # output norm grew to ~700 per token (text embeddings ~0.7) and the language model learned
    # to ignore the image (constant grounding answers, counting at the prior).
    vision_lr_ratio: float = 0.5
    min_lr_ratio: float = 0.05
    warmup_steps: int = 150
    weight_decay: float = 0.05
    grad_clip: float = 1.0
    # "token": mean over every answer token of the batch; "record": mean of each record's
    # token-mean loss (see batch_loss).
    loss_average: Literal["token", "record"] = "token"
    seed: int = 0
    threads: int = 1
    # task -> (template, mixture weight); arith carries worked solutions in think format.
    mixture: dict[str, tuple[str, float]] = field(
        default_factory=lambda: {
            "count": ("answer", 1.0),
            "exists": ("answer", 1.0),
            "ground": ("answer", 1.5),
            "digits": ("answer", 1.5),
            "arith": ("think", 0.5),
            # Pretraining only: every object's colour, shape and box in one answer.
            "describe": ("answer", 1.0),
        }
    )
    # Knobs passed to the generators (must match what evaluation and training use).
    task_knobs: dict[str, dict] = field(default_factory=dict)
    eval_every: int = 1000
    eval_n: int = 64
    save_every: int = 250
    final_eval_n: int = 200
    model_config: dict = field(default_factory=dict)
    # Weight of the auxiliary object head's loss (0 turns it off): a linear classifier of each
    # object's shape and colour from the visual token at its centre, trained with the model and
    # dropped after the build. Trained on the answers alone, the tower hardly encoded shape
    # (linear probe 51 %, colour 98 %), yet every scene task names shapes; with the head the probe
    # reads 100 % (docs/results/base_model, fifth session).
    object_head_weight: float = 1.0
    # Weight of the head's box term (0 turns it off): the same head also classifies each of the
    # object's box coordinates in the grounding frame (0..GROUND_FRAME) from that token. With the
    # shape head alone the tower learned *what* but lost *where*: grounding fell from 34 % to 12 %
    # (fifth session); the box term asks the token for its object's extent as well.
    object_head_box_weight: float = 1.0
    # Easy scenes first: from scratch, existence stayed at chance for 800 steps on the full
    # scenes but reached 63-77 % when the same steps started on single large objects (see
    # docs/results/base_model). Later stages fall back to the generators' default knobs.
    curriculum: list[Stage] = field(default_factory=default_curriculum)
    # Annealing phase after `steps` (the "decay on a re-weighted mixture" of warmup-stable-decay
    # schedules): `anneal_steps` more steps whose lr falls linearly from `anneal_lr` to
    # `min_lr_ratio * lr`, on the mixture with `anneal_weights` laid over `mixture`'s weights.
    # Steps before `steps` do not depend on these fields, so a build can be resumed into an
    # annealing phase and still equal an uninterrupted build. The shipped recipe anneals for
    # 8,000 steps on counting (x6) and existence (x1.5): counting rose from 63 % at step 12,000
    # to 89.6 % (82.0 % after 4,000 steps), the other tasks held or rose
    # (docs/results/base_model, seventh and eighth sessions).
    anneal_steps: int = 8000
    anneal_lr: float = 5e-4
    anneal_weights: dict[str, float] = field(
        default_factory=lambda: {"count": 6.0, "exists": 1.5})

    def __post_init__(self) -> None:
        unknown = sorted(set(self.anneal_weights) - set(self.mixture))
        if unknown:
            raise ValueError(f"anneal_weights names tasks outside the mixture: {unknown}; "
                             f"mixture: {sorted(self.mixture)}")
        if self.anneal_steps < 0 or self.anneal_lr <= 0:
            raise ValueError("anneal_steps must be >= 0 and anneal_lr > 0, got "
                             f"{self.anneal_steps} and {self.anneal_lr}")

    @property
    def total_steps(self) -> int:
        """Main phase plus annealing phase."""
        return self.steps + self.anneal_steps

    def annealing(self, step: int) -> bool:
        """Whether ``step`` (0-based) belongs to the annealing phase."""
        return self.anneal_steps > 0 and step >= self.steps


ANNEAL_FIELDS = ("anneal_steps", "anneal_lr", "anneal_weights")


def changed_fields(cfg: PretrainConfig, recipe: dict) -> list[str]:
    """Fields of ``cfg`` that differ from a saved recipe (a checkpoint's or a card's, as JSON)."""
    return sorted(k for k, v in json.loads(json.dumps(asdict(cfg))).items()
                  if recipe.get(k) != v)


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


def batch_loss(policy, records: list[Record], templates: list[str],
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


def _save_atomic(policy, optimizer, head, step: int, cfg: PretrainConfig, out: Path,
                 log: list) -> None:
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    policy.save(tmp)
    torch.save(
        {"optimizer": optimizer.state_dict(), "step": step, "torch_rng": torch.get_rng_state(),
         "object_head": head.state_dict() if head is not None else None},
        tmp / "pretrain_state.pt",
    )
    (tmp / "pretrain_log.json").write_text(json.dumps({"config": asdict(cfg), "log": log}))
    old = out.with_name(out.name + ".old")
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    if old.exists():
        shutil.rmtree(old)


@torch.no_grad()
def quick_eval(policy, cfg: PretrainConfig, n: int, seed: int = 12345) -> dict[str, float]:
    """Greedy accuracy per pretraining task on the held-out test split (reward-based)."""
    from recap.evaluation.evaluator import generate_texts
    from recap.rewards import get_reward

    accuracy = get_reward("accuracy")
    iou = get_reward("iou")
    out: dict[str, float] = {}
    for name, (template, _) in cfg.mixture.items():
        records = make_task(name, "test", n, seed=seed, **cfg.task_knobs.get(name, {}))
        prompts = [render_prompt(r, template) for r in records]
        # describe lists every object with its box (~20 tokens each); the rest answer briefly.
        budget = 96 if template == "think" else 200 if name == "describe" else 32
        texts, _ = generate_texts(policy, records, prompts, 32, budget)
        pairs = list(zip(texts, records, strict=True))
        out[f"{name}/accuracy"] = float(np.mean([accuracy(t, r) for t, r in pairs]))
        if name == "ground":
            out["ground/iou"] = float(np.mean([iou(t, r) for t, r in pairs]))
    return out


def visual_tokens(policy, records: list[Record]) -> torch.Tensor:
    """The visual tokens the language model reads (the merger's output), ``[B, tokens, hidden]``
    in raster order; one image per record, all of one size. Gradients flow unless disabled."""
    tensors = policy.encode(records, [r.question for r in records]).vision.tensors
    feats = policy.model.model.visual(tensors["pixel_values"], grid_thw=tensors["image_grid_thw"])
    feats = feats if torch.is_tensor(feats) else feats.pooler_output
    return feats.view(len(records), -1, feats.shape[-1])


def object_token(record: Record, side: int) -> int:
    """Index (raster order) of the visual token whose cell holds the centre of the record's first
    object, on a ``side`` x ``side`` token grid."""
    return _centre_cell(record.meta["objects"][0]["box"], record.meta["image_size"][0] / side, side)


def _centre_cell(box: list[int], cell: float, side: int) -> int:
    x1, y1, x2, y2 = box
    return int((y1 + y2) / 2 // cell) * side + int((x1 + x2) / 2 // cell)


def object_head_outputs(box_weight: float) -> int:
    """Width of the object head: shape and colour logits, plus ``GROUND_FRAME + 1`` logits per box
    coordinate when the box term is on."""
    return len(SHAPES) + len(COLORS) + (4 * (GROUND_FRAME + 1) if box_weight > 0 else 0)


def object_head_loss(policy, head: torch.nn.Linear, records: list[Record],
                     box_weight: float = 0.0) -> tuple[torch.Tensor, dict[str, float]] | None:
    """The auxiliary object head's loss on the scene records, with its accuracies; ``None``
    without a usable object.

    For every object alone in its visual token's cell (two centres in one cell would give the
    token two labels), ``head`` reads that token and is scored by cross-entropy on the object's
    shape and colour and, with ``box_weight > 0``, ``box_weight`` times the mean cross-entropy of
    its four box coordinates in the 0..GROUND_FRAME grounding frame (:func:`object_head_outputs`
    gives the head's width). Accuracies: ``object_shape_acc`` and, with boxes,
    ``object_box_acc`` (coordinates exactly right).
    """
    scenes = [r for r in records if "objects" in r.meta and len(r.images) == 1]
    if not scenes:
        return None
    feats = visual_tokens(policy, scenes)
    side = int(feats.shape[1] ** 0.5)
    rows, tokens, shapes, colours, boxes = [], [], [], [], []
    for i, record in enumerate(scenes):
        size = record.meta["image_size"]
        cells = [_centre_cell(o["box"], size[0] / side, side) for o in record.meta["objects"]]
        for obj, cell in zip(record.meta["objects"], cells, strict=True):
            if cells.count(cell) == 1:
                rows.append(i)
                tokens.append(cell)
                shapes.append(SHAPES.index(obj["shape"]))
                colours.append(list(COLORS).index(obj["color"]))
                boxes.append(scale_box(obj["box"], size, GROUND_FRAME))
    if not rows:
        return None
    logits = head(feats[torch.tensor(rows), torch.tensor(tokens)])
    ce = torch.nn.functional.cross_entropy
    n_labels = len(SHAPES) + len(COLORS)
    shape_logits, colour_logits, box_logits = logits.split(
        [len(SHAPES), len(COLORS), logits.shape[-1] - n_labels], dim=-1)
    shapes_t = torch.tensor(shapes)
    loss = ce(shape_logits, shapes_t) + ce(colour_logits, torch.tensor(colours))
    metrics = {"object_shape_acc": float((shape_logits.argmax(-1) == shapes_t).float().mean())}
    if box_weight > 0:
        box_logits = box_logits.reshape(len(rows), 4, GROUND_FRAME + 1)
        boxes_t = torch.tensor(boxes)
        loss = loss + box_weight * ce(box_logits.flatten(0, 1), boxes_t.flatten())
        metrics["object_box_acc"] = float((box_logits.argmax(-1) == boxes_t).float().mean())
    return loss, metrics


@torch.no_grad()
def vision_feature_norm(policy, n: int = 8) -> float:
    """Mean L2 norm of the visual tokens the language model receives (a collapse detector)."""
    records = make_task("count", "test", n, seed=4321)
    return float(visual_tokens(policy, records).norm(dim=-1).mean())


def pretrain(out_dir: Path, cfg: PretrainConfig | None = None, resume: bool = False) -> Path:
    """Train the tiny base model and write it (plus ``card.json``) to ``out_dir``.

    Runs with ``cfg.threads`` torch threads and gives the process its thread count back."""
    cfg = cfg or PretrainConfig()
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        return _pretrain(Path(out_dir), cfg, resume)
    finally:
        torch.set_num_threads(threads)


def _pretrain(out_dir: Path, cfg: PretrainConfig, resume: bool) -> Path:
    from recap.models import TinyConfig, build_tiny_model, load_policy

    ckpt = out_dir.with_name(out_dir.name + ".ckpt")
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)

    log: list[dict] = []
    start = 0
    if resume and (ckpt / "pretrain_state.pt").exists():
        policy = load_policy(ckpt)
        state = torch.load(ckpt / "pretrain_state.pt", weights_only=False)
        start = state["step"]
        saved = json.loads((ckpt / "pretrain_log.json").read_text())
        log = saved["log"]
        # The lr schedule and the curriculum are fractions of `steps`: a changed recipe still
        # resumes, but no longer equals an uninterrupted build.
        changed = [k for k in changed_fields(cfg, saved["config"])
                   if not (k in ANNEAL_FIELDS and start <= cfg.steps)]
        if changed:
            warnings.warn(f"resuming {ckpt} with a changed recipe ({', '.join(changed)}): the "
                          "result will differ from an uninterrupted build", stacklevel=2)
    else:
        init = out_dir.with_name(out_dir.name + ".init")
        build_tiny_model(init, TinyConfig(**cfg.model_config), seed=cfg.seed)
        policy = load_policy(init)
        state = None
    model = policy.model
    model.train()
    vision = [p for n, p in model.named_parameters() if ".visual." in f".{n}"]
    vision_ids = {id(p) for p in vision}
    text = [p for p in model.parameters() if id(p) not in vision_ids]
    groups = [{"params": text, "lr_ratio": 1.0},
              {"params": vision, "lr_ratio": cfg.vision_lr_ratio}]
    head = None
    saved_head = state.get("object_head") if state is not None else None
    if state is not None and saved_head is None and cfg.object_head_weight > 0:
        raise ValueError(f"{ckpt} was built without the object head; resume it with "
                         "object_head_weight=0")
    if cfg.object_head_weight > 0 or saved_head is not None:
        # A build resumed with the head switched off keeps the head's parameter group (no loss
        # reaches it) so that the saved optimiser state still fits.
        width = (object_head_outputs(cfg.object_head_box_weight) if cfg.object_head_weight > 0
                 else saved_head["weight"].shape[0])
        if saved_head is not None and saved_head["weight"].shape[0] != width:
            raise ValueError(
                f"{ckpt} was built with an object head of {saved_head['weight'].shape[0]} "
                f"outputs, this recipe's has {width}: object_head_box_weight must stay on or "
                "off as in the build being resumed")
        # Its own generator: the head's initialisation leaves the global torch RNG untouched.
        head = torch.nn.Linear(model.config.text_config.hidden_size, width)
        with torch.no_grad():
            gen = torch.Generator().manual_seed(cfg.seed)
            head.weight.normal_(0.0, 0.02, generator=gen)
            head.bias.zero_()
        groups.append({"params": list(head.parameters()), "lr_ratio": 1.0})
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95),
                                  weight_decay=cfg.weight_decay)
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        if head is not None:
            head.load_state_dict(saved_head)

    t0 = time.time()
    elapsed_before = log[-1]["elapsed_s"] if log else 0.0
    total = cfg.total_steps
    bar = tqdm(range(start, total), initial=start, total=total, desc="pretrain")
    for step in bar:
        records, templates = sample_batch(cfg, step)
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, cfg) * group["lr_ratio"]
        loss, token_acc = batch_loss(policy, records, templates, cfg.loss_average)
        row = {"step": step + 1, "loss": loss.item(), "token_acc": float(token_acc)}
        objects = (object_head_loss(policy, head, records, cfg.object_head_box_weight)
                   if cfg.object_head_weight > 0 else None)
        if objects is not None:
            row |= {"object_loss": objects[0].item()} | objects[1]
            loss = loss + cfg.object_head_weight * objects[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], cfg.grad_clip)
        optimizer.step()
        row |= {"lr": _lr_at(step, cfg), "elapsed_s": elapsed_before + time.time() - t0}
        bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{row['token_acc']:.3f}")
        if (step + 1) % cfg.eval_every == 0 or step + 1 == total:
            model.eval()
            row.update(quick_eval(policy, cfg, cfg.eval_n))
            row["vision_feature_norm"] = vision_feature_norm(policy)
            model.train()
            tqdm.write(json.dumps({k: round(v, 4) for k, v in row.items()}))
        log.append(row)
        if (step + 1) % cfg.save_every == 0 or step + 1 == total:
            _save_atomic(policy, optimizer, head, step + 1, cfg, ckpt, log)

    model.eval()
    final = quick_eval(policy, cfg, n=cfg.final_eval_n, seed=999)
    policy.save(out_dir)
    card = {
        "recipe": asdict(cfg),
        "seed": cfg.seed,
        "wall_time_s": log[-1]["elapsed_s"] if log else 0.0,
        "hardware": f"{platform.processor() or platform.machine()}, {cfg.threads} threads, CPU",
        "torch": torch.__version__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "test_metrics": final,
        "test_n_per_task": cfg.final_eval_n,
        "command": "recap pretrain",
    }
    (out_dir / "card.json").write_text(json.dumps(card, indent=2))
    plot_pretraining(log, out_dir / "pretraining.png")
    return out_dir


def plot_pretraining(log: list[dict], out_png: Path) -> Path:
    """Training loss / token accuracy and the periodic held-out accuracies of a build."""
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
