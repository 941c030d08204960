"""recap inside ``trl.GRPOTrainer`` (optional extra ``recap[trl]``; tested with trl 1.16).

- :class:`RecapRewardWeights`: a callback that sets an unchanged ``GRPOTrainer``'s reward weights
  each step from a recap weighting (RECAP in every variant, equal, static, DWA, RLW), logs lambda
  and saves/restores its state with TRL's checkpoints;
- :func:`replay_data`: a recap recipe's domains as one replay dataset in recap's draw order, with
  per-(domain, reward) reward functions returning ``None`` off their domain, and the SFT pools;
- :class:`RecapGRPOTrainer`: ``GRPOTrainer`` plus the lambda-weighted SFT term of the replayed
  SFT domains in the same step (the hybrid objective of the RECAP paper);
- :func:`load_processor` and :func:`generation_kwargs`: a checkpoint's processing class without
  torchvision (Qwen2-VL family, ``builtin:base``) and sampling that never emits image placeholders.
"""

from recap.integrations.trl.callback import RecapRewardWeights
from recap.integrations.trl.data import ReplayData, domain_reward, replay_data
from recap.integrations.trl.processor import (
    ImageOnlyQwenProcessor,
    generation_kwargs,
    load_processor,
)
from recap.integrations.trl.trainer import RecapGRPOTrainer

__all__ = [
    "ImageOnlyQwenProcessor",
    "RecapGRPOTrainer",
    "RecapRewardWeights",
    "ReplayData",
    "domain_reward",
    "generation_kwargs",
    "load_processor",
    "replay_data",
]
