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

import torch

from recap.tasks.record import Record


@torch.no_grad()
def example_logliks(policy: Any, records: Sequence[Record], prompts: Sequence[str],
                    targets: Sequence[str], batch_size: int = 16) -> list[float]:
    """``sum_t log pi(target_t | prompt, target_<t)`` per example (end-of-turn token included),
    under ``policy`` in eval mode (no dropout); the model's mode is restored."""
    if not len(records) == len(prompts) == len(targets):
        raise ValueError("records, prompts and targets must have the same length")
    model = getattr(policy, "model", None)
    was_training = bool(model is not None and model.training)
    if model is not None:
        model.eval()
    try:
        out: list[float] = []
        for s in range(0, len(records), batch_size):
            logp, mask, _ = policy.target_logprobs(list(records[s:s + batch_size]),
                                                   list(prompts[s:s + batch_size]),
                                                   list(targets[s:s + batch_size]))
            out += (logp.float() * mask).sum(-1).tolist()
    finally:
        if model is not None:
            model.train(was_training)
    return out


def trim_probe_log(path: Path, step: int) -> None:
    """Drop the rows after ``step`` from a probe log (a resumed run re-measures them)."""
    if path.is_file():
        rows = [line for line in path.read_text().splitlines()
                if line and json.loads(line)["step"] <= step]
        path.write_text("".join(f"{row}\n" for row in rows))
