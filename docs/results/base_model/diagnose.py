"""Short single-recipe pretraining runs used to diagnose the base model (see README.md here).

    python docs/results/base_model/diagnose.py NAME '{"steps": 400, ...}'

The JSON holds `recap.config.PretrainConfig` fields, with `mixture` as {task: [template,
weight]} (default: existence only) and `curriculum` as a list of `Stage` fields (default: none).
`"flat": true` draws scenes on a flat floor and digits on plain paper (`shading=0`), the task
defaults before the shaded floor was introduced. Writes /tmp/recap-diagnose/NAME/base and prints
the held-out accuracies of the final checkpoint.
"""

import json
import sys
import time

from recap.pretraining import PretrainConfig, Stage, pretrain

name, overrides = sys.argv[1], json.loads(sys.argv[2])
mixture = overrides.pop("mixture", {"exists": ["answer", 1.0]})
stages = [Stage(**s) for s in overrides.pop("curriculum", [])]
flat = overrides.pop("flat", False)
knobs = overrides.pop("task_knobs", {})
if flat:
    knobs = {t: {"shading": 0} | knobs.get(t, {}) for t in mixture if t != "arith"}
defaults = {"steps": 600, "warmup_steps": 50, "eval_every": 200, "eval_n": 64,
            "final_eval_n": 100, "save_every": 10**9}
cfg = PretrainConfig(mixture={k: tuple(v) for k, v in mixture.items()}, curriculum=stages,
                     task_knobs=knobs, **(defaults | overrides))
start = time.time()
out = pretrain(f"/tmp/recap-diagnose/{name}/base", cfg)
card = json.loads((out / "card.json").read_text())
print(name, f"{time.time() - start:.0f} s", card["test_metrics"])
