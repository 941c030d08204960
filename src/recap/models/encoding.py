"""Turning Records into chat-formatted model inputs: prompts (left padded) and SFT targets.

Three encoders share one interface, ``encode(records, prompts) -> PromptBatch``:

* ``ProcessorEncoder`` wraps a Hugging Face multimodal processor (``AutoProcessor``): the generic
  path for image-text models whose processor can be built here.
* ``QwenVisionEncoder`` does the same job from the image processor and the tokenizer for the
  Qwen2-VL family (Qwen2-VL, Qwen2.5-VL and the tiny model): their ``AutoProcessor`` also builds a
  video processor, which needs torchvision, a dependency this project does not take. It renders
  the chat template, runs the image processor once on the whole batch, and expands each
  ``<|image_pad|>`` into one token per merged patch group (grid t*h*w / merge^2), as the
  Qwen2.5-VL processor does.
* ``TextEncoder`` for text-only causal LMs (records with images are rejected).

Images come first in the user turn, then the prompt text (one placeholder per image). Vision
tensors travel as one :class:`VisionInputs` mapping that is unpacked straight into the model's
forward; only this module and the policy know its keys.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from PIL import Image
from torch import Tensor
from transformers import PreTrainedTokenizerBase

from recap.tasks.record import Record

# Per-token inputs some processors return next to input_ids (Qwen: modality of each token, used
# for multimodal RoPE; Gemma 3: image-token mask). They extend with zeros (text) over completions.
TOKEN_INPUT_KEYS: tuple[str, ...] = ("mm_token_type_ids", "token_type_ids")
# End-of-turn tokens of common chat formats, tried in order before falling back to eos.
END_OF_TURN_TOKENS: tuple[str, ...] = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>")


@dataclass(frozen=True, eq=False)
class VisionInputs(Mapping[str, Tensor]):
    """The vision tensors of a batch, unpacked into the model forward as ``model(**vision)``.

    Attributes:
        tensors: model input name -> tensor, e.g. Qwen: ``pixel_values`` [num_patches, D] (the
            patches of all images, concatenated) and ``image_grid_thw`` [num_images, 3].
        images_per_row: how many images each batch row owns, in order ([N]).
        rows_per_image: leading-dimension rows each image occupies in per-patch tensors
            (Qwen: t*h*w patches; 1 for models with one tensor row per image).
    """

    tensors: dict[str, Tensor] = field(default_factory=dict)
    images_per_row: tuple[int, ...] = ()
    rows_per_image: tuple[int, ...] = ()

    def __getitem__(self, key: str) -> Tensor:
        return self.tensors[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)

    @property
    def num_images(self) -> int:
        return len(self.rows_per_image)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> VisionInputs:
        """Move tensors to ``device``; floating tensors also cast to ``dtype`` when given."""
        moved = {
            k: v.to(device=device, dtype=dtype if dtype is not None and v.is_floating_point()
                    else v.dtype)
            for k, v in self.tensors.items()
        }
        return VisionInputs(moved, self.images_per_row, self.rows_per_image)

    def select(self, rows: Sequence[int]) -> VisionInputs:
        """The vision inputs of batch ``rows`` (in that order, repeats allowed)."""
        image_start = [0]
        for n in self.images_per_row:
            image_start.append(image_start[-1] + n)
        images = [j for r in rows for j in range(image_start[r], image_start[r + 1])]
        if not self.tensors:
            return VisionInputs({}, tuple(self.images_per_row[r] for r in rows), ())
        patch_start = [0]
        for n in self.rows_per_image:
            patch_start.append(patch_start[-1] + n)
        patches = [p for j in images for p in range(patch_start[j], patch_start[j + 1])]
        image_idx = torch.tensor(images, dtype=torch.long)
        patch_idx = torch.tensor(patches, dtype=torch.long)
        out = {}
        for key, value in self.tensors.items():
            if value.shape[0] == self.num_images:
                out[key] = value.index_select(0, image_idx.to(value.device))
            elif value.shape[0] == patch_start[-1]:
                out[key] = value.index_select(0, patch_idx.to(value.device))
            else:
                raise ValueError(
                    f"vision input {key!r} has leading size {value.shape[0]}: neither the number "
                    f"of images ({self.num_images}) nor of patches ({patch_start[-1]})"
                )
        return VisionInputs(
            out,
            tuple(self.images_per_row[r] for r in rows),
            tuple(self.rows_per_image[j] for j in images),
        )


@dataclass(frozen=True, eq=False)
class PromptBatch:
    """Chat-formatted prompts, left padded, ready for ``generate`` or a teacher-forced forward.

    Attributes:
        input_ids: [N, P] token ids (left padded with the pad id).
        attention_mask: [N, P] 1 on real tokens.
        token_inputs: per-token extras, each [N, P] (see ``TOKEN_INPUT_KEYS``).
        vision: the rows' images as one :class:`VisionInputs` (empty for text-only batches).
    """

    input_ids: Tensor
    attention_mask: Tensor
    token_inputs: dict[str, Tensor]
    vision: VisionInputs

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def select(self, rows: Sequence[int]) -> PromptBatch:
        """Rows ``rows`` of the batch (in that order, repeats allowed)."""
        idx = torch.tensor(list(rows), dtype=torch.long, device=self.input_ids.device)
        return PromptBatch(
            input_ids=self.input_ids.index_select(0, idx),
            attention_mask=self.attention_mask.index_select(0, idx),
            token_inputs={k: v.index_select(0, idx) for k, v in self.token_inputs.items()},
            vision=self.vision.select(rows),
        )

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> PromptBatch:
        """Move to ``device``; floating vision tensors also cast to ``dtype`` when given."""
        return PromptBatch(
            input_ids=self.input_ids.to(device),
            attention_mask=self.attention_mask.to(device),
            token_inputs={k: v.to(device) for k, v in self.token_inputs.items()},
            vision=self.vision.to(device, dtype),
        )


class ChatEncoder(Protocol):
    """Encodes records + user prompts into a left-padded :class:`PromptBatch`."""

    tokenizer: PreTrainedTokenizerBase

    def encode(self, records: Sequence[Record], prompts: Sequence[str]) -> PromptBatch: ...


def _conversations(num_images: Sequence[int], prompts: Sequence[str]) -> list[list[dict]]:
    """One single-turn chat per prompt: image placeholders first, then the text."""
    return [
        [{"role": "user", "content": [{"type": "image"}] * n + [{"type": "text", "text": p}]}]
        for n, p in zip(num_images, prompts, strict=True)
    ]


def _render_chats(records: Sequence[Record], prompts: Sequence[str], chat_template_owner: Any
                  ) -> tuple[list[str], list[int], list[Image.Image]]:
    """Chat texts with one placeholder per image, images per record, and all images in order."""
    if len(records) != len(prompts):
        raise ValueError(f"{len(records)} records but {len(prompts)} prompts")
    images = [r.load_images() for r in records]
    counts = [len(ims) for ims in images]
    texts = chat_template_owner.apply_chat_template(
        _conversations(counts, prompts), tokenize=False, add_generation_prompt=True
    )
    return texts, counts, [im for ims in images for im in ims]


def _rows_per_image(tensors: Mapping[str, Tensor], num_images: int) -> tuple[int, ...]:
    grid = tensors.get("image_grid_thw")
    if grid is not None:  # Qwen-style flat patch layout: t*h*w rows per image
        return tuple(int(n) for n in grid.prod(-1).tolist())
    return (1,) * num_images


class TextEncoder:
    """Chat encoding for text-only causal LMs (tokenizer chat template, no images)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer

    def encode(self, records: Sequence[Record], prompts: Sequence[str]) -> PromptBatch:
        if len(records) != len(prompts):
            raise ValueError(f"{len(records)} records but {len(prompts)} prompts")
        with_images = [r.id for r in records if r.images]
        if with_images:
            raise ValueError(
                f"text-only model cannot take images; records with images: {with_images[:5]}"
            )
        chats = [[{"role": "user", "content": p}] for p in prompts]
        texts = self.tokenizer.apply_chat_template(
            chats, tokenize=False, add_generation_prompt=True
        )
        enc = self.tokenizer(
            texts, padding=True, padding_side="left", add_special_tokens=False,
            return_tensors="pt",
        )
        return PromptBatch(enc["input_ids"], enc["attention_mask"], {},
                           VisionInputs({}, (0,) * len(records), ()))


