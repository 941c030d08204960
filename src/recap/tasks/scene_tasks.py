"""The perception tasks on shapes scenes (:mod:`recap.tasks.shapes`): ``count``, ``ground``,
``exists``, ``describe``.

- ``count`` (visual counting as in OThink-MR1 sec. 3.1, CLEVR-style): "How many red objects are
  there?"; answer_type ``count``, answer ``"3"``.
- ``ground`` (referring-expression grounding, the RefCOCO role of RECAP table 3): a referent
  that is unique in its scene ("the red circle") -> its box ``"[x1, y1, x2, y2]"``.
- ``exists`` (POPE-style hallucination probe): "Is there a red circle in the image?", balanced
  yes/no, negatives sampled ``random`` / ``popular`` / ``adversarial`` (POPE's three subsets,
  with a (colour, shape) pair standing for an object category).
- ``describe`` (pretraining only): every object as "colour shape [box]" in reading order.

Boxes are in pixel-edge coordinates: pixel (i, j) covers [i, i+1) x [j, j+1), so a box is
``[left, top, right, bottom]`` with right/bottom exclusive, the convention of RefCOCO's
``[x, y, x + w, y + h]``. With ``coord_scale=S`` a box is expressed in an integer 0..S frame
(x scaled by S / width, y by S / height), rounded outwards (floor for x1, y1; ceil for x2, y2)
so the coarse box still contains the object; ``meta["coord_scale"]`` and ``meta["image_size"]``
let a reward map either frame back to pixels.

Simplifications: the "popular" frequencies are measured over the records generated in the same
call, not over a fixed corpus.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from typing import Any, TypeVar

import numpy as np
from PIL import Image

from recap.tasks.common import check_split, record_rng
from recap.tasks.record import Record
from recap.tasks.shapes import (
    GROUND_FRAME,
    Box,
    Obj,
    SceneSpec,
    draw_in_split,
    scale_box,
    scene_meta,
)

NEGATIVES: tuple[str, ...] = ("random", "popular", "adversarial")
COUNT_QUERIES: tuple[str, ...] = ("all", "color", "shape", "color_shape")

T = TypeVar("T")


def format_box(box: Box) -> str:
    """The answer text of a box: ``"[x1, y1, x2, y2]"``."""
    return "[" + ", ".join(str(int(v)) for v in box) + "]"


def _count_query(
    rng: np.random.Generator,
    spec: SceneSpec,
    queries: tuple[str, ...],
    _image: Image.Image,
    objects: list[Obj],
) -> tuple[str, int, dict[str, Any]]:
    kind = queries[int(rng.integers(len(queries)))]
    color = spec.colors[int(rng.integers(spec.n_colors))] if "color" in kind else None
    shape = spec.shapes[int(rng.integers(spec.n_shapes))] if "shape" in kind else None
    k = sum((color in (None, o.color)) and (shape in (None, o.shape)) for o in objects)
    noun = f"{shape}s" if shape else "objects"
    question = f"How many {color + ' ' if color else ''}{noun} are there?"
    return question, k, {"kind": kind, "color": color, "shape": shape}


def make_count(
    split: str, n: int, seed: int = 0, *, queries: tuple[str, ...] = ("all", "color", "shape"),
    **scene: Any,
) -> list[Record]:
    """Visual counting over shapes scenes (OThink-MR1 sec. 3.1 CLEVR counting; answer_type count).

    ``queries`` picks the question kinds among :data:`COUNT_QUERIES`: all objects, one colour,
    one shape, or one colour and shape. Colour/shape queries draw the attribute from the whole
    palette, so a count of 0 is possible. ``scene`` holds :class:`SceneSpec` knobs.
    """
    spec = SceneSpec(**scene)
    check_split(split)
    bad = sorted(set(queries) - set(COUNT_QUERIES))
    if bad or not queries:
        raise ValueError(f"unknown count queries {bad}; known: {list(COUNT_QUERIES)}")
    records = []
    for i in range(n):
        rng = record_rng(seed, "count", split, i)
        image, objects, (question, k, query) = draw_in_split(
            rng, split, spec, partial(_count_query, rng, spec, tuple(queries))
        )
        meta = scene_meta(spec, objects) | {"query": query}
        records.append(
            Record(f"count-{split}-{seed}-{i}", "count", [image], question, str(k), "count", meta)
        )
    return records


def _unique_referent(
    rng: np.random.Generator, _image: Image.Image, objects: list[Obj]
) -> int | None:
    """Index of a random object whose (colour, shape) is unique in the scene, or None."""
    combos = Counter((o.color, o.shape) for o in objects)
    unique = [j for j, o in enumerate(objects) if combos[(o.color, o.shape)] == 1]
    return unique[int(rng.integers(len(unique)))] if unique else None


def make_ground(
    split: str, n: int, seed: int = 0, *, coord_scale: int | None = GROUND_FRAME, **scene: Any
) -> list[Record]:
    """Referring-expression grounding: "the red circle" -> ``"[x1, y1, x2, y2]"`` (bbox).

    ``coord_scale`` sets the integer frame of the box, see the module docstring. The default 16
    (4 px cells on a 64 px image) is the lab's: a coarse frame is much easier for a tiny model to
    learn than pixel integers; ``None`` gives pixels.
    ``meta``: ``coord_scale``, ``image_size`` (w, h), ``box_pixels`` (tight pixel box),
    ``target`` (index into ``objects``), ``objects``.
    """
    spec = SceneSpec(**scene)
    check_split(split)
    scale = spec.image_size if coord_scale is None else int(coord_scale)
    if scale < 1:
        raise ValueError(f"coord_scale must be a positive integer, got {coord_scale}")
    records = []
    for i in range(n):
        rng = record_rng(seed, "ground", split, i)
        image, objects, target = draw_in_split(rng, split, spec, partial(_unique_referent, rng))
        obj = objects[target]
        box = scale_box(obj.box, image.size, scale)
        question = (
            # Kept short: the tiny lab's character-level model pays per character.
            f"Locate the {obj.color} {obj.shape}. Give its box [x1, y1, x2, y2] in a "
            f"{scale}x{scale} frame, (0, 0) at the top-left."
        )
        meta = scene_meta(spec, objects) | {
            "coord_scale": scale, "box_pixels": obj.box, "target": target,
        }
        records.append(
            Record(f"ground-{split}-{seed}-{i}", "ground", [image], question,
                   format_box(box), "bbox", meta)
        )
    return records


def _adversarial(spec: SceneSpec, present: set[tuple[str, str]]) -> list[tuple[str, str]]:
    """Absent (colour, shape) pairs sharing a colour or a shape with a present object."""
    colors = {c for c, _ in present}
    shapes = {s for _, s in present}
    return [
        (c, s) for c, s in spec.combos
        if (c, s) not in present and (c in colors or s in shapes)
    ]


def _has_adversarial(spec: SceneSpec, _image: Image.Image, objects: list[Obj]) -> bool | None:
    """Accept a scene (True) when it admits an adversarial negative, else reject it (None)."""
    return True if _adversarial(spec, {(o.color, o.shape) for o in objects}) else None


def _pick(rng: np.random.Generator, items: list[T]) -> T:
    return items[int(rng.integers(len(items)))]


def _negative(
    rng: np.random.Generator,
    spec: SceneSpec,
    present: set[tuple[str, str]],
    negative: str,
    frequency: Counter[tuple[str, str]],
) -> tuple[str, str]:
    """An absent (colour, shape) pair sampled by POPE's ``negative`` strategy."""
    if negative == "adversarial":
        return _pick(rng, _adversarial(spec, present))
    absent = [c for c in spec.combos if c not in present]
    if negative == "popular":
        top = max(frequency[c] for c in absent)
        absent = [c for c in absent if frequency[c] == top]  # ties broken at random below
    return _pick(rng, absent)


