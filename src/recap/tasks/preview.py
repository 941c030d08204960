"""Contact sheets of task samples (``recap data preview <task>``): look at the data you train on.

Each cell shows a record's image(s), its question (wrapped) and its answer. Grounding records
get their answer box drawn on the image (mapped back from ``meta["coord_scale"]`` to pixels),
so a wrong coordinate convention is visible at a glance; jigsaw records show the pieces in the
given (shuffled) order with their indices, then the picture rebuilt from the answer.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from recap.tasks.jigsaw import assemble
from recap.tasks.record import Record
from recap.tasks.registry import make_task

CELL_PX = 128  # display height of a record's main image
GAP = 4


def _upscale(image: Image.Image, height: int = CELL_PX) -> Image.Image:
    scale = max(1, height // image.height)
    return image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)


def _numbers(text: str) -> list[int]:
    return [int(v) for v in re.findall(r"-?\d+", text[:200])]


def _ground_view(record: Record, image: Image.Image) -> Image.Image:
    """The image with the answer box drawn, mapped from its coordinate frame to the display.

    With ``meta["coord_scale"] = S`` the box lives in a 0..S frame on both axes; without it
    the box is in pixels of ``image``.
    """
    box = _numbers(record.answer)
    big = _upscale(image)
    if len(box) != 4:
        return big
    scale = record.meta.get("coord_scale")
    frame_w, frame_h = (scale, scale) if scale else image.size
    sx, sy = big.width / frame_w, big.height / frame_h
    x1, y1, x2, y2 = box
    # right/bottom are exclusive edges: the last covered display pixel is x2 * sx - 1
    draw = ImageDraw.Draw(big)
    draw.rectangle((x1 * sx, y1 * sy, x2 * sx - 1, y2 * sy - 1), outline=(255, 255, 255), width=1)
    return big


def _jigsaw_view(record: Record, pieces: list[Image.Image]) -> Image.Image:
    """A row of the given pieces with their indices, and below it the picture rebuilt from the
    answer (position p shows given piece ``answer[p]``)."""
    pw, ph = pieces[0].size
    k = len(pieces)
    scale = max(1, min((CELL_PX // 2) // ph, (2 * CELL_PX) // (k * (pw + GAP))))
    big = [p.resize((pw * scale, ph * scale), Image.Resampling.NEAREST) for p in pieces]
    pw, ph = big[0].size
    label_h = 12
    grid = tuple(record.meta.get("grid", (1, k)))
    answer = _numbers(record.answer)
    valid = sorted(answer) == list(range(k))
    solved = _upscale(assemble(pieces, answer, grid)) if valid else None
    width = max(k * (pw + GAP), solved.width if solved else 0)
    height = label_h + ph + (2 * GAP + solved.height if solved else 0)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for j, piece in enumerate(big):
        canvas.paste(piece, (j * (pw + GAP), label_h))
        draw.text((j * (pw + GAP) + pw // 2 - 3, 0), str(j), fill=(0, 0, 0))
    if solved:
        canvas.paste(solved, ((width - solved.width) // 2, label_h + ph + 2 * GAP))
    return canvas


def render_view(record: Record) -> Image.Image:
    """The picture shown for ``record`` in a contact sheet."""
    images = record.load_images()
    if record.answer_type == "permutation":
        return _jigsaw_view(record, images)
    if record.answer_type == "bbox":
        return _ground_view(record, images[0])
    views = [_upscale(im) for im in images]
    width = sum(v.width for v in views) + GAP * (len(views) - 1)
    canvas = Image.new("RGB", (width, max(v.height for v in views)), (255, 255, 255))
    x = 0
    for v in views:
        canvas.paste(v, (x, 0))
        x += v.width + GAP
    return canvas


def preview_records(
    records: list[Record], out_png: str | Path, title: str = "", cols: int = 4
) -> Path:
    """Write a contact sheet of ``records`` (image, wrapped question, answer) to ``out_png``."""
    if not records:
        raise ValueError("preview_records: no records to show")
    cols = min(cols, len(records))
    rows = -(-len(records) // cols)
    fig = Figure(figsize=(3.2 * cols, 3.9 * rows), dpi=100, layout="constrained")
    for k, record in enumerate(records):
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.imshow(render_view(record))
        ax.set_xticks([])
        ax.set_yticks([])
        question = textwrap.fill(record.question, 48, max_lines=5, placeholder=" ...")
        text = f"{question}\n=> {textwrap.shorten(record.answer, 48, placeholder=' ...')}"
        if record.meta.get("solution"):
            text += "\n" + textwrap.fill(f"({record.meta['solution']})", 48, max_lines=2,
                                          placeholder=" ...)")
        ax.set_title(text, fontsize=6.5, loc="left")
    if title:
        fig.suptitle(title, fontsize=10)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


def preview_task(
    name: str, out_png: str | Path, n: int = 12, seed: int = 0, split: str = "train", **knobs
) -> Path:
    """Contact sheet of ``n`` records of built-in task ``name`` (see :mod:`.registry`)."""
    records = make_task(name, split, n, seed, **knobs)
    knob_text = ", ".join(f"{k}={v}" for k, v in knobs.items())
    title = f"{name} ({split}, seed {seed}{', ' + knob_text if knob_text else ''})"
    return preview_records(records, out_png, title=title)
