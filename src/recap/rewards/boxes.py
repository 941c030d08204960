"""Box rewards: continuous IoU (the RECAP paper Table 3, "IoU" on RefCOCO / LISA) and IoU >= 0.5.

Convention: boxes are ``[x1, y1, x2, y2]`` in the image's pixel frame, x to the right, y down,
origin at the top-left corner, as continuous coordinates (no "+1" pixel counting), so a box's
area is ``(x2 - x1) * (y2 - y1)``. A box needs ``x2 > x1`` and ``y2 > y1``: a degenerate or
inverted box (predicted or target) scores 0. Tasks may state boxes in a coarser frame
(``record.meta["coord_scale"]``); target and prediction are then in the same frame and IoU, a
ratio of areas, does not depend on the frame, so no rescaling is done here.

The predicted box is the first bracketed group of exactly four numbers inside the (last)
``<answer>`` block; the target is read from ``record.answer`` the same way. Only ``bbox`` records
are scored (a jigsaw list of four indices would otherwise read as a box).
"""

from __future__ import annotations

import math

from recap.parsing import parse_box, scorable_answer
from recap.rewards.registry import register_reward
from recap.tasks.record import Record

Box = tuple[float, float, float, float]

IOU_THRESHOLD = 0.5
"""The usual grounding-accuracy threshold (RefCOCO "Acc@0.5")."""


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes; 0 if either is degenerate.

    >>> box_iou((0, 0, 10, 10), (5, 0, 15, 10))  # 50 / (100 + 100 - 50)
    0.3333333333333333
    """
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    if not (ax2 > ax1 and ay2 > ay1 and bx2 > bx1 and by2 > by1):
        return 0.0
    inter_w = max(0.0, min(ax2, bx2) - max(ax1, bx1))
    inter_h = max(0.0, min(ay2, by2) - max(ay1, by1))
    inter = inter_w * inter_h
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    if not (union > 0 and math.isfinite(union)):
        return 0.0
    return inter / union


def completion_iou(completion: str, record: Record) -> float:
    """IoU of the completion's answer box with the target box (0 if the answer has none).

    Raises ``ValueError`` for a record that is not a box task (a misconfigured reward; the
    reward wrapper scores it 0.0 and logs it once) or whose target is not a box.
    """
    if record.answer_type != "bbox":
        raise ValueError(f"record {record.id!r} is {record.answer_type!r}, not 'bbox'")
    answer = scorable_answer(completion)
    if answer is None:
        return 0.0
    predicted = parse_box(answer)
    if predicted is None:
        return 0.0
    target = parse_box(record.answer)
    if target is None:
        raise ValueError(f"record {record.id!r}: answer {record.answer!r} is not a box")
    return box_iou(predicted, target)


@register_reward("iou")
def iou(completion: str, record: Record) -> float:
    """Continuous IoU between the answer box and ``record.answer`` (the RECAP paper "IoU" reward).

    >>> from recap.tasks.record import Record
    >>> rec = Record("g1", "ground", [], "Where is the square?", "[0, 0, 10, 10]", "bbox")
    >>> round(iou("<answer>[5, 0, 15, 10]</answer>", rec), 4)  # 50 / 150
    0.3333
    >>> iou("<answer>[10, 0, 0, 10]</answer>", rec)  # inverted box
    0.0
    """
    return completion_iou(completion, record)


@register_reward("iou_at_05")
def iou_at_05(completion: str, record: Record) -> float:
    """1.0 if the answer box has IoU >= 0.5 with the target, else 0.0 (grounding accuracy).

    >>> from recap.tasks.record import Record
    >>> rec = Record("g1", "ground", [], "Where is the square?", "[0, 0, 10, 10]", "bbox")
    >>> iou_at_05("<answer>[0, 0, 10, 5]</answer>", rec)  # IoU 50 / 100
    1.0
    >>> iou_at_05("<answer>[5, 0, 15, 10]</answer>", rec)  # IoU 1/3
    0.0
    """
    return 1.0 if completion_iou(completion, record) >= IOU_THRESHOLD else 0.0
