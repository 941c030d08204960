"""``RecapGRPOTrainer``: TRL's GRPO step plus recap's replay, reward weights and SFT term.

The hybrid objective of the RECAP paper (sec. 4) in TRL's loop: the RL domains' rollouts are
scored by per-(domain, reward) functions whose weights a recap weighting sets
(:class:`~recap.integrations.trl.RecapRewardWeights`), and the replayed SFT domains add their
next-token loss to the same optimiser step, each weighted by its lambda:

    loss = TRL's GRPO loss + sum_s lambda_s L_s(theta)

with no 1/K, as the RECAP authors' code combines a reward-weighted policy loss with SFT losses
(recap's ``weighting.apply: rewards``). Each micro-batch draws ``train.batch_size`` records from
every SFT domain, in a deterministic order indexed by the optimiser step, so a resumed run draws
what an uninterrupted one would.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from trl import GRPOTrainer

from recap.integrations.trl.callback import RecapRewardWeights
from recap.integrations.trl.data import ReplayData
from recap.models.loading import policy_from_model
from recap.tasks.prompts import render_prompt, render_target
from recap.training.sampler import DomainSampler
from recap.weighting import Weighting

logger = logging.getLogger(__name__)


class RecapGRPOTrainer(GRPOTrainer):
    """A ``GRPOTrainer`` trained on :func:`~recap.integrations.trl.replay_data`'s inputs.

    Args:
        replay: the recipe's replay dataset, reward functions and SFT pools; ``train_dataset``
            and ``reward_funcs`` default to its own.
        weighting: the weighting driving lambda; by default the recipe's ``weighting`` block.
        *args, **kwargs: as ``trl.GRPOTrainer`` (``args.shuffle_dataset`` must be False so TRL
            reads the replay stream in recap's order).
    """

    def __init__(self, *args: Any, replay: ReplayData, weighting: Weighting | None = None,
                 **kwargs: Any) -> None:
        kwargs.setdefault("train_dataset", replay.dataset)
        kwargs.setdefault("reward_funcs", replay.reward_funcs)
        super().__init__(*args, **kwargs)
        if self.args.shuffle_dataset:
            raise ValueError("GRPOConfig(shuffle_dataset=False) is needed: the replay dataset is "
                             "already in recap's draw order, a shuffle would undo the mixture")
        self.replay = replay
        self.recap = RecapRewardWeights.attach(self, weighting or replay.config)
        cfg = replay.config
        self._sft_policy = policy_from_model(self.model, cfg.model.path) if replay.sft else None
        self._sft_sampler = DomainSampler(
            {n: pool for n, (pool, _) in replay.sft.items()}, dict.fromkeys(replay.sft, "general"),
            strategy="uniform", batch_size=cfg.train.batch_size, batch_per="domain",
            seed=cfg.train.seed, rank=self.accelerator.process_index,
            world_size=self.accelerator.num_processes) if replay.sft else None

    def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> torch.Tensor:
        """TRL's GRPO loss plus the lambda-weighted SFT losses of this micro-batch."""
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if self._sft_policy is None or not model.training:
            return loss
        policy = replace(self._sft_policy, model=model)  # the wrapped module (DDP, ...)
        lambdas = self.recap.weighting.weights
        losses, accuracies, total = {}, {}, 0.0
        for name, records in self._sft_batch().items():
            template = self.replay.sft[name][1]
            prompts = [render_prompt(r, template) for r in records]
            targets = [render_target(r, template) for r in records]
            value, accuracy = policy.sft_loss(records, prompts, targets)
            key = f"sft:{name}"
            losses[key], accuracies[key] = float(value.detach()), float(accuracy)
            total = total + lambdas[key] * value
            self._metrics["train"][f"recap/sft_loss/{key}"].append(losses[key])
        self.recap.observe_sft(losses, accuracies)
        # TRL divides its loss by the accumulation steps inside compute_loss; the SFT term follows.
        return loss + total / self.current_gradient_accumulation_steps

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
        """Reload the checkpoint's weights, also for models whose keys ``save_pretrained``
        renames (Qwen2(.5)-VL, ``builtin:base``).

        transformers' Trainer reads a checkpoint back with ``load_state_dict(strict=False)``,
        without the key mapping ``from_pretrained`` applies, so such a model silently resumes
        from its initial weights (huggingface/transformers#43701, open in 5.24). Here the
        weights are read back through ``from_pretrained`` when the saved keys do not match.
        """
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        weights = Path(resume_from_checkpoint) / "model.safetensors"
        if not weights.is_file() or hasattr(target, "peft_config"):
            return  # sharded, FSDP/DeepSpeed and adapter checkpoints: left to transformers
        with safe_open(str(weights), "pt") as f:
            saved = set(f.keys())
        if saved == set(target.state_dict()):
            return
        loaded = type(target).from_pretrained(resume_from_checkpoint, dtype=target.dtype)
        target.load_state_dict(loaded.state_dict())
        logger.info("recap: reloaded %s through from_pretrained's key mapping",
                    resume_from_checkpoint)

    def _sft_batch(self) -> dict[str, list[Any]]:
        """The SFT records of this micro-batch: draw ``global_step * accum + micro`` of the
        stream (each draw takes ``batch_size`` records per domain and process)."""
        sampler = self._sft_sampler
        accum = self.current_gradient_accumulation_steps
        draw = self.state.global_step * accum + self._step % accum
        per_draw = sampler.batch_size * sampler.world_size
        sampler.load_state_dict({"position": {n: draw * per_draw for n in sampler.names},
                                 "draws": draw})
        return sampler.next_batch()
