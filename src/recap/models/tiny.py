"""The tiny built-in model: the real Qwen2.5-VL architecture at ~1.3 M parameters.

``build_tiny_model`` writes a randomly initialised checkpoint in the Hugging Face format
(``config.json``, ``model.safetensors``, ``generation_config.json``, tokenizer files,
``preprocessor_config.json``) so that it loads through the same generic path as a real checkpoint,
``recap.models.load_policy(path)``. ``recap pretrain`` turns it into the competent base.

Sizes are knobs of :class:`TinyConfig`. Defaults: text decoder 128 wide x 4 layers (4 heads,
MLP 512), vision tower 64 wide x 2 blocks, 8-pixel patches, 2x2 spatial merge, temporal patch 2.
A 64x64 image becomes 8x8 patches, merged to 16 visual tokens; images are resized to between
``min_pixels`` and ``max_pixels`` pixels (aspect kept, sides multiples of patch*merge = 16 px).

Departures from Qwen2.5-VL: a character-level vocabulary (:mod:`recap.models.tokenizer`), no
default system prompt, small RoPE base (10 000; sequences are a few hundred tokens), untied
embeddings, and no video support in the image processor (torchvision is not a dependency).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from transformers import GenerationConfig, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from recap.models.tokenizer import (
    ENDOFTEXT,
    IM_END,
    IMAGE_PAD,
    SPECIAL_TOKENS,
    VIDEO_PAD,
    VISION_END,
    VISION_START,
    build_char_tokenizer,
)

TINY_CONFIG_FILE = "tiny_config.json"


@dataclass(frozen=True)
class TinyConfig:
    """Sizes of the tiny Qwen2.5-VL (text decoder, vision tower, image preprocessing)."""

    hidden_size: int = 128  # text decoder width
    num_layers: int = 4  # text decoder layers
    num_heads: int = 4  # attention heads (head dim = hidden_size / num_heads, must be even)
    num_kv_heads: int = 4  # grouped-query KV heads (divides num_heads)
    intermediate_size: int = 512  # text MLP width
    vision_hidden_size: int = 64  # vision tower width
    vision_depth: int = 2  # vision blocks; the last one uses full attention
    vision_heads: int = 4
    vision_intermediate_size: int = 256
    patch_size: int = 8  # pixels per patch side
    spatial_merge_size: int = 2  # k x k patches merge into one visual token
    temporal_patch_size: int = 2  # a still image is repeated this many times along time
    vision_window_size: int = 64  # window-attention side in pixels (64: a 64x64 image is 1 window)
    min_pixels: int = 32 * 32  # smaller images are upscaled to at least this many pixels
    max_pixels: int = 64 * 64  # larger images are downscaled: at most 16 tokens per image
    max_position_embeddings: int = 4096
    rope_theta: float = 10_000.0

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads or (self.hidden_size // self.num_heads) % 2:
            raise ValueError(
                f"TinyConfig: hidden_size {self.hidden_size} must split into num_heads "
                f"{self.num_heads} heads of even size"
            )
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"TinyConfig: num_kv_heads {self.num_kv_heads} must divide num_heads "
                f"{self.num_heads}"
            )
        if self.vision_hidden_size % self.vision_heads:
            raise ValueError(
                f"TinyConfig: vision_heads {self.vision_heads} must divide vision_hidden_size "
                f"{self.vision_hidden_size}"
            )
        factor = (self.patch_size * self.spatial_merge_size) ** 2
        if self.min_pixels < factor or self.max_pixels < self.min_pixels:
            raise ValueError(
                f"TinyConfig: need (patch_size*spatial_merge_size)^2 = {factor} <= min_pixels "
                f"{self.min_pixels} <= max_pixels {self.max_pixels}"
            )


def mrope_section(head_dim: int) -> list[int]:
    """Split of the rotary half-dimension into (temporal, height, width) sections.

    Qwen2.5-VL's multimodal RoPE uses [16, 24, 24] for head dim 128, i.e. 1/4, 3/8, 3/8 of
    head_dim / 2; the same proportions are kept here (head dim 32 -> [4, 6, 6]).
    """
    half = head_dim // 2
    temporal = half // 4
    height = (half - temporal) // 2
    return [temporal, height, half - temporal - height]


def tiny_image_processor(config: TinyConfig = TinyConfig()) -> Qwen2VLImageProcessorPil:
    """The Qwen2-VL image processor (PIL backend, no torchvision) sized for ``config``."""
    return Qwen2VLImageProcessorPil(
        patch_size=config.patch_size,
        merge_size=config.spatial_merge_size,
        temporal_patch_size=config.temporal_patch_size,
        min_pixels=config.min_pixels,
        max_pixels=config.max_pixels,
    )


def tiny_model_config(config: TinyConfig, vocab_size: int, ids: dict[str, int]) -> Qwen2_5_VLConfig:
    """The ``Qwen2_5_VLConfig`` for ``config``; ``ids`` maps control-token strings to ids."""
    head_dim = config.hidden_size // config.num_heads
    text = {
        "vocab_size": vocab_size,
        "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "num_key_value_heads": config.num_kv_heads,
        "max_position_embeddings": config.max_position_embeddings,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": config.rope_theta,
            "mrope_section": mrope_section(head_dim),
        },
        "bos_token_id": ids[ENDOFTEXT],
        "eos_token_id": ids[IM_END],
        "pad_token_id": ids[ENDOFTEXT],
    }
    vision = {
        "depth": config.vision_depth,
        "hidden_size": config.vision_hidden_size,
        "intermediate_size": config.vision_intermediate_size,
        "num_heads": config.vision_heads,
        "patch_size": config.patch_size,
        "spatial_merge_size": config.spatial_merge_size,
        "temporal_patch_size": config.temporal_patch_size,
        "window_size": config.vision_window_size,
        "out_hidden_size": config.hidden_size,
        "fullatt_block_indexes": [config.vision_depth - 1],
    }
    return Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids[IMAGE_PAD],
        video_token_id=ids[VIDEO_PAD],
        vision_start_token_id=ids[VISION_START],
        vision_end_token_id=ids[VISION_END],
        tie_word_embeddings=False,
    )


def build_tiny_model(out_dir: str | Path, config: TinyConfig = TinyConfig(), seed: int = 0) -> Path:
    """Write a randomly initialised tiny Qwen2.5-VL checkpoint to ``out_dir`` and return its path.

    Deterministic in ``seed`` (weights are drawn under ``torch.manual_seed(seed)`` on CPU).
    The directory reloads with ``load_policy(out_dir)`` like any Hugging Face checkpoint; the
    sizes are also written to ``tiny_config.json`` for provenance.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_char_tokenizer()
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in SPECIAL_TOKENS}
    model_config = tiny_model_config(config, len(tokenizer), ids)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2_5_VLForConditionalGeneration(model_config)
    # Only token ids here: sampling settings belong to the caller (Policy.generate).
    model.generation_config = GenerationConfig(
        bos_token_id=ids[ENDOFTEXT],
        eos_token_id=[ids[IM_END], ids[ENDOFTEXT]],
        pad_token_id=ids[ENDOFTEXT],
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    tiny_image_processor(config).save_pretrained(out)
    (out / TINY_CONFIG_FILE).write_text(json.dumps(asdict(config), indent=2) + "\n")
    return out
