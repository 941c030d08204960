"""Jigsaw puzzles from real photos (the jigsaw RFT paper sec. 3.1), the lab's "novel task".

Puzzle construction (the jigsaw RFT paper sec. 3.1): a random square crop of a photo is resized to
``image_size`` and divided into an m x n grid (m rows, n columns); when the side is not a
multiple of m (height) or n (width) the excess pixels are cropped from the bottom / right. Grid
cells get row-major indices from 0 (top-left) to m*n - 1 (bottom-right). The cells are shuffled
and given to the model as m*n separate images.

Answer direction. The paper asks for "the indices in canonical top-left to bottom-right order,
thereby reconstructing the image": the answer lists grid positions in canonical (row-major)
order and, for each position p, names the piece that goes there by its index in the given
shuffled sequence: ``answer[p] = j`` means given piece j belongs at position p, so reading the
given pieces in answer order rebuilds the image (``original[p] == given[answer[p]]``). The
inverse permutation (the original position of each given piece) is kept in
``meta["piece_positions"]``. For a prediction that is itself a permutation, the hit and
accuracy rewards of jigsaw-RFT sec. 3.2 are the same under either reading (q[p] = a[p] = j exactly
when q^-1[j] = a^-1[j] = p), but the target string differs, which matters for SFT.

Sources: photos that ship inside the scikit-image wheel (no download; ``skimage.data``) and
scikit-learn's two sample images. Some photos are held out for the test split so test puzzles
come from pictures never seen in training (the jigsaw RFT paper uses COCO train / test images).

Departures from jigsaw-RFT: tiny photos (64 px crops of ~13 pictures instead of COCO), 2x2 grid
by default for the lab (3x3 as in the paper with ``grid=(3, 3)``), and crops whose pieces are
nearly uniform (grey-level std below ``min_piece_std``) or identical are redrawn, since such
puzzles have no unique solution.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from PIL import Image

from recap.tasks.common import check_split, record_rng
from recap.tasks.record import Record

TRAIN_SOURCES: tuple[str, ...] = (
    "astronaut", "coffee", "rocket", "china", "camera", "coins", "hubble_deep_field",
    "immunohistochemistry", "clock", "moon",
)
TEST_SOURCES: tuple[str, ...] = ("chelsea", "flower", "motorcycle")
MAX_TRIES = 100  # crops per record before giving up on ``min_piece_std``

Grid = tuple[int, int]
Box = tuple[int, int, int, int]


@cache
def load_source(name: str) -> Image.Image:
    """A bundled photo as an RGB image (scikit-image ``data`` or scikit-learn sample images)."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return Image.fromarray(load_sample_image(f"{name}.jpg")).convert("RGB")
    import skimage.data

    if name == "motorcycle":
        array = skimage.data.stereo_motorcycle()[0]  # left view of the stereo pair
    elif name in TRAIN_SOURCES + TEST_SOURCES:
        array = getattr(skimage.data, name)()
    else:
        known = sorted(TRAIN_SOURCES + TEST_SOURCES)
        raise ValueError(f"unknown jigsaw source {name!r}; known: {known}")
    return Image.fromarray(np.asarray(array)).convert("RGB")  # grey and RGBA -> RGB


def source_crop(source: str, crop_box: Box, image_size: int) -> Image.Image:
    """The square ``crop_box`` of photo ``source`` resized to ``image_size`` (the puzzle image)."""
    # reducing_gap=2 first shrinks by an integer factor (fast box filter), then resamples:
    # about twice as fast as a plain bilinear resize from a large crop, visually the same.
    return load_source(source).resize(
        (image_size, image_size), Image.Resampling.BILINEAR, box=crop_box, reducing_gap=2.0
    )


def cut_grid(image: Image.Image, grid: Grid) -> list[Image.Image]:
    """Cut ``image`` into ``grid = (m, n)`` cells in row-major order (jigsaw-RFT sec. 3.1).

    Cell size is (width // n, height // m); the excess pixels at the right and bottom are
    dropped so the used area is an exact multiple of the cell size.
    """
    m, n = grid
    w, h = image.width // n, image.height // m
    return [
        image.crop((c * w, r * h, (c + 1) * w, (r + 1) * h)) for r in range(m) for c in range(n)
    ]


