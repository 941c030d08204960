"""Accuracy reward: is the answer right? Dispatched on ``record.answer_type``.

OThink-MR1 sec. 3 (``R_acc``: numeric correctness for counting, symbolic/numeric for geometry) and
RECAP paper Table 3 ("Acc" on multiple-choice, natural-language and math VQA). The answer is the
content of the last ``<answer>`` block (:func:`recap.parsing.extract_answer`); a completion
without one scores 0. How each type compares the answer with ``record.answer``:

* ``choice``: letters ("B", "(B)", "B.", "b") or an option's text; options are the texts in
  ``record.meta["choices"]``, lettered A, B, C ... in order. The target may be a letter or an
  option text.
* ``number``: :func:`~recap.parsing.parse_number` (commas, units, trailing words and
  percent signs ignored), equal within ``record.meta.get("tolerance", 1e-6)``, used both as
  relative and absolute tolerance.
* ``text``: normalised exact match (lowercase, no punctuation, no articles, single spaces).
* ``yesno``: first word yes/true/y or no/false/n, compared as booleans.
* ``math``: math-verify (``parse`` then ``verify``) with its whole-second timeouts; answers over
  :data:`MAX_MATH_CHARS` are not parsed; when math-verify cannot parse either side, the number
  comparison above decides.
* ``count``: integer equality; the number words zero..twenty (and "none") are accepted.
* ``bbox``: IoU >= 0.5 (:mod:`recap.rewards.boxes`).
* ``permutation``: every position right (:mod:`recap.rewards.jigsaw`).

Time bound: all types are linear-time scans of at most ``MAX_ANSWER_CHARS`` answer characters
except ``math``, which can spend up to one math-verify timeout in parsing and one in comparing
(about 2 s in pathological cases such as ``10^{10^{10}}``; milliseconds normally). math-verify's
timeout uses ``signal.alarm``, which only works in the main thread: in other threads it runs
without a timeout and only the length cap bounds it.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections.abc import Callable
from typing import Any

from recap.parsing import (
    normalize_text,
    parse_box,
    parse_index_list,
    parse_number,
    parse_yesno,
    scorable_answer,
)
from recap.rewards.boxes import IOU_THRESHOLD, box_iou
from recap.rewards.jigsaw import target_permutation
from recap.rewards.registry import register_reward
from recap.tasks.record import Record

DEFAULT_TOLERANCE = 1e-6
MAX_MATH_CHARS = 1_000
MATH_TIMEOUT_S = 1
"""math-verify timeout per parse and per comparison, in whole seconds (it uses signal.alarm)."""

_WORDS_0_TO_20 = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
)
NUMBER_WORDS: dict[str, int] = {word: value for value, word in enumerate(_WORDS_0_TO_20)}
NUMBER_WORDS["none"] = 0

# The whole answer is a letter: "B", "(B)", "B.", "B)", "b".
_LETTER_ONLY_RE = re.compile(r"\(?([A-Za-z])\)?[.:)]?")
# The answer starts with a marked letter then text: "(B) a cat", "B. a cat", "B: a cat".
_LETTER_LEAD_RE = re.compile(r"(?:\(([A-Za-z])\)|([A-Z])[.:)])\s")

Matcher = Callable[[str, Record], bool]


def _choices(record: Record) -> list[str]:
    choices: Any = record.meta.get("choices")
    return [str(c) for c in choices] if isinstance(choices, list | tuple) else []


def _choice_letter(text: str, choices: list[str]) -> str | None:
    """The option letter ``text`` names: a bare letter, an option's text, or "(B) ..."."""
    match = _LETTER_ONLY_RE.fullmatch(text)
    if match:
        return match.group(1).upper()
    normalized = normalize_text(text)
    for index, choice in enumerate(choices):
        if normalized and normalized == normalize_text(choice):
            return chr(ord("A") + index) if index < 26 else None
    match = _LETTER_LEAD_RE.match(text)
    if match:
        return (match.group(1) or match.group(2)).upper()
    return None


def match_choice(answer: str, record: Record) -> bool:
    """Multiple choice: same option letter, or same normalised text when the target is free text."""
    choices = _choices(record)
    gold = record.answer.strip()
    gold_letter = _choice_letter(gold, choices)
    predicted_letter = _choice_letter(answer, choices)
    if gold_letter is not None:
        return predicted_letter == gold_letter
    if predicted_letter is not None:
        index = ord(predicted_letter) - ord("A")
        answer = choices[index] if index < len(choices) else answer
    return bool(normalize_text(gold)) and normalize_text(answer) == normalize_text(gold)


def _tolerance(record: Record) -> float:
    return float(record.meta.get("tolerance", DEFAULT_TOLERANCE))


def _numbers_close(answer: str, gold: str, tolerance: float) -> bool:
    predicted, target = parse_number(answer), parse_number(gold)
    if predicted is None or target is None:
        return False
    return math.isclose(predicted, target, rel_tol=tolerance, abs_tol=tolerance)


def match_number(answer: str, record: Record) -> bool:
    """Numeric equality within the record's tolerance (relative and absolute)."""
    if parse_number(record.answer) is None:
        raise ValueError(f"record {record.id!r}: answer {record.answer!r} is not a number")
    return _numbers_close(answer, record.answer, _tolerance(record))


def match_text(answer: str, record: Record) -> bool:
    """Normalised exact match (:func:`~recap.parsing.normalize_text`)."""
    gold = normalize_text(record.answer)
    return bool(gold) and normalize_text(answer) == gold


