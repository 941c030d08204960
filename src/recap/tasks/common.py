"""Shared helpers of the built-in generators: per-record RNG streams and content-hash splits.

Determinism: record ``i`` of task ``t``, split ``s`` and seed ``k`` is drawn from its own
``numpy`` generator seeded with ``(k, crc32(t), s, i)``, so a record does not depend on how many
records are asked for, nor on the order in which tasks are generated.

Disjoint splits: for tasks without held-out source images (the shapes scenes), a rendered image
belongs to ``train`` or ``test`` according to one bit of a hash of its pixels; a generator draws
candidates from the record's stream until one lands in the requested split. Both splits are
therefore disjoint by construction (no image can be in both), whatever ``n`` and the seeds are,
at the cost of about two draws per record.
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Literal

import numpy as np
from PIL import Image

Split = Literal["train", "test"]
SPLITS: tuple[str, ...] = ("train", "test")


def check_split(split: str) -> int:
    """The integer code of ``split`` (0 train, 1 test); a clear error for anything else."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {list(SPLITS)}")
    return SPLITS.index(split)


def record_rng(seed: int, task: str, split: str, index: int) -> np.random.Generator:
    """The random stream of one record: a function of (seed, task, split, index) only."""
    task_code = zlib.crc32(task.encode())  # stable across processes, unlike hash()
    return np.random.default_rng([seed, task_code, check_split(split), index])


def image_hash(*images: Image.Image) -> str:
    """A hex digest of the pixels, sizes and modes of ``images`` (content identity)."""
    h = hashlib.blake2b(digest_size=16)
    for im in images:
        h.update(f"{im.mode}{im.size}".encode())
        h.update(im.tobytes())
    return h.hexdigest()


def hash_split(*images: Image.Image) -> str:
    """The split an image belongs to: the low bit of its content hash (0 train, 1 test)."""
    return SPLITS[int(image_hash(*images)[-1], 16) & 1]


def plural(k: int, word: str) -> str:
    """``"1 circle"``, ``"2 circles"``, ``"0 objects"``."""
    return f"{k} {word}" if k == 1 else f"{k} {word}s"


def light_ramps(height: int, width: int, shading: float) -> np.ndarray:
    """``[height, width, 3]`` lighting offsets: red rises 0..shading left to right, green
    0..shading top to bottom, blue 0. Shaded scenes and digit paper share this convention, which
    gives every image patch its absolute position (see :class:`recap.tasks.shapes.SceneSpec`)."""
    ramps = np.zeros((height, width, 3))
    ramps[..., 0] = shading * np.arange(width)[None, :] / max(width - 1, 1)
    ramps[..., 1] = shading * np.arange(height)[:, None] / max(height - 1, 1)
    return ramps


def check_range(name: str, value: tuple[int, int], low: int = 0) -> tuple[int, int]:
    """Validate an inclusive integer range knob ``(lo, hi)`` with ``low <= lo <= hi``."""
    lo, hi = (int(v) for v in value)
    if not low <= lo <= hi:
        raise ValueError(f"{name} must be a range (lo, hi) with {low} <= lo <= hi, got {value}")
    return lo, hi
