"""The one parser of answers: tags, answer blocks, numbers, yes/no, boxes, index lists.

Rewards, the evaluator's metrics and the dataset loaders all read answers through this module
(it imports nothing from recap, so every layer can use it).

Tags are plain text and case-sensitive (``<think>``, ``</think>``, ``<answer>``, ``</answer>``;
DESIGN.md "Tags are text"). Tags are located with ``str.find``/``str.count`` (linear time on any
input); the regular expressions below have no nested quantifiers and are only applied to answer
contents of at most :data:`MAX_ANSWER_CHARS` characters, so no input can trigger catastrophic
backtracking. A completion of any length is scanned in full (1 MB takes milliseconds), so a long
reasoning trace is never cut; only the answer content is capped.
"""

from __future__ import annotations

import math
import re
import unicodedata

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
ANSWER_OPEN = "<answer>"
ANSWER_CLOSE = "</answer>"

MAX_ANSWER_CHARS = 10_000
"""Answer contents longer than this are not parsed (every accuracy-type reward scores them 0):
no task's answer is near this long, and it bounds the work done by regexes and ``float``/``int``."""

MAX_INDEX_DIGITS = 9
"""Longest integer accepted in an index list (bounds ``int()`` on pathological digit runs)."""

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER_RE = re.compile(_NUMBER)
_FULL_NUMBER_RE = re.compile(rf"\s*({_NUMBER})\s*")
# A leading number, optionally after a currency / "about" sign, optionally a simple fraction a/b.
_LEADING_NUMBER_RE = re.compile(rf"[\s$€£~≈]*({_NUMBER})(?:\s*/\s*({_NUMBER}))?")
# Thousands separators: a comma between a digit and exactly three digits ("1,234,567").
_THOUSANDS_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
# One bracketed group with no brackets inside (non-nested, so linear time).
_BRACKET_RE = re.compile(r"\[([^\[\]]*)\]")
_INDEX_RE = re.compile(rf"\s*(\d{{1,{MAX_INDEX_DIGITS}}})\s*")

_ARTICLES = frozenset({"a", "an", "the"})
_YES = frozenset({"yes", "true", "y"})
_NO = frozenset({"no", "false", "n"})


def single_block(text: str, open_tag: str, close_tag: str) -> tuple[int, int] | None:
    """``(open_at, close_at)`` when ``open_tag`` and ``close_tag`` each occur exactly once in
    ``text`` and the open tag comes first; ``None`` otherwise.

    ``open_at`` is the index of the open tag, ``close_at`` the index of the close tag, so the
    content is ``text[open_at + len(open_tag):close_at]``.

    >>> single_block("<a>x</a>", "<a>", "</a>")
    (0, 4)
    >>> single_block("</a>x<a>", "<a>", "</a>") is None
    True
    """
    if text.count(open_tag) != 1 or text.count(close_tag) != 1:
        return None
    open_at = text.find(open_tag)
    close_at = text.find(close_tag)
    if close_at < open_at + len(open_tag):
        return None
    return open_at, close_at


def extract_answer(completion: str) -> str | None:
    """Content of the last closed ``<answer>...</answer>`` block, stripped; ``None`` if none.

    A completion without a closed answer block (no tags, or a generation truncated before
    ``</answer>``) has no answer: every accuracy-type reward then scores 0. The answer is never
    guessed from free text, so accuracy and format stay separable signals and a tokenizer that
    drops the tags (DESIGN.md "Tags are text") shows up as zero accuracy, not as a subtle bias.

    >>> extract_answer("<think>2 + 1</think> <answer> 3 </answer>")
    '3'
    >>> extract_answer("<answer>1</answer><answer>2</answer>")
    '2'
    >>> extract_answer("the answer is 3") is None
    True
    """
    if not isinstance(completion, str):
        return None
    close_at = completion.rfind(ANSWER_CLOSE)
    if close_at < 0:
        return None
    open_at = completion.rfind(ANSWER_OPEN, 0, close_at)
    if open_at < 0:
        return None
    return completion[open_at + len(ANSWER_OPEN) : close_at].strip()


def scorable_answer(completion: str) -> str | None:
    """:func:`extract_answer`, or ``None`` when the answer is blank or over the length cap."""
    answer = extract_answer(completion)
    if not answer or len(answer) > MAX_ANSWER_CHARS:
        return None
    return answer


