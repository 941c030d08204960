"""Cascade decode attention: each prompt's keys and values are read once for its G samples.

In a decode step every sample attends to its prompt's keys and values and to its own completion
so far. With the prompt cache repeated for the G samples (what ``generate`` does after
``num_return_sequences``), a step reads G copies of every prompt's keys and values per layer,
and on small models decode attention is bound by that memory traffic (docs/results/benchmarks).
Here the prompt part is stored once per prompt, ``[B, kv_heads, P, D]``, the completion part
once per row, ``[N, kv_heads, T, D]``, and attention is computed over the two parts separately
and merged with their log-sum-exps (the "cascade" or shared-prefix decoding of FlashInfer and
Hydragen, 2024):

    o = (e^{l_p} o_p + e^{l_c} o_c) / (e^{l_p} + e^{l_c}),

where ``o_p, l_p`` (``o_c, l_c``) are the attention output and log-sum-exp of the scores over the
prompt (completion) keys. This equals attention over ``[prompt | completion]`` up to float
round-off (tests/test_models.py).

It plugs into a transformers model as an attention function (``AttentionInterface``) selected
for the duration of a decode loop by :func:`cascade_decoding`: the model's own layers compute
q/k/v, RoPE and the output projection; the cache's layers are :class:`CascadeLayer`, and the
decode step hands the :class:`CascadeState` to the layers as their attention mask (transformers
passes a per-layer-type mask dict through untouched, as ``generate`` does).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor
from transformers import AttentionInterface
from transformers.cache_utils import Cache, DynamicLayer

from recap.models.decode import ReservedLayer

__all__ = ["CascadeLayer", "CascadeState", "cascade_attention", "cascade_decoding", "supports"]

NAME = "recap_cascade"


class CascadeLayer(ReservedLayer):
    """One layer's cache: the prompts' keys/values once per prompt, the rows' completions in
    room reserved for ``capacity`` tokens and written in place.

    ``update`` returns the completion part only; :func:`cascade_attention` reads the prompt part
    from here. ``get_seq_length`` counts both, as a row sees them.
    """

    def __init__(self, layer: DynamicLayer, rows: int, capacity: int) -> None:
        super().__init__(layer, capacity, rows=rows)
        # [B, kv, P, D], read only; detached: a prompt pass kept for the loss keeps its graph
        self.prompt_keys, self.prompt_values = layer.keys.detach(), layer.values.detach()
        self.prompt_length = layer.keys.shape[2]

    def get_seq_length(self) -> int:
        return self.prompt_length + self.length


class CascadeState:
    """What a decode step's attention needs besides q/k/v: every layer's prompt part, the
    prompts' padding (as an additive mask) and each computed row's slot ``prompt * G + sample``.
    Passed to the model as the attention mask of its full-attention layers; ``cache`` is the
    decode loop's cache (its layers are :class:`CascadeLayer`); the prompt's ``cache`` it is
    built from is left as it is."""

    def __init__(self, cache: Any, num_samples: int, prompt_mask: Tensor, capacity: int) -> None:
        rows = prompt_mask.shape[0] * num_samples
        self.layers = [CascadeLayer(layer, rows, capacity) for layer in cache.layers]
        self.cache = Cache(layers=list(self.layers))
        self.num_prompts, self.num_samples = prompt_mask.shape[0], num_samples
        bias = torch.zeros(prompt_mask.shape, dtype=self.layers[0].prompt_keys.dtype,
                           device=prompt_mask.device)
        self.prompt_bias = bias.masked_fill(~prompt_mask.bool(), float("-inf"))[:, None, None]
        self.slots = torch.arange(rows, device=prompt_mask.device)

    def select(self, keep: Tensor) -> None:
        """Keep only the rows ``keep`` (the cache's layers are trimmed by the cache itself)."""
        self.slots = self.slots[keep]

    def masks(self) -> dict[str, CascadeState]:
        """The ``attention_mask`` argument of a decode step."""
        return {"full_attention": self}


def _attend(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None,
            scale: float) -> tuple[Tensor, Tensor]:
    """Attention of ``q [n, h, m, d]`` over ``k, v [n, h, s, d]``: ``(out [n, h, m, d],
    log-sum-exp [n, h, m])``. SDPA does not return the log-sum-exp; on CPU its flash kernel
    does (one fused call)."""
    if q.device.type == "cpu" and q.dtype == torch.float32:
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, v, 0.0, False, attn_mask=bias, scale=scale)
        return out, lse
    return _attend_any_device(q, k, v, bias, scale)


