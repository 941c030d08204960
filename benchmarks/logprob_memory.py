"""Peak memory and time of completion log-probs (forward + backward) at a real vocabulary.

    python benchmarks/logprob_memory.py [--rows 32 --tokens 96 --vocab 151936 --repeats 2]

builtin:base with its output layer (and tied embeddings) resized to Qwen2.5-VL's 151,936 tokens;
``rows`` completions of ``tokens`` sampled-like ids after a counting prompt with its image. Two
paths of ``Policy.completion_logprobs``, each in a fresh process, alternating:

- ``full``: the [rows, tokens, vocab] float32 logits, then cross-entropy (recap before 2026-12);
- ``chunked``: last hidden states through the output layer a chunk of tokens at a time, each
  chunk checkpointed (``recap.models.logprobs.token_logprobs``).

Peak extra memory is the process's peak RSS during forward + backward minus its RSS before
(model and inputs built); reported next to the size of one float32 logits tensor.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kB


def run_one(path: str, rows: int, tokens: int, vocab: int) -> dict[str, float]:
    import torch

    import recap.models.logprobs as logprobs_module
    from recap.models.generation import Generation
    from recap.models.loading import load_policy
    from recap.tasks.prompts import render_prompt
    from recap.tasks.registry import make_task

    torch.set_num_threads(1)
    torch.manual_seed(0)
    policy = load_policy("builtin:base")
    policy.model.resize_token_embeddings(vocab)
    policy.model.train()
    records = make_task("count", "train", rows, seed=0)
    prompt = policy.encode(records, [render_prompt(r, "think") for r in records])
    allowed = torch.tensor([i for i in range(100) if i not in policy.banned_ids])
    ids = allowed[torch.randint(0, len(allowed), (rows, tokens))]
    mask = torch.ones(rows, tokens, dtype=torch.long)
    gen = Generation(texts=[""] * rows, completion_ids=ids, completion_mask=mask,
                     logprobs=torch.zeros(rows, tokens), prompt_index=torch.arange(rows),
                     prompt=prompt, finished=torch.ones(rows, dtype=torch.bool), num_samples=1)
    if path == "full":
        logprobs_module.body_and_head = lambda model: None  # the full-logits path
    before = _rss_mb()
    t0 = time.perf_counter()
    logp = policy.completion_logprobs(gen)
    logp.sum().backward()
    seconds = time.perf_counter() - t0
    return {"peak_extra_mb": _rss_mb() - before, "seconds": seconds,
            "logp_sum": float(logp.detach().sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--vocab", type=int, default=151_936)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.one:
        print(json.dumps(run_one(a.one, a.rows, a.tokens, a.vocab)))
        return
    results: dict[str, list[dict[str, float]]] = {"full": [], "chunked": []}
    for _ in range(a.repeats):
        for path in results:
            out = subprocess.run(
                [sys.executable, __file__, "--one", path, "--rows", str(a.rows),
                 "--tokens", str(a.tokens), "--vocab", str(a.vocab)],
                capture_output=True, text=True, check=True)
            results[path].append(json.loads(out.stdout.strip().splitlines()[-1]))
    logits_mb = a.rows * a.tokens * a.vocab * 4 / 2**20
    summary = {p: {k: statistics.median(r[k] for r in rs) for k in ("peak_extra_mb", "seconds")}
               for p, rs in results.items()}
    report = {
        "command": " ".join(sys.argv), "hardware": f"{platform.processor() or platform.machine()}"
        f", {platform.system()}, 1 torch thread", "date": time.strftime("%Y-%m-%d"),
        "rows": a.rows, "tokens": a.tokens, "vocab": a.vocab,
        "one_logits_tensor_mb": logits_mb, "runs": results, "median": summary,
        "peak_ratio_chunked_vs_logits_tensor": summary["chunked"]["peak_extra_mb"] / logits_mb,
        "peak_ratio_chunked_vs_full": summary["chunked"]["peak_extra_mb"]
        / summary["full"]["peak_extra_mb"],
        "time_ratio_chunked_vs_full": summary["chunked"]["seconds"] / summary["full"]["seconds"],
        "logp_sum_abs_diff": abs(results["full"][0]["logp_sum"]
                                 - results["chunked"][0]["logp_sum"]),
    }
    print(f"one float32 logits tensor: {logits_mb:.0f} MB ({a.rows} rows x {a.tokens} tokens x "
          f"{a.vocab} vocab)")
    for p, s in summary.items():
        print(f"{p:>8}: peak extra {s['peak_extra_mb']:8.0f} MB  "
              f"({s['peak_extra_mb'] / logits_mb:.2f}x one logits tensor), "
              f"forward + backward {s['seconds']:.1f} s (median of {a.repeats})")
    print(f"chunked / full: memory {report['peak_ratio_chunked_vs_full']:.2f}x, "
          f"time {report['time_ratio_chunked_vs_full']:.2f}x; "
          f"|sum log p| difference {report['logp_sum_abs_diff']:.2e}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
