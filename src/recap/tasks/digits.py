"""Handwritten digit strings (the lab's OCR domain): real scikit-learn digits composed in a row.

Each record shows 2-4 handwritten digits from scikit-learn's ``load_digits`` (1797 scans of
8x8 pixels, 0-16 ink levels, bundled with the library, no download), upscaled and placed left
to right on a strip of 32-px squares, one digit per square (a 30x30 glyph; 32 px is 2x2 visual
tokens of the tiny model); the answer is the digit string, e.g. ``"407"`` (answer_type text).
The strip is the default since a tiny model learned 2-4-digit strings on it (63 % exact match
after 800 steps alone) but not with 2-4 digits squeezed into one 64x64 square (2 %; see
docs/results/base_model).

Held-out test digits: the 1797 scans are split by index, the first 80% (indices 0-1437) for
train and the rest (1438-1796) for test, so a test image never contains a scan seen in training.
A contiguous split (rather than every fifth scan) keeps together the consecutive scans that
tend to come from the same writer.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

from recap.tasks.common import check_range, check_split, light_ramps, record_rng
from recap.tasks.record import Record

TEST_FRACTION = 0.2
INK_LEVELS = 16  # load_digits pixel values range over 0..16


@lru_cache(maxsize=1)
def digit_bank() -> tuple[np.ndarray, np.ndarray]:
    """``(images [1797, 8, 8] float, labels [1797] int)`` from scikit-learn, loaded once."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images, data.target


def split_indices(split: str) -> np.ndarray:
    """Indices of the digit scans reserved for ``split`` (contiguous, see module docstring)."""
    code = check_split(split)
    n = len(digit_bank()[1])
    cut = round(n * (1 - TEST_FRACTION))
    return np.arange(cut) if code == 0 else np.arange(cut, n)


def render_digit(index: int, size: tuple[int, int]) -> Image.Image:
    """Scan ``index`` as a grey image of ``size`` (w, h): dark ink on white, bilinear upscale."""
    images, _ = digit_bank()
    ink = images[index] / INK_LEVELS  # [8, 8] in [0, 1]
    pixels = (255 * (1.0 - ink)).round().astype(np.uint8)
    return Image.fromarray(pixels, mode="L").resize(size, Image.Resampling.BILINEAR)


def compose(indices: list[int], image_size: int = 64, strip: bool = False,
            shading: int = 0) -> Image.Image:
    """Place the scans ``indices`` left to right on one RGB image.

    ``strip=False``: a square ``image_size`` image cut into equal columns, one digit per column
    (glyph 2 px narrower than its column, as tall as 1.5x its width at most, vertically centred).
    ``strip=True``: ``image_size`` high and ``image_size * len(indices)`` wide, square glyphs.
    ``shading``: the paper darkens by up to this much in red left to right and in green top to
    bottom (the ink multiplies the paper); 0 is plain white paper.
    """
    k = len(indices)
    width = image_size * k if strip else image_size
    canvas = Image.new("L", (width, image_size), 255)
    cell = width // k
    glyph_w = max(cell - 2, 4)
    glyph_h = min(image_size - 2, glyph_w if strip else int(1.5 * glyph_w))
    top = (image_size - glyph_h) // 2
    for j, idx in enumerate(indices):
        left = j * cell + (cell - glyph_w) // 2
        canvas.paste(render_digit(idx, (glyph_w, glyph_h)), (left, top))
    if not shading:
        return canvas.convert("RGB")
    paper = 255.0 - light_ramps(image_size, width, shading)
    ink = np.asarray(canvas, dtype=np.float64)[..., None] / 255.0
    return Image.fromarray((paper * ink).round().astype(np.uint8))


def make_digits(
    split: str,
    n: int,
    seed: int = 0,
    *,
    n_digits: tuple[int, int] = (2, 4),
    image_size: int = 32,
    strip: bool = True,
    shading: int = 60,
) -> list[Record]:
    """Read the handwritten digits left to right (answer_type text, answer e.g. ``"407"``).

    ``n_digits`` is the inclusive range of digits per image; ``shading`` as in :func:`compose`.
    ``meta``: ``labels`` (the digits), ``digit_indices`` (scans used, all from the split's
    held-out range), ``image_size`` (w, h).
    """
    check_split(split)
    lo, hi = check_range("n_digits", n_digits, low=1)
    pool = split_indices(split)
    _, labels = digit_bank()
    records = []
    for i in range(n):
        rng = record_rng(seed, "digits", split, i)
        k = int(rng.integers(lo, hi + 1))
        indices = [int(v) for v in rng.choice(pool, size=k)]
        digits = [int(labels[j]) for j in indices]
        image = compose(indices, image_size, strip, shading)
        answer = "".join(map(str, digits))
        question = "Read the handwritten digits from left to right."
        meta = {"labels": digits, "digit_indices": indices, "image_size": image.size}
        records.append(
            Record(f"digits-{split}-{seed}-{i}", "digits", [image], question, answer, "text", meta)
        )
    return records
