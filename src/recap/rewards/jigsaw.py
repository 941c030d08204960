"""Jigsaw rewards (the jigsaw RFT paper sec. 3.2): hit, accuracy and format for an m x n puzzle.

Pieces carry row-major indices 0..N-1 with N = m * n (the jigsaw RFT paper sec. 3.1); the target
``record.answer`` is the list of piece indices in canonical top-left to bottom-right order, e.g.
``"[2, 0, 3, 1]"``; ``record.meta["grid"] = (m, n)`` (without it, N is the target's length).
Only ``permutation`` records are scored.

Interpretations of the paper's text, stated here:

* Hit: the paper divides by 3 x 3; for any grid the denominator is N = m * n. Positions are
  compared up to N; entries past N are ignored and missing ones count as wrong. The predicted
  list is the first bracketed group inside the (last) answer block.
* Format: the paper asks for the think and answer tags each exactly once, in order, and an answer
  that is "a non-repeating sequence of digits 0-8 within []". For any grid: the answer content is
  exactly one ``[...]`` list of comma-separated integers, all in 0..N-1, no repeats, and of
  length N (a non-repeating list of N valid indices is a permutation; the paper does not spell out
  the length, but a shorter list is not a full answer). The paper does not forbid text outside
  the tags, so unlike ``think_format`` this reward does not either.
"""

from __future__ import annotations

from recap.parsing import (
    ANSWER_CLOSE,
    ANSWER_OPEN,
    THINK_CLOSE,
    THINK_OPEN,
    parse_index_list,
    scorable_answer,
    single_block,
)
from recap.rewards.registry import register_reward
from recap.tasks.record import Record


def target_permutation(record: Record) -> list[int]:
    """The target index list, checked against ``record.meta["grid"]`` when given.

    Raises ``ValueError`` for a record that is not a permutation task (a misconfigured reward)
    or is inconsistent (the reward wrapper turns it into 0.0 and logs it once).
    """
    if record.answer_type != "permutation":
        raise ValueError(f"record {record.id!r} is {record.answer_type!r}, not 'permutation'")
    target = parse_index_list(record.answer)
    if target is None:
        raise ValueError(f"record {record.id!r}: answer {record.answer!r} is not an index list")
    grid = record.meta.get("grid")
    if grid is not None:
        m, n = (int(v) for v in grid)
        if m * n != len(target):
            raise ValueError(f"record {record.id!r}: grid {grid} does not match {target}")
    return target


def predicted_permutation(completion: str) -> list[int] | None:
    """The first bracketed index list inside the answer block, or ``None``."""
    answer = scorable_answer(completion)
    return None if answer is None else parse_index_list(answer)


@register_reward("jigsaw_hit")
def jigsaw_hit(completion: str, record: Record) -> float:
    """Fraction of the N positions holding the right index (jigsaw-RFT sec. 3.2 ``R_hit``).

    >>> from recap.tasks.record import Record
    >>> rec = Record("j1", "jigsaw", [], "Reorder.", "[2, 0, 3, 1]", "permutation",
    ...              meta={"grid": (2, 2)})
    >>> jigsaw_hit("<think>...</think><answer>[2, 0, 1, 3]</answer>", rec)  # 2 of 4
    0.5
    """
    target = target_permutation(record)
    predicted = predicted_permutation(completion)
    if predicted is None:
        return 0.0
    hits = sum(p == t for p, t in zip(predicted, target, strict=False))
    return hits / len(target)


@register_reward("jigsaw_acc")
def jigsaw_acc(completion: str, record: Record) -> float:
    """1.0 only when every position is right (the jigsaw RFT paper sec. 3.2 ``R_acc``).

    >>> from recap.tasks.record import Record
    >>> rec = Record("j1", "jigsaw", [], "Reorder.", "[2, 0, 3, 1]", "permutation",
    ...              meta={"grid": (2, 2)})
    >>> jigsaw_acc("<answer>[2, 0, 3, 1]</answer>", rec)
    1.0
    >>> jigsaw_acc("<answer>[2, 0, 1, 3]</answer>", rec)
    0.0
    """
    target = target_permutation(record)
    return 1.0 if predicted_permutation(completion) == target else 0.0


@register_reward("jigsaw_format")
def jigsaw_format(completion: str, record: Record) -> float:
    """1.0 when think and answer tags each occur once, in order, and the answer is a
    non-repeating list of N valid indices in ``[...]`` (the jigsaw RFT paper sec. 3.2 ``R_fmt``).

    >>> from recap.tasks.record import Record
    >>> rec = Record("j1", "jigsaw", [], "Reorder.", "[2, 0, 3, 1]", "permutation",
    ...              meta={"grid": (2, 2)})
    >>> jigsaw_format("<think>top-left is 2</think><answer>[3, 1, 0, 2]</answer>", rec)
    1.0
    >>> jigsaw_format("<think>...</think><answer>[3, 1, 1, 2]</answer>", rec)  # repeat
    0.0
    >>> jigsaw_format("<answer>[3, 1, 0, 2]</answer>", rec)  # no think block
    0.0
    """
    size = len(target_permutation(record))
    think = single_block(completion, THINK_OPEN, THINK_CLOSE)
    answer = single_block(completion, ANSWER_OPEN, ANSWER_CLOSE)
    if think is None or answer is None or answer[0] < think[1] + len(THINK_CLOSE):
        return 0.0
    content = completion[answer[0] + len(ANSWER_OPEN) : answer[1]].strip()
    single_list = content.count("[") == 1 and content.count("]") == 1
    if not (single_list and content.startswith("[") and content.endswith("]")):
        return 0.0
    indices = parse_index_list(content)
    if indices is None or len(indices) != size or len(set(indices)) != size:
        return 0.0
    return 1.0 if all(0 <= i < size for i in indices) else 0.0
