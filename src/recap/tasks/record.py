"""The Record: one schema for built-in and external data (DESIGN.md, "Contracts")."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from PIL import Image

AnswerType = Literal["choice", "number", "text", "math", "bbox", "permutation", "count", "yesno"]
ANSWER_TYPES: tuple[str, ...] = (
    "choice", "number", "text", "math", "bbox", "permutation", "count", "yesno",
)


@dataclass
class Record:
    """One example of any task.

    Attributes:
        id: unique within its dataset (used for split bookkeeping and logs).
        domain: task/domain name, e.g. ``"count"``, ``"ground"``, ``"jigsaw"``.
        images: PIL images or paths to image files, in the order the prompt refers to them.
        question: the user-facing question text, without format instructions (those come
            from the prompt template, see :mod:`recap.tasks.prompts`).
        answer: the reference answer as text (e.g. ``"3"``, ``"B"``, ``"[4, 10, 30, 41]"``,
            ``"[2, 0, 3, 1]"``).
        answer_type: how rewards compare a completion with ``answer``.
        meta: free-form extras: ``solution`` (worked reasoning for SFT), ``choices``
            (option texts for multiple choice), ``image_size`` ((width, height) for boxes),
            ``grid`` ((m, n) for jigsaw), ``tolerance`` ...
    """

    id: str
    domain: str
    images: list[Image.Image | str | Path]
    question: str
    answer: str
    answer_type: AnswerType
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.answer_type not in ANSWER_TYPES:
            raise ValueError(
                f"Record {self.id!r}: answer_type {self.answer_type!r} is not one of {ANSWER_TYPES}"
            )

    def load_images(self) -> list[Image.Image]:
        """The images as RGB PIL images (paths are opened here, lazily)."""
        out = []
        for im in self.images:
            if not isinstance(im, Image.Image):
                with Image.open(im) as f:
                    im = f.convert("RGB")
            elif im.mode != "RGB":
                im = im.convert("RGB")
            out.append(im)
        return out