def _attend_any_device(q: Tensor, k: Tensor, v: Tensor, bias: Tensor | None,
                       scale: float) -> tuple[Tensor, Tensor]:
    """:func:`_attend` written out in three small products (scores in float32)."""
    scores = torch.matmul(q, k.transpose(-1, -2)).float() * scale
    if bias is not None:
        scores = scores + bias
    lse = torch.logsumexp(scores, dim=-1)
    out = torch.matmul(torch.exp(scores - lse[..., None]).to(v.dtype), v)
    return out, lse


def cascade_attention(module: torch.nn.Module, query: Tensor, key: Tensor, value: Tensor,
                      attention_mask: CascadeState, scaling: float | None = None,
                      **kwargs: object) -> tuple[Tensor, None]:
    """A transformers attention function for one decode token per row.

    ``query [N, H, 1, D]``; ``key``/``value``: the rows' completion parts ``[N, kv, T, D]`` (what
    :meth:`CascadeLayer.update` returned); ``attention_mask``: the :class:`CascadeState`.
    Returns ``([N, 1, H, D], None)`` like transformers' SDPA function.
    """
    state = attention_mask
    layer = state.layers[module.layer_idx]
    n, heads, length, dim = query.shape
    if length != 1:
        raise ValueError("cascade attention decodes one token per row")
    kv_heads = key.shape[1]
    group = heads // kv_heads  # grouped-query attention: query heads per key/value head
    scale = dim ** -0.5 if scaling is None else scaling
    # Prompt part: every slot's query (G samples x the heads sharing a key/value head) attends
    # to its prompt's keys at once; slots of rows no longer computed get a zero query.
    total = state.num_prompts * state.num_samples
    every = len(state.slots) == total  # no row has left yet: slots are the rows, in order
    q = query[:, :, 0] if every else query.new_zeros((total, heads, dim)).index_copy(
        0, state.slots, query[:, :, 0])
    q = q.view(state.num_prompts, state.num_samples, kv_heads, group, dim)
    q = q.permute(0, 2, 3, 1, 4).reshape(state.num_prompts, kv_heads, group * state.num_samples,
                                         dim)
    out_p, lse_p = _attend(q, layer.prompt_keys, layer.prompt_values, state.prompt_bias, scale)
    out_p = out_p.view(state.num_prompts, kv_heads, group, state.num_samples, dim)
    out_p = out_p.permute(0, 3, 1, 2, 4).reshape(total, heads, dim)
    lse_p = lse_p.view(state.num_prompts, kv_heads, group, state.num_samples)
    lse_p = lse_p.permute(0, 3, 1, 2).reshape(total, heads)
    if not every:
        out_p, lse_p = out_p.index_select(0, state.slots), lse_p.index_select(0, state.slots)
    # Completion part: each row over its own tokens, no padding among them.
    out_c, lse_c = _attend(query.view(n, kv_heads, group, dim), key, value, None, scale)
    out_c, lse_c = out_c.reshape(n, heads, dim), lse_c.reshape(n, heads)
    # The merge above, as e^{l_p} / (e^{l_p} + e^{l_c}) = sigmoid(l_p - l_c), in float32
    # (the log-sum-exps are float32; lerp wants one dtype).
    weight = torch.sigmoid(lse_p.float() - lse_c.float())[..., None]
    out = torch.lerp(out_c.float(), out_p.float(), weight)
    return out.to(query.dtype)[:, None], None


AttentionInterface.register(NAME, cascade_attention)


def supports(text_model: torch.nn.Module, cache: Any) -> bool:
    """Whether :func:`cascade_decoding` applies: every cache layer a plain dynamic layer of a
    full-attention model."""
    layers = getattr(cache, "layers", None)
    types = set(getattr(text_model.config, "layer_types", None) or ["full_attention"])
    return (bool(layers) and all(type(x) is DynamicLayer and x.is_initialized for x in layers)
            and types == {"full_attention"})


@contextmanager
def cascade_decoding(text_model: torch.nn.Module) -> Iterator[None]:
    """Within the block, ``text_model``'s attention layers call :func:`cascade_attention`."""
    config = text_model.config
    previous = config._attn_implementation
    config._attn_implementation_internal = NAME  # the text config alone, not the vision tower's
    try:
        yield
    finally:
        config._attn_implementation_internal = previous
