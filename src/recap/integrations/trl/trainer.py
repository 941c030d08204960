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

from dataclasses import replace
from typing import Any

import torch
from trl import GRPOTrainer

from recap.integrations.trl.callback import RecapRewardWeights
from recap.integrations.trl.data import ReplayData
from recap.models.policy import policy_from_model
from recap.tasks.prompts import render_prompt, render_target
from recap.training.sampler import DomainSampler
from recap.weighting import Weighting


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
