"""Brightness ordering: the lab's format primer for the jigsaw study (answer_type permutation).

The jigsaw RFT paper's premise is a base that answers a novel task in the requested format but
cannot solve it (Qwen2.5-VL answers jigsaw prompts with index lists). The lab's base has never
seen a list-of-indices answer over several images, so it scores 0 on the jigsaw format. This task
teaches that answer format on a *different* question: k photo crops (the jigsaw photos, so the
images look like puzzle pieces) given as pieces 0..k-1, answered as the list of piece numbers
from the darkest to the brightest. It shares the jigsaw prompt's shape and answer format, not its
content: the crops come from unrelated places of a photo, and ordering them by brightness says
nothing about where a puzzle piece belongs (a jigsaw answer is a uniform random permutation, so
a brightness order hits a quarter of the positions of a 2x2 puzzle on average).

Answer ``"[2, 0, 3, 1]"`` means piece 2 is the darkest; ``meta["solution"]`` (the think block's
text) only names the rule, since the lab tokenizer spends one token per character.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from recap.tasks.common import check_split, record_rng
from recap.tasks.jigsaw import TEST_SOURCES, TRAIN_SOURCES, load_source
from recap.tasks.record import Record

MIN_GAP = 12.0  # mean grey-level distance between any two crops (0..255): an unambiguous order
MAX_TRIES = 200  # crop draws per record


def make_order(split: str, n: int, seed: int = 0, *, pieces: int = 4,
               image_size: int = 32) -> list[Record]:
    """``n`` brightness-ordering records of ``pieces`` photo crops of ``image_size`` pixels.

    Crops come from the jigsaw photos of the split (train and test photos are disjoint).
    ``meta``: ``brightness`` (mean grey level of each piece), ``solution``.
    """
    check_split(split)
    if not 2 <= pieces <= 9:
        raise ValueError(f"pieces must be in 2..9, got {pieces}")
    pool = TRAIN_SOURCES if split == "train" else TEST_SOURCES
    records = []
    for i in range(n):
        rng = record_rng(seed, "order", split, i)
        images: list[Image.Image] = []
        levels: list[float] = []
        for _ in range(MAX_TRIES):
            if len(images) == pieces:
                break
            crop = _crop(rng, pool[int(rng.integers(len(pool)))], image_size)
            level = float(np.asarray(crop.convert("L"), dtype=np.float64).mean())
            if all(abs(level - other) >= MIN_GAP for other in levels):
                images.append(crop)
                levels.append(level)
        else:
            raise ValueError(f"no {pieces} crops {MIN_GAP} grey levels apart in {MAX_TRIES} tries")
        answer = [int(j) for j in np.argsort(levels)]  # piece numbers, darkest first
        # the jigsaw prompt's sentences with brightness ranks in place of grid positions, so
        # the answer format carries over to jigsaw questions
        question = (
            f"The {pieces} images are photo crops given in shuffled order as pieces 0 to "
            f"{pieces - 1}. Ranks are numbered from 0 (darkest) to {pieces - 1} (brightest). For "
            f"each rank in this order, give the number of the piece that belongs there, as a "
            f"list of {pieces} numbers in square brackets."
        )
        records.append(Record(
            f"order-{split}-{seed}-{i}", "order", images, question,
            "[" + ", ".join(map(str, answer)) + "]", "permutation",
            {"solution": "dark to bright",  # short: one token per character in the lab
             "brightness": [round(v, 1) for v in levels]}))
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
