"""Moving study folders around: reuse finished runs in another study, pack one for the repo.

    python docs/results/study_files.py reuse SRC_STUDY DST_STUDY ARM[:NEW_ARM] ... [--seeds 0,1]
    python docs/results/study_files.py pack SRC_STUDY DST_FOLDER

``reuse`` serves two committed studies that share an arm with the same recipe, seeds and
evaluation plan (the study runner then skips those jobs): the base evaluation is copied too,
and each copied evaluation's ``checkpoint`` is rewritten to the run's new folder, which is what
the runner compares. Nothing else changes; each results README says which arms were reused.

``pack`` copies what the repository keeps of a study: ``report.md``, ``study.json``,
``study.yaml``, the figures, and ``data.tar.gz`` with every evaluation (per-record scores) and
every run's ``metrics.jsonl``, ``config.yaml`` and ``study_run.json`` (not the model weights).
Untar it into a folder and ``recap study FILE --out FOLDER --report-only`` recomputes the
statistics and the report.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tarfile
from pathlib import Path


def pack(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    for name in ["report.md", "study.json", "study.yaml", *(p.name for p in src.glob("*.png"))]:
        shutil.copy2(src / name, dst / name)
    with tarfile.open(dst / "data.tar.gz", "w:gz") as tar:
        tar.add(src / "evals", arcname="evals")
        for run in sorted(src.glob("runs/*/seed*")):
            for name in ("metrics.jsonl", "config.yaml", "study_run.json"):
                tar.add(run / name, arcname=str((run / name).relative_to(src)))
    print(f"{src} -> {dst}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("command", choices=["reuse", "pack"])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("arms", nargs="*", help="reuse: ARM or ARM:NEW_ARM")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    args = ap.parse_args()
    if args.command == "pack":
        pack(args.src, args.dst)
        return
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
