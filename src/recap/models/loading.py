"""Loading a model as a :class:`~recap.models.policy.Policy`: hub ids, local checkpoints,
``builtin:base``, its chat encoder (processor, Qwen-style encoder or tokenizer), dtype, LoRA.
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoImageProcessor,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
    GenerationConfig,
    PreTrainedModel,
)
from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
from transformers.processing_utils import ProcessorMixin

from recap.config import LoraSpec
from recap.models.encoding import (
    ChatEncoder,
    ProcessorEncoder,
    QwenVisionEncoder,
    TextEncoder,
    end_of_turn_id,
)
from recap.models.policy import Policy

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32, "fp32": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16,
}
# Config attributes naming the image/video placeholder token across HF VLM families.
PLACEHOLDER_ATTRS: tuple[str, ...] = (
    "image_token_id", "image_token_index", "video_token_id", "video_token_index",
)


def is_image_text(config: Any) -> bool:
    """Whether a model config is an image-text model's (``AutoModelForImageTextToText``)."""
    return config.model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES


def placeholder_ids(config: Any) -> tuple[int, ...]:
    """Token ids that stand for image/video slots in a VLM's input (none for text models)."""
    ids = {getattr(config, name, None) for name in PLACEHOLDER_ATTRS}
    return tuple(sorted(i for i in ids if isinstance(i, int)))


def _resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    if dtype is None:
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; known: {sorted(DTYPES)}") from None


def _build_encoder(name_or_path: str, config: Any, vision: bool) -> ChatEncoder:
    """The chat encoder for a checkpoint: processor, Qwen-style (no torchvision), or text-only."""
    if not vision:
        return TextEncoder(AutoTokenizer.from_pretrained(name_or_path))
    try:
        processor = AutoProcessor.from_pretrained(name_or_path)
    except (ImportError, AttributeError, ValueError, TypeError, OSError):
        # e.g. Qwen2.5-VL's processor also builds a video processor, which needs torchvision
        processor = None
    if isinstance(processor, ProcessorMixin):
        return ProcessorEncoder(processor)
    image_processor = AutoImageProcessor.from_pretrained(name_or_path)
    image_token_id = getattr(config, "image_token_id", None)
    if hasattr(image_processor, "merge_size") and image_token_id is not None:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        return QwenVisionEncoder(tokenizer, image_processor, image_token_id,
                                 getattr(config, "video_token_id", None))
    raise ValueError(
        f"{name_or_path}: no multimodal processor could be loaded and the image processor "
        f"{type(image_processor).__name__} is not of the Qwen2-VL family; install the "
        f"processor's dependencies (e.g. torchvision) for this model"
    )


def _apply_lora(model: PreTrainedModel, lora: LoraSpec | dict) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    spec = lora if isinstance(lora, LoraSpec) else LoraSpec(**lora)
    targets = spec.target_modules
    config = LoraConfig(
        r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout,
        target_modules=targets if isinstance(targets, str) else list(targets),
    )
    return get_peft_model(model, config)


BUILTIN_PREFIX = "builtin:"
BASE_CHECKPOINT = Path(__file__).resolve().parent.parent / "assets" / "base"


def resolve_model_path(name_or_path: str | Path) -> str:
    """``builtin:<name>`` -> the model shipped in ``recap/assets/<name>``; anything else as is.

    A name that can only be a local folder (absolute, ``./``, ``../`` or ``~``, or an existing
    path) must hold a checkpoint (``config.json``): a clear FileNotFoundError otherwise, instead
    of the hub client's complaint about an invalid repository id.
    """
    name = str(name_or_path)
    if name.startswith(BUILTIN_PREFIX):
        path = BASE_CHECKPOINT.parent / name.removeprefix(BUILTIN_PREFIX)
        if not (path / "config.json").exists():
            raise FileNotFoundError(
                f"{name}: no model at {path}; build it with `recap pretrain --out {path}`"
            )
        return str(path)
    local = Path(name).expanduser()
    if name.startswith(("/", "./", "../", "~")) or local.exists():
        if not (local / "config.json").is_file():
            what = "no such folder" if not local.exists() else "no config.json in it"
            raise FileNotFoundError(f"model {name!r}: {what}; expected a checkpoint folder "
                                    f"(save_pretrained), a hub id or builtin:base")
        return str(local)
    return name


def load_policy(name_or_path: str | Path, dtype: str | torch.dtype | None = None,
                device: str | torch.device | None = None, lora: LoraSpec | dict | None = None,
                gradient_checkpointing: bool = False) -> Policy:
    """Load any HF image-text model or causal LM (hub id or local directory) as a Policy.

    Image-text models (``AutoModelForImageTextToText``) use the checkpoint's processor, or the
    Qwen2-VL-family encoder when the processor needs torchvision; other models load as
    ``AutoModelForCausalLM`` + tokenizer. ``dtype`` defaults to bfloat16 on CUDA and float32 on
    CPU; ``device`` to CUDA when available. ``lora`` (a :class:`LoraSpec` or its fields as a
    dict) wraps the model with peft LoRA so only adapter weights train.
    """
    name = resolve_model_path(name_or_path)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch_dtype = _resolve_dtype(dtype, device)
    auto = (AutoModelForImageTextToText if is_image_text(AutoConfig.from_pretrained(name))
            else AutoModelForCausalLM)
    model = auto.from_pretrained(name, dtype=torch_dtype, attn_implementation="sdpa").to(device)
    policy = policy_from_model(model, name)
    # Sampling settings belong to Policy.generate; the checkpoint's (temperature, top_k,
    # repetition penalty ...) would otherwise fill every knob generate() leaves unset.
    model.generation_config = GenerationConfig(eos_token_id=list(policy.stop_ids),
                                               pad_token_id=policy.pad_id)
    if gradient_checkpointing:
        # non-reentrant checkpointing works with frozen inputs (LoRA) without extra hooks
        enable = getattr(model, "activation_checkpointing_enable", None)  # transformers >= 5.x
        if enable is not None:
            enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False})
    if lora is not None:
        policy = replace(policy, model=_apply_lora(model, lora))
    return policy


def policy_from_model(model: PreTrainedModel, name_or_path: str | Path) -> Policy:
    """A Policy around a model that is already built (e.g. the one a TRL trainer holds).

    The chat encoder (processor or tokenizer) is loaded from ``name_or_path``; the model and its
    generation config are used as they are.
    """
    name = resolve_model_path(name_or_path)
    encoder = _build_encoder(name, model.config, is_image_text(model.config))
    tokenizer = encoder.tokenizer
    hub_config = model.generation_config
    end_id = end_of_turn_id(tokenizer)
    hub_eos = hub_config.eos_token_id
    hub_eos = [] if hub_eos is None else [hub_eos] if isinstance(hub_eos, int) else list(hub_eos)
    stop_ids = tuple(sorted({end_id, *hub_eos} | (
        {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else end_id
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return Policy(
        model=model,
        encoder=encoder,
        name=name,
        stop_ids=stop_ids,
        end_id=end_id,
        pad_id=pad_id,
        banned_ids=placeholder_ids(model.config),
        hub_generation_config=hub_config,
        _mrope=any(hasattr(m, "get_rope_index") for m in base.modules()),
        _logits_to_keep="logits_to_keep" in inspect.signature(base.forward).parameters,
    )
