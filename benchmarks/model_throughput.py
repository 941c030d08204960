"""Throughput of the Policy adapter on the tiny model: generation tokens/s and SFT step time.

Run: ``PYTHONPATH=src python benchmarks/model_throughput.py --out results.json``

For each batch size (rows = prompts x samples for generation, records for SFT) it measures
* generation: ``Policy.generate`` wall time, generated positions per second (rows x steps,
  what the decoder computes) and kept tokens per second (up to each row's end token);
* SFT step: ``Policy.sft_loss`` forward + backward (+ AdamW step), split into encoding
  (chat template, image processor, tokenizer) and model time.
Images are random 64x64 RGB (16 visual tokens each); the model is randomly initialised, so
completions rarely stop early. Median of ``--repeats`` runs after one warm-up.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from recap.models.loading import load_policy
from recap.models.policy import Policy
from recap.models.tiny import build_tiny_model
from recap.tasks.record import Record

QUESTION = "How many red circles are there in the image?"
SUFFIX = (" First output the thinking process in <think> </think> tags and then output the final "
          "answer in <answer> </answer> tags.")
TARGET = "<think>I count the red circles one by one: 1, 2, 3.</think><answer>3</answer>"


def make_records(n: int, seed: int = 0) -> list[Record]:
    rng = np.random.default_rng(seed)
    return [
        Record(f"r{i}", "count",
               [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))],
               QUESTION, "3", "count")
        for i in range(n)
    ]


def time_generation(policy: Policy, rows: int, samples: int, max_new_tokens: int,
                    repeats: int) -> dict:
    records = make_records(rows // samples)
    prompts = [r.question + SUFFIX for r in records]
    times, positions, kept = [], 0, 0
    for i in range(repeats + 1):
        torch.manual_seed(i)
        start = time.perf_counter()
        gen = policy.generate(records, prompts, num_samples=samples,
                              max_new_tokens=max_new_tokens)
        elapsed = time.perf_counter() - start
        if i:  # the first call is a warm-up
            times.append(elapsed)
            positions = gen.completion_ids.numel()
            kept = int(gen.completion_mask.sum())
    t = statistics.median(times)
    return {"rows": rows, "samples_per_prompt": samples, "seconds": t,
            "positions_per_s": positions / t, "kept_tokens_per_s": kept / t,
            "prompt_tokens": int(gen.prompt.input_ids.shape[1]),
            "completion_len": int(gen.completion_ids.shape[1])}


def time_sft(policy: Policy, batch: int, repeats: int) -> dict:
    records = make_records(batch, seed=1)
    prompts = [r.question + SUFFIX for r in records]
    targets = [TARGET] * batch
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=1e-4)
    policy.model.train()
    steps, encodes = [], []
    for i in range(repeats + 1):
        start = time.perf_counter()
        policy.encode(records, prompts)
        encoded = time.perf_counter()
        loss, _ = policy.sft_loss(records, prompts, targets)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        done = time.perf_counter()
        if i:
            encodes.append(encoded - start)
            steps.append(done - encoded)
    policy.model.eval()
    step, encode = statistics.median(steps), statistics.median(encodes)
    return {"batch": batch, "step_seconds": step, "encode_seconds": encode,
            "model_seconds": step - encode, "records_per_s": batch / step}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--model", default=None, help="checkpoint (default: fresh tiny model)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--samples", type=int, default=4, help="G for generation")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest on a shared 2-core machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or build_tiny_model(Path(tmp) / "tiny", seed=0)
        policy = load_policy(model)
        n_params = sum(p.numel() for p in policy.model.parameters())
        generation = [time_generation(policy, b, args.samples, args.max_new_tokens, args.repeats)
                      for b in args.batch_sizes]
        sft = [time_sft(policy, b, args.repeats) for b in args.batch_sizes]
    print(f"model {args.model or 'tiny (fresh)'}: {n_params / 1e6:.2f} M params, "
          f"{args.threads} thread(s)")
    print(f"{'rows':>5} {'gen s':>7} {'pos/s':>8} {'kept/s':>8} | "
          f"{'batch':>5} {'step s':>7} {'encode s':>8} {'model s':>8} {'rec/s':>7}")
    for g, s in zip(generation, sft, strict=True):
        print(f"{g['rows']:>5} {g['seconds']:>7.2f} {g['positions_per_s']:>8.0f} "
              f"{g['kept_tokens_per_s']:>8.0f} | {s['batch']:>5} {s['step_seconds']:>7.3f} "
              f"{s['encode_seconds']:>8.3f} {s['model_seconds']:>8.3f} {s['records_per_s']:>7.1f}")
    result = {
        "command": "python benchmarks/model_throughput.py " + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}"
            for k, v in vars(args).items() if v is not None),
        "model": args.model or "tiny (fresh, seed 0)",
        "params": n_params,
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.platform(),
        "max_new_tokens": args.max_new_tokens,
        "generation": generation,
        "sft": sft,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
