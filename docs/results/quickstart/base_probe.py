"""The numbers behind the quickstart's choice of target, measured on the shipped base.

    OMP_NUM_THREADS=1 python docs/results/quickstart/base_probe.py   # ~2 min on this VM

"How many objects are there?" (count, queries=all) on 500 held-out records (eval seed 12345, the
studies' set): greedy accuracy with the answer template and with the think template, the think
format reward greedy, and the think template sampled (T = 1, 4 samples per record: accuracy and
format, the quantities GRPO sees at step 1).
"""

from __future__ import annotations

import torch

from recap.models.loading import load_policy
from recap.rewards import get_reward
from recap.tasks.prompts import render_prompt
from recap.tasks.registry import make_task


def main() -> None:
    torch.manual_seed(0)
    policy = load_policy("builtin:base")
    records = make_task("count", "test", 500, seed=12345, queries=("all",))
    accuracy, think_format = get_reward("accuracy"), get_reward("think_format")
    for template, samples in (("answer", 1), ("think", 1), ("think", 4)):
        texts: list[str] = []
        for i in range(0, len(records), 50):
            batch = records[i:i + 50]
            gen = policy.generate(batch, [render_prompt(r, template) for r in batch],
                                  num_samples=samples, temperature=0.0 if samples == 1 else 1.0,
                                  max_new_tokens=72)
            texts += gen.texts
        recs = [r for r in records for _ in range(samples)]
        acc = sum(accuracy(t, r) for t, r in zip(texts, recs, strict=True)) / len(texts)
        line = f"{template:6s} {'greedy' if samples == 1 else f'sampled x{samples}'}: "
        line += f"accuracy {100 * acc:.1f} %"
        if template == "think":
            fmt = sum(think_format(t, r) for t, r in zip(texts, recs, strict=True)) / len(texts)
            line += f", think format {100 * fmt:.1f} %"
        print(line)


if __name__ == "__main__":
    main()
