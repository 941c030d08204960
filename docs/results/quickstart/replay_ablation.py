"""Which part of the RECAP arm lowers counting? (see README.md here, "Replay ablation").

    OMP_NUM_THREADS=1 python docs/results/quickstart/replay_ablation.py [OUT]  # ~50 min, 1 core

Starts from the quickstart's RECAP recipe (runs/recap/config.yaml: 60 steps, 8 prompts x G=4,
lr 1e-4) and trains variants with `recap train`: all domains (as the quickstart), without one
domain, all domains with equal weights, and GRPO on counting alone (equal weights) without and
with a KL anchor. Each final model is evaluated greedily with `recap eval` (general suite, 200
records per task, test seed 0, the quickstart's evaluation) and the sampled training rewards are
compared first vs last 10 steps.
"""

import copy
import json
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).parent
RECIPE = yaml.safe_load((HERE / "runs/recap/config.yaml").read_text())
EQUAL = {"name": "equal"}


def variant(drop: str | None = None, equal: bool = False, only: str | None = None,
            kl_beta: float = 0.0) -> dict:
    cfg = copy.deepcopy(RECIPE)
    if kl_beta:
        cfg["kl"] |= {"schedule": "constant", "beta": kl_beta}
    cfg["domains"] = [d for d in cfg["domains"] if d["name"] != drop]
    if only:  # a lone domain must be the reasoning (target) domain of the recipe
        cfg["domains"] = [d | {"role": "reasoning"} for d in cfg["domains"] if d["name"] == only]
    if equal or only:
        cfg["weighting"] = EQUAL
    return cfg


VARIANTS = {
    "recap": ({}, (0, 1, 2)),
    "no_arith": ({"drop": "arith"}, (0, 1, 2)),
    "equal_weights": ({"equal": True}, (0, 1, 2)),
    "count_only": ({"only": "count"}, (0, 1, 2)),
    "count_only_kl": ({"only": "count", "kl_beta": 0.1}, (0, 1, 2)),
    "no_digits": ({"drop": "digits"}, (0,)),
    "no_exists": ({"drop": "exists"}, (0,)),
    "no_ground": ({"drop": "ground"}, (0,)),
}


def reward_trend(metrics: Path) -> str:
    rows = [json.loads(line) for line in metrics.read_text().splitlines()]
    keys = sorted({k for r in rows for k in r
                   if k.startswith("reward/") and k.endswith("/mean") and "format" not in k})
    cells = []
    for k in keys:
        vals = [r[k] for r in rows if k in r]
        cells.append(f"{k.split('/')[1]} {sum(vals[:10]) / 10:.2f}->{sum(vals[-10:]) / 10:.2f}")
    return ", ".join(cells)


def main(out: Path) -> None:
    for name, (kw, seeds) in VARIANTS.items():
        for seed in seeds:
            run = out / f"{name}_s{seed}"
            if not (run / "eval.json").exists():
                run.mkdir(parents=True, exist_ok=True)
                (run.parent / f"{run.name}.yaml").write_text(yaml.safe_dump(variant(**kw)))
                subprocess.run(["recap", "train", str(run.parent / f"{run.name}.yaml"),
                                "--set", f"train.seed={seed}", "--out", str(run)], check=True)
                subprocess.run(["recap", "eval", str(run / "final"), "--suite", "general",
                                "--n", "200", "--seed", "0", "--batch-size", "32",
                                "--max-new-tokens", "112", "--out", str(run / "eval.json")],
                               check=True)
            tasks = json.loads((run / "eval.json").read_text())["tasks"]
            print(f"{run.name:18s} count {100 * tasks['count']['metrics']['accuracy']:5.1f}  "
                  f"exists {100 * tasks['exists']['metrics']['accuracy']:5.1f}  "
                  f"| sampled {reward_trend(run / 'metrics.jsonl')}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/replay-ablation"))
