"""Cost of every registered reward on adversarial completions (up to 1 MB) vs one linear scan.

Run: ``python benchmarks/reward_long_inputs.py [--repeats 3]`` (needs the ``test`` extra)

A guard against catastrophic regex backtracking and unbounded parsing: the rewards scan at most
``recap.parsing.MAX_ANSWER_CHARS`` answer characters, so a 1 MB completion should cost a
small multiple of one linear pass over the text. Prints, per input kind, the slowest reward /
answer type and its time relative to ``str.count`` over the same text (one C-speed linear
scan), measured side by side in this run (median of ``--repeats``). The inputs and records are
the property tests' own (tests/test_rewards_properties.py checks their values; timings live
here, not in tests).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

from recap.rewards import REWARDS, accuracy
from recap.tasks.record import Record

# One source for the adversarial inputs: the property tests that check their values.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_rewards_properties import LONG_INPUTS, RECORDS


def timed(fn, text: str, record: Record, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(text, record)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    accuracy("<answer>1/2</answer>", RECORDS[4])  # math-verify builds its parser once
    print(f"{platform.processor() or platform.machine()}, median of {args.repeats}")
    for label, text in LONG_INPUTS.items():
        scan_s = timed(lambda t, _: t.count("<"), text, RECORDS[0], args.repeats)
        long_s, name, kind = max(
            (timed(fn, text, r, args.repeats), name, r.answer_type)
            for name, fn in REWARDS.items() for r in RECORDS
        )
        print(f"{label:13s} slowest {name}/{kind}: {1e3 * long_s:7.2f} ms on {len(text):,} chars, "
              f"{long_s / scan_s:6.1f}x one linear scan ({1e3 * scan_s:.2f} ms)")


if __name__ == "__main__":
    main()
