"""CLEVR-like shapes scenes and the perception tasks on them: ``count``, ``ground``, ``exists``.

A scene is a few flat-coloured circles, squares and triangles on a grey background, drawn with
Pillow without anti-aliasing, separated by at least ``gap`` pixels so that every object is one
connected blob and counts are visually unambiguous.

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

Simplifications: flat 2-D shapes instead of CLEVR's rendered 3-D objects; the "popular"
frequencies are measured over the records generated in the same call, not over a fixed corpus.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import numpy as np
from PIL import Image, ImageDraw

from recap.tasks.common import check_range, check_split, hash_split, light_ramps, record_rng
from recap.tasks.record import Record

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 230),
    "yellow": (245, 215, 40),
    "purple": (150, 60, 200),
    "cyan": (40, 210, 220),
    "white": (250, 250, 250),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle")
BACKGROUND: tuple[int, int, int] = (120, 120, 120)
NEGATIVES: tuple[str, ...] = ("random", "popular", "adversarial")
COUNT_QUERIES: tuple[str, ...] = ("all", "color", "shape", "color_shape")
MAX_TRIES = 1000  # candidate scenes per record before giving up (knobs that cannot be met)

Box = tuple[int, int, int, int]
T = TypeVar("T")


@dataclass(frozen=True)
class SceneSpec:
    """Difficulty knobs of a shapes scene.

    Attributes:
        image_size: side of the square image in pixels.
        n_objects: inclusive range of the number of objects.
        obj_size: inclusive range of an object's side in pixels.
        n_colors: how many colours of :data:`COLORS` are used (the first ones).
        n_shapes: how many shapes of :data:`SHAPES` are used (the first ones).
        gap: minimum free pixels between two objects' boxes.
        shading: peak-to-peak amplitude of the floor's lighting ramps (red channel left to right,
            green top to bottom, around :data:`BACKGROUND`); 0 is a flat floor. The default
            ramps give every image patch its absolute position (CLEVR's floor is shaded too):
            the tiny Qwen2.5-VL has no other absolute-position signal for a visual token, and
            with a flat floor it never learned to ground even a single object (see
            docs/results/base_model).
    """

    image_size: int = 64
    n_objects: tuple[int, int] = (1, 6)
    obj_size: tuple[int, int] = (9, 15)
    n_colors: int = 4
    n_shapes: int = 3
    gap: int = 2
    shading: int = 60

    def __post_init__(self) -> None:
        object.__setattr__(self, "n_objects", check_range("n_objects", self.n_objects, low=1))
        object.__setattr__(self, "obj_size", check_range("obj_size", self.obj_size, low=3))
        if self.obj_size[1] > self.image_size:
            raise ValueError(f"obj_size {self.obj_size} exceeds image_size {self.image_size}")
        if not 1 <= self.n_colors <= len(COLORS):
            raise ValueError(f"n_colors must be in 1..{len(COLORS)}, got {self.n_colors}")
        if not 1 <= self.n_shapes <= len(SHAPES):
            raise ValueError(f"n_shapes must be in 1..{len(SHAPES)}, got {self.n_shapes}")

    @property
    def colors(self) -> list[str]:
        return list(COLORS)[: self.n_colors]

    @property
    def shapes(self) -> list[str]:
        return list(SHAPES[: self.n_shapes])

    @property
    def combos(self) -> list[tuple[str, str]]:
        """Every (colour, shape) pair the scene can contain."""
        return [(c, s) for c in self.colors for s in self.shapes]


@dataclass(frozen=True)
class Obj:
    """One drawn object; ``box`` is its tight pixel box (right/bottom exclusive)."""

    color: str
    shape: str
    box: Box


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, x0: int, y0: int, s: int) -> None:
    """Draw ``shape`` filling the s x s pixel square whose top-left pixel is (x0, y0)."""
    x1, y1 = x0 + s - 1, y0 + s - 1  # last pixel row/column inside the square
    if shape == "circle":
        draw.ellipse((x0, y0, x1, y1), fill=255)
    elif shape == "square":
        draw.rectangle((x0, y0, x1, y1), fill=255)
    elif shape == "triangle":
        draw.polygon([(x0, y1), (x1, y1), ((x0 + x1) // 2, y0)], fill=255)
    else:
        raise ValueError(f"unknown shape {shape!r}; known: {list(SHAPES)}")


def _separated(a: Box, b: Box, gap: int) -> bool:
    """True when boxes a and b are at least ``gap`` pixels apart on some axis."""
    return a[2] + gap <= b[0] or b[2] + gap <= a[0] or a[3] + gap <= b[1] or b[3] + gap <= a[1]


def floor(size: int, shading: int = 0) -> np.ndarray:
    """The empty scene ``[size, size, 3]`` uint8: :data:`BACKGROUND` plus the lighting ramps,
    centred on it (red and green span ``BACKGROUND -/+ shading / 2``)."""
    image = np.asarray(BACKGROUND, dtype=np.float64) + light_ramps(size, size, shading)
    image[..., :2] -= shading / 2
    return image.round().clip(0, 255).astype(np.uint8)


def sample_scene(
    rng: np.random.Generator, spec: SceneSpec, n_objects: int | None = None
) -> tuple[Image.Image, list[Obj]] | None:
    """Place and draw a random scene; ``None`` when the objects could not be separated.

    Objects are placed by rejection sampling (50 positions each) so that their square boxes are
    ``spec.gap`` pixels apart; the returned boxes are the tight boxes of the drawn pixels.
    """
    if n_objects is None:
        n_objects = int(rng.integers(spec.n_objects[0], spec.n_objects[1] + 1))
    size = spec.image_size
    squares: list[Box] = []
    for _ in range(n_objects):
        s = int(rng.integers(spec.obj_size[0], spec.obj_size[1] + 1))
        for _ in range(50):
            x0, y0 = (int(v) for v in rng.integers(0, size - s + 1, size=2))
            cand = (x0, y0, x0 + s, y0 + s)
            if all(_separated(cand, other, spec.gap) for other in squares):
                squares.append(cand)
                break
        else:
            return None
    colors, shapes = spec.colors, spec.shapes
    canvas = Image.fromarray(floor(size, spec.shading))
    objects = []
    for x0, y0, x1, _ in squares:
        color = colors[int(rng.integers(len(colors)))]
        shape = shapes[int(rng.integers(len(shapes)))]
        s = x1 - x0
        mask = Image.new("L", (s, s), 0)  # the object's own square, pasted at (x0, y0)
        _draw_shape(ImageDraw.Draw(mask), shape, 0, 0, s)
        canvas.paste(COLORS[color], (x0, y0, x0 + s, y0 + s), mask=mask)
        bx0, by0, bx1, by1 = mask.getbbox()
        objects.append(Obj(color, shape, (x0 + bx0, y0 + by0, x0 + bx1, y0 + by1)))
    return canvas, objects


def draw_in_split(
    rng: np.random.Generator,
    split: str,
    spec: SceneSpec,
    accept: Callable[[Image.Image, list[Obj]], T | None],
    n_objects: int | None = None,
) -> tuple[Image.Image, list[Obj], T]:
    """Draw scenes until one lies in ``split`` (content hash) and ``accept`` returns non-None.

    ``accept(image, objects)`` builds the task payload (question etc.) or rejects the scene.
    """
    for _ in range(MAX_TRIES):
        scene = sample_scene(rng, spec, n_objects)
        if scene is None or hash_split(scene[0]) != split:
            continue
        payload = accept(*scene)
        if payload is not None:
            return scene[0], scene[1], payload
    raise ValueError(f"no valid scene in {MAX_TRIES} tries with {spec}; relax the knobs")


# The integer frame of grounding answers by default (4-px cells on a 64-px image): ``make_ground``
# and ``make_describe`` write boxes in it, and the pretraining object head predicts them in it.
GROUND_FRAME = 16


def scale_box(box: Box, image_size: tuple[int, int], coord_scale: int) -> Box:
    """Map a pixel box into the integer 0..coord_scale frame, rounding outwards.

    x is scaled by coord_scale / width and y by coord_scale / height; x1, y1 are floored and
    x2, y2 ceiled so the scaled box still contains every pixel of the object.
    """
    w, h = image_size
    x1, y1, x2, y2 = box
    return (
        x1 * coord_scale // w,
        y1 * coord_scale // h,
        -(-x2 * coord_scale // w),
        -(-y2 * coord_scale // h),
    )


def format_box(box: Box) -> str:
    """The answer text of a box: ``"[x1, y1, x2, y2]"``."""
    return "[" + ", ".join(str(int(v)) for v in box) + "]"


def scene_meta(spec: SceneSpec, objects: list[Obj]) -> dict[str, Any]:
    """The scene part of a record's meta: ``objects`` (colour, shape, pixel box), ``image_size``."""
    return {
        "objects": [{"color": o.color, "shape": o.shape, "box": o.box} for o in objects],
        "image_size": (spec.image_size, spec.image_size),
    }


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