def match_yesno(answer: str, record: Record) -> bool:
    """Yes/no questions: the answer's first word read as yes/true/y or no/false/n."""
    gold = parse_yesno(record.answer)
    if gold is None:
        raise ValueError(f"record {record.id!r}: answer {record.answer!r} is not yes/no")
    return parse_yesno(answer) == gold


def parse_count(text: str) -> int | None:
    """An integer count: a number (must be integral) or a number word zero..twenty.

    >>> parse_count("3 apples"), parse_count("Three."), parse_count("2.5")
    (3, 3, None)
    """
    value = parse_number(text)
    if value is not None:
        return int(value) if value.is_integer() else None
    words = normalize_text(text).split()
    if not words or words[0] not in NUMBER_WORDS:
        return None
    # "twenty one" is not twenty: a second number word makes the count ambiguous.
    if len(words) > 1 and words[1] in NUMBER_WORDS:
        return None
    return NUMBER_WORDS[words[0]]


def match_count(answer: str, record: Record) -> bool:
    """Integer equality of counts."""
    gold = parse_count(record.answer)
    if gold is None:
        raise ValueError(f"record {record.id!r}: answer {record.answer!r} is not a count")
    return parse_count(answer) == gold


def _as_latex(text: str) -> str:
    """Wrap bare text in ``$...$`` so math-verify reads it as one expression ("3x", not 3)."""
    delimited = any(mark in text for mark in ("$", "\\(", "\\[", "\\boxed"))
    return text if delimited else f"${text}$"


def _math_timeout() -> int | None:
    """math-verify's signal-based timeout works only in the main thread."""
    return MATH_TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


@functools.cache
def _warm_up_math() -> None:
    """One parse + comparison per process under a generous timeout: the first symbolic comparison
    loads sympy's simplification machinery (~1 s here), which the 1 s timeout would cut and score
    as wrong (it did, in a full test run on a large process)."""
    from math_verify import parse, verify

    t = None if _math_timeout() is None else 30 * MATH_TIMEOUT_S  # generous, not unbounded
    verify(parse("$2\\sqrt{2}$", parsing_timeout=t), parse("$\\sqrt{8}$", parsing_timeout=t),
           timeout_seconds=t)


@functools.lru_cache(maxsize=4096)
def _parse_gold_math(gold: str, timeout: int | None) -> list[Any]:
    from math_verify import parse

    return parse(_as_latex(gold), parsing_timeout=timeout)


def match_math(answer: str, record: Record) -> bool:
    """math-verify equivalence; number comparison when math-verify cannot parse a side."""
    if len(answer) > MAX_MATH_CHARS:
        return False
    try:
        from math_verify import parse, verify
        from math_verify.errors import TimeoutException
    except ImportError:
        return _numbers_close(answer, record.answer, _tolerance(record))
    timeout = _math_timeout()
    try:
        _warm_up_math()
        gold = _parse_gold_math(record.answer.strip(), timeout)
        predicted = parse(_as_latex(answer), parsing_timeout=timeout)
        if gold and predicted:
            return bool(verify(gold, predicted, timeout_seconds=timeout))
    except (Exception, TimeoutException):  # TimeoutException is a BaseException
        pass
    return _numbers_close(answer, record.answer, _tolerance(record))


def match_bbox(answer: str, record: Record) -> bool:
    """Grounding accuracy: IoU >= 0.5 with the target box."""
    predicted, target = parse_box(answer), parse_box(record.answer)
    if target is None:
        raise ValueError(f"record {record.id!r}: answer {record.answer!r} is not a box")
    return predicted is not None and box_iou(predicted, target) >= IOU_THRESHOLD


def match_permutation(answer: str, record: Record) -> bool:
    """Every position of the index list right."""
    return parse_index_list(answer) == target_permutation(record)


MATCHERS: dict[str, Matcher] = {
    "choice": match_choice,
    "number": match_number,
    "text": match_text,
    "yesno": match_yesno,
    "math": match_math,
    "count": match_count,
    "bbox": match_bbox,
    "permutation": match_permutation,
}


@register_reward("accuracy")
def accuracy(completion: str, record: Record) -> float:
    """1.0 if the answer block matches ``record.answer`` for its ``answer_type``, else 0.0.

    >>> from recap.tasks.record import Record
    >>> count = Record("c1", "count", [], "How many circles?", "3", "count")
    >>> accuracy("<think>1, 2, 3</think><answer>three</answer>", count)
    1.0
    >>> accuracy("<answer>4</answer>", count), accuracy("3", count)  # wrong; no answer tags
    (0.0, 0.0)
    >>> mc = Record("m1", "sci", [], "Which is a mammal?", "B", "choice",
    ...             meta={"choices": ["shark", "whale", "trout"]})
    >>> accuracy("<answer>(B) whale</answer>", mc), accuracy("<answer>Whale</answer>", mc)
    (1.0, 1.0)
    >>> frac = Record("a1", "arith", [], "Half of 3/2?", "\\\\frac{3}{4}", "math")
    >>> accuracy("<answer>0.75</answer>", frac)
    1.0
    """
    answer = scorable_answer(completion)
    if answer is None:
        return 0.0
    try:
        matcher = MATCHERS[record.answer_type]
    except KeyError:
        raise ValueError(f"no matcher for answer_type {record.answer_type!r}") from None
    return 1.0 if matcher(answer, record) else 0.0
