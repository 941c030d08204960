"""Visual arithmetic (``arith``), the lab's reasoning domain: a few counting or reading steps
followed by one arithmetic operation, with a worked solution for SFT.

Kinds (``kinds`` knob):

- ``diff``: "How many more red objects than blue objects are there?" (count, count, subtract);
- ``union``: "How many objects are red or blue?" (count, count, add);
- ``remove``: "How many objects would remain if all circles were removed?" (count all, count
  circles, subtract);
- ``digit_sum``: "What is the sum of the handwritten digits?" (read 2-4 digits, add).

Scene questions reuse the shapes scenes (:mod:`recap.tasks.shapes`, content-hash splits) and
``digit_sum`` reuses the held-out digit scans of :mod:`recap.tasks.digits`. The answer is a
non-negative integer (answer_type number); ``meta["solution"]`` is a short worked solution that
ends with the equation giving the answer (the ``think`` target of
:func:`recap.tasks.prompts.render_target`). This plays the role of the reasoning data of RECAP
(ThinkLite, GeoQA, ScienceQA), at the scale a tiny model can learn.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from PIL import Image

from recap.tasks.common import check_range, check_split, plural, record_rng
from recap.tasks.digits import compose, digit_bank, split_indices
from recap.tasks.record import Record
from recap.tasks.shapes import Obj, SceneSpec, draw_in_split, scene_meta

ARITH_KINDS: tuple[str, ...] = ("diff", "union", "remove", "digit_sum")
ARITH_SCENE: dict[str, Any] = {"n_objects": (2, 6), "n_colors": 3}  # defaults, overridable


def _count(objects: list[Obj], color: str | None = None, shape: str | None = None) -> int:
    return sum((color in (None, o.color)) and (shape in (None, o.shape)) for o in objects)


def _two_colors(
    rng: np.random.Generator, spec: SceneSpec, objects: list[Obj]
) -> tuple[str, str] | None:
    """A colour present in the scene and another colour of the palette (None if 1 colour)."""
    first = objects[int(rng.integers(len(objects)))].color
    others = [c for c in spec.colors if c != first]
    return (first, others[int(rng.integers(len(others)))]) if others else None


def _scene_question(
    rng: np.random.Generator, spec: SceneSpec, kind: str, _image: Image.Image, objects: list[Obj]
) -> tuple[str, int, str] | None:
    """(question, answer, solution) of a scene kind, or None to redraw the scene."""
    if kind == "remove":
        shape = spec.shapes[int(rng.integers(spec.n_shapes))]
        total, k = len(objects), _count(objects, shape=shape)
        return (
            f"How many objects would remain if all {shape}s were removed?",
            total - k,
            f"There are {plural(total, 'object')}, including {plural(k, shape)}. "
            f"{total} - {k} = {total - k}.",
        )
    pair = _two_colors(rng, spec, objects)
    if pair is None:
        return None
    a, b = pair
    ca, cb = _count(objects, color=a), _count(objects, color=b)
    facts = f"There are {plural(ca, a + ' object')} and {plural(cb, b + ' object')}."
    if kind == "union":
        return f"How many objects are {a} or {b}?", ca + cb, f"{facts} {ca} + {cb} = {ca + cb}."
    if ca < cb:  # ask about the larger group first so the answer is non-negative
        a, b, ca, cb = b, a, cb, ca
        facts = f"There are {plural(ca, a + ' object')} and {plural(cb, b + ' object')}."
    return (
        f"How many more {a} objects than {b} objects are there?",
        ca - cb,
        f"{facts} {ca} - {cb} = {ca - cb}.",
    )


def _digit_sum(
    rng: np.random.Generator, split: str, n_digits: tuple[int, int], image_size: int
) -> tuple[Image.Image, str, int, str, dict[str, Any]]:
    k = int(rng.integers(n_digits[0], n_digits[1] + 1))
    indices = [int(v) for v in rng.choice(split_indices(split), size=k)]
    digits = [int(digit_bank()[1][j]) for j in indices]
    listed = ", ".join(map(str, digits[:-1])) + f" and {digits[-1]}"
    solution = f"The digits are {listed}. {' + '.join(map(str, digits))} = {sum(digits)}."
    meta = {"labels": digits, "digit_indices": indices}
    question = "What is the sum of the handwritten digits in the image?"
    return compose(indices, image_size), question, sum(digits), solution, meta


def make_arith(
    split: str,
    n: int,
    seed: int = 0,
    *,
    kinds: tuple[str, ...] = ARITH_KINDS,
    n_digits: tuple[int, int] = (2, 3),
    **scene: Any,
) -> list[Record]:
    """Multi-step visual arithmetic questions (answer_type number) with worked solutions.

    ``kinds``: subset of :data:`ARITH_KINDS`, drawn uniformly per record. ``n_digits``: digits
    per ``digit_sum`` image. ``scene``: :class:`~recap.tasks.shapes.SceneSpec` knobs (defaults
    :data:`ARITH_SCENE`); ``image_size`` also sets the digit images' size.
    ``meta``: ``kind``, ``solution``, and ``objects`` or ``labels`` / ``digit_indices``.
    """
    check_split(split)
    bad = sorted(set(kinds) - set(ARITH_KINDS))
    if bad or not kinds:
        raise ValueError(f"unknown arith kinds {bad}; known: {list(ARITH_KINDS)}")
    n_digits = check_range("n_digits", n_digits, low=1)
    spec = SceneSpec(**(ARITH_SCENE | scene))
    records = []
    for i in range(n):
        rng = record_rng(seed, "arith", split, i)
        kind = kinds[int(rng.integers(len(kinds)))]
        if kind == "digit_sum":
            image, question, answer, solution, meta = _digit_sum(
                rng, split, n_digits, spec.image_size
            )
            meta["image_size"] = image.size
        else:
            image, objects, (question, answer, solution) = draw_in_split(
                rng, split, spec, partial(_scene_question, rng, spec, kind)
            )
            meta = scene_meta(spec, objects)
        meta |= {"kind": kind, "solution": solution}
        records.append(
            Record(f"arith-{split}-{seed}-{i}", "arith", [image], question, str(answer),
                   "number", meta)
        )
    return records
