"""TRL alone vs TRL + recap (replay, RECAP reward weights, SFT term): a short lab run.

    python docs/results/trl/lab.py train --arm trl-alone --seed 0 --out runs/trl-lab
    python docs/results/trl/lab.py train --arm trl-recap --seed 0 --out runs/trl-lab
    python docs/results/trl/lab.py eval runs/trl-lab           # every final model + the base
    python docs/results/trl/lab.py report runs/trl-lab > docs/results/trl/results.md

(seeds 0, 1, 2 of each arm; the evaluations and training logs are kept in runs/, and
``report docs/results/trl/runs`` reads them back.)

Arms (both trl.GRPOTrainer 1.16, builtin:base, the quickstart's target "how many objects?" with
the think template, lr 2e-4, G = 4, <= 64 new tokens, beta 0, the same number of steps):
- trl-alone: the reasoning domain only (8 target prompts per step), an unchanged GRPOTrainer;
- trl-recap: RecapGRPOTrainer on configs/quickstart-recap.yaml with equal reasoning exposure
  (train.batch_per=reasoning: 8 target prompts + 8 replayed prompts from count / exists / ground
  per step), the digits domain as the SFT term (8 records per step), the authors' RECAP
  (weighting.variant=official) setting the reward weights and the SFT weight.
Evaluation: recap's evaluator, suite "quickstart", 200 held-out records per task (seed 12345),
greedy, 72 new tokens; intervals from recap.studies.stats (seed and record variance).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

RECIPES = {"trl-alone": ("configs/quickstart-reasoning-only.yaml", []),
           "trl-recap": ("configs/quickstart-recap.yaml",
                         ["train.batch_per=reasoning", "weighting.variant=official"])}
EVAL = {"suites": "quickstart", "n_per_task": 200, "seed": 12345, "batch_size": 50,
        "max_new_tokens": 72}


def train(arm: str, seed: int, steps: int, out: Path) -> None:
    from trl import GRPOConfig, GRPOTrainer

    from recap.integrations.trl import (
        RecapGRPOTrainer,
        generation_kwargs,
        load_processor,
        replay_data,
    )
    from recap.models.loading import resolve_model_path

    recipe, overrides = RECIPES[arm]
    data = replay_data(recipe, [*overrides, f"train.seed={seed}", f"train.steps={steps}"])
    prompts = data.prompts_per_step  # 8, or 16 with replay on top
    path = resolve_model_path("builtin:base")
    run = out / f"{arm}-seed{seed}"
    args = GRPOConfig(
        output_dir=str(run), per_device_train_batch_size=prompts * 4, num_generations=4,
        max_completion_length=64, max_steps=steps, learning_rate=2e-4, warmup_steps=0.1,
        lr_scheduler_type="linear", max_grad_norm=1.0, beta=0.0, loss_type="grpo",
        shuffle_dataset=False, logging_steps=1, report_to=[], use_cpu=True, seed=seed,
        gradient_checkpointing=False, bf16=False,  # both default to True in GRPOConfig
        generation_kwargs=generation_kwargs(path), save_strategy="no", disable_tqdm=True)
    kwargs = {"model": path, "processing_class": load_processor(path), "args": args}
    if arm == "trl-alone":
        trainer = GRPOTrainer(**kwargs, train_dataset=data.dataset, reward_funcs=data.reward_funcs)
    else:
        trainer = RecapGRPOTrainer(**kwargs, replay=data)
    t0 = time.time()
    trainer.train()
    trainer.save_model(str(run / "final"))
    logs = [h for h in trainer.state.log_history if "loss" in h]
    (run / "log.json").write_text(json.dumps({"wall_s": time.time() - t0, "log": logs}))


def evaluate_all(out: Path) -> None:
    from recap.evaluation.evaluator import evaluate

    targets = {"base": "builtin:base"} | {
        p.parent.name: str(p) for p in sorted(out.glob("*/final"))}
    for name, path in targets.items():
        dest = out / f"eval-{name}.json"
        if not dest.exists():
            res = evaluate(path, **EVAL, per_record=True, progress=False)
            dest.write_text(json.dumps(res))


def report(out: Path) -> None:
    from recap.studies.stats import estimate, paired_difference

    base = json.loads((out / "eval-base.json").read_text())
    metrics = {t: e["headline"][0] for t, e in base["tasks"].items()}
    rows = {}
    for arm in RECIPES:
        evals = [json.loads(p.read_text()) for p in sorted(out.glob(f"eval-{arm}-seed*.json"))]
        if evals:
            rows[arm] = {t: [e["tasks"][t]["per_record"][m] for e in evals]
                         for t, m in metrics.items()}
    print("| task (metric) | base | " + " | ".join(
        f"{a} (n seeds = {len(r[next(iter(r))])})" for a, r in rows.items())
        + " | trl-recap - trl-alone |")
    print("|---" * (3 + len(rows)) + "|")
    for t, m in metrics.items():
        b = [base["tasks"][t]["per_record"][m]]
        cells = [f"{100 * estimate(b).mean:.1f}"]
        for r in rows.values():
            e, d = estimate(r[t], (0, 1)), paired_difference(r[t], b)
            cells.append(f"{100 * e.mean:.1f} ({100 * d.mean:+.1f} [{100 * d.ci_low:+.1f}, "
                         f"{100 * d.ci_high:+.1f}] vs base)")
        if len(rows) == 2:
            d = paired_difference(rows["trl-recap"][t], rows["trl-alone"][t])
            cells.append(f"{100 * d.mean:+.1f} [{100 * d.ci_low:+.1f}, {100 * d.ci_high:+.1f}]")
        print(f"| {t} ({m}) | " + " | ".join(cells) + " |")
    for p in sorted([*out.glob("*/log.json"), *out.glob("*-log.json")]):
        log = json.loads(p.read_text())
        last = log["log"][-1]
        lambdas = {k.removeprefix("recap/lambda/"): round(v, 2)
                   for k, v in last.items() if k.startswith("recap/lambda/")}
        name = p.parent.name if p.name == "log.json" else p.name.removesuffix("-log.json")
        print(f"\n{name}: {len(log['log'])} steps, {log['wall_s']:.0f} s"
              + (f"; last-step lambda {lambdas}" if lambdas else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--arm", choices=sorted(RECIPES), required=True)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--steps", type=int, default=40)
    t.add_argument("--out", type=Path, default=Path("runs/trl-lab"))
    for name in ("eval", "report"):
        sub.add_parser(name).add_argument("out", type=Path)
    a = parser.parse_args()
    torch.set_num_threads(1)
    if a.cmd == "train":
        train(a.arm, a.seed, a.steps, a.out)
    elif a.cmd == "eval":
        evaluate_all(a.out)
    else:
        report(a.out)


if __name__ == "__main__":
    main()
