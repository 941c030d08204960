"""A short build of the shipped recipe with a few fields changed (see README.md here).

    python docs/results/base_model/short_build.py NAME '{"steps": 800}' [--resume]

The JSON holds `recap.config.PretrainConfig` fields laid over its defaults (the shipped
mixture and curriculum; the curriculum's stages are fractions of `steps`). Evaluates 64 records
per task every 400 steps, 100 at the end; writes /tmp/recap-short/NAME/base and prints the final
held-out accuracies. With ``"save_every"`` in the JSON it checkpoints, and ``--resume`` continues
from the last checkpoint.
"""

import json
import sys
import time

from recap.pretraining import PretrainConfig, pretrain

name, over = sys.argv[1], json.loads(sys.argv[2])
defaults = {"eval_every": 400, "eval_n": 64, "final_eval_n": 100, "save_every": 10**9}
cfg = PretrainConfig(**(defaults | over))
t = time.time()
out = pretrain(f"/tmp/recap-short/{name}/base", cfg, resume="--resume" in sys.argv[3:])
metrics = json.loads((out / "card.json").read_text())["test_metrics"]
print(name, f"{time.time() - t:.0f} s", metrics, flush=True)
