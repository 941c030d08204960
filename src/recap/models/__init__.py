"""Model layer: the Policy adapter over HF VLMs / causal LMs and the tiny built-in Qwen2.5-VL."""

from recap.config import LoraSpec
from recap.models.encoding import PromptBatch, VisionInputs
from recap.models.generation import Generation
from recap.models.loading import BASE_CHECKPOINT, load_policy, resolve_model_path
from recap.models.policy import Policy
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