def thinking_length(completion: str) -> int:
    """Number of whitespace-separated words inside the first ``<think>`` block (for logging).

    An unclosed ``<think>`` (truncated generation) counts up to the end of the text; no
    ``<think>`` gives 0. Used to track how reasoning length evolves during training
    (the RECAP paper sec. 5, Figure 7).

    >>> thinking_length("<think>one two  three</think><answer>3</answer>")
    3
    >>> thinking_length("<answer>3</answer>")
    0
    """
    if not isinstance(completion, str):
        return 0
    open_at = completion.find(THINK_OPEN)
    if open_at < 0:
        return 0
    start = open_at + len(THINK_OPEN)
    close_at = completion.find(THINK_CLOSE, start)
    end = close_at if close_at >= 0 else len(completion)
    return len(completion[start:end].split())


def normalize_text(text: str) -> str:
    """Lowercase, NFKC, drop punctuation and the articles a/an/the, collapse whitespace.

    The usual normalisation of short-answer exact match (SQuAD / VQA style).

    >>> normalize_text("  The Red,  Ball! ")
    'red ball'
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
    return " ".join(word for word in text.split() if word not in _ARTICLES)


def _to_float(token: str) -> float | None:
    value = float(token)
    return value if math.isfinite(value) else None


def parse_number(text: str) -> float | None:
    """The number an answer states, or ``None``.

    Thousands commas are removed and the unicode minus is read as ``-``. The number is the
    leading one (after an optional ``$``, ``~`` or ``≈``; a simple fraction ``a/b`` is divided
    out), so units, percent signs and trailing words are ignored ("12 cm", "50%", "3 apples");
    otherwise the only number in the text ("x = 5", "about 7 birds"). Text with several numbers
    and none leading ("between 3 and 5") is ambiguous and gives ``None``.

    >>> parse_number("1,234.5 dollars")
    1234.5
    >>> parse_number("50%")
    50.0
    >>> parse_number("3/4")
    0.75
    >>> parse_number("x = 5")
    5.0
    >>> parse_number("between 3 and 5") is None
    True
    """
    if len(text) > MAX_ANSWER_CHARS:
        return None
    text = _THOUSANDS_RE.sub("", text.replace("\u2212", "-"))
    match = _LEADING_NUMBER_RE.match(text)
    if match:
        value = _to_float(match.group(1))
        if value is None or match.group(2) is None:
            return value
        denominator = _to_float(match.group(2))
        if not denominator:
            return None
        quotient = value / denominator
        return quotient if math.isfinite(quotient) else None
    numbers = _NUMBER_RE.findall(text)
    return _to_float(numbers[0]) if len(numbers) == 1 else None


def parse_box(text: str) -> tuple[float, float, float, float] | None:
    """The first bracketed group of exactly four numbers, ``[x1, y1, x2, y2]``, or ``None``.

    >>> parse_box("the cat is at [4, 10.5, 30, 41] in the image")
    (4.0, 10.5, 30.0, 41.0)
    >>> parse_box("[1, 2] then [0, 0, 5, 5]")
    (0.0, 0.0, 5.0, 5.0)
    """
    if len(text) > MAX_ANSWER_CHARS:
        return None
    for group in _BRACKET_RE.finditer(text):
        parts = group.group(1).split(",")
        if len(parts) != 4:
            continue
        values = []
        for part in parts:
            match = _FULL_NUMBER_RE.fullmatch(part)
            value = _to_float(match.group(1)) if match else None
            if value is None:
                break
            values.append(value)
        else:
            x1, y1, x2, y2 = values
            return x1, y1, x2, y2
    return None


def parse_index_list(text: str) -> list[int] | None:
    """The first bracketed group, read as a comma-separated list of non-negative integers.

    ``None`` when there is no bracketed group or an entry is not a plain integer of at most
    :data:`MAX_INDEX_DIGITS` digits; ``[]`` for ``"[]"``.

    >>> parse_index_list("<answer>[2, 0, 3, 1]</answer>")
    [2, 0, 3, 1]
    >>> parse_index_list("[2, x, 1]") is None
    True
    """
    if len(text) > MAX_ANSWER_CHARS:
        return None
    group = _BRACKET_RE.search(text)
    if group is None:
        return None
    content = group.group(1)
    if not content.strip():
        return []
    out = []
    for part in content.split(","):
        match = _INDEX_RE.fullmatch(part)
        if match is None:
            return None
        out.append(int(match.group(1)))
    return out


def parse_yesno(text: str) -> bool | None:
    """An answer's first word read as yes/true/y (True) or no/false/n (False), case and
    punctuation ignored; ``None`` for anything else.

    >>> parse_yesno(" Yes. "), parse_yesno("no, there is none"), parse_yesno("maybe")
    (True, False, None)
    """
    words = normalize_text(text).split()
    if not words:
        return None
    if words[0] in _YES:
        return True
    if words[0] in _NO:
        return False
    return None
