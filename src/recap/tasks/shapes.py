"""CLEVR-like shapes scenes: sampling, drawing and box geometry, shared by the scene tasks.

A scene is a few flat-coloured circles, squares and triangles on a grey background, drawn with
Pillow without anti-aliasing, separated by at least ``gap`` pixels so that every object is one
connected blob and counts are visually unambiguous. The tasks asked on these scenes
(``count``, ``exists``, ``ground``, ``describe``) live in :mod:`recap.tasks.scene_tasks`; the
``arith`` scene questions in :mod:`recap.tasks.reasoning`.

Simplifications: flat 2-D shapes instead of CLEVR's rendered 3-D objects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from PIL import Image, ImageDraw

from recap.tasks.common import check_range, hash_split, light_ramps

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


def scene_meta(spec: SceneSpec, objects: list[Obj]) -> dict[str, Any]:
    """The scene part of a record's meta: ``objects`` (colour, shape, pixel box), ``image_size``."""
    return {
        "objects": [{"color": o.color, "shape": o.shape, "box": o.box} for o in objects],
        "image_size": (spec.image_size, spec.image_size),
    }
