"""Row layouts of public datasets: one mapper per layout turns a row into a :class:`Record`.

The common public layouts of the data of RECAP paper table 3 and OThink-MR1, registered by name
(with their options) in :data:`recap.tasks.loaders.FORMATS`:

| format        | rows like                                   | answer                         |
| ------------- | ------------------------------------------- | ------------------------------ |
| ``record``    | this project's Record fields                | as given                       |
| ``refcoco``   | image, referring expression, bbox           | ``"[x1, y1, x2, y2]"`` (bbox)  |
| ``choice``    | GeoQA / ScienceQA: question, choices, index | option letter (choice)         |
| ``clevr_count`` | CLEVR counting: question, integer answer  | ``"3"`` (count)                |
| ``open_qa``   | ThinkLite-style: problem, answer            | answer text (``math`` default) |
| ``llava_ocr`` | LLaVA conversations with ``<image>``        | first assistant reply (text)   |

A mapper raises :class:`SkipRow` with a short reason key when a row cannot be used (missing or
unreadable image, missing field, wrong type, unparsable answer);
:func:`recap.tasks.loaders.load_records` counts the skipped rows by reason.

Simplifications: only the first human/assistant exchange of a LLaVA conversation is used;
images in files are checked with PIL's ``verify`` (header and structure, no full decode) and
kept as paths, while images stored inside a HF dataset are decoded and kept in memory (use
``limit`` of ``load_records`` for large sets).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from recap.parsing import extract_answer
from recap.tasks.record import ANSWER_TYPES, Record

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
IMAGE_TOKEN = "<image>"


class SkipRow(Exception):
    """Raised by a row mapper: the row is unusable for ``reason`` (a short key)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RowContext:
    """What a row mapper needs besides the row: ids, the image folder and format options."""

    row_id: str
    domain: str
    root: Path
    options: dict[str, Any]


# ---------------------------------------------------------------------------- field helpers


def _get(row: dict[str, Any], names: tuple[str, ...], types: type | tuple[type, ...]) -> Any:
    """The first of ``names`` present (not None) in ``row``, checked against ``types``."""
    for name in names:
        value = row.get(name)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, types):
                raise SkipRow(f"wrong_type:{name}")
            return value
    raise SkipRow(f"missing_field:{names[0]}")


def _text(row: dict[str, Any], names: tuple[str, ...]) -> str:
    value = _get(row, names, str).replace(IMAGE_TOKEN, "").strip()
    if not value:
        raise SkipRow(f"missing_field:{names[0]}")
    return value


def _strip_answer_tags(text: str) -> str:
    """``"<answer> 3 </answer>"`` -> ``"3"`` (R1-V / VLM-R1 style solutions); else ``text``.

    The answer block is read as the rewards read completions (:func:`recap.parsing.extract_answer`:
    the last closed block), so a stored solution and a completion mean the same answer."""
    found = extract_answer(text)
    return (text if found is None else found).strip()


def _open_checked(image: Image.Image) -> Image.Image:
    try:
        image.load()
    except Exception:
        raise SkipRow("unreadable_image") from None
    return image


def _one_image(value: Any, root: Path) -> Image.Image | Path:
    """A path (checked, kept lazy) or an in-memory image (decoded) from one image field."""
    if isinstance(value, Image.Image):
        return _open_checked(value)
    if isinstance(value, dict):  # a datasets Image feature read with decode=False
        if value.get("bytes"):
            try:
                return _open_checked(Image.open(io.BytesIO(value["bytes"])))
            except SkipRow:
                raise
            except Exception:
                raise SkipRow("unreadable_image") from None
        value = value.get("path")
    if not isinstance(value, (str, Path)) or not str(value):
        raise SkipRow("missing_image" if not value else "wrong_type:image")
    path = Path(value) if Path(value).is_absolute() else root / value
    if not path.is_file():
        raise SkipRow("missing_image")
    try:
        with Image.open(path) as im:
            im.verify()
    except Exception:
        raise SkipRow("unreadable_image") from None
    return path


def _images(row: dict[str, Any], ctx: RowContext) -> list[Image.Image | Path]:
    """The row's images from ``image`` / ``images`` / ``image_path`` / ``file_name``."""
    for name in ("images", "image", "image_path", "file_name", "img_path"):
        value = row.get(name)
        if value is None or value == [] or value == "":
            continue
        values = value if isinstance(value, list) else [value]
        return [_one_image(v, ctx.root) for v in values]
    if ctx.options.get("require_image", True):
        raise SkipRow("missing_image")
    return []


def _image_size(image: Image.Image | Path) -> tuple[int, int]:
    if isinstance(image, Image.Image):
        return image.size
    with Image.open(image) as im:  # reads the header only
        return im.size


# ---------------------------------------------------------------------------- row mappers


def map_record(row: dict[str, Any], ctx: RowContext) -> Record:
    """This project's own layout: the :class:`Record` fields, ``images`` as paths."""
    answer_type = _get(row, ("answer_type",), str)
    if answer_type not in ANSWER_TYPES:
        raise SkipRow("bad_value:answer_type")
    answer = _get(row, ("answer",), (str, int, float))
    meta = row.get("meta") or {}
    if not isinstance(meta, dict):
        raise SkipRow("wrong_type:meta")
    return Record(
        str(row.get("id", ctx.row_id)), str(row.get("domain") or ctx.domain), _images(row, ctx),
        _text(row, ("question",)), str(answer), answer_type, dict(meta),
    )


def _parse_box(value: Any) -> list[float]:
    if isinstance(value, str):  # e.g. "[12, 30, 80, 95]" or "<answer>[12, 30, 80, 95]</answer>"
        value = [float(v) for v in NUMBER.findall(_strip_answer_tags(value)[:200])]
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise SkipRow("bad_value:bbox")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        raise SkipRow("wrong_type:bbox")
    return [float(v) for v in value]


