"""Dynamic reward weights for an unchanged ``trl.GRPOTrainer`` (RECAP and the baselines).

TRL combines its reward functions as ``sum_f w_f R_f`` before group normalisation
(``multi_objective_aggregation="sum_then_normalize"``, the default). That is where the RECAP
authors' code puts its weights, and recap's ``weighting.apply: rewards``: so a recap weighting
can drive TRL's ``reward_weights``. Each optimiser step :class:`RecapRewardWeights`

1. reads the mean of every reward over that step's completions (TRL's own
   ``rewards/<name>/mean``, gathered over processes; rows where a reward returned ``None`` are
   left out of its mean), and the SFT term's signals when :class:`RecapGRPOTrainer` adds one;
2. feeds them to the weighting in the order recap's trainer does (RL objectives, then SFT), each
   mapped to what the weighting consumes (``Weighting.consumes``);
3. sets ``trainer.reward_weights`` to the new lambda, which therefore act on the *next* batch of
   rollouts: TRL scores and normalises a batch before any callback runs, so the weights of step t
   come from steps <= t - 1 (recap's own trainer uses step t's rewards for step t's weights);
4. logs ``recap/lambda/<objective>`` (and a strategy's diagnostics, e.g. RECAP's c_k and i_k)
   through TRL's metrics, so they appear wherever TRL's logs go.

Its state (the weighting's windows and weights) is written into TRL's checkpoints
(``trainer_state.json``, ``stateful_callbacks``) and restored when training resumes, so a resumed
run continues with the same weights.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

from recap.config import RunConfig
from recap.training.build import build_run_weighting
from recap.training.objectives import rl_weighting_values, sft_weighting_values
from recap.weighting import Weighting


class RecapRewardWeights(TrainerCallback, ExportableState):
    """Drives a ``GRPOTrainer``'s reward weights with a recap :class:`Weighting`.

    Build it with :meth:`attach` (it needs the trainer to set its weights). The weighting's
    objectives must include every reward function's name (``trainer.reward_func_names``); other
    objectives (``sft:<domain>``) are fed through :meth:`observe_sft`. Strategies with learnable
    parameters (UW, FAMO) or per-objective gradients (PCGrad, ...) cannot act on TRL's rewards.
    """

    def __init__(self, weighting: Weighting, signal: str = "reward") -> None:
        if weighting.parameters():
            raise ValueError(f"weighting {weighting.name!r} learns parameters from the losses; "
                             f"only weightings driven by per-step values can set TRL's reward "
                             f"weights (RECAP in every variant, equal, static, DWA, RLW)")
        if signal not in ("reward", "deficit"):
            raise ValueError(f"signal must be 'reward' or 'deficit', got {signal!r}")
        self.weighting, self.signal = weighting, signal
        self.trainer: Any = None
        self._seen: dict[str, tuple[list[float], int]] = {}
        self._sft: list[tuple[str, float]] = []

    @classmethod
    def attach(cls, trainer: Any, weighting: Weighting | RunConfig,
               signal: str = "reward") -> RecapRewardWeights:
        """Add a callback driving ``trainer``'s reward weights and return it.

        ``weighting`` is a recap weighting or a recipe (its ``weighting`` block, built over its
        ``<domain>/<reward>`` and ``sft:<domain>`` objectives as ``recap train`` builds it).
        """
        if isinstance(weighting, RunConfig):
            signal = weighting.weighting.signal
            weighting = build_run_weighting(weighting)
        missing = [n for n in trainer.reward_func_names if n not in weighting.objectives]
        if missing:
            raise ValueError(f"the weighting has no objective for reward function(s) {missing}; "
                             f"its objectives: {list(weighting.objectives)}")
        if trainer.args.restore_callback_states_from_checkpoint:
            raise ValueError("restore_callback_states_from_checkpoint=True would rebuild this "
                             "callback without its trainer; RecapRewardWeights restores its own "
                             "state on resume, leave the option off")
        callback = cls(weighting, signal)
        callback.trainer = trainer
        callback._push_weights()
        trainer.add_callback(callback)
        return callback

    # -- the signals ------------------------------------------------------------------------
    def observe_sft(self, losses: Mapping[str, float], accuracies: Mapping[str, float]) -> None:
        """Record one micro-batch's SFT loss and token accuracy per ``sft:<domain>``."""
        mapped = sft_weighting_values(losses, accuracies, self.weighting.consumes)
        if self.signal == "deficit":
            mapped = {k: 1.0 - float(v) for k, v in mapped.items()}
        self._sft += [(k, float(v)) for k, v in mapped.items()]

    def step_rewards(self) -> dict[str, float]:
        """Mean of each reward over the rollouts scored since the last call (TRL's metrics).

        A reward with no applicable row (all ``None``) is absent; the weighting then leaves that
        objective's state unchanged, as recap's trainer does for a domain not drawn in a step.
        """
        metrics = self.trainer._metrics["train"]  # TRL's per-step reward means (lists)
        means: dict[str, float] = {}
        for name in self.trainer.reward_func_names:
            values = metrics.get(f"rewards/{name}/mean", [])
            last, seen = self._seen.get(name, (None, 0))
            new = values[seen:] if values is last else values  # TRL clears its lists on log
            self._seen[name] = (values, len(values))
            finite = [v for v in new if not math.isnan(v)]
            if finite:
                means[name] = sum(finite) / len(finite)
        return means

    # -- TrainerCallback events -------------------------------------------------------------
    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        saved = state.stateful_callbacks.get(type(self).__name__)
        if state.global_step > 0:  # resuming: the checkpoint's trainer_state.json has our state
            if not saved:
                raise ValueError(f"resuming at step {state.global_step} from a checkpoint "
                                 f"without {type(self).__name__} state: the weights would restart")
            saved = saved[0] if isinstance(saved, list) else saved
            self.weighting.load_state_dict(saved["attributes"]["weighting"])
        self._seen, self._sft = {}, []
        self._push_weights()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        rewards = self.step_rewards()
        if rewards:
            values = rl_weighting_values(rewards, self.weighting.consumes)
            if self.signal == "deficit":
                values = rl_weighting_values(rewards, "loss")
            self.weighting.update(values)
        if self._sft:  # after the RL update, as recap's trainer orders them
            merged: dict[str, list[float]] = {}
            for k, v in self._sft:
                merged.setdefault(k, []).append(v)
            self.weighting.update({k: sum(v) / len(v) for k, v in merged.items()})
            self._sft = []
        self._push_weights()
        metrics = self.trainer._metrics["train"]
        for name, value in self.weighting.weights.items():
            metrics[f"recap/lambda/{name}"].append(value)
        for name, stats in self.weighting.last_stats.items():
            for stat, value in stats.items():
                metrics[f"recap/{stat}/{name}"].append(value)

    def state(self) -> dict[str, Any]:
        """What TRL writes into its checkpoints' ``trainer_state.json`` (ExportableState)."""
        return {"args": {}, "attributes": {"weighting": self.weighting.state_dict()}}

    def _push_weights(self) -> None:
        lambdas = self.weighting.weights
        self.trainer.reward_weights = torch.tensor(
            [lambdas[n] for n in self.trainer.reward_func_names], dtype=torch.float32)
