"""Toy two-task MTL study of the RECAP paper appendix A.6 (figures 5, 14, 16, 17, 18).

    PYTHONPATH=src python benchmarks/toy_mtl.py                 # full study -> docs/results/toy_mtl
    PYTHONPATH=src python benchmarks/toy_mtl.py --ablations alpha temperature window shift
    PYTHONPATH=src python benchmarks/toy_mtl.py --quick --out /tmp/toy_quick
    PYTHONPATH=src python benchmarks/toy_mtl.py --methods equal cagrad nashmtl --no-ablations \\
        --out docs/results/toy_mtl/solver_bound

Same as `recap bench toy`; everything lives in `recap.toy.study.run_toy_study`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from recap.toy.study import ABLATIONS, METHODS, run_toy_study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 steps, 1 seed")
    parser.add_argument("--out", type=Path, default=Path("docs/results/toy_mtl"))
    parser.add_argument("--seeds", type=int, default=3, help="noise seeds 0..N-1")
    parser.add_argument("--steps", type=int, default=10000, help="Adam steps per run")
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=list(METHODS),
        default=None,
        help="methods to run (default: all but cagrad and nashmtl)",
    )
    parser.add_argument(
        "--ablations",
        nargs="*",
        choices=list(ABLATIONS),
        default=None,
        help="ablation groups (default: alpha temperature window)",
    )
    parser.add_argument("--no-ablations", action="store_true", help="skip every ablation")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    args = parser.parse_args()
    ablations = False if args.no_ablations else (args.ablations or True)
    run_toy_study(
        args.out,
        quick=args.quick,
        seeds=args.seeds,
        steps=args.steps,
        methods=args.methods,
        ablations=ablations,
        workers=args.workers,
    )


if __name__ == "__main__":
    main()