class QwenVisionEncoder:
    """Qwen2-VL-family encoding from the image processor and tokenizer (no torchvision).

    ``<|image_pad|>`` in the rendered chat expands to ``t*h*w / merge_size^2`` copies per image;
    ``mm_token_type_ids`` marks image (1) and video (2) tokens for multimodal RoPE.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, image_processor: Any,
                 image_token_id: int, video_token_id: int | None = None) -> None:
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.image_token_id = image_token_id
        self.video_token_id = video_token_id
        self.image_token = tokenizer.convert_ids_to_tokens(image_token_id)
        self.merge_length = int(image_processor.merge_size) ** 2

    def encode(self, records: Sequence[Record], prompts: Sequence[str]) -> PromptBatch:
        texts, counts, flat = _render_chats(records, prompts, self.tokenizer)
        tensors: dict[str, Tensor] = {}
        if flat:
            # one image-processor call for the whole batch
            tensors = dict(self.image_processor(images=flat, return_tensors="pt"))
            tokens_per_image = (tensors["image_grid_thw"].prod(-1) // self.merge_length).tolist()
            texts = self._expand(texts, counts, tokens_per_image)
        enc = self.tokenizer(
            texts, padding=True, padding_side="left", add_special_tokens=False,
            return_tensors="pt",
        )
        ids = enc["input_ids"]
        modality = (ids == self.image_token_id).long()  # [N, P]
        if self.video_token_id is not None:
            modality = modality + 2 * (ids == self.video_token_id).long()
        vision = VisionInputs(tensors, tuple(counts), _rows_per_image(tensors, len(flat)))
        return PromptBatch(ids, enc["attention_mask"], {"mm_token_type_ids": modality}, vision)

    def _expand(self, texts: list[str], counts: list[int],
                tokens_per_image: list[int]) -> list[str]:
        out, j = [], 0
        for text, n in zip(texts, counts, strict=True):
            parts = text.split(self.image_token)
            if len(parts) != n + 1:
                raise ValueError(
                    f"chat template produced {len(parts) - 1} {self.image_token} placeholders "
                    f"for {n} images"
                )
            pieces = [parts[0]]
            for part in parts[1:]:
                pieces.append(self.image_token * tokens_per_image[j] + part)
                j += 1
            out.append("".join(pieces))
        return out


class ProcessorEncoder:
    """Chat encoding through a Hugging Face multimodal processor (the generic VLM path)."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        self.tokenizer = processor.tokenizer

    def encode(self, records: Sequence[Record], prompts: Sequence[str]) -> PromptBatch:
        texts, counts, flat = _render_chats(records, prompts, self.processor)
        enc = self.processor(
            text=texts, images=flat or None, padding=True, padding_side="left",
            add_special_tokens=False, return_tensors="pt",
        )
        text_keys = {"input_ids", "attention_mask", *TOKEN_INPUT_KEYS}
        tensors = {k: v for k, v in enc.items() if k not in text_keys and isinstance(v, Tensor)}
        token_inputs = {k: enc[k] for k in TOKEN_INPUT_KEYS if k in enc}
        vision = VisionInputs(tensors, tuple(counts), _rows_per_image(tensors, len(flat)))
        return PromptBatch(enc["input_ids"], enc["attention_mask"], token_inputs, vision)


def end_of_turn_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The token that closes an assistant turn: a known chat end token if present, else eos."""
    vocab = tokenizer.get_vocab()
    for tok in END_OF_TURN_TOKENS:
        if tok in vocab:
            return vocab[tok]
    if tokenizer.eos_token_id is None:
        raise ValueError("tokenizer has no end-of-turn token and no eos token")
    return int(tokenizer.eos_token_id)


def encode_targets(tokenizer: PreTrainedTokenizerBase, targets: Sequence[str], end_id: int,
                   pad_id: int) -> tuple[Tensor, Tensor]:
    """Target completions + end-of-turn token, right padded: ``(ids [N, L], mask [N, L])``.

    Targets are tokenized on their own (not jointly with the prompt), exactly as a sampled
    completion starts fresh after the generation prompt.
    """
    ids = tokenizer(list(targets), add_special_tokens=False)["input_ids"]
    seqs = [[*t, end_id] for t in ids]
    length = max(len(s) for s in seqs)
    out = torch.full((len(seqs), length), pad_id, dtype=torch.long)  # [N, L]
    mask = torch.zeros((len(seqs), length), dtype=torch.long)  # [N, L]
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return out, mask
