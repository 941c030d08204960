"""Does a checkpoint answer 2x2 jigsaw puzzles in the requested format (the study's precondition)?

    python docs/results/jigsaw_rft/primer_check.py builtin:base
    python docs/results/jigsaw_rft/primer_check.py runs/jigsaw-primer/final

64 held-out puzzles (test photos, seed 7), with the think and the answer template: 4 samples each
at temperature 1 (seed 0) and one greedy completion. Prints, per template, the share of answers
that are a permutation of 0..3 ("valid"), the jigsaw format reward (think and answer blocks and a
valid permutation) and the hit reward (chance: 0.25 for any permutation).
"""

from __future__ import annotations

import sys

import torch

from recap.models import load_policy
from recap.rewards import jigsaw_format, jigsaw_hit
from recap.rewards.jigsaw import predicted_permutation
from recap.tasks.prompts import render_prompt
from recap.tasks.registry import make_task


def valid(text: str) -> bool:
    found = predicted_permutation(text)
    return found is not None and sorted(found) == [0, 1, 2, 3]


def main(path: str) -> None:
    torch.set_num_threads(1)
    policy = load_policy(path)
    records = make_task("jigsaw", "test", 64, seed=7)
    for template in ("think", "answer"):
        prompts = [render_prompt(r, template) for r in records]
        torch.manual_seed(0)
        sampled = policy.generate(records, prompts, num_samples=4, max_new_tokens=72)
        owners = [records[i // 4] for i in range(len(sampled.texts))]
        greedy = policy.generate(records, prompts, num_samples=1, temperature=0.0,
                                 max_new_tokens=72)

        def mean(values: list[float]) -> float:
            return sum(values) / len(values)

        pairs = list(zip(sampled.texts, owners, strict=True))
        greedy_pairs = list(zip(greedy.texts, records, strict=True))
        print(f"{template}: sampled valid {mean([valid(t) for t in sampled.texts]):.3f} "
              f"format {mean([jigsaw_format(t, r) for t, r in pairs]):.3f} "
              f"hit {mean([jigsaw_hit(t, r) for t, r in pairs]):.3f} | "
              f"greedy valid {mean([valid(t) for t in greedy.texts]):.3f} "
              f"hit {mean([jigsaw_hit(t, r) for t, r in greedy_pairs]):.3f}")

if __name__ == "__main__":
    main(sys.argv[1])
