"""Cost of every registered reward on 1 MB adversarial completions, as a ratio to a short one.

Run: ``python benchmarks/reward_long_inputs.py [--repeats 3]``

A guard against catastrophic regex backtracking and unbounded parsing: the rewards scan at most
``recap.rewards.answers.MAX_ANSWER_CHARS`` answer characters, so a 1 MB completion should cost a
small multiple of one linear pass over the text. Prints, per input kind, the slowest reward /
answer type and its time relative to ``str.count`` over the same text (one C-speed linear
scan), measured side by side in this run (median of ``--repeats``).
The property tests (tests/test_rewards_properties.py) check the values on the same kinds of
inputs; timings live here, not in tests.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time

from recap.rewards import REWARDS, accuracy
from recap.tasks.record import Record

MB = 1_000_000
RECORDS = [
    Record("n", "count", [], "q", "3", "count", {}),
    Record("m", "arith", [], "q", "1/2", "math", {}),
    Record("b", "ground", [], "q", "[1, 2, 5, 6]", "bbox", {}),
    Record("t", "digits", [], "q", "4071", "text", {}),
    Record("p", "jigsaw", [], "q", "[2, 0, 3, 1]", "permutation", {"grid": (2, 2)}),
]


def long_inputs() -> dict[str, str]:
    rnd = random.Random(0)
    noise = "".join(rnd.choice("<>/[]() ,.0123456789abcdeé😀\n") for _ in range(MB))
    return {
        "plain": "a" * MB,
        "answer_opens": "<answer>" * (MB // 8),
        "long_think": "<think>" + "word " * (MB // 5) + "</think><answer>3</answer>",
        "noise": noise,
        "long_answer": "<answer>" + "1 " * (MB // 2) + "</answer>",
        "brackets": "<answer>" + "[1," * (MB // 3) + "</answer>",
    }


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
    accuracy("<answer>1/2</answer>", RECORDS[1])  # math-verify builds its parser once
    print(f"{platform.processor() or platform.machine()}, median of {args.repeats}")
    for label, text in long_inputs().items():
        scan_s = timed(lambda t, _: t.count("<"), text, RECORDS[0], args.repeats)
        long_s, name, kind = max(
            (timed(fn, text, r, args.repeats), name, r.answer_type)
            for name, fn in REWARDS.items() for r in RECORDS
        )
        print(f"{label:13s} slowest {name}/{kind}: {1e3 * long_s:7.2f} ms on 1 MB, "
              f"{long_s / scan_s:6.1f}x one linear scan ({1e3 * scan_s:.2f} ms)")


if __name__ == "__main__":
    main()
