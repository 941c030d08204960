"""Per-objective loss weighting: RECAP (the RECAP paper sec. 4) and multi-task baselines.

Contract (every strategy of `WEIGHTINGS`, built with `build_weighting(name, objectives, **kw)`):

    weights = w.update(values)   # values: {objective: float}, one scalar signal per objective
                                 # -> {objective: weight} for ALL objectives, mean weight 1
    loss = w.combine(losses)     # losses: {objective: scalar Tensor} -> scalar Tensor to backprop
    loss.backward(); optimizer.step()
    w.post_step(new_values)      # after the optimiser step: FAMO's logit update, else a no-op
    w.parameters()               # learnable weighting parameters to add to the optimiser (UW)
    w.to(device)                 # move learnable state (UW, FAMO) before building the optimiser
    w.weights, w.last_stats      # current weights; per-objective diagnostics for logging
    w.state_dict() / w.load_state_dict(state)   # JSON-serialisable plain data

* `update` may omit objectives (their state stays unchanged, they keep a weight); unknown names
  raise ValueError; NaN / infinite values are rejected, never propagated into the weights.
* The default `combine` is the RECAP paper objective (1/K) sum_k lambda_k L_k with lambda constant
  (detached). UW and FAMO replace it with their own losses, which need the loss tensors; FAMO
  additionally needs strictly positive losses (above its `min_losses`).
* Each strategy declares what its values mean (`Weighting.consumes`): "reward" (reward-like in
  [0, 1], higher is better: RECAP eq. 1 and the paper's runs, as in its figures 4 and 13),
  "loss" (DWA, UW, FAMO) or "raw" (the authors' RECAP: rewards of RL objectives, losses of SFT
  ones); the trainer feeds each accordingly (recap.training.objectives); the toy study passes
  losses.

Gradient-based baselines (PCGrad, CAGrad, MGDA, Nash-MTL, IMTL-G, UPGrad, ...) need one gradient
per objective and live on a separate, explicit path: `make_aggregator`, `aggregate_gradients`
(Jacobian [K, P] -> direction [P]) and `gradient_step` (fills `.grad`), all via torchjd.
"""

from recap.weighting.base import Weighting
from recap.weighting.baselines import (
    DWAWeighting,
    EqualWeighting,
    RandomLossWeighting,
    StaticWeighting,
)
from recap.weighting.gradient import (
    GRADIENT_AGGREGATORS,
    aggregate_gradients,
    gradient_step,
    make_aggregator,
)
from recap.weighting.learnable import FAMOWeighting, UncertaintyWeighting
from recap.weighting.recap import RECAP_VARIANTS, RecapWeighting, make_recap, recap_signals
from recap.weighting.recap_official import OfficialRecapWeighting, official_signals
from recap.weighting.registry import WEIGHTINGS, build_weighting, weighting_options

__all__ = [
    "GRADIENT_AGGREGATORS",
    "RECAP_VARIANTS",
    "WEIGHTINGS",
    "DWAWeighting",
    "EqualWeighting",
    "FAMOWeighting",
    "OfficialRecapWeighting",
    "RandomLossWeighting",
    "RecapWeighting",
    "StaticWeighting",
    "UncertaintyWeighting",
    "Weighting",
    "aggregate_gradients",
    "build_weighting",
    "gradient_step",
    "make_aggregator",
    "make_recap",
    "official_signals",
    "recap_signals",
    "weighting_options",
]