def make_exists(
    split: str, n: int, seed: int = 0, *, negative: str = "random", **scene: Any
) -> list[Record]:
    """POPE-style existence questions, balanced yes/no (answer_type yesno).

    ``negative`` chooses how the absent object of a "no" question is sampled:
    ``random``: any absent (colour, shape); ``popular``: the absent pair that appears in the
    most images of this dataset; ``adversarial``: an absent pair sharing its colour or its
    shape with an object in the image. Exactly ``n // 2`` records are "yes".
    ``meta["negative"]`` holds the strategy (the POPE subset; set on every record) and
    ``meta["present"]`` whether the queried object is in the image.
    """
    spec = SceneSpec(**scene)
    check_split(split)
    if negative not in NEGATIVES:
        raise ValueError(f"unknown negative {negative!r}; known: {list(NEGATIVES)}")
    if len(spec.combos) < 2:
        raise ValueError("exists needs at least 2 (colour, shape) pairs; raise n_colors/n_shapes")
    scenes = []
    for i in range(n):
        rng = record_rng(seed, "exists", split, i)
        # Every scene must admit an adversarial negative (hence also a random/popular one) so
        # that its label does not depend on its content.
        image, objects, _ = draw_in_split(rng, split, spec, partial(_has_adversarial, spec))
        scenes.append((rng, image, objects))
    frequency = Counter(c for _, _, objs in scenes for c in {(o.color, o.shape) for o in objs})
    label_rng = record_rng(seed, "exists-labels", split, 0)
    is_yes = np.zeros(n, dtype=bool)
    is_yes[label_rng.permutation(n)[: n // 2]] = True
    records = []
    for i, (rng, image, objects) in enumerate(scenes):
        present = {(o.color, o.shape) for o in objects}
        if is_yes[i]:
            color, shape = _pick(rng, sorted(present))
        else:
            color, shape = _negative(rng, spec, present, negative, frequency)
        meta = scene_meta(spec, objects) | {
            "negative": negative, "present": bool(is_yes[i]),
            "query": {"color": color, "shape": shape},
        }
        records.append(
            Record(f"exists-{split}-{seed}-{i}", "exists", [image],
                   f"Is there a {color} {shape} in the image?",
                   "yes" if is_yes[i] else "no", "yesno", meta)
        )
    return records


def describe_scene(objects: list[Obj], image_size: tuple[int, int], coord_scale: int | None) -> str:
    """Every object as "colour shape [box]", in reading order (top to bottom, then left to right).

    With ``coord_scale=None`` the boxes are left out ("red circle, blue square").
    """
    parts = []
    for o in sorted(objects, key=lambda o: (o.box[1], o.box[0])):
        text = f"{o.color} {o.shape}"
        if coord_scale is not None:
            text += " " + format_box(scale_box(o.box, image_size, coord_scale))
        parts.append(text)
    return ", ".join(parts)


def make_describe(
    split: str, n: int, seed: int = 0, *, coord_scale: int | None = GROUND_FRAME, **scene: Any
) -> list[Record]:
    """Dense scene description: list every object with its colour, shape and box (answer_type text).

    A pretraining task rather than a benchmark: one answer supervises colour, shape and position
    of every object at once (the grounded-caption data real VLMs are pretrained on), where
    ``exists`` or ``count`` give one bit or one number per image. In the tiny base's build it
    lifted grounding off the floor earlier than the mixture without it (docs/results/base_model).
    Answer e.g. ``"red circle [3, 5, 9, 12], blue square [10, 1, 14, 5]"``
    with boxes in the ``coord_scale`` frame of :func:`make_ground`; ``None`` drops the boxes.
    """
    spec = SceneSpec(**scene)
    check_split(split)
    if coord_scale is not None and int(coord_scale) < 1:
        raise ValueError(f"coord_scale must be a positive integer, got {coord_scale}")
    question = "List the objects from top to bottom" + (
        f" with boxes in a {coord_scale}x{coord_scale} frame." if coord_scale else "."
    )
    records = []
    for i in range(n):
        rng = record_rng(seed, "describe", split, i)
        image, objects, _ = draw_in_split(rng, split, spec, lambda _image, _objects: True)
        answer = describe_scene(objects, image.size, coord_scale)
        meta = scene_meta(spec, objects) | {"coord_scale": coord_scale}
        records.append(
            Record(f"describe-{split}-{seed}-{i}", "describe", [image], question, answer, "text",
                   meta)
        )
    return records
