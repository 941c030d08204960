"""Evaluation suites: which records, which prompt template, which rewards become which metrics.

A suite is a list of :class:`EvalTask`: which records (a built-in task's held-out ``test`` split
with a fixed seed and size, or external Records), which prompt template, and which rewards are
averaged into which metric names. The built-in suites:

- ``general``: the capabilities RL on reasoning data must not erase (RECAP sec. 1, jigsaw-RFT
  table 1): counting, POPE-style object existence (random / popular / adversarial negatives),
  grounding (mean IoU, acc@IoU0.5) and digit OCR (exact match); ``answer`` template.
- ``target``: the tasks being trained: counting asked with the ``think`` template (the
  quickstart's target), visual arithmetic reasoning and jigsaw puzzles (jigsaw-RFT), ``think``
  template.
- ``quickstart``: ``general`` plus counting with the think template.
- ``jigsaw``: ``general`` plus 2x2 jigsaw with the think template (the jigsaw RFT study).
- ``all``: both.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recap.tasks.record import Record

POPE_SUBSETS = ("random", "popular", "adversarial")


@dataclass(frozen=True)
class EvalTask:
    """One evaluated capability.

    Attributes:
        name: key in the results (``"count"``) — base and runs are matched on it.
        capability: display name in the report (``"Counting"``).
        metrics: ``{metric name: reward name}``; each metric is that reward's mean.
        headline: the metrics shown in the forgetting table and chart.
        template: prompt template (``think`` / ``answer``); its format reward is added as
            ``format``.
        task: built-in task name for :func:`recap.tasks.registry.make_task` (test split).
        knobs: keyword knobs of ``make_task``.
        variants: knob sets concatenated into one task (POPE's three negative subsets); the
            size is split evenly over them.
        records: external records; when given, ``task`` is ignored.
        existence: add POPE precision / recall / F1 / yes-ratio, overall and per subset.
    """

    name: str
    capability: str
    metrics: Mapping[str, str]
    headline: tuple[str, ...]
    template: str = "answer"
    task: str | None = None
    knobs: Mapping[str, Any] = field(default_factory=dict)
    variants: tuple[Mapping[str, Any], ...] = ({},)
    records: tuple[Record, ...] | None = None
    existence: bool = False

    def load(self, n: int, seed: int) -> list[Record]:
        """The evaluated records: ``n`` in all (fewer if an external set is smaller)."""
        if self.records is not None:
            recs = list(self.records)
            # A seeded sample, not the first n: external files are often sorted by source.
            return recs if n >= len(recs) else random.Random(seed).sample(recs, n)
        if self.task is None:
            raise ValueError(f"eval task {self.name!r} has neither a built-in task nor records")
        from recap.tasks.registry import make_task

        per = -(-n // len(self.variants))  # ceil: every variant gets the same size
        out: list[Record] = []
        for variant in self.variants:
            out += make_task(self.task, "test", per, seed=seed, **{**self.knobs, **variant})
        return out


@dataclass(frozen=True)
class EvalSuite:
    """A named list of tasks (``recap eval --suite NAME``)."""

    name: str
    tasks: tuple[EvalTask, ...]
    description: str = ""


def _task(name: str, capability: str, metrics: dict[str, str], headline: tuple[str, ...],
          template: str, **kw: Any) -> EvalTask:
    return EvalTask(name, capability, metrics, headline, template, task=kw.pop("task", name), **kw)


GENERAL = EvalSuite("general", (
    _task("count", "Counting", {"accuracy": "accuracy"}, ("accuracy",), "answer"),
    _task("exists", "Existence (POPE)", {"accuracy": "accuracy"}, ("accuracy", "f1"), "answer",
          variants=tuple({"negative": s} for s in POPE_SUBSETS), existence=True),
    _task("ground", "Grounding", {"mean_iou": "iou", "acc@0.5": "iou_at_05"},
          ("acc@0.5", "mean_iou"), "answer"),
    _task("digits", "OCR (digits)", {"exact_match": "accuracy"}, ("exact_match",), "answer"),
), "general capabilities that must survive RL: counting, existence, grounding, OCR")
# "How many objects are there?" asked with the think template: the base counts well with the
# answer template but has never reasoned its way to a count, so RL has a skill to find (the
# quickstart's target). Only the all-objects query: its answers spread over 1-6, so guessing
# one number cannot pass for counting (colour/shape queries are mostly 0 or 1).
COUNT_THINK_KNOBS = {"queries": ("all",)}
COUNT_THINK = _task("count_think", "Reasoning (counting, think)", {"accuracy": "accuracy"},
                    ("accuracy", "thinking_length"), "think", task="count",
                    knobs=COUNT_THINK_KNOBS)
JIGSAW = _task("jigsaw", "Jigsaw", {"accuracy": "jigsaw_acc", "hit": "jigsaw_hit",
                                    "jigsaw_format": "jigsaw_format"}, ("accuracy", "hit"),
               "think")
TARGET = EvalSuite("target", (
    COUNT_THINK,
    _task("arith", "Reasoning (arith)", {"accuracy": "accuracy"},
          ("accuracy", "thinking_length"), "think"),
    JIGSAW,
), "target tasks being trained: visual arithmetic reasoning, jigsaw puzzles")
SUITES: dict[str, EvalSuite] = {
    "general": GENERAL,
    "target": TARGET,
    "quickstart": EvalSuite("quickstart", (*GENERAL.tasks, COUNT_THINK),
                            "general suite + counting with the think template (the lab target)"),
    "jigsaw": EvalSuite("jigsaw", (*GENERAL.tasks, JIGSAW),
                        "general suite + 2x2 jigsaw with the think template (the jigsaw study)"),
    "all": EvalSuite("all", GENERAL.tasks + TARGET.tasks, "general + target"),
}


def get_suite(name: str) -> EvalSuite:
    """A built-in suite by name; a clear error listing the known names (and the JSONL option)."""
    try:
        return SUITES[name]
    except KeyError:
        raise ValueError(
            f"unknown eval suite {name!r}; known: {sorted(SUITES)} or a path to a .jsonl file"
        ) from None


# Metrics and template of an external task, by the answer type of its records.
_EXTERNAL_METRICS: dict[str, tuple[dict[str, str], tuple[str, ...]]] = {
    "bbox": ({"mean_iou": "iou", "acc@0.5": "iou_at_05"}, ("acc@0.5", "mean_iou")),
    "permutation": ({"accuracy": "jigsaw_acc", "hit": "jigsaw_hit"}, ("accuracy", "hit")),
}
_THINK_TYPES = frozenset({"math", "permutation"})


def records_suite(
    records: Sequence[Record], name: str = "external", template: str | None = None
) -> EvalSuite:
    """A suite of external records: one task per domain, metrics chosen by answer type.

    ``yesno`` domains get the POPE metrics (subsets by ``meta["negative"]`` when present),
    ``bbox`` IoU and acc@0.5, ``permutation`` jigsaw accuracy and hit, everything else the
    ``accuracy`` reward. Template: ``template`` if given, else ``think`` for math and
    permutation answers and ``answer`` for the rest.
    """
    by_domain: dict[str, list[Record]] = {}
    for r in records:
        by_domain.setdefault(r.domain, []).append(r)
    tasks = []
    for domain, recs in by_domain.items():
        kind = recs[0].answer_type
        metrics, headline = _EXTERNAL_METRICS.get(kind, ({"accuracy": "accuracy"}, ("accuracy",)))
        tmpl = template or ("think" if kind in _THINK_TYPES else "answer")
        tasks.append(EvalTask(
            domain, domain, metrics, headline + (("f1",) if kind == "yesno" else ()), tmpl,
            records=tuple(recs), existence=kind == "yesno",
        ))
    return EvalSuite(name, tuple(tasks), f"{len(records)} external records")


SuiteSpec = str | Path | EvalSuite | Sequence[str | Path | EvalSuite]


def resolve_suites(suites: SuiteSpec) -> list[EvalSuite]:
    """Suites from names, paths of Record files (``.jsonl`` / ``.json`` / a saved HF dataset, read
    by :func:`recap.tasks.loaders.load_records`) or suite objects; names may be comma lists."""
    items = [suites] if isinstance(suites, str | Path | EvalSuite) else list(suites)
    out: list[EvalSuite] = []
    for item in items:
        if isinstance(item, EvalSuite):
            out.append(item)
        elif str(item).endswith((".jsonl", ".json")) or Path(item).exists():
            from recap.tasks.loaders import load_records

            # Rows in this project's Record layout (recap.tasks.loaders, format "record").
            out.append(records_suite(load_records(Path(item)).records, name=Path(item).stem))
        else:
            out += [get_suite(s.strip()) for s in str(item).split(",") if s.strip()]
    return out
