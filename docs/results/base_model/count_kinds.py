"""Counting accuracy of a base model per question kind (see README.md here).

    python docs/results/base_model/count_kinds.py [MODEL]   # default: builtin:base

Greedy answers to the card's 200 held-out counting records (test split, seed 999), split by
what the question selects (every object, one colour or one shape) and, within each kind, by the
true count.
"""

import sys
from collections import defaultdict

import torch

from recap.evaluation.evaluator import generate_texts
from recap.models import load_policy
from recap.rewards import get_reward
from recap.tasks import render_prompt
from recap.tasks.registry import make_task

torch.set_num_threads(1)
policy = load_policy(sys.argv[1] if len(sys.argv) > 1 else "builtin:base")
records = make_task("count", "test", 200, seed=999)
prompts = [render_prompt(r, "answer") for r in records]
texts, _ = generate_texts(policy, records, prompts, batch_size=32, max_new_tokens=32)
accuracy = get_reward("accuracy")
by_kind: dict[str, list[float]] = defaultdict(list)
by_count: dict[tuple[str, int], list[float]] = defaultdict(list)
for text, record in zip(texts, records, strict=True):
    score = accuracy(text, record)
    for key in (record.meta["query"]["kind"], "overall"):
        by_kind[key].append(score)
    by_count[(record.meta["query"]["kind"], int(record.answer))].append(score)
for kind, scores in sorted(by_kind.items()):
    print(f"{kind:8s} {100 * sum(scores) / len(scores):5.1f} %  (n={len(scores)})")
print("by true count:")
for (kind, k), scores in sorted(by_count.items()):
    print(f"  {kind:6s} {k}  {100 * sum(scores) / len(scores):5.1f} %  (n={len(scores)})")
