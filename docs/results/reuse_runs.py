"""Copy finished runs (and their evaluations) of one study folder into another.

    python docs/results/reuse_runs.py SRC_STUDY DST_STUDY ARM[:NEW_ARM] ... [--seeds 0,1,2]

Used where two committed studies share an arm with the same recipe, seeds and evaluation plan
(the study runner then skips those jobs): the base evaluation is copied too, and each copied
evaluation's ``checkpoint`` is rewritten to the run's new folder, which is what the runner
compares. Nothing else changes; each results README says which arms were reused.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("arms", nargs="+", help="ARM or ARM:NEW_ARM")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    (args.dst / "evals").mkdir(parents=True, exist_ok=True)
    shutil.copy2(args.src / "evals" / "base.json", args.dst / "evals" / "base.json")
    for item in args.arms:
        arm, _, new = item.partition(":")
        new = new or arm
        for seed in seeds:
            src_run = args.src / "runs" / arm / f"seed{seed}"
            dst_run = args.dst / "runs" / new / f"seed{seed}"
            if dst_run.exists():
                shutil.rmtree(dst_run)
            shutil.copytree(src_run, dst_run)
            ev = json.loads((args.src / "evals" / arm / f"seed{seed}.json").read_text())
            ev["checkpoint"] = str(dst_run / "final")
            out = args.dst / "evals" / new / f"seed{seed}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(ev, indent=1) + "\n")
            print(f"{src_run} -> {dst_run}")


if __name__ == "__main__":
    main()
