"""The auxiliary object head of the base build: shape, colour and box of each object from the
visual token at its centre (a linear classifier trained with the model, dropped after the build).

Trained on the answers alone, the tiny vision tower hardly encoded shape (linear probe 51 %); with
this head the probe reads 100 % (docs/results/base_model, fifth session).
"""

from __future__ import annotations

import torch

from recap.models import Policy
from recap.tasks.record import Record
from recap.tasks.registry import make_task
from recap.tasks.shapes import COLORS, GROUND_FRAME, SHAPES, scale_box


def visual_tokens(policy: Policy, records: list[Record]) -> torch.Tensor:
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


def new_object_head(hidden: int, width: int, seed: int) -> torch.nn.Linear:
    """A fresh head from ``hidden`` features to ``width`` logits: weights N(0, 0.02), bias 0.

    The weights come from their own generator seeded by ``seed``. ``torch.nn.Linear`` still draws
    its default initialisation (overwritten here) from the global RNG, as when the shipped base
    was built: changing that would change every later draw of a rebuild.
    """
    head = torch.nn.Linear(hidden, width)
    with torch.no_grad():
        gen = torch.Generator().manual_seed(seed)
        head.weight.normal_(0.0, 0.02, generator=gen)
        head.bias.zero_()
    return head


def object_head_loss(policy: Policy, head: torch.nn.Linear, records: list[Record],
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
    feats = visual_tokens(policy, scenes)  # [B, tokens, hidden]
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
    logits = head(feats[torch.tensor(rows), torch.tensor(tokens)])  # [objects, width]
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
def vision_feature_norm(policy: Policy, n: int = 8) -> float:
    """Mean L2 norm of the visual tokens the language model receives (a collapse detector)."""
    records = make_task("count", "test", n, seed=4321)
    return float(visual_tokens(policy, records).norm(dim=-1).mean())
