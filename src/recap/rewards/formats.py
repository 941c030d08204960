"""Format rewards: thinking format (reasoning domains) and answer format (perception domains).

RECAP sec. 5 / appendix A.1: reasoning domains are rewarded for ``<think>...</think>`` followed
by ``<answer>...</answer>``; perception domains for a bare ``<answer>...</answer>`` (no thinking),
because a shared thinking reward made the model trim its reasoning on perception tasks. OThink-MR1
sec. 3 combines a format reward with accuracy as ``R = R_acc + alpha * R_format``; here each is its
own named objective and the weighting (or the trainer) combines them.

Choices not fixed by the papers, stated here: tags are case-sensitive; only whitespace may
surround the blocks; the think block may be empty (the model may shorten its reasoning, RECAP paper
Figure 7); the answer must not be blank, since an empty answer is not the requested format.
"""

from __future__ import annotations

from recap.parsing import (
    ANSWER_CLOSE,
    ANSWER_OPEN,
    THINK_CLOSE,
    THINK_OPEN,
    single_block,
)
from recap.rewards.registry import register_reward
from recap.tasks.record import Record


def _answer_span_ok(completion: str) -> tuple[int, int] | None:
    """The single answer block's tag positions when its content is not blank."""
    block = single_block(completion, ANSWER_OPEN, ANSWER_CLOSE)
    if block is None:
        return None
    open_at, close_at = block
    if not completion[open_at + len(ANSWER_OPEN) : close_at].strip():
        return None
    return block


@register_reward("think_format")
def think_format(completion: str, record: Record) -> float:
    """1.0 for exactly ``<think>...</think>`` then ``<answer>...</answer>``, only whitespace
    around and between them; else 0.0 (the RECAP paper "Thinking Format").

    >>> from recap.tasks.record import Record
    >>> rec = Record("q1", "arith", [], "2 + 1?", "3", "number")
    >>> think_format("<think>2 + 1 = 3</think>\\n<answer>3</answer>", rec)
    1.0
    >>> think_format("<answer>3</answer>", rec)
    0.0
    >>> think_format("Sure! <think>2 + 1</think><answer>3</answer>", rec)
    0.0
    """
    think = single_block(completion, THINK_OPEN, THINK_CLOSE)
    answer = _answer_span_ok(completion)
    if think is None or answer is None:
        return 0.0
    think_open, think_close = think
    answer_open, answer_close = answer
    think_end = think_close + len(THINK_CLOSE)
    if answer_open < think_end:
        return 0.0
    outside = (
        completion[:think_open],
        completion[think_end:answer_open],
        completion[answer_close + len(ANSWER_CLOSE) :],
    )
    return 0.0 if any(part.strip() for part in outside) else 1.0


@register_reward("answer_format")
def answer_format(completion: str, record: Record) -> float:
    """1.0 for exactly one ``<answer>...</answer>``, no think tags, only whitespace around;
    else 0.0 (the RECAP paper "Answer Format", perception domains).

    >>> from recap.tasks.record import Record
    >>> rec = Record("g1", "ground", [], "Where is the cat?", "[0, 0, 5, 5]", "bbox")
    >>> answer_format(" <answer>[0, 0, 5, 5]</answer>\\n", rec)
    1.0
    >>> answer_format("<think>hmm</think><answer>[0, 0, 5, 5]</answer>", rec)
    0.0
    """
    if THINK_OPEN in completion or THINK_CLOSE in completion:
        return 0.0
    answer = _answer_span_ok(completion)
    if answer is None:
        return 0.0
    open_at, close_at = answer
    outside = completion[:open_at] + completion[close_at + len(ANSWER_CLOSE) :]
    return 0.0 if outside.strip() else 1.0
