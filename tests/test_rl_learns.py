"""The whole RL path, end to end, learns: GRPO raises a synthetic reward on the shipped base.

A sign or scale error anywhere between sampling and the optimiser step (advantages, log-probs,
the surrogate, the weighting, the loss reduction) turns this rise into a fall or a flat line.
"""

from __future__ import annotations

import json

from recap.config import validate_config
from recap.training.trainer import train

REWARD = "test_answer_is_3"


def answer_is_3(completion: str, record: object) -> float:
    # Asked to think before counting, the base answers 1-6 all over (its groups disagree), so
    # "3" is rewarded for some samples of most groups. (Without the think template its groups
    # agree, the advantages are all zero and nothing can be learned.)
    return float("<answer>3</answer>" in completion)


def test_grpo_raises_a_synthetic_reward_on_the_shipped_base(tmp_path):
    """A reward passed as a callable (no registry) is what the run optimises."""
    steps = 20
    cfg = validate_config({
        "model": {"path": "builtin:base"},
        "domains": [{"name": "count", "source": "count", "role": "reasoning", "mode": "rl",
                     "template": "think", "rewards": [REWARD], "n": 64,
                     "knobs": {"queries": ["all"]}}],
        "sampling": {"strategy": "reasoning_only"},
        "rl": {"num_generations": 8, "max_new_tokens": 64},
        "optim": {"lr": 3e-4, "warmup_fraction": 0.0},
        "train": {"steps": steps, "batch_size": 4, "batch_per": "total", "seed": 0},
        "logging": {"tensorboard": False, "progress": False},
        "checkpoint": {"every": 0, "keep_last": 1, "export_model": False},
        "output_dir": str(tmp_path / "run"),
    }, rewards=[REWARD])
    seen: list[int] = []
    train(cfg, rewards={REWARD: answer_is_3}, callbacks=[lambda step, row: seen.append(step)])
    assert seen == list(range(1, steps + 1))
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    reward = [r[f"reward/count/{REWARD}/mean"] for r in rows]
    first, last = sum(reward[:5]) / 5, sum(reward[-5:]) / 5
    assert len(reward) == steps
    assert first < 0.35  # the base says "3" about one time in six
    assert last > first + 0.25, reward
