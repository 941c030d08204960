"""What sampling returns: B prompts x G completions with everything the loss needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch
from torch import Tensor

from recap.models.encoding import PromptBatch
from recap.models.prefill import Prefill

__all__ = ["Generation"]


@dataclass(frozen=True, eq=False)
class Generation:
    """B prompts x G samples, rows ordered record-major: record i's samples are rows i*G..i*G+G-1.

    Attributes:
        texts: B*G decoded completions, special tokens dropped, ``<think>``/``<answer>`` kept.
        completion_ids: [B*G, L] sampled ids; positions after the end-of-turn token hold pad.
        completion_mask: [B*G, L] 1 up to and including the first end-of-turn/eos token.
        logprobs: [B*G, L] log pi(token) of the sampled tokens under the unmodified policy
            (log-softmax of raw logits, no temperature / top-p), 0 where the mask is 0.
        prompt_index: [B*G] index of each row's record in the input batch.
        prompt: the prompts repeated G times ([B*G, P]), with their vision inputs: what
            ``Policy.completion_logprobs`` needs to recompute log-probs.
        finished: [B*G] bool, True when the completion ended with an end token (not truncated).
        num_samples: G.
        prefill: the prompt pass kept for the loss forward (``generate(keep_prefill=True)``).
    """

    texts: list[str]
    completion_ids: Tensor
    completion_mask: Tensor
    logprobs: Tensor
    prompt_index: Tensor
    prompt: PromptBatch
    finished: Tensor
    num_samples: int
    prefill: Prefill | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.texts)

    def select(self, rows: Sequence[int]) -> Generation:
        """A sub-batch of rows (e.g. a micro-batch for a memory-bounded backward pass)."""
        rows = list(rows)
        idx = torch.tensor(rows, dtype=torch.long, device=self.completion_ids.device)
        return replace(
            self,
            texts=[self.texts[r] for r in rows],
            completion_ids=self.completion_ids.index_select(0, idx),
            completion_mask=self.completion_mask.index_select(0, idx),
            logprobs=self.logprobs.index_select(0, idx),
            prompt_index=self.prompt_index.index_select(0, idx.to(self.prompt_index.device)),
            prompt=self.prompt.select(rows),
            finished=self.finished.index_select(0, idx.to(self.finished.device)),
            prefill=None,  # it covers every prompt of the batch
        )
