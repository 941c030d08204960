"""Model layer: the Policy adapter over HF VLMs / causal LMs and the tiny built-in Qwen2.5-VL."""

from recap.models.encoding import PromptBatch, VisionInputs
from recap.models.policy import (
    BASE_CHECKPOINT,
    Generation,
    LoraSpec,
    Policy,
    load_policy,
    resolve_model_path,
)
from recap.models.tiny import TinyConfig, build_tiny_model
from recap.models.tokenizer import build_char_tokenizer

__all__ = [
    "BASE_CHECKPOINT",
    "Generation",
    "LoraSpec",
    "Policy",
    "PromptBatch",
    "TinyConfig",
    "VisionInputs",
    "build_char_tokenizer",
    "build_tiny_model",
    "load_policy",
    "resolve_model_path",
]
