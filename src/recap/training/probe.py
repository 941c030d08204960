"""Learning dynamics: how each update moves the log-likelihood of fixed examples (the jigsaw RFT
paper sec. 5.5).

The jigsaw RFT paper argues that SFT on ground truth and RL differ in how an update on the
training data spills over to other data, looked at through the change of each example's
log-likelihood ``log pi(y | x) = sum_t log pi(y_t | x, y_<t)`` on a fixed probe set after each
update. :func:`example_logliks` measures that per example; the trainer (``eval.probe_every``)
measures a probe of held-out general-capability answers before training and after every N
steps, writes every example's value and change to ``probe.jsonl`` and the means to
``metrics.jsonl`` (``probe/<domain>/loglik``, ``probe/<domain>/delta``), which the run report
plots (``probe.png``) next to other runs (SFT-GT, GRPO, SFT on rollouts).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recap.models.logprobs import teacher_forced_batches
from recap.tasks.record import Record


def example_logliks(policy: Any, records: Sequence[Record], prompts: Sequence[str],
                    targets: Sequence[str], batch_size: int = 16) -> list[float]:
    """``sum_t log pi(target_t | prompt, target_<t)`` per example (end-of-turn token included),
    under ``policy`` in eval mode (no dropout); the model's mode is restored."""
    return [value for logp, mask in teacher_forced_batches(policy, records, prompts, targets,
                                                           batch_size)
            for value in (logp * mask).sum(-1).tolist()]


def trim_probe_log(path: Path, step: int) -> None:
    """Drop the rows after ``step`` from a probe log (a resumed run re-measures them)."""
    if path.is_file():
        rows = [line for line in path.read_text().splitlines()
                if line and json.loads(line)["step"] <= step]
        path.write_text("".join(f"{row}\n" for row in rows))
