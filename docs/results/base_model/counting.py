"""Counting accuracy of a base model on independent test samples (see README.md here).

    python docs/results/base_model/counting.py [MODEL] [SEEDS]   # builtin:base 1,2,3,4,5

Greedy answers to 200 held-out counting records per test seed: the accuracy of each sample,
pooled over all of them (one 200-record sample has a standard error of ~2.5 points near 85 %),
then the pooled records split by what the question selects (every object, one colour or one
shape) and, within each kind, by the true count. The card's sample is test seed 999.
"""

import sys
from collections import defaultdict

import torch

from recap.evaluation.evaluator import generate_texts
from recap.models import load_policy
from recap.rewards import get_reward
from recap.tasks import render_prompt
from recap.tasks.registry import make_task


def percent(scores: list[float]) -> str:
    return f"{100 * sum(scores) / len(scores):5.1f} %  (n={len(scores)})"


torch.set_num_threads(2)
policy = load_policy(sys.argv[1] if len(sys.argv) > 1 else "builtin:base")
seeds = [int(s) for s in (sys.argv[2] if len(sys.argv) > 2 else "1,2,3,4,5").split(",")]
accuracy = get_reward("accuracy")
scores: list[float] = []
by_kind: dict[str, list[float]] = defaultdict(list)
by_count: dict[tuple[str, int], list[float]] = defaultdict(list)
for seed in seeds:
    records = make_task("count", "test", 200, seed=seed)
    prompts = [render_prompt(r, "answer") for r in records]
    texts, _ = generate_texts(policy, records, prompts, batch_size=32, max_new_tokens=32)
    sample = [accuracy(t, r) for t, r in zip(texts, records, strict=True)]
    print(f"test seed {seed}: {percent(sample)}", flush=True)
    scores += sample
    for score, record in zip(sample, records, strict=True):
        kind = record.meta["query"]["kind"]
        by_kind[kind].append(score)
        by_count[(kind, int(record.answer))].append(score)
print(f"pooled: {percent(scores)}")
for kind, kind_scores in sorted(by_kind.items()):
    print(f"  {kind:6s}    {percent(kind_scores)}")
print("by true count:")
for (kind, k), count_scores in sorted(by_count.items()):
    print(f"  {kind:6s} {k}  {percent(count_scores)}")
