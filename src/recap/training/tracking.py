"""Run logging: ``metrics.jsonl`` (one JSON object per step), TensorBoard and a progress bar.

Only the main process writes. Keys under ``time/`` are wall-clock measurements; everything else
is a deterministic function of the seed, so a resumed run reproduces those values exactly.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from accelerate.utils import gather_object
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from recap.evaluation.metrics import response_length
from recap.rewards import thinking_length
from recap.training.objectives import MicroBatch

TIMING_PREFIX = "time/"


class RunLog:
    """Writes metric rows of a run (a no-op object on non-main processes).

    Args:
        output_dir: the run directory.
        active: True on the main process.
        tensorboard: also write TensorBoard events under ``output_dir/tensorboard``.
        progress: show a rich progress bar.
        total_steps: steps of the whole run.
        start_step: completed steps (non-zero when resuming: TensorBoard purges later events).
    """

    def __init__(self, output_dir: str | Path, *, active: bool, tensorboard: bool,
                 progress: bool, total_steps: int, start_step: int = 0) -> None:
        self.dir = Path(output_dir)
        self.active = active
        self._tb = None
        self._progress: Progress | None = None
        if not active:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.dir / "tensorboard"), purge_step=start_step + 1)
        if progress:
            self._progress = Progress(
                TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
            )
            self._task = self._progress.add_task("train", total=total_steps,
                                                 completed=start_step, info="")
            self._progress.start()

    def write(self, row: dict[str, Any], file: str = "metrics.jsonl") -> None:
        """Append ``row`` (must hold ``step``) to ``file`` and to TensorBoard."""
        if not self.active:
            return
        with (self.dir / file).open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self._tb is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, int | float) and math.isfinite(value):
                    self._tb.add_scalar(key, value, row["step"])

    def advance(self, step: int, row: dict[str, Any]) -> None:
        """Move the progress bar to ``step`` with the key numbers of ``row``."""
        if self._progress is None:
            return
        rewards = [v for k, v in row.items() if k.startswith("reward/") and k.endswith("/mean")]
        info = f"loss {row.get('loss', float('nan')):.4f}"
        if rewards:
            info += f" | reward {sum(rewards) / len(rewards):.3f}"
        info += f" | beta {row.get('beta', 0.0):.3g} | skipped {row.get('skipped', 0)}"
        self._progress.update(self._task, completed=step, info=info)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._progress is not None:
            self._progress.stop()


def gather_step_stats(micro: list[MicroBatch], losses: list[tuple[str, Any]]) -> dict[str, float]:
    """Per-domain reward mean/std, response and thinking lengths and the loss terms, over the
    micro-batches of a step and all processes (one ``gather_object``).

    Keys: ``reward/<domain>/<reward>/mean|std``, ``length/<domain>`` (completion words, the unit
    of the evaluator's ``response_length``), ``thinking/<domain>`` (words in the think block),
    ``loss``, ``loss/<objective>``, ``kl``, ``clip_frac``, ``sample_kl``; ``tokens`` is the
    step's total of completion tokens (the compute) and ``prompts/<domain>`` its records per
    domain (what each domain was exposed to).
    """
    samples: dict[str, list[float]] = {}
    for mb in micro:
        for name, sb in mb.sft.items():
            samples.setdefault(f"prompts/{name}", []).append(float(len(sb.records)))
        for ro in mb.rollouts:
            samples.setdefault(f"prompts/{ro.domain}", []).append(float(len(ro.records)))
            for name, r in ro.rewards.items():
                samples.setdefault(f"reward/{ro.domain}/{name}", []).extend(r.flatten().tolist())
            samples.setdefault(f"length/{ro.domain}", []).extend(
                response_length(t) for t in ro.texts)
            samples.setdefault("tokens", []).append(float(ro.mask.sum()))
            samples.setdefault(f"thinking/{ro.domain}", []).extend(
                thinking_length(t) for t in ro.texts)
    for key, value in losses:
        samples.setdefault(key, []).append(float(value))
    merged: dict[str, list[float]] = {}
    for part in gather_object([samples]):
        for k, v in part.items():
            merged.setdefault(k, []).extend(v)
    row: dict[str, float] = {}
    for k, v in sorted(merged.items()):
        mean = sum(v) / len(v)
        if k == "tokens" or k.startswith("prompts/"):
            row[k] = float(sum(v))
        elif k.startswith("reward/"):
            row[f"{k}/mean"] = mean
            row[f"{k}/std"] = math.sqrt(sum((x - mean) ** 2 for x in v) / len(v))
        else:
            row[k] = mean
    return row