def assemble(pieces: list[Image.Image], answer: list[int], grid: Grid) -> Image.Image:
    """Rebuild the picture: grid position p (row-major) gets ``pieces[answer[p]]``."""
    m, n = grid
    w, h = pieces[0].size
    out = Image.new(pieces[0].mode, (n * w, m * h))
    for p, j in enumerate(answer):
        out.paste(pieces[j], ((p % n) * w, (p // n) * h))
    return out


def _degenerate(image: Image.Image, grid: Grid, min_std: float) -> bool:
    """True when a grid cell is nearly uniform or two cells are identical (no unique solution)."""
    m, n = grid
    h, w = image.height // m, image.width // n
    rgb = np.asarray(image)[: m * h, : n * w]  # [m*h, n*w, 3], excess bottom/right dropped
    cells = rgb.reshape(m, h, n, w, 3).transpose(0, 2, 1, 3, 4).reshape(m * n, -1)
    grey_std = rgb.mean(axis=2).reshape(m, h, n, w).std(axis=(1, 3))  # [m, n]
    return bool(grey_std.min() < min_std) or len({c.tobytes() for c in cells}) < m * n


def _random_crop(
    rng: np.random.Generator, source: str, crop_frac: tuple[float, float]
) -> Box:
    width, height = load_source(source).size
    side = int(rng.uniform(*crop_frac) * min(width, height))
    x0 = int(rng.integers(0, width - side + 1))
    y0 = int(rng.integers(0, height - side + 1))
    return (x0, y0, x0 + side, y0 + side)


def make_jigsaw(
    split: str,
    n: int,
    seed: int = 0,
    *,
    grid: Grid = (2, 2),
    image_size: int = 64,
    crop_frac: tuple[float, float] = (0.25, 0.7),
    min_piece_std: float = 6.0,
    sources: tuple[str, ...] | None = None,
    random_answers: bool = False,
) -> list[Record]:
    """Jigsaw puzzles (answer_type permutation, answer e.g. ``"[2, 0, 3, 1]"``).

    Args:
        grid: (m rows, n columns); jigsaw RFT paper uses (3, 3).
        image_size: side of the square crop before cutting.
        crop_frac: range of the crop side as a fraction of the photo's shorter side.
        min_piece_std: redraw crops with a piece flatter than this (grey levels 0..255).
        sources: photo names to draw from (default: the split's held-out set).
        random_answers: format-only records (the jigsaw study's primer): the answer is a
            uniformly random permutation drawn independently of the pieces, so SFT on them
            teaches the answer format and nothing about where a piece belongs (the model's
            best guess stays chance, a quarter of the positions of a 2x2 puzzle). The think
            block names no reasoning; ``meta["true_answer"]`` keeps the real one.

    ``meta``: ``grid``, ``source``, ``crop_box`` (in source pixels), ``image_size``,
    ``piece_positions`` (original position of each given piece, the inverse of the answer).
    """
    check_split(split)
    m, k_cols = (int(v) for v in grid)
    if m < 1 or k_cols < 1 or m * k_cols < 2 or image_size < max(m, k_cols):
        raise ValueError(f"grid must be (m, n) with m*n >= 2 cells of >= 1 px, got {grid}")
    if not 0 < crop_frac[0] <= crop_frac[1] <= 1:
        raise ValueError(f"crop_frac must satisfy 0 < lo <= hi <= 1, got {crop_frac}")
    pool = tuple(sources) if sources else (TRAIN_SOURCES if split == "train" else TEST_SOURCES)
    k = m * k_cols
    records = []
    for i in range(n):
        rng = record_rng(seed, "jigsaw", split, i)
        for _ in range(MAX_TRIES):
            source = pool[int(rng.integers(len(pool)))]
            crop_box = _random_crop(rng, source, crop_frac)
            crop = source_crop(source, crop_box, image_size)
            if not _degenerate(crop, (m, k_cols), min_piece_std):
                break
        else:
            raise ValueError(f"no crop with pieces of std >= {min_piece_std} in {MAX_TRIES} tries")
        cells = cut_grid(crop, (m, k_cols))
        order = [int(v) for v in rng.permutation(k)]  # given piece j is cell order[j]
        answer = [int(v) for v in np.argsort(order)]  # position p holds given piece answer[p]
        true_answer = answer
        if random_answers:
            answer = [int(v) for v in rng.permutation(k)]  # independent of the pieces
        question = (
            f"The {k} images are the pieces of one picture cut into a grid of {m} rows and "
            f"{k_cols} columns, given in shuffled order as pieces 0 to {k - 1}. Grid positions "
            f"are numbered row by row from 0 (top-left) to {k - 1} (bottom-right). For each "
            f"position in this order, give the number of the piece that belongs there, as a "
            f"list of {k} numbers in square brackets."
        )
        meta = {
            "grid": (m, k_cols), "source": source, "crop_box": crop_box,
            "image_size": (image_size, image_size), "piece_positions": order,
        }
        if random_answers:
            meta |= {"true_answer": "[" + ", ".join(map(str, true_answer)) + "]",
                     "solution": "a guess"}
        records.append(
            Record(f"jigsaw-{split}-{seed}-{i}", "jigsaw", [cells[j] for j in order], question,
                   "[" + ", ".join(map(str, answer)) + "]", "permutation", meta)
        )
    return records
