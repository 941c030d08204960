"""Atomic, resumable checkpoints of a training run.

Layout of ``<output_dir>/checkpoints/step-<NNNNNN>/``:

- ``model.safetensors``, ``optimizer.bin``, ``random_states_<rank>.pkl``: written by
  ``accelerate``'s ``save_state`` (trained weights with their in-memory names, optimiser state and
  the python / numpy / torch RNG states of every process; sharded correctly under DeepSpeed/FSDP);
- ``trainer_state.json``: step, LR-scheduler, weighting and sampler states, skipped steps and
  restarts (plain JSON);
- ``metrics.jsonl`` / ``eval.jsonl``: the rows logged so far (a resumed run rewrites the run's
  files from them, dropping rows logged after the checkpoint);
- ``reference.safetensors``: the KL reference weights, only once a restart moved them off the base;
- ``model/``: a standalone Hugging Face export (``Policy.save`` -> ``save_pretrained``, LoRA merged)
  that ``load_policy`` and the evaluator read.

Atomicity: everything is written to ``.tmp-step-<NNNNNN>`` and renamed with ``os.replace`` once all
processes are done, so a killed run never leaves a half-written ``step-*`` directory.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from safetensors.torch import load_model, save_model

PREFIX = "step-"
STATE_FILE = "trainer_state.json"
LOG_FILES = ("metrics.jsonl", "eval.jsonl")  # per-step rows a resumed run must not duplicate
REFERENCE_FILE = "reference.safetensors"


def checkpoint_root(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first (temporary directories are ignored)."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    done = [p for p in root.iterdir() if p.name.startswith(PREFIX) and (p / STATE_FILE).exists()]
    return sorted(done, key=lambda p: int(p.name.removeprefix(PREFIX)))


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def save_checkpoint(
    accelerator: Accelerator,
    output_dir: str | Path,
    step: int,
    *,
    trainer_state: dict[str, Any],
    reference: torch.nn.Module | None = None,
    export: Any = None,
    keep_last: int = 2,
) -> Path:
    """Write checkpoint ``step`` atomically; every process must call this.

    Args:
        accelerator: the run's accelerator (its prepared model and optimiser are saved).
        output_dir: the run directory.
        step: completed optimiser steps.
        trainer_state: plain-JSON state of the loop (scheduler, weighting, sampler, counters).
        reference: reference model whose weights differ from the base (after a restart), if any.
        export: an object with ``save(path)`` (the Policy) for the Hugging Face export, or None.
        keep_last: complete checkpoints kept; older ones are deleted.
    """
    root = checkpoint_root(output_dir)
    final = root / f"{PREFIX}{step:06d}"
    tmp = root / f".tmp-{PREFIX}{step:06d}"
    if accelerator.is_main_process:
        for stale in root.glob(f".tmp-{PREFIX}*"):  # left over by a run killed while saving
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    if accelerator.is_main_process:
        (tmp / STATE_FILE).write_text(json.dumps({"step": step, **trainer_state}, indent=1))
        for name in LOG_FILES:
            if (Path(output_dir) / name).exists():
                shutil.copyfile(Path(output_dir) / name, tmp / name)
        if reference is not None:
            save_model(reference, str(tmp / REFERENCE_FILE))
        if export is not None:
            export.save(tmp / "model")
        if final.exists():  # re-saving a step (e.g. the final one after a resume)
            shutil.rmtree(final)
        os.replace(tmp, final)
        for old in list_checkpoints(output_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(
    accelerator: Accelerator,
    path: str | Path,
    *,
    output_dir: str | Path,
    reference: torch.nn.Module | None = None,
) -> dict[str, Any]:
    """Restore a checkpoint into the prepared objects; returns the trainer state.

    Restores weights, optimiser and RNG states (``accelerate.load_state``), the reference
    weights if the checkpoint holds them, and the run's log files (main process).
    """
    path = Path(path)
    accelerator.load_state(str(path))
    state = json.loads((path / STATE_FILE).read_text())
    if reference is not None and (path / REFERENCE_FILE).exists():
        load_model(reference, str(path / REFERENCE_FILE), device=str(accelerator.device))
    if accelerator.is_main_process:
        for name in LOG_FILES:
            target = Path(output_dir) / name
            if (path / name).exists():
                shutil.copyfile(path / name, target)
            elif target.exists():
                target.unlink()
    accelerator.wait_for_everyone()
    return state
