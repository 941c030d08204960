"""The Policy adapter: one interface over any Hugging Face image-text model or causal LM.

Everything model-specific (chat formatting, image placeholders, vision tensor keys, positions)
stays here and in :mod:`recap.models.encoding`; the trainer and evaluator see records, prompts,
texts and ``[B*G, L]`` tensors (docs/architecture.md, "Policy").

Layout of every teacher-forced forward: ``[left-padded prompt | right-padded completion]``, the
same layout ``generate`` produces, so a completion's log-probs under a full forward equal those
recorded while sampling (up to float round-off).

Log-probs convention: ``Generation.logprobs`` and ``completion_logprobs`` are log-softmax of the
*raw* logits, i.e. log pi(token) of the unmodified policy, whatever the sampling temperature or
top-p: that is the pi_old / pi_ref the GRPO ratio and k3 KL need (jigsaw-RFT, appendix A). With
temperature != 1 or top_p < 1 the tokens are drawn from a modified distribution, so the ratio is
then an approximation (as in TRL and verl, which make the same choice by default).

Vision placeholder tokens (``<|image_pad|>``, ``<|video_pad|>``, ...) are removed from the policy's
vocabulary: their logits are set to -inf in sampling, log-probs and the SFT loss alike. A sampled
placeholder would be read as an image slot by the teacher-forced forward and break it, and an
untrained model does sample them. So pi is the softmax over the other tokens, consistently.

Sampling runs recap's own decode loop (:mod:`recap.models.decode`: each prompt encoded once
for its G samples and, with full attention, its keys/values read once per decode step for all G
(:mod:`recap.models.cascade`), the KV cache written in place, one body call per token, the
global torch RNG)
and draws what ``model.generate`` draws; models without a separable output layer use
``model.generate``. ``Generation.logprobs`` is recorded one step at a time while sampling (in
``generate`` by a logits processor, :class:`SampledLogprobs`), not from ``output_logits``, which
would hold L x B*G x vocab floats until the call returns (~40 GB for a 150k vocabulary, 64 rows
and 1,024 new tokens).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from transformers import GenerationConfig, PreTrainedTokenizerBase

from recap.models import cascade, decode, logprobs, prefill
from recap.models.decode import decode_completions
from recap.models.encoding import ChatEncoder, PromptBatch, encode_targets
from recap.models.generation import Generation
from recap.tasks.record import Record


@dataclass(eq=False)
class Policy:
    """A generative model with its chat encoder; see the module docstring for conventions.

    Build it with :func:`load_policy`. ``model`` is the (possibly peft-wrapped) torch module: the
    trainer owns its train/eval mode and optimiser; ``generate`` samples in eval mode and
    restores the previous mode.
    """

    model: torch.nn.Module = field(repr=False)
    encoder: ChatEncoder = field(repr=False)
    name: str = ""
    stop_ids: tuple[int, ...] = ()
    end_id: int = 0
    pad_id: int = 0
    banned_ids: tuple[int, ...] = ()
    hub_generation_config: GenerationConfig | None = field(default=None, repr=False)
    # Sample with the lean loop (recap.models.decode); False: with ``model.generate``.
    lean_decode: bool = field(default=True, repr=False)
    _mrope: bool = field(default=False, repr=False)
    _logits_to_keep: bool = field(default=False, repr=False)

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        return self.encoder.tokenizer

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad]

    def encode(self, records: Sequence[Record], prompts: Sequence[str]) -> PromptBatch:
        """Chat-formatted, left-padded prompts of ``records`` on the model's device."""
        return self.encoder.encode(records, prompts).to(self.device, self.dtype)

    @torch.no_grad()
    def generate(self, records: Sequence[Record], prompts: Sequence[str], num_samples: int = 1,
                 temperature: float = 1.0, top_p: float = 1.0, max_new_tokens: int = 64,
                 keep_prefill: bool = False) -> Generation:
        """Sample ``num_samples`` completions per record, batched and KV-cached.

        Sampling stops at the end-of-turn token or eos. ``temperature=0`` means greedy decoding.
        Returns a :class:`Generation` with B*G rows. ``keep_prefill``: run the prompt pass with
        grad and keep it on the generation for the first :meth:`completion_logprobs` of it
        (a trainer's loss forward), which then does not encode the prompts again; kept only
        where that forward would compute the same (see :mod:`recap.models.prefill`).
        """
        if num_samples < 1 or max_new_tokens < 1:
            raise ValueError("num_samples and max_new_tokens must be >= 1")
        unique = self.encode(records, prompts)  # [B, P]
        prompt = unique.select([i for i in range(len(records)) for _ in range(num_samples)])
        split = logprobs.body_and_head(self.model)
        was_training = self.model.training
        kept = None
        self.model.eval()
        try:
            if split is not None and self.lean_decode:
                sampled, token_logp, kept = self._decode(
                    *split, unique, prompt, temperature, top_p, max_new_tokens,
                    keep_prefill and prefill.train_equivalent(self.model))
            else:
                sampled, token_logp = decode.hf_generate(
                    self.model, prompt, temperature=temperature, top_p=top_p,
                    max_new_tokens=max_new_tokens, banned_ids=self.banned_ids,
                    stop_ids=self.stop_ids, pad_id=self.pad_id)
        finally:
            self.model.train(was_training)
        is_stop = torch.isin(sampled, torch.tensor(self.stop_ids, device=sampled.device))
        # keep tokens up to and including the first stop token
        stops_before = (is_stop.long().cumsum(-1) - is_stop.long()) > 0  # [B*G, L]
        mask = (~stops_before).long()
        ids = sampled.masked_fill(stops_before, self.pad_id)
        return Generation(
            texts=decode_completions(self.tokenizer, ids, mask),
            completion_ids=ids,
            completion_mask=mask,
            logprobs=token_logp * mask,
            prompt_index=torch.arange(len(records)).repeat_interleave(num_samples),
            prompt=prompt,
            finished=is_stop.any(-1),
            num_samples=num_samples,
            prefill=kept,
        )

    def _decode(self, body: torch.nn.Module, head: torch.nn.Module, unique: PromptBatch,
                rows: PromptBatch, temperature: float, top_p: float, max_new_tokens: int,
                keep: bool) -> tuple[Tensor, Tensor, prefill.Prefill | None]:
        """Sample with :func:`recap.models.decode.sample_tokens`: each ``unique`` prompt encoded
        once (with its images), its last hidden state predicting the first token; the rows then
        decode one token per body call against that cache. Full-attention models keep the
        prompt part once per prompt and attend with :mod:`recap.models.cascade`; others get the
        cache repeated for the prompt's ``rows`` with room for the completion. ``keep``: the
        prompt pass runs with grad and is returned as a :class:`~recap.models.prefill.Prefill`
        (full-attention models only: the decode reads its keys/values detached)."""
        num_samples = len(rows) // len(unique)
        text = getattr(body, "language_model", body)
        with torch.enable_grad() if keep else torch.inference_mode():
            out, cache = self._prompt_cache(body, unique)
            last = out.last_hidden_state[:, -1:]  # [B, 1, H] (a view taken with grad on)
        shared = cascade.supports(text, cache)  # the decode leaves the prompt cache as it is
        kept = None
        if keep and shared:
            kept = prefill.Prefill(self.model, last, cache,
                                   getattr(body, "rope_deltas", None) if self._mrope else None)
        # inference mode: less per-op bookkeeping than no_grad in a loop of small ops; its
        # outputs are cloned out, as training later saves them for backward
        with torch.inference_mode():
            sampled, token_logp = self._sample(body, text, head, last, cache, shared, unique,
                                               rows, num_samples, temperature, top_p,
                                               max_new_tokens)
        return sampled.clone(), token_logp.clone(), kept

    def _sample(self, body: torch.nn.Module, text: torch.nn.Module, head: torch.nn.Module,
                last: Tensor, cache: Any, shared: bool, unique: PromptBatch, rows: PromptBatch,
                num_samples: int, temperature: float, top_p: float,
                max_new_tokens: int) -> tuple[Tensor, Tensor]:
        """:meth:`_decode`'s loop, from the prompt pass: each prompt's last hidden state
        ``last [B, 1, H]`` and its ``cache``; ``shared``: read it once per prompt
        (:mod:`recap.models.cascade`), else repeat it per row."""
        position = _positions(rows.attention_mask)[:, -1:] + 1  # the first new token's [N, 1]
        delta = None
        if self._mrope and len(unique.vision):  # text positions after the image grid
            delta = body.rope_deltas.repeat_interleave(num_samples, dim=0)[None]  # [1, N, 1]
        # Completion tokens are text: a VLM's language model runs them without the wrapper
        # that dispatches images (~10 % of a decode step on the lab model).
        cache_kw = _cache_kwarg(text)
        if shared:
            state = cascade.CascadeState(cache, num_samples, unique.attention_mask,
                                         max_new_tokens)
            cache = state.cache
            masks, select, attention = state.masks, state.select, cascade.cascade_decoding(text)
        else:
            cache.batch_repeat_interleave(num_samples)
            decode.reserve(cache, max_new_tokens)
            mask = decode.DecodeMask(rows.attention_mask, max_new_tokens)
            masks, select, attention = mask.grow, mask.select, contextlib.nullcontext()

        def step(ids: Tensor) -> Tensor:
            nonlocal position
            pos = position if delta is None else position[None].expand(3, -1, -1) + delta
            out = text(input_ids=ids, attention_mask=masks(), position_ids=pos, use_cache=True,
                       **{cache_kw: cache})
            position = position + 1
            return out.last_hidden_state[:, -1]

        def drop_rows(keep: Tensor) -> None:  # rows that stopped leave the batch
            nonlocal position, delta
            select(keep)
            position = position[keep]
            delta = None if delta is None else delta[:, keep]
            cache.batch_select_indices(keep)

        first = last[:, 0].repeat_interleave(num_samples, dim=0)  # [N, H]
        with attention:
            return decode.sample_tokens(
                step, head, first, max_new_tokens=max_new_tokens,
                temperature=temperature, top_p=top_p, banned_ids=self.banned_ids,
                stop_ids=self.stop_ids, pad_id=self.pad_id, drop_rows=drop_rows)

    def _prompt_cache(self, body: torch.nn.Module, prompt: PromptBatch) -> tuple[Any, Any]:
        """``body`` on ``prompt`` with a KV cache: ``(output, cache)``. Positions as
        ``generate`` uses them; mRoPE models derive theirs (and ``rope_deltas``) from the image
        grid."""
        kwargs: dict[str, Any] = dict(prompt.token_inputs)
        if not (self._mrope and len(prompt.vision)):
            kwargs["position_ids"] = _positions(prompt.attention_mask)
        out = body(input_ids=prompt.input_ids, attention_mask=prompt.attention_mask,
                   use_cache=True, **kwargs, **prompt.vision)
        return out, out.cache if hasattr(out, "cache") else out.past_key_values

    def completion_logprobs(self, gen: Generation) -> Tensor:
        """Teacher-forced log pi(token) of ``gen``'s completions: [B*G, L], 0 where masked.

        Differentiable when grad is enabled. In eval mode (no dropout) it equals
        ``gen.logprobs`` up to float round-off.
        """
        kept = gen.prefill.take(self.model) if gen.prefill is not None else None
        logp, _ = self._token_logprobs(gen.prompt, gen.completion_ids, gen.completion_mask,
                                       groups=gen.prompt_index, kept=kept)
        return logp

    def target_logprobs(self, records: Sequence[Record], prompts: Sequence[str],
                        targets: Sequence[str]) -> tuple[Tensor, Tensor, Tensor]:
        """Teacher-forced log-probs of target completions (+ end-of-turn token).

        Returns ``(logprobs [B, L], mask [B, L], correct [B, L])`` where ``correct`` is
        1 where the argmax prediction equals the target token (0 on padding).
        """
        prompt = self.encode(records, prompts)
        ids, mask = encode_targets(self.tokenizer, targets, self.end_id, self.pad_id)
        ids, mask = ids.to(self.device), mask.to(self.device)
        logp, correct = self._token_logprobs(prompt, ids, mask)
        return logp, mask, correct.long() * mask

    def sft_loss(self, records: Sequence[Record], prompts: Sequence[str],
                 targets: Sequence[str]) -> tuple[Tensor, Tensor]:
        """Next-token cross-entropy on target tokens only, and token accuracy.

        loss = -(1 / sum_i |y_i|) * sum_i sum_t log pi(y_i,t | prompt_i, y_i,<t), the token-level
        mean over every target token of the batch (end-of-turn token included; prompt tokens and
        padding excluded). Token accuracy is the fraction of those tokens where the argmax equals
        the target (detached), the next-token-accuracy signal of the RECAP paper section 4.
        Returns ``(loss, token_acc)`` as 0-dim tensors.
        """
        logprobs, mask, correct = self.target_logprobs(records, prompts, targets)
        count = mask.sum().clamp(min=1)
        return -logprobs.sum() / count, (correct.sum() / count).detach()

    def save(self, path: str | Path) -> Path:
        """Write a standalone Hugging Face checkpoint (weights + tokenizer/processor) to ``path``.

        A LoRA policy is saved merged (a copy of the model with the adapters folded in), so
        the directory loads with ``load_policy(path)`` like any checkpoint.
        """
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        model = self.model
        if hasattr(model, "merge_and_unload"):
            model = copy.deepcopy(model).merge_and_unload()
        sampling_config = model.generation_config
        if self.hub_generation_config is not None:
            model.generation_config = self.hub_generation_config
        try:
            model.save_pretrained(out)
        finally:
            model.generation_config = sampling_config
        owner = getattr(self.encoder, "processor", None) or self.tokenizer
        owner.save_pretrained(out)
        image_processor = getattr(self.encoder, "image_processor", None)
        if image_processor is not None:
            image_processor.save_pretrained(out)
        return out

    def _token_logprobs(self, prompt: PromptBatch, ids: Tensor, mask: Tensor,
                        groups: Tensor | None = None,
                        kept: prefill.Prefill | None = None) -> tuple[Tensor, Tensor]:
        """``log pi(ids)`` and ``argmax == ids`` per completion token ([N, L], 0 where masked).

        Never holds the [N, L, V] logits: the body's last hidden states go through the output
        layer a chunk of tokens at a time, checkpointed (:mod:`recap.models.logprobs`). Models
        whose logits are not ``lm_head(last hidden state)`` take the full-logits path.
        """
        split = logprobs.body_and_head(self.model)
        if split is None:
            logits = self._completion_logits(prompt, ids, mask)
            allowed = self._allowed(logits)
            logp = -F.cross_entropy(allowed.transpose(1, 2), ids, reduction="none")
            return logp * mask, (allowed.detach().argmax(-1) == ids) & mask.bool()
        body, head = split
        if groups is not None and int(groups.unique().numel()) < len(groups):
            hidden = self._shared_prefix_hidden(body, prompt, ids, mask, groups, kept)
        else:
            out = self._completion_inputs_forward(body, prompt, ids, mask)
            hidden = out.last_hidden_state[:, -(ids.shape[1] + 1):-1]  # predicts each token
        keep = mask.bool()
        logp, correct = logprobs.token_logprobs(hidden[keep], head, ids[keep], self.banned_ids)
        full = torch.zeros(mask.shape, dtype=logp.dtype, device=logp.device)
        hits = torch.zeros(mask.shape, dtype=torch.bool, device=logp.device)
        return full.masked_scatter(keep, logp), hits.masked_scatter(keep, correct)

    def _shared_prefix_hidden(self, body: torch.nn.Module, prompt: PromptBatch, ids: Tensor,
                              mask: Tensor, groups: Tensor,
                              kept: prefill.Prefill | None = None) -> Tensor:
        """Hidden states predicting each completion token ([N, L, H]), each prompt (and its
        images) encoded once for all rows that share it.

        The prompts' keys and values are computed once, repeated for their rows, and the
        completions attend to them (the idea of "Prefix Grouper", 2025); gradients flow through
        the shared keys and values into the prompt's computation, so values and gradients equal
        the row-by-row forward up to float round-off (tests/test_models.py). The first
        completion token is predicted from the prompt's last position. ``kept``: the prompt
        pass already ran (while sampling, prompts in ``groups`` order) and is used as is.
        """
        first: dict[int, int] = {}  # prompt -> its first row
        for row, g in enumerate(groups.tolist()):
            first.setdefault(g, row)
        slot = {g: i for i, g in enumerate(first)}  # prompt -> its row in the unique batch
        unique = list(first.values())
        inverse = torch.tensor([slot[g] for g in groups.tolist()], device=ids.device)
        shared = prompt.select(unique)
        if kept is not None and list(first) == list(range(len(kept.last))):
            last, cache, deltas = kept.last, kept.cache, kept.rope_deltas
        else:
            out, cache = self._prompt_cache(body, shared)
            last, deltas = out.last_hidden_state[:, -1:], getattr(body, "rope_deltas", None)
        cache.batch_select_indices(inverse)  # [B, ...] -> [N, ...], differentiable indexing
        full = torch.cat([prompt.attention_mask, mask.to(prompt.attention_mask)], 1)
        positions = _positions(full)[:, -ids.shape[1]:]  # [N, L]
        if self._mrope and len(shared.vision):  # text positions after the image grid
            delta = deltas.index_select(0, inverse)  # [N, 1], set by the prompt pass
            positions = positions[None].expand(3, -1, -1) + delta[None]
        rest = body(input_ids=ids, attention_mask=full, position_ids=positions, use_cache=True,
                    **{_cache_kwarg(body): cache})
        return torch.cat([last.index_select(0, inverse), rest.last_hidden_state[:, :-1]], 1)

    def _completion_logits(self, prompt: PromptBatch, completion_ids: Tensor,
                           completion_mask: Tensor) -> Tensor:
        """Logits predicting each completion token: [N, L, V] from ``[prompt | completion]``."""
        length = completion_ids.shape[1]
        out = self._completion_inputs_forward(self.model, prompt, completion_ids, completion_mask,
                                              logits_to_keep=length + 1)
        return out.logits[:, -(length + 1):-1]  # [N, L, V]

    def _completion_inputs_forward(self, module: torch.nn.Module, prompt: PromptBatch,
                                   completion_ids: Tensor, completion_mask: Tensor,
                                   logits_to_keep: int | None = None) -> Any:
        """``module`` (the model, or its body without the output layer) on
        ``[prompt | completion]`` with the positions ``generate`` used."""
        n, length = completion_ids.shape
        ids = torch.cat([prompt.input_ids, completion_ids], 1)  # [N, P+L]
        mask = torch.cat([prompt.attention_mask, completion_mask.to(prompt.attention_mask)], 1)
        zeros = torch.zeros((n, length), dtype=torch.long, device=ids.device)
        kwargs: dict[str, Any] = {
            k: torch.cat([v, zeros.to(v.dtype)], 1) for k, v in prompt.token_inputs.items()
        }
        if not (self._mrope and len(prompt.vision)):
            # The positions generate() uses (RoPE would not mind a per-row shift, absolute
            # position embeddings would); mRoPE models derive theirs from the image grid.
            kwargs["position_ids"] = _positions(mask)  # [N, P+L]
        if self._logits_to_keep and logits_to_keep is not None:
            kwargs["logits_to_keep"] = logits_to_keep
        return module(input_ids=ids, attention_mask=mask, use_cache=False,
                      **kwargs, **prompt.vision)

    def _allowed(self, logits: Tensor) -> Tensor:
        """``logits`` in float32 with the banned (vision placeholder) tokens at -inf."""
        return logprobs.banned_to_neg_inf(logits.float(), self.banned_ids)


def _positions(mask: Tensor) -> Tensor:
    """Position ids of a left-padded batch as ``generate`` assigns them (0 on padding)."""
    return (mask.cumsum(-1) - 1).clamp(min=0) * mask


def _cache_kwarg(module: torch.nn.Module) -> str:
    """The KV-cache keyword of ``module.forward`` (``cache`` from transformers 5.x on)."""
    return "cache" if "cache" in inspect.signature(module.forward).parameters \
        else "past_key_values"
