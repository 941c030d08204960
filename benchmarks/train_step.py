"""Throughput of a hybrid RL + SFT training step on the tiny model, and RECAP's share of it.

Run: ``PYTHONPATH=src python benchmarks/train_step.py [--model builtin:base] [--out r.json]``

Trains the ``recap`` preset (GRPO on arith, GRPO on ground, SFT on digits, RECAP weighting, KL
off) for ``--steps`` optimiser steps through :func:`recap.training.trainer.train` with
checkpoints, TensorBoard and the progress bar off, then reads its ``metrics.jsonl`` (the first
step is dropped as warm-up) and reports: steps/s, generated tokens/s, the share of step time in
rollouts (generation + scoring + reference) and the share in the weighting (``update`` +
``combine`` + ``post_step``; RECAP paper A.1 reports no measurable slowdown from RECAP).
Without ``--model`` (or if the shipped base is missing) a randomly initialised tiny model is
built in a temporary directory: its completions rarely stop early, so lengths are at the cap.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
from pathlib import Path

import torch

from recap.config import load_config
from recap.models import resolve_model_path
from recap.models.tiny import build_tiny_model
from recap.training.trainer import train


def run(model: str, steps: int, batch: int, generations: int, max_new_tokens: int,
        weighting: str, work: Path) -> dict:
    out = work / weighting
    overrides = [
        f"model.path={model}", f"output_dir={out}", f"train.steps={steps}",
        f"train.batch_size={batch}", "train.batch_per=domain",
        f"rl.num_generations={generations}", f"rl.max_new_tokens={max_new_tokens}",
        f"weighting.name={weighting}", "checkpoint.every=0", "checkpoint.export_model=false",
        "logging.tensorboard=false", "logging.progress=false", "eval.every=0",
    ]
    if weighting != "recap":
        overrides += ["weighting.window=null", "weighting.temperature=null"]
    train(load_config(None, overrides, preset="recap"))
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][1:]
    step_s = [r["time/step_s"] for r in rows]
    total = sum(step_s)
    return {
        "weighting": weighting,
        "steps_timed": len(rows),
        "median_step_s": statistics.median(step_s),
        "steps_per_s": len(rows) / total,
        "generated_tokens_per_s": sum(r["time/tokens_per_s"] * r["time/step_s"]
                                      for r in rows) / total,
        "rollout_share": sum(r["time/rollout_s"] for r in rows) / total,
        "weighting_share": sum(r["time/weighting_s"] for r in rows) / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin:base", help="model path or builtin:<name>")
    parser.add_argument("--steps", type=int, default=6, help="optimiser steps (first dropped)")
    parser.add_argument("--batch", type=int, default=2, help="prompts per domain per step")
    parser.add_argument("--generations", type=int, default=4, help="G")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = args.model
        try:
            resolve_model_path(model)
        except FileNotFoundError:  # no shipped base (e.g. a partial checkout): a random one
            model = str(build_tiny_model(work / "tiny", seed=0))
        results = [run(model, args.steps, args.batch, args.generations, args.max_new_tokens,
                       name, work) for name in ("recap", "equal")]
    report = {
        "model": args.model if model == args.model else "random tiny (build_tiny_model seed 0)",
        "steps": args.steps, "batch_per_domain": args.batch, "generations": args.generations,
        "max_new_tokens": args.max_new_tokens, "threads": args.threads,
        "torch": torch.__version__, "machine": platform.platform(), "runs": results,
        "recap_vs_equal_step_time": results[0]["median_step_s"] / results[1]["median_step_s"],
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
