"""Counting accuracy of a base model on several independent test samples (see README.md here).

    python docs/results/base_model/count_seeds.py [MODEL] [SEEDS]   # builtin:base 1,2,3,4,5

Greedy answers to 200 held-out counting records per test seed, then the accuracy pooled over
all of them: one 200-record sample has a standard error of ~2.5 points near 85 %.
"""

import sys

import torch

from recap.evaluation.evaluator import generate_texts
from recap.models import load_policy
from recap.rewards import get_reward
from recap.tasks import render_prompt
from recap.tasks.registry import make_task

torch.set_num_threads(2)
policy = load_policy(sys.argv[1] if len(sys.argv) > 1 else "builtin:base")
seeds = [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "1,2,3,4,5").split(",")]
accuracy = get_reward("accuracy")
scores: list[float] = []
for seed in seeds:
    records = make_task("count", "test", 200, seed=seed)
    prompts = [render_prompt(r, "answer") for r in records]
    texts, _ = generate_texts(policy, records, prompts, batch_size=32, max_new_tokens=32)
    sample = [accuracy(t, r) for t, r in zip(texts, records, strict=True)]
    scores += sample
    print(f"test seed {seed}: {100 * sum(sample) / len(sample):5.1f} %", flush=True)
print(f"pooled over {len(scores)} records: {100 * sum(scores) / len(scores):5.1f} %")
