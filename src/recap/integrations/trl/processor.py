"""A model's processing class and generation settings for TRL, without torchvision.

TRL's VLM path needs a ``ProcessorMixin``. Qwen2(.5)-VL's processor also builds a video
processor, and that needs torchvision (a second multi-GB wheel on a CPU machine, and nothing recap
trains uses video). :func:`load_processor` loads the checkpoint's processor when it can and
otherwise an image-only Qwen processor (the same tokenizer, image processor and chat template;
calling it with ``videos=`` raises).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import AutoConfig, AutoImageProcessor, AutoProcessor, AutoTokenizer
from transformers.models.qwen2_5_vl import Qwen2_5_VLProcessor
from transformers.processing_utils import ProcessorMixin

from recap.models.loading import is_image_text, placeholder_ids, resolve_model_path


class ImageOnlyQwenProcessor(Qwen2_5_VLProcessor):
    """Qwen2.5-VL's processor with no video processor (so no torchvision import)."""

    def __init__(self, image_processor: Any = None, tokenizer: Any = None,
                 chat_template: str | None = None, **kwargs: Any) -> None:
        # The parent's __init__ would validate a video processor; set what it sets, minus that.
        self.image_token = getattr(tokenizer, "image_token", "<|image_pad|>")
        self.video_token = getattr(tokenizer, "video_token", "<|video_pad|>")
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


def load_processor(name_or_path: str | Path) -> Any:
    """The processing class to give ``GRPOTrainer`` for a checkpoint (``builtin:base`` too).

    A text-only model gets its tokenizer; an image-text model its processor, or
    :class:`ImageOnlyQwenProcessor` when that processor cannot be built without torchvision.
    """
    path = resolve_model_path(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if not is_image_text(AutoConfig.from_pretrained(path)):
        return tokenizer
    try:
        processor = AutoProcessor.from_pretrained(path)
        if isinstance(processor, ProcessorMixin):
            return processor
    except (ImportError, AttributeError, ValueError, TypeError, OSError):
        pass  # e.g. the video processor's torchvision import
    image_processor = AutoImageProcessor.from_pretrained(path)
    if not hasattr(image_processor, "merge_size"):
        raise ValueError(f"{name_or_path}: its processor needs dependencies that are missing "
                         f"(e.g. torchvision) and it is not of the Qwen2-VL family")
    return ImageOnlyQwenProcessor(image_processor, tokenizer,
                                  chat_template=tokenizer.chat_template)


def generation_kwargs(name_or_path: str | Path) -> dict[str, Any]:
    """``GRPOConfig(generation_kwargs=...)`` that keep image/video placeholders out of samples.

    A sampled ``<|image_pad|>`` is read as an image slot by the next forward and breaks it; small
    or untrained VLMs do sample them (recap's Policy bans them the same way).
    """
    banned = placeholder_ids(AutoConfig.from_pretrained(resolve_model_path(name_or_path)))
    return {"suppress_tokens": list(banned)} if banned else {}

