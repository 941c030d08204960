"""recap's GRPO step vs TRL's ``GRPOTrainer`` on the same model, recipe, rewards and budget.

    python benchmarks/vs_trl.py [--steps 6 --rounds 2 --out docs/results/benchmarks/vs_trl.json]

Both train ``builtin:base`` on the quickstart's reasoning-only recipe (counting with the think
template, 8 prompts x G = 4, <= 64 new tokens, lr 2e-4, beta 0, sequence-mean GRPO loss, one
update per batch) in fresh processes with one torch thread, alternating recap and TRL for
``--rounds`` rounds. The data and reward functions of the TRL run come from the same recipe
(``recap.integrations.trl.replay_data``). TRL runs with ``bf16=False`` and
``gradient_checkpointing=False`` (its defaults turn both on; bf16 autocast on a CPU without bf16
units made its step ~5x slower). The first step of each run is dropped as warm-up.

Reported per side: median step time, completion tokens per step, completion tokens/s and peak
RSS; and recap / TRL throughput (tokens/s), the number the issue's goal (>= 2x) is about.
Needs the optional ``trl`` extra.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RECIPE = "configs/quickstart-reasoning-only.yaml"


def run_recap(steps: int, work: Path) -> dict:
    from recap.config import load_config
    from recap.training.trainer import train

    out = work / "recap"
    cfg = load_config(RECIPE, [f"train.steps={steps}", f"output_dir={out}",
                               "logging.progress=false", "logging.tensorboard=false",
                               "checkpoint.export_model=false"])
    train(cfg)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()][1:]
    return {"step_s": [r["time/step_s"] for r in rows],
            "tokens": [r["time/tokens_per_s"] * r["time/step_s"] for r in rows]}


def run_trl(steps: int, work: Path) -> dict:
    from trl import GRPOConfig, GRPOTrainer

    from recap.integrations.trl import generation_kwargs, load_processor, replay_data
    from recap.models.loading import resolve_model_path

    data = replay_data(RECIPE, [f"train.steps={steps}"])
    cfg = data.config
    path = resolve_model_path(cfg.model.path)
    g = cfg.rl.num_generations
    args = GRPOConfig(
        output_dir=str(work / "trl"), per_device_train_batch_size=data.prompts_per_step * g,
        num_generations=g, max_completion_length=cfg.rl.max_new_tokens, max_steps=steps,
        learning_rate=cfg.optim.lr, warmup_steps=cfg.optim.warmup_fraction,
        max_grad_norm=cfg.optim.max_grad_norm, beta=0.0, loss_type="grpo",
        temperature=cfg.rl.temperature, shuffle_dataset=False, logging_steps=1, report_to=[],
        use_cpu=True, seed=cfg.train.seed, bf16=False, gradient_checkpointing=False,
        generation_kwargs=generation_kwargs(path), save_strategy="no", disable_tqdm=True)
    trainer = GRPOTrainer(model=path, processing_class=load_processor(path), args=args,
                          train_dataset=data.dataset, reward_funcs=data.reward_funcs)
    trainer.train()
    rows = [h for h in trainer.state.log_history if "step_time" in h][1:]
    rows_per_step = data.prompts_per_step * g
    return {"step_s": [r["step_time"] for r in rows],
            "tokens": [r["completions/mean_length"] * rows_per_step for r in rows]}


def child(side: str, steps: int) -> None:
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        result = (run_recap if side == "recap" else run_trl)(steps, Path(tmp))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result))


def summarise(runs: list[dict]) -> dict:
    step_s = [s for r in runs for s in r["step_s"]]
    tokens = [t for r in runs for t in r["tokens"]]
    return {"median_step_s": statistics.median(step_s),
            "mean_tokens_per_step": statistics.mean(tokens),
            "tokens_per_s": sum(tokens) / sum(step_s),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in runs), "steps_timed": len(step_s)}


def round_ratios(runs: dict[str, list[dict]]) -> list[float]:
    """recap / TRL throughput of each round (its two runs back to back): the spread shows how
    much of a difference between whole runs is the VM's noise."""
    def tps(r: dict) -> float:
        return sum(r["tokens"]) / sum(r["step_s"])
    return [tps(a) / tps(b) for a, b in zip(runs["recap"], runs["trl"], strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.child:
        child(a.child, a.steps)
        return
    runs: dict[str, list[dict]] = {"recap": [], "trl": []}
    t0 = time.time()
    for _ in range(a.rounds):
        for side in runs:
            proc = subprocess.run([sys.executable, __file__, "--child", side, "--steps",
                                   str(a.steps)], capture_output=True, text=True)
            lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode or not lines:
                raise SystemExit(f"{side} failed:\n{proc.stderr[-3000:]}")
            runs[side].append(json.loads(lines[-1].removeprefix("RESULT ")))
    summary = {side: summarise(r) for side, r in runs.items()}
    ratio = summary["recap"]["tokens_per_s"] / summary["trl"]["tokens_per_s"]
    import trl

    report = {"command": " ".join(["python", *sys.argv]), "date": time.strftime("%Y-%m-%d"),
              "hardware": f"{platform.machine()}, {platform.system()}, 1 torch thread per run",
              "trl": trl.__version__, "recipe": RECIPE, "wall_s": time.time() - t0,
              "summary": summary, "throughput_ratio_recap_over_trl": ratio,
              "round_ratios": round_ratios(runs), "runs": runs}
    for side, s in summary.items():
        print(f"{side:>5}: median step {s['median_step_s']:.2f} s, "
              f"{s['mean_tokens_per_step']:.0f} completion tokens/step, "
              f"{s['tokens_per_s']:.0f} tokens/s, peak RSS {s['peak_rss_mb']:.0f} MB "
              f"({s['steps_timed']} steps)")
    print(f"recap / TRL throughput (completion tokens/s): {ratio:.2f}x (per round: "
          + ", ".join(f"{r:.2f}x" for r in report["round_ratios"]) + ")")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
