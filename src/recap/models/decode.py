"""A lean sampling loop for rollouts: the decode steps of ``generate`` without its machinery.

Why not ``model.generate``: on the lab model (and on any small model or small batch) a rollout
step is dominated by per-token overhead, not by matrix products: ``generate`` re-prepares its
inputs, runs a processor pipeline and grows every layer's KV cache with ``torch.cat`` at each
token (a copy of the whole cache per token, quadratic in the completion length). Here the prompt
cache is computed once per prompt (shared by its G samples), each layer's cache gets room for
the whole completion up front and is written in place, and a step is one body call, the output
layer on the last position, and one draw. Full-attention models keep the prompt part once per
prompt and attend with :mod:`recap.models.cascade`; others get it repeated per sample
(:class:`ReservedLayer`, :class:`DecodeMask`).

Sampling is ``generate``'s: float32 scores, banned tokens at -inf, the log-probs of the
unmodified policy recorded before temperature and top-p (transformers' own warpers), one
``torch.multinomial`` per step, rows padded after their stop token. With the same random state
it draws the same tokens as ``generate`` up to float round-off (tests/test_models.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from transformers import (
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    PreTrainedTokenizerBase,
)
from transformers.cache_utils import DynamicLayer
from transformers.generation.logits_process import TemperatureLogitsWarper, TopPLogitsWarper

from recap.models.logprobs import banned_to_neg_inf

__all__ = ["DecodeMask", "ReservedLayer", "SampledLogprobs", "decode_completions", "hf_generate",
           "reserve", "sample_tokens"]


class ReservedLayer(DynamicLayer):
    """A KV-cache layer with room for ``capacity`` positions, written in place.

    ``keys``/``values`` are views of the filled prefix, so everything that reads a
    ``DynamicLayer`` (lengths, masks) sees the same tensors it would after ``torch.cat``.
    """

    def __init__(self, layer: DynamicLayer, capacity: int, rows: int | None = None) -> None:
        """Room for ``capacity`` positions holding ``layer``'s; with ``rows``, that many rows
        start empty (``layer`` then only gives heads, head size and dtype)."""
        super().__init__()
        n, heads, length, dim = layer.keys.shape
        if rows is not None:
            n, length = rows, 0
        self._k = layer.keys.new_empty((n, heads, capacity, dim))
        self._v = layer.values.new_empty((n, heads, capacity, layer.values.shape[-1]))
        if length:
            self._k[:, :, :length] = layer.keys
            self._v[:, :, :length] = layer.values
        self.length = length
        self.device, self.is_initialized = layer.keys.device, True
        self.keys, self.values = self._k[:, :, :length], self._v[:, :, :length]

    def update(self, key_states: Tensor, value_states: Tensor, *args: object,
               **kwargs: object) -> tuple[Tensor, Tensor]:
        end = self.length + key_states.shape[-2]
        if end > self._k.shape[2]:
            raise RuntimeError(f"KV cache reserved for {self._k.shape[2]} positions, got {end}")
        self._k[:, :, self.length:end] = key_states
        self._v[:, :, self.length:end] = value_states
        self.length = end
        self.keys, self.values = self._k[:, :, :end], self._v[:, :, :end]
        return self.keys, self.values

    def batch_select_indices(self, indices: Tensor) -> None:
        """Keep only the rows ``indices`` (the reserved room included)."""
        self._k, self._v = self._k[indices], self._v[indices]
        self.keys, self.values = self._k[:, :, :self.length], self._v[:, :, :self.length]


class DecodeMask:
    """A decode loop's 2D attention mask, grown in place like :class:`ReservedLayer`'s cache."""

    def __init__(self, prompt_mask: Tensor, extra: int) -> None:
        n, length = prompt_mask.shape
        self.allowed = torch.zeros((n, length + extra), dtype=torch.long, device=prompt_mask.device)
        self.allowed[:, :length] = prompt_mask
        self.length = length

    def grow(self) -> Tensor:
        """The mask with one more position: the token fed to the model now."""
        self.allowed[:, self.length] = 1
        self.length += 1
        return self.allowed[:, :self.length]

    def select(self, keep: Tensor) -> None:
        """Keep only the rows ``keep``."""
        self.allowed = self.allowed[keep]


def reserve(cache: object, extra: int) -> object:
    """Give every dynamic layer of ``cache`` room for ``extra`` more positions (in place).

    Layers of other kinds (sliding windows, static caches) are left as they are."""
    layers = getattr(cache, "layers", None)
    if layers is None:
        return cache
    for i, layer in enumerate(layers):
        if type(layer) is DynamicLayer and layer.is_initialized:
            layers[i] = ReservedLayer(layer, layer.get_seq_length() + extra)
    return cache


@torch.no_grad()
def sample_tokens(
    step: Callable[[Tensor], Tensor], head: torch.nn.Module, first_hidden: Tensor, *,
    max_new_tokens: int, temperature: float = 1.0, top_p: float = 1.0,
    banned_ids: Sequence[int] = (), stop_ids: Sequence[int] = (), pad_id: int = 0,
    drop_rows: Callable[[Tensor], None] | None = None,
) -> tuple[Tensor, Tensor]:
    """Draw up to ``max_new_tokens`` tokens per row; ``(tokens [N, L], logprobs [N, L])``.

    ``first_hidden [N, H]`` is the body's last hidden state at each row's last prompt token
    (it predicts the first token); ``step(ids [N, 1])`` then runs the model body on each row's
    latest token against its cache and returns the last hidden state ``[N, H]``; ``head`` maps
    hidden states to logits. ``temperature == 0`` is greedy.
    ``logprobs`` are log pi(token) of the policy with banned tokens removed, before temperature
    and top-p (0 after a row's stop token, where ``tokens`` holds ``pad_id``). Stops early
    once every row has drawn a stop token.

    With ``drop_rows``, rows that have stopped stop costing model time: once a quarter of the
    rows ``step`` still computes have stopped, ``drop_rows(keep)`` tells the caller to keep only
    rows ``keep`` (indices into the rows computed so far; the caller trims its cache, mask and
    positions) and later ``step`` calls get only those rows. The draw still covers every row
    (stopped rows get uniform scores, their tokens are padding), because one
    ``torch.multinomial`` over all N rows consumes the random state as ``generate`` does: the
    same tokens come out either way.
    """
    warpers = []
    if temperature > 0 and temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(temperature))
    if temperature > 0 and top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p))
    n, device = first_hidden.shape[0], first_hidden.device
    stops = torch.tensor(list(stop_ids), dtype=torch.long, device=device)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    live = torch.arange(n, device=device)  # the rows step() computes
    hidden = first_hidden
    tokens: list[Tensor] = []
    logps: list[Tensor] = []
    for i in range(max_new_tokens):
        scores = banned_to_neg_inf(head(hidden).float(), banned_ids)  # [live, V]
        if len(live) < n:  # stopped rows: any valid distribution, their draw is discarded
            scores = scores.new_zeros((n, scores.shape[-1])).index_copy_(0, live, scores)
        logp = torch.log_softmax(scores, dim=-1)
        if temperature > 0:
            for warp in warpers:  # transformers' sampling warpers do not read the ids
                scores = warp(None, scores)
            token = torch.multinomial(torch.softmax(scores, dim=-1), 1)[:, 0]
        else:
            token = scores.argmax(-1)
        token = token.masked_fill(done, pad_id)
        tokens.append(token)
        logps.append(logp.gather(1, token[:, None])[:, 0].masked_fill(done, 0.0))
        done |= torch.isin(token, stops)
        stopped = int(done[live].sum())  # sync: one per step, as the stop test needs anyway
        if stopped == len(live) or i == max_new_tokens - 1:
            break
        if drop_rows is not None and 4 * stopped >= len(live):
            keep = (~done[live]).nonzero()[:, 0]
            drop_rows(keep)
            live = live[keep]
        hidden = step(token[live, None])
    return torch.stack(tokens, 1), torch.stack(logps, 1)


class SampledLogprobs(LogitsProcessor):
    """Records log pi(token) of every sampled token while ``generate`` runs, in O(rows x vocab).

    At step t a logits processor sees the step's scores and, as the last column of ``input_ids``,
    the token drawn at step t-1; so only the previous step's log-softmax is kept. ``generate``
    runs custom processors after its own (only ``suppress_tokens`` here, since ``load_policy``
    swaps the hub generation config for a neutral one: the banned placeholders at -inf,
    as in ``Policy._allowed``) and before the sampling warpers (temperature, top-p), so these
    are log-probs of the unmodified policy (see the module docstring). Scores come in float32.
    """

    def __init__(self) -> None:
        self.previous: Tensor | None = None
        self.steps: list[Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.previous is not None:
            self.steps.append(self.previous.gather(1, input_ids[:, -1:])[:, 0])
        self.previous = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def finish(self, last_tokens: Tensor) -> Tensor:
        """``[rows, L]`` log-probs, given the token drawn at the last step."""
        if self.previous is None:
            raise RuntimeError("generate never called the log-prob recorder")
        last = self.previous.gather(1, last_tokens[:, None])[:, 0]
        self.previous = None
        return torch.stack([*self.steps, last], dim=1)


@torch.no_grad()
def hf_generate(model: torch.nn.Module, prompt: Any, *, temperature: float, top_p: float,
                max_new_tokens: int, banned_ids: Sequence[int], stop_ids: Sequence[int],
                pad_id: int) -> tuple[Tensor, Tensor]:
    """Sample with ``model.generate`` (models without a separable output layer, and the reference
    the lean loop is tested against): ``(tokens, logprobs)``, ``[N, L]`` each, for the rows of
    ``prompt`` (a ``PromptBatch``, one row per sample)."""
    config = GenerationConfig(
        do_sample=temperature > 0,
        temperature=temperature if temperature > 0 else None,
        top_p=top_p if temperature > 0 else None,
        top_k=0,  # the library default (50) would silently truncate the distribution
        repetition_penalty=1.0,
        suppress_tokens=list(banned_ids) or None,
        max_new_tokens=max_new_tokens,
        eos_token_id=list(stop_ids),
        pad_token_id=pad_id,
        return_dict_in_generate=True,
    )
    recorder = SampledLogprobs()
    out = model.generate(
        input_ids=prompt.input_ids, attention_mask=prompt.attention_mask,
        **prompt.token_inputs, **prompt.vision, generation_config=config,
        logits_processor=LogitsProcessorList([recorder]),
    )
    sampled = out.sequences[:, prompt.input_ids.shape[1]:]  # [N, L]
    return sampled, recorder.finish(sampled[:, -1])


def decode_completions(tokenizer: PreTrainedTokenizerBase, ids: Tensor, mask: Tensor) -> list[str]:
    """Decode the masked part of each row of ``ids`` [N, L], dropping special tokens only.

    Tag tokens (``<think>`` ...) are ordinary added tokens in the tiny tokenizer and plain text in
    real ones, so they survive; the end-of-turn token and padding do not.
    """
    lengths = mask.sum(-1).tolist()
    rows = [row[: int(n)] for row, n in zip(ids.tolist(), lengths, strict=True)]
    return tokenizer.batch_decode(rows, skip_special_tokens=True)
