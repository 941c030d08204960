"""A rollout's prompt pass, kept for the loss forward that follows it.

A GRPO step encodes every prompt (and its images) twice with the same weights: once to sample
(the KV cache the decode loop reads) and once in the loss forward (the shared-prefix pass
gradients flow through). When the two compute the same thing, the sampling pass can run with
grad and hand its output to the loss forward, which then starts at the completions: one prompt
pass per step instead of two (~6 % of a step of the quickstart's recipe on the lab model, by
a profile; docs/results/benchmarks).

They compute the same thing when the weights have not changed in between (the first update on
a batch of rollouts: :class:`Prefill` is used once) and the model behaves alike in eval mode
(sampling) and train mode (loss): no dropout, and no gradient checkpointing, which
transformers only applies in train mode (:func:`train_equivalent`). The trainer asks for it
only where one process, outside any DDP/FSDP/DeepSpeed wrapper, runs one forward per batch of
rollouts (no gradient accumulation, no chunked backward), so no second graph waits for its
backward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["Prefill", "train_equivalent"]


@dataclass(eq=False)
class Prefill:
    """The prompt pass of B unique prompts, with its autograd graph.

    Attributes:
        model: the module that computed it; only its own loss forward may use it.
        last: [B, 1, H] last hidden state of each prompt (it predicts the first token).
        cache: the prompts' KV cache.
        rope_deltas: mRoPE models' text-position offsets after the image grid ([B, 1]).
    """

    model: torch.nn.Module
    last: Tensor
    cache: object
    rope_deltas: Tensor | None
    used: bool = False

    def take(self, model: torch.nn.Module) -> Prefill | None:
        """The prefill, once, for ``model``; ``None`` for another model or a second use."""
        if self.used or model is not self.model:
            return None
        self.used = True
        return self


def train_equivalent(model: torch.nn.Module) -> bool:
    """Whether ``model`` computes the same in eval and train mode: no active dropout (modules or
    attention dropout in a config) and no gradient checkpointing."""
    checkpointing = getattr(model, "is_activation_checkpointing", None)  # transformers >= 5.x
    if checkpointing is None:
        checkpointing = getattr(model, "is_gradient_checkpointing", False)
    if checkpointing:
        return False
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout) and module.p > 0:
            return False
        config = getattr(module, "config", None)
        if config is not None and float(getattr(config, "attention_dropout", 0.0) or 0.0) > 0:
            return False
    return True
