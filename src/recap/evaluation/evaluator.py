"""Greedy, batched evaluation of a checkpoint on capability suites (``recap eval``).

The suites (which records, which template, which rewards become which metrics) are defined in
:mod:`recap.evaluation.suites`.

Every task also reports ``format`` (its template's format reward), ``response_length`` and
``thinking_length`` (words), and ``truncated`` (share of completions that hit the token budget).
Decoding is greedy (one sample per prompt) so two evaluations of the same checkpoint agree
exactly and base-vs-run differences are the model's, not sampling noise.
The output is a JSON-ready dict (format ``recap-eval/1``) read by :mod:`recap.evaluation.report`.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from recap.evaluation.metrics import (
    existence_breakdown,
    length_scores,
    mean_and_stderr,
    reward_scores,
)
from recap.evaluation.suites import EvalTask, SuiteSpec, resolve_suites
from recap.tasks.prompts import render_prompt
from recap.tasks.record import Record

RESULTS_FORMAT = "recap-eval/1"
DEFAULT_N = 120
# Template and format reward per template (RECAP sec. 5: thinking format on reasoning domains,
# answer format on perception domains).
FORMAT_REWARD = {"think": "think_format", "answer": "answer_format"}


class PolicyLike(Protocol):
    """What the evaluator needs from a policy (``recap.models.Policy`` satisfies it)."""

    def generate(self, records: list[Record], prompts: list[str], **kwargs: Any) -> Any: ...


def _greedy_kwargs(policy: PolicyLike, max_new_tokens: int) -> dict[str, Any]:
    """Keyword arguments of ``policy.generate`` for one greedy sample per prompt."""
    params = inspect.signature(policy.generate).parameters
    kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens}
    if "num_samples" in params:
        kwargs["num_samples"] = 1
    if "do_sample" in params:
        kwargs["do_sample"] = False
    if "temperature" in params:
        kwargs["temperature"] = 0.0
    return kwargs


def generate_texts(
    policy: PolicyLike, records: Sequence[Record], prompts: Sequence[str], batch_size: int,
    max_new_tokens: int, progress: Any = None,
) -> tuple[list[str], list[bool] | None]:
    """Greedy completions of ``records`` in batches of ``batch_size``, and which of them hit
    ``max_new_tokens`` (``None`` when the policy's generations do not say, i.e. have no
    ``finished``). ``progress`` is an optional tqdm-like bar advanced by the batch size."""
    kwargs = _greedy_kwargs(policy, max_new_tokens)
    texts: list[str] = []
    truncated: list[bool] | None = []
    for start in range(0, len(records), batch_size):
        recs = list(records[start:start + batch_size])
        gen = policy.generate(recs, list(prompts[start:start + batch_size]), **kwargs)
        out = list(gen.texts)
        if len(out) != len(recs):
            raise RuntimeError(f"policy returned {len(out)} completions for {len(recs)} prompts")
        texts += out
        finished = getattr(gen, "finished", None)
        if truncated is not None and finished is not None:
            truncated += [not bool(f) for f in finished]
        else:
            truncated = None
        if progress is not None:
            progress.update(len(recs))
    return texts, truncated


def score_task(
    task: EvalTask, records: Sequence[Record], completions: Sequence[str], n_samples: int = 3,
    truncated: Sequence[bool] | None = None, per_record: bool = False,
) -> dict[str, Any]:
    """Metrics of one task from its completions: reward means with standard errors, format,
    lengths, the share of completions cut by the token budget (``truncated``, when known) and
    POPE metrics for existence tasks. ``per_record`` also keeps every record's id and score per
    metric (``per_record: {"ids": [...], metric: [...]}``), so paired comparisons can be
    recomputed later (``recap study``)."""
    names = dict(task.metrics)
    names.setdefault("format", FORMAT_REWARD[task.template])
    scores = reward_scores(names, completions, records) | length_scores(completions)
    if truncated is not None:
        scores["truncated"] = [float(t) for t in truncated]
    metrics, stderr = {}, {}
    for k, vs in scores.items():
        metrics[k], stderr[k] = mean_and_stderr(vs)
    if task.existence:
        pope = existence_breakdown(completions, records)
        # The overall accuracy stays the reward mean (same value, and it has a standard error).
        metrics |= {k: v for k, v in pope.items() if k != "accuracy"}
    samples = [
        {"id": r.id, "question": r.question, "answer": r.answer, "completion": c,
         **{k: scores[k][i] for k in names}}
        for i, (r, c) in enumerate(zip(records, completions, strict=True)) if i < n_samples
    ]
    out = {
        "capability": task.capability, "template": task.template, "n": len(records),
        "headline": list(task.headline), "metrics": metrics, "stderr": stderr,
        "samples": samples,
    }
    if per_record:
        out["per_record"] = {"ids": [r.id for r in records], **scores}
    return out


def evaluate(
    policy_or_path: PolicyLike | str | Path,
    suites: SuiteSpec = "general",
    n_per_task: int | None = None,
    batch_size: int = 16,
    seed: int = 0,
    max_new_tokens: int = 128,
    templates: Mapping[str, str] | None = None,
    progress: bool = True,
    n_samples: int = 3,
    per_record: bool = False,
) -> dict[str, Any]:
    """Evaluate a policy (or a checkpoint path, loaded with ``recap.models.load_policy``).

    Args:
        suites: suite names (``general``, ``target``, ``all``), ``.jsonl`` paths or suites.
        n_per_task: records per task (default :data:`DEFAULT_N`); held-out ``test`` split with
            ``seed``, so every checkpoint evaluated with the same arguments sees the same records.
        batch_size: prompts per ``generate`` call.
        templates: ``{task name: template}`` overrides (e.g. ``{"count": "think"}``).
        n_samples: completions kept per task in the output, for eyeballing.
        per_record: keep every record's score per metric (:func:`score_task`).

    Returns:
        ``{"format", "checkpoint", "config", "tasks": {name: {capability, template, n,
        headline, metrics, stderr, samples}}, "wall_s"}``; metrics are in [0, 1] except the
        lengths (words).
    """
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    if isinstance(policy_or_path, str | Path):
        from recap.models.loading import load_policy

        checkpoint, policy = str(policy_or_path), load_policy(policy_or_path)
    else:
        checkpoint = getattr(policy_or_path, "name", "") or "<in-memory policy>"
        policy = policy_or_path
    n = DEFAULT_N if n_per_task is None else n_per_task
    if n < 1 or batch_size < 1 or max_new_tokens < 1:
        raise ValueError("n_per_task, batch_size and max_new_tokens must be >= 1")
    resolved = resolve_suites(suites)
    tasks: dict[str, EvalTask] = {}
    known = {t.name for suite in resolved for t in suite.tasks}
    unknown = sorted(set(templates or {}) - known)
    if unknown:
        raise ValueError(f"template overrides for unknown tasks {unknown}; known: {sorted(known)}")
    for suite in resolved:
        for task in suite.tasks:
            template = (templates or {}).get(task.name, task.template)
            if template not in FORMAT_REWARD:
                raise ValueError(f"task {task.name!r}: unknown template {template!r}; "
                                 f"known: {sorted(FORMAT_REWARD)}")
            tasks[task.name] = replace(task, template=template)
    results: dict[str, Any] = {}
    for task in tasks.values():
        records = task.load(n, seed)
        prompts = [render_prompt(r, task.template) for r in records]  # type: ignore[arg-type]
        with tqdm(total=len(records), desc=f"eval {task.name}", unit="ex",
                  disable=not progress, leave=False) as bar:
            texts, cut = generate_texts(policy, records, prompts, batch_size, max_new_tokens, bar)
        results[task.name] = score_task(task, records, texts, n_samples=n_samples, truncated=cut,
                                        per_record=per_record)
    return {
        "format": RESULTS_FORMAT,
        "checkpoint": checkpoint,
        "config": {
            "suites": [s.name for s in resolved], "n_per_task": n, "batch_size": batch_size,
            "seed": seed, "max_new_tokens": max_new_tokens,
            "templates": {t.name: t.template for t in tasks.values()},
        },
        "tasks": results,
        "wall_s": round(time.perf_counter() - t0, 3),
    }


def save_results(results: Mapping[str, Any], path: Path) -> Path:
    """Write an evaluation as indented JSON (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    return path


def summary_lines(results: Mapping[str, Any]) -> list[str]:
    """One line per task with its headline metrics and format compliance, for the terminal."""
    lines = []
    for entry in results["tasks"].values():
        m = entry["metrics"]
        names = [*entry["headline"], *(["format"] if "format" in m else [])]
        parts = [f"{k} {m[k]:.1f}" if k.endswith("length") else f"{k} {100 * m[k]:.1f}%"
                 for k in names if m.get(k) is not None]
        lines.append(f"{entry['capability']:<20} n={entry['n']:<4} " + "  ".join(parts))
    return lines


def parse_templates(pairs: Sequence[str]) -> dict[str, str]:
    """``["count=think", "jigsaw=answer"]`` -> ``{"count": "think", "jigsaw": "answer"}``."""
    out = {}
    for pair in pairs:
        task, sep, template = pair.partition("=")
        if not sep or not task.strip() or template.strip() not in FORMAT_REWARD:
            raise ValueError(f"template override {pair!r} must be TASK=TEMPLATE with TEMPLATE in "
                             f"{sorted(FORMAT_REWARD)}")
        out[task.strip()] = template.strip()
    return out


def eval_command(
    checkpoint: str | Path, suite: str = "general", out: Path = Path("results.json"),
    n_per_task: int | None = None, batch_size: int = 16, seed: int = 0,
    max_new_tokens: int = 128, templates: Sequence[str] = (),
) -> dict[str, Any]:
    """``recap eval``: evaluate ``checkpoint``, write ``out``, return the results."""
    results = evaluate(checkpoint, suite, n_per_task=n_per_task, batch_size=batch_size, seed=seed,
                       max_new_tokens=max_new_tokens, templates=parse_templates(templates))
    save_results(results, out)
    return results
