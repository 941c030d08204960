"""Rollout time of the two decode paths, side by side in one process: cascade attention (each
prompt's keys/values once per prompt) vs the prompt cache repeated for the G samples.

    python benchmarks/decode_paths.py [--rounds 8 --out docs/results/benchmarks/decode_paths.json]

``builtin:base`` samples the quickstart's reasoning-only rollouts (8 counting prompts with the
think template x G = 4, <= 64 new tokens, T = 1) with one torch thread; each round times
``--repeats`` rollouts of each path, alternating, and keeps each path's median. Both paths draw
the same tokens from the same seed (checked here on every rollout, and in the tests).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from recap.config import load_config
from recap.models import cascade
from recap.models.generation import Generation
from recap.models.loading import load_policy
from recap.tasks.prompts import render_prompt
from recap.training.build import domain_records

RECIPE = "configs/quickstart-reasoning-only.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None)
    a = parser.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(RECIPE)
    domain = cfg.domains[0]
    records = domain_records(domain, cfg.train.seed)[: cfg.train.batch_size]
    prompts = [render_prompt(r, domain.template) for r in records]
    policy = load_policy(cfg.model.path)
    supports = cascade.supports

    def rollout(path: str, seed: int) -> tuple[float, Generation]:
        cascade.supports = supports if path == "cascade" else (lambda *args: False)
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        gen = policy.generate(records, prompts, num_samples=cfg.rl.num_generations,
                              temperature=cfg.rl.temperature, max_new_tokens=cfg.rl.max_new_tokens)
        return time.perf_counter() - t0, gen

    rollout("cascade", 0), rollout("repeated", 0)  # warm-up
    times: dict[str, list[float]] = {"cascade": [], "repeated": []}
    tokens = 0
    for r in range(a.rounds):
        samples = {}
        for path in times:
            runs = [rollout(path, r * a.repeats + i) for i in range(a.repeats)]
            times[path].append(statistics.median(t for t, _ in runs))
            samples[path] = [gen for _, gen in runs]
        if not all(torch.equal(x.completion_ids, y.completion_ids)
                   for x, y in zip(*samples.values(), strict=True)):
            raise SystemExit("the two paths drew different tokens")
        tokens = int(samples["cascade"][-1].completion_mask.sum())
    cascade.supports = supports
    ratios = [b / c for c, b in zip(times["cascade"], times["repeated"], strict=True)]
    report = {"command": "python benchmarks/decode_paths.py " + " ".join(
                  f"--{k} {v}" for k, v in vars(a).items() if v is not None),
              "date": time.strftime("%Y-%m-%d"),
              "hardware": f"{platform.machine()}, {platform.system()}, 1 torch thread",
              "recipe": RECIPE, "median_rollout_s": {k: statistics.median(v)
                                                     for k, v in times.items()},
              "speedup_per_round": ratios, "rollout_s": times, "tokens_last_rollout": tokens}
    for path, ts in times.items():
        print(f"{path:>8}: median rollout {statistics.median(ts) * 1e3:.0f} ms")
    print("repeated / cascade rollout time per round: "
          + ", ".join(f"{x:.2f}x" for x in ratios) + f" (median {statistics.median(ratios):.2f}x)")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