def map_refcoco(row: dict[str, Any], ctx: RowContext) -> Record:
    """RefCOCO-style grounding: image, referring expression, bbox -> ``"[x1, y1, x2, y2]"``.

    Option ``bbox_format``: ``"xyxy"`` (corners, as VLM-R1 / Qwen2.5-VL grounding data) or
    ``"xywh"`` (COCO annotations: x2 = x + w, y2 = y + h). Pixel coordinates, rounded to
    integers; ``meta``: ``image_size`` (w, h), ``box_raw``.
    """
    images = _images(row, ctx)
    expression = _text(row, ("expression", "sent", "sentence", "referring_expression",
                             "problem", "question", "caption"))
    raw = _parse_box(_get(row, ("bbox", "box", "solution"), (list, tuple, str)))
    x1, y1, a, b = raw
    x2, y2 = (x1 + a, y1 + b) if ctx.options["bbox_format"] == "xywh" else (a, b)
    if not (x2 > x1 and y2 > y1):
        raise SkipRow("bad_value:bbox")
    box = [round(v) for v in (x1, y1, x2, y2)]
    question = (
        f'Give the bounding box of the region described by "{expression}" as [x1, y1, x2, y2] '
        f"in pixel coordinates."
    )
    meta = {"image_size": _image_size(images[0]) if images else None, "box_raw": raw}
    return Record(ctx.row_id, ctx.domain, images, question,
                  "[" + ", ".join(map(str, box)) + "]", "bbox", meta)


def _choice_letter(answer: Any, choices: list[str] | None) -> str:
    """Answer index, letter or option text -> option letter (or SkipRow)."""
    if isinstance(answer, str):
        answer = _strip_answer_tags(answer)
        if choices and answer in choices:
            return LETTERS[choices.index(answer)]
        letter = answer.strip("() .").upper()
        if len(letter) == 1 and letter in LETTERS[: len(choices) if choices else 26]:
            return letter
        if answer.isdigit():
            answer = int(answer)
    if isinstance(answer, int) and not isinstance(answer, bool) and choices \
            and 0 <= answer < len(choices):
        return LETTERS[answer]
    raise SkipRow("bad_value:answer")


def map_choice(row: dict[str, Any], ctx: RowContext) -> Record:
    """GeoQA / ScienceQA multiple choice: question, choices, answer index -> letter.

    The answer may also be a letter or the text of an option. Without a ``choices`` field the
    question is assumed to list its options already (R1-V GeoQA) and the answer must be a
    letter. ``hint`` (ScienceQA context) is prepended when present. ``meta``: ``choices``.
    """
    images = _images(row, ctx)
    question = _text(row, ("question", "problem"))
    choices = row.get("choices", row.get("options"))
    if choices is not None and (
        not isinstance(choices, list) or len(choices) < 2
        or not all(isinstance(c, str) for c in choices) or len(choices) > len(LETTERS)
    ):
        raise SkipRow("wrong_type:choices")
    letter = _choice_letter(_get(row, ("answer", "answer_idx", "label", "solution"),
                                 (int, str)), choices)
    hint = row.get("hint")
    if isinstance(hint, str) and hint.strip():
        question = f"Context: {hint.strip()}\n{question}"
    if choices:
        options = "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))
        question = f"{question}\nOptions:\n{options}"
    question += "\nAnswer with the option's letter."
    return Record(ctx.row_id, ctx.domain, images, question, letter, "choice",
                  {"choices": choices} if choices else {})


def map_clevr_count(row: dict[str, Any], ctx: RowContext) -> Record:
    """CLEVR counting (OThink-MR1 sec. 3.1): question and an integer answer (answer_type count)."""
    images = _images(row, ctx)
    question = _text(row, ("question", "problem"))
    answer = _get(row, ("answer", "solution", "label"), (int, str))
    if isinstance(answer, str):
        answer = _strip_answer_tags(answer)
        if not answer.isdigit():
            raise SkipRow("bad_value:answer")
        answer = int(answer)
    if answer < 0:
        raise SkipRow("bad_value:answer")
    return Record(ctx.row_id, ctx.domain, images, question, str(answer), "count", {})


def map_open_qa(row: dict[str, Any], ctx: RowContext) -> Record:
    """ThinkLite-style open QA: problem and answer; option ``answer_type`` (default "math")."""
    images = _images(row, ctx)
    question = _text(row, ("problem", "question", "prompt"))
    answer = _get(row, ("answer", "solution", "ground_truth"), (str, int, float))
    answer = _strip_answer_tags(str(answer))
    if not answer:
        raise SkipRow("bad_value:answer")
    return Record(ctx.row_id, ctx.domain, images, question, answer,
                  ctx.options["answer_type"], {})


def map_llava_ocr(row: dict[str, Any], ctx: RowContext) -> Record:
    """LLaVA conversations: the first human turn (``<image>`` removed) and the reply after it.

    ``meta["turns"]`` counts the conversation's messages (only the first exchange is used).
    """
    images = _images(row, ctx)
    turns = _get(row, ("conversations",), list)
    roles = [t.get("from") if isinstance(t, dict) else None for t in turns]
    try:
        q = roles.index("human")
        a = roles.index("gpt", q + 1)
    except ValueError:
        raise SkipRow("bad_value:conversations") from None
    question = _text(turns[q], ("value",))
    answer = _text(turns[a], ("value",))
    return Record(ctx.row_id, ctx.domain, images, question, answer, "text",
                  {"turns": len(turns)})

