"""Verifiable rewards, registered by name: ``fn(completion: str, record: Record) -> float``.

Every reward is pure, total (never raises: it returns 0.0 on anything it cannot read) and runs in
bounded time on any input (DESIGN.md "Contracts"). Training and evaluation call the same
functions, so a metric and its reward cannot drift apart.

========================  =====================================================================
name                      value
========================  =====================================================================
``think_format``          1 for ``<think>..</think><answer>..</answer>`` only (the RECAP paper)
``answer_format``         1 for ``<answer>..</answer>`` only, no thinking (the RECAP paper)
``accuracy``              1 if the answer matches ``record.answer`` per ``answer_type``
``iou``                   IoU of the answer box with the target box (the RECAP paper)
``iou_at_05``             1 if that IoU >= 0.5
``jigsaw_hit``            fraction of correct positions (the jigsaw RFT paper sec. 3.2)
``jigsaw_acc``            1 if all positions are correct (the jigsaw RFT paper sec. 3.2)
``jigsaw_format``         1 for think/answer tags once each, in order, answer a permutation
========================  =====================================================================

Helpers: :func:`extract_answer` (the answer block all rewards read) and :func:`thinking_length`
(words in the think block, for logging).
"""

from recap.parsing import extract_answer, thinking_length
from recap.rewards.answers import accuracy
from recap.rewards.boxes import box_iou, iou, iou_at_05
from recap.rewards.formats import answer_format, think_format
from recap.rewards.jigsaw import jigsaw_acc, jigsaw_format, jigsaw_hit
from recap.rewards.registry import (
    REWARDS,
    RewardFn,
    get_reward,
    register_reward,
    resolve_rewards,
    total_reward,
)

__all__ = [
    "REWARDS",
    "RewardFn",
    "accuracy",
    "answer_format",
    "box_iou",
    "extract_answer",
    "get_reward",
    "iou",
    "iou_at_05",
    "jigsaw_acc",
    "jigsaw_format",
    "jigsaw_hit",
    "register_reward",
    "resolve_rewards",
    "think_format",
    "thinking_length",
    "total_reward",
]
