"""Ordering crops: the lab's format primer for the jigsaw study (answer_type permutation).

The jigsaw RFT paper's premise is a base that answers a novel task in the requested format but
cannot solve it (Qwen2.5-VL answers jigsaw prompts with index lists). The lab's base has never
seen a list-of-indices answer over several images, so it scores 0 on the jigsaw format. This task
teaches that answer format on *different* questions: k photo crops (from the jigsaw photos, so
the images look like puzzle pieces) given as pieces 0..k-1, answered as the list of piece
numbers ordered by brightness or by redness (four rules, :data:`RULES`). It shares the jigsaw
prompt's shape and answer format, not its content: the crops come from unrelated places of a
photo, and ordering them by a colour measure says nothing about where a puzzle piece belongs (a
jigsaw answer is a uniform random permutation, so any fixed reading of the pieces hits a quarter
of the positions of a 2x2 puzzle on average).

Answer ``"[2, 0, 3, 1]"`` means piece 2 is rank 0 (e.g. the darkest); ``meta["solution"]`` (the
think block's text) only names the rule, since the lab tokenizer spends one token per character.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from recap.tasks.common import check_split, record_rng
from recap.tasks.jigsaw import TEST_SOURCES, TRAIN_SOURCES, load_source
from recap.tasks.record import Record

MIN_GAP = 12.0  # distance between any two crops on the rule's measure: an unambiguous order
MAX_TRIES = 200  # crop draws per record


@dataclass(frozen=True)
class Rule:
    """One ordering question: rank 0 is the ``first`` end of ``measure``."""

    first: str  # rank 0, e.g. "darkest"
    last: str  # rank k-1
    think: str  # the think block's text (short: the lab tokenizer spends a token per character)
    sign: float  # +1: ascending measure, -1: descending
    measure: Callable[[np.ndarray], float]  # [H, W, 3] uint8 -> value


def _grey(rgb: np.ndarray) -> float:
    return float(rgb.astype(np.float64).mean())


def _redness(rgb: np.ndarray) -> float:
    r, g, b = (rgb[..., c].astype(np.float64).mean() for c in range(3))
    return float(r - (g + b) / 2)


# Several questions with one answer shape: a primer with one fixed question taught the format on
# that question only (a tiny model does not carry it to an unseen prompt).
RULES: tuple[Rule, ...] = (
    Rule("darkest", "brightest", "dark to bright", 1.0, _grey),
    Rule("brightest", "darkest", "bright to dark", -1.0, _grey),
    Rule("least red", "most red", "red last", 1.0, _redness),
    Rule("most red", "least red", "red first", -1.0, _redness),
)


def make_order(split: str, n: int, seed: int = 0, *, pieces: int = 4,
               image_size: int = 32) -> list[Record]:
    """``n`` ordering records of ``pieces`` photo crops of ``image_size`` pixels, each asking for
    one of :data:`RULES` (by brightness or by redness, either direction).

    Crops come from the jigsaw photos of the split (train and test photos are disjoint).
    ``meta``: ``rule`` (its ``first`` end), ``values`` (each piece's measure), ``solution``.
    """
    check_split(split)
    if not 2 <= pieces <= 9:
        raise ValueError(f"pieces must be in 2..9, got {pieces}")
    pool = TRAIN_SOURCES if split == "train" else TEST_SOURCES
    records = []
    for i in range(n):
        rng = record_rng(seed, "order", split, i)
        rule = RULES[int(rng.integers(len(RULES)))]
        images: list[Image.Image] = []
        values: list[float] = []
        for _ in range(MAX_TRIES):
            if len(images) == pieces:
                break
            crop = _crop(rng, pool[int(rng.integers(len(pool)))], image_size)
            value = rule.measure(np.asarray(crop))
            if all(abs(value - other) >= MIN_GAP for other in values):
                images.append(crop)
                values.append(value)
        else:
            raise ValueError(f"no {pieces} crops {MIN_GAP} apart in {MAX_TRIES} tries")
        answer = [int(j) for j in np.argsort([rule.sign * v for v in values])]  # rank 0 first
        # the jigsaw prompt's sentences with ranks in place of grid positions, so the answer
        # format carries over to jigsaw questions
        question = (
            f"The {pieces} images are photo crops given in shuffled order as pieces 0 to "
            f"{pieces - 1}. Ranks are numbered from 0 ({rule.first}) to {pieces - 1} "
            f"({rule.last}). For each rank in this order, give the number of the piece that "
            f"belongs there, as a list of {pieces} numbers in square brackets."
        )
        records.append(Record(
            f"order-{split}-{seed}-{i}", "order", images, question,
            "[" + ", ".join(map(str, answer)) + "]", "permutation",
            {"solution": rule.think, "rule": rule.first,
             "values": [round(v, 1) for v in values]}))
    return records


def _crop(rng: np.random.Generator, source: str, size: int) -> Image.Image:
    """A random square crop of photo ``source`` (12-35 % of its shorter side) resized to
    ``size``: about the scale of a 2x2 jigsaw piece."""
    photo = load_source(source)
    side = int(rng.uniform(0.12, 0.35) * min(photo.size))
    x0 = int(rng.integers(0, photo.width - side + 1))
    y0 = int(rng.integers(0, photo.height - side + 1))
    return photo.resize((size, size), Image.Resampling.BILINEAR, box=(x0, y0, x0 + side, y0 + side),
                        reducing_gap=2.0)
