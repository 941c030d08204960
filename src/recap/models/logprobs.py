"""Log-probs of given tokens without a [rows, tokens, vocabulary] logits tensor.

The output layer is applied to a model body's last hidden states a chunk of tokens at a time,
each chunk checkpointed (its logits recomputed in the backward), so memory does not grow with
vocabulary x tokens: at Qwen2.5-VL's 151,936 tokens one float32 logits tensor of 64 rows x 1,024
tokens is ~40 GB (benchmarks/logprob_memory.py). Used by :class:`recap.models.policy.Policy`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

# Float32 logits one chunk of ``token_logprobs`` may hold (its gradient doubles it in backward).
LOGIT_CHUNK_BYTES = 64 * 2**20
# Config attributes of model families whose logits are more than lm_head(hidden): softcapping,
# a logit scale; they keep the full-logits path.
_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "logits_scaling")


def body_and_head(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.Linear] | None:
    """(body returning ``last_hidden_state``, output layer) of a HF model, or None.

    Transformers' causal-LM and image-text classes compute ``logits = lm_head(body(...)[0])``
    with the body at ``.model`` (peft keeps that layout under ``get_base_model()``, with the
    adapters injected in place).
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    body = getattr(base, "model", None)
    head = base.get_output_embeddings() if hasattr(base, "get_output_embeddings") else None
    config = getattr(base, "config", None)
    configs = [config, getattr(config, "text_config", None)]
    if any(getattr(c, a, None) for c in configs for a in _LOGIT_TRANSFORMS):
        return None
    if not isinstance(body, torch.nn.Module) or not isinstance(head, torch.nn.Linear):
        return None
    return body, head


def token_logprobs(hidden: Tensor, head: torch.nn.Linear, ids: Tensor,
                   banned_ids: Sequence[int] = (), chunk_bytes: int | None = None
                   ) -> tuple[Tensor, Tensor]:
    """``log softmax(head(hidden))[ids]`` and ``argmax == ids`` for T tokens ([T, H] -> [T]).

    Works a chunk of tokens at a time so that at most ``chunk_bytes`` of float32 logits exist
    at once; with grad enabled each chunk is checkpointed (its logits are recomputed in the
    backward rather than stored), so memory does not grow with the vocabulary x tokens. Banned
    ids get probability 0 (their logits at -inf), as everywhere in the Policy.
    """
    chunk = max(1, (chunk_bytes or LOGIT_CHUNK_BYTES) // (4 * head.out_features))
    banned = tuple(banned_ids)
    logps, hits = [], []
    for start in range(0, hidden.shape[0], chunk):
        h, t = hidden[start:start + chunk], ids[start:start + chunk]
        if torch.is_grad_enabled() and (h.requires_grad or head.weight.requires_grad):
            lp, hit = checkpoint(_chunk_logprobs, h, t, head.weight, head.bias, banned,
                                 use_reentrant=False)
        else:
            lp, hit = _chunk_logprobs(h, t, head.weight, head.bias, banned)
        logps.append(lp)
        hits.append(hit)
    if not logps:
        return hidden.new_zeros(0, dtype=torch.float32), ids.new_zeros(0, dtype=torch.bool)
    return torch.cat(logps), torch.cat(hits)


def _chunk_logprobs(hidden: Tensor, ids: Tensor, weight: Tensor, bias: Tensor | None,
                    banned: tuple[int, ...]) -> tuple[Tensor, Tensor]:
    logits = banned_to_neg_inf(F.linear(hidden, weight, bias).float(), banned)  # [t, V]
    logp = logits.gather(-1, ids[:, None]).squeeze(-1) - logits.logsumexp(-1)
    return logp, logits.detach().argmax(-1) == ids


def banned_to_neg_inf(logits: Tensor, banned: Sequence[int]) -> Tensor:
    """``logits`` with the ``banned`` token ids at -inf (probability 0)."""
    if not banned:
        return logits
    index = torch.tensor(tuple(banned), device=logits.device)
    return logits.index_fill(-1, index, float("-inf"))


@torch.no_grad()
def teacher_forced_batches(policy: Any, records: Sequence[Any], prompts: Sequence[str],
                           targets: Sequence[str], batch_size: int = 16
                           ) -> Iterator[tuple[Tensor, Tensor]]:
    """``(log-probs [b, L], mask [b, L])`` of ``targets`` given ``(records, prompts)``, a batch at
    a time (``policy.target_logprobs``), with the model in eval mode (no dropout: the score of a
    fixed text is deterministic) and its mode restored afterwards."""
    if not len(records) == len(prompts) == len(targets):
        raise ValueError("records, prompts and targets must have the same length")
    model = getattr(policy, "model", None)
    was_training = bool(model is not None and model.training)
    if model is not None:
        model.eval()
    try:
        for s in range(0, len(records), batch_size):
            logp, mask, _ = policy.target_logprobs(list(records[s:s + batch_size]),
                                                   list(prompts[s:s + batch_size]),
                                                   list(targets[s:s + batch_size]))
            yield logp.float(), mask
    finally:
        if model is not None:
            model.train(was_training)
