"""``recap study``: train every arm with every seed, evaluate everything on one held-out set,
then write the statistics and the report.

Output folder::

    study.yaml                      the study as it ran (resolved)
    runs/<arm>/seed<k>/             ordinary ``recap train`` output directories (+ study_run.json)
    evals/base.json                 the base model's evaluation (recap-eval/1, per-record scores)
    evals/<arm>/seed<k>.json        every run's evaluation, same records
    study.json, report.md, report.html, *.png     (recap.studies.report)

An arm with ``rollouts`` (:class:`recap.studies.spec.RolloutPlan`) starts after its source arm's
run of the same seed: that model samples the questions, the kept rollouts are written to
``runs/<arm>/seed<k>/rollouts/`` (with ``rollouts.json``: counts and the plan), then the arm trains.

Resumable: a run whose ``study_run.json`` exists is not trained again, a run with checkpoints but
no ``study_run.json`` resumes from its newest checkpoint, and an evaluation whose file exists with
the same plan is not repeated. ``jobs > 1`` runs that many worker processes, each with
``threads`` torch threads (the lab model's matrices are too small for a second thread to pay).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import yaml

from recap.studies.spec import RolloutPlan, StudySpec, rollouts_path

__all__ = ["Job", "eval_path", "finish_study", "plan_jobs", "run_dir", "run_study"]

RUN_DONE = "study_run.json"


def run_dir(out: Path, arm: str, seed: int) -> Path:
    """Where the run of ``arm`` with training seed ``seed`` lives."""
    return Path(out) / "runs" / arm / f"seed{seed}"


def eval_path(out: Path, arm: str | None, seed: int | None = None) -> Path:
    """The evaluation file of a run, or of the base model when ``arm`` is None."""
    if arm is None:
        return Path(out) / "evals" / "base.json"
    return Path(out) / "evals" / arm / f"seed{seed}.json"


@dataclass(frozen=True)
class Job:
    """One unit of work: evaluate the base (``arm`` None) or train + evaluate one run."""

    arm: str | None
    seed: int | None

    @property
    def name(self) -> str:
        return "base" if self.arm is None else f"{self.arm}/seed{self.seed}"


def _after(spec: StudySpec, job: Job) -> str | None:
    """The name of the job ``job`` must wait for (a rollouts arm's source run), if any."""
    plan = spec.arms[job.arm].rollouts if job.arm is not None else None
    return None if plan is None else Job(plan.arm, job.seed).name


def _write_json(path: Path, data: Any) -> None:
    """Atomic write: a crash never leaves a half file that looks finished."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def _eval_done(path: Path, plan: dict[str, Any], checkpoint: str) -> bool:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return data.get("study_eval") == plan and data.get("checkpoint") == checkpoint


def plan_jobs(spec: StudySpec, out: Path) -> list[Job]:
    """The jobs still to do: seed by seed, so a partial study stays balanced, and the base's
    evaluation last (the shortest job: it fills a worker that would otherwise wait)."""
    plan = spec.eval.model_dump()
    jobs = []
    for seed in spec.seeds:
        for arm in spec.arms:
            rd = run_dir(out, arm, seed)
            trained = (rd / RUN_DONE).exists()
            if not (trained and _eval_done(eval_path(out, arm, seed), plan, str(rd / "final"))):
                jobs.append(Job(arm, seed))
    if not _eval_done(eval_path(out, None), plan, spec.base):
        jobs.append(Job(None, None))
    return jobs


def _evaluate(spec: StudySpec, checkpoint: str, path: Path, progress: bool) -> float:
    from recap.evaluation.evaluator import evaluate

    plan = spec.eval
    suite: Any = plan.suite if not plan.suite.endswith(".jsonl") else Path(spec.root) / plan.suite
    t0 = time.perf_counter()
    res = evaluate(checkpoint, suite, n_per_task=plan.n, batch_size=plan.batch_size,
                   seed=plan.seed, max_new_tokens=plan.max_new_tokens, progress=progress,
                   per_record=True)
    res["study_eval"] = plan.model_dump()
    _write_json(path, res)
    return time.perf_counter() - t0


def _do_job(spec_data: dict[str, Any], out: str, job: Job, threads: int | None,
            progress: bool) -> dict[str, Any]:
    """Train (if needed) and evaluate one job; runs in a worker process or in-process.

    ``threads`` is only recorded (a worker's thread count is set by ``_init_worker``)."""
    from recap.training.checkpoint import latest_checkpoint
    from recap.training.trainer import train

    spec, root = StudySpec.model_validate(spec_data), Path(out)
    if job.arm is None:
        return {"job": job.name, "eval_s": _evaluate(spec, spec.base, eval_path(root, None),
                                                     progress)}
    rd = run_dir(root, job.arm, job.seed)
    done = rd / RUN_DONE
    info: dict[str, Any] = {"job": job.name}
    if not done.exists():
        plan_r = spec.arms[job.arm].rollouts
        if plan_r is not None:
            info["rollouts_s"] = _sample_rollouts(plan_r, run_dir(root, plan_r.arm, job.seed),
                                                  rd, job.seed, progress)
        extra = () if progress else ("logging.progress=false",)
        cfg = spec.arm_config(job.arm, job.seed, rd, extra)
        t0 = time.perf_counter()
        train(cfg, resume=latest_checkpoint(rd) is not None)
        info["train_s"] = round(time.perf_counter() - t0, 1)
        _write_json(done, {"arm": job.arm, "seed": job.seed, "train_s": info["train_s"],
                           "threads": threads})
    plan = spec.eval.model_dump()
    ep = eval_path(root, job.arm, job.seed)
    if not _eval_done(ep, plan, str(rd / "final")):
        info["eval_s"] = round(_evaluate(spec, str(rd / "final"), ep, progress), 1)
    return info


def _sample_rollouts(plan: RolloutPlan, source: Path, rd: Path, seed: int,
                     progress: bool) -> float:
    """Write the kept rollouts of ``source``'s final model for a rollouts arm's run ``rd``
    (once: ``rollouts.json`` marks them done). Returns the seconds it took."""
    from recap.evaluation.rollouts import checkpoint_rollouts, write_rollouts

    path = rollouts_path(rd)
    marker = path.with_suffix(".json")
    if marker.exists():
        return 0.0
    t0 = time.perf_counter()
    records, counts = checkpoint_rollouts(
        source / "final", plan.task, "train", plan.n, question_seed=plan.question_seed,
        sampling_seed=seed, template=plan.template, reward=plan.reward,
        threshold=plan.threshold, num_samples=plan.samples, temperature=plan.temperature,
        max_new_tokens=plan.max_new_tokens, progress=progress)
    if not records:
        raise RuntimeError(f"{source}/final kept no rollout of {counts['sampled']} "
                           f"({plan.reward} >= {plan.threshold}): nothing to train {rd} on")
    write_rollouts(records, path)
    seconds = time.perf_counter() - t0
    _write_json(marker, {"source": str(source / "final"), "plan": plan.model_dump(), **counts,
                         "seconds": round(seconds, 1)})
    return seconds


def _init_worker(threads: int) -> None:
    """Set up a worker process the study owns: its thread count, and no per-file progress bars
    (several workers would interleave them; the study prints one line per finished job)."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    import torch
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(threads)
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def run_study(spec: StudySpec, out: str | Path, jobs: int = 1, threads: int = 1,
              echo: Callable[[str], None] = print, report: bool = True) -> dict[str, Any]:
    """Run (or resume) ``spec`` into ``out`` and return ``study.json``'s content.

    ``jobs``: worker processes (each with ``threads`` torch threads); ``jobs=1`` works in this
    process and leaves its thread count alone. ``report=False`` skips the report (statistics
    only).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for arm in spec.arms:  # every recipe must validate before hours of work start
        spec.arm_config(arm, spec.seeds[0], run_dir(out, arm, spec.seeds[0]))
    (out / "study.yaml").write_text(yaml.safe_dump(spec.model_dump(), sort_keys=False))
    todo = plan_jobs(spec, out)
    total = 1 + len(spec.arms) * len(spec.seeds)
    n_seeds = len(spec.seeds)
    echo(f"study {spec.name!r}: {len(spec.arms)} arms x {n_seeds} "
         f"seed{'s' * (n_seeds > 1)} + base; "
         f"{len(todo)} of {total} jobs to do, {jobs} at a time; eval {spec.eval.n} records per "
         f"task (suite {spec.eval.suite}, seed {spec.eval.seed})")
    t0 = time.perf_counter()
    data = spec.model_dump()
    names = {job.name for job in todo}
    # a rollouts arm's run waits for its source run when that one is still to do
    waiting = [job for job in todo if _after(spec, job) in names]
    ready = [job for job in todo if job not in waiting]
    if jobs <= 1:
        for i, job in enumerate(ready + waiting, 1):
            info = _do_job(data, str(out), job, None, progress=True)
            echo(f"[{time.perf_counter() - t0:6.0f} s] {i}/{len(todo)} {_done_line(info)}")
    else:
        ctx = get_context("spawn")  # fresh interpreters: no forked torch thread pools
        with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker,
                                 initargs=(threads,)) as pool:
            def submit(job: Job) -> Future:
                return pool.submit(_do_job, data, str(out), job, threads, False)

            pending: dict[Future, Job] = {submit(job): job for job in ready}
            finished = 0
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    finished += 1
                    name = pending.pop(fut).name
                    echo(f"[{time.perf_counter() - t0:6.0f} s] {finished}/{len(todo)} "
                         f"{_done_line(fut.result())}")
                    for job in [j for j in waiting if _after(spec, j) == name]:
                        waiting.remove(job)
                        pending[submit(job)] = job
    return finish_study(spec, out, report)


def finish_study(spec: StudySpec, out: str | Path, report: bool = True) -> dict[str, Any]:
    """Statistics (``study.json``) and, with ``report``, the report of a study's finished runs."""
    from recap.studies.report import collect, write_report

    result = collect(spec, out)
    if report:
        write_report(result, out)
    _write_json(Path(out) / "study.json", result)
    return result


def _done_line(info: dict[str, Any]) -> str:
    parts = [f"{k.removesuffix('_s')} {v:.0f} s" for k, v in info.items() if k.endswith("_s")]
    return f"{info['job']} done" + (f" ({', '.join(parts)})" if parts else " (already done)")
