"""Registry of the built-in tasks: ``make_task(name, split, n, seed, **knobs)``.

| name     | module                         | answer_type  | capability                    |
| -------- | ------------------------------ | ------------ | ----------------------------- |
| count    | :mod:`recap.tasks.scene_tasks` | count        | visual counting (CLEVR)       |
| exists   | :mod:`recap.tasks.scene_tasks` | yesno        | hallucination probe (POPE)    |
| ground   | :mod:`recap.tasks.scene_tasks` | bbox         | grounding (RefCOCO)           |
| describe | :mod:`recap.tasks.scene_tasks` | text         | dense scene description (pretraining) |
| digits   | :mod:`recap.tasks.digits`      | text         | reading / OCR                 |
| jigsaw   | :mod:`recap.tasks.jigsaw`      | permutation  | novel task (jigsaw RFT paper) |
| order    | :mod:`recap.tasks.order`       | permutation  | list-answer primer (jigsaw study) |
| arith    | :mod:`recap.tasks.reasoning`   | number       | multi-step visual reasoning   |

Every generator is deterministic in (name, split, seed) and keeps train and test disjoint
(content-hash split for scenes, held-out digit scans and photos for digits and jigsaw).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from recap.tasks.common import check_split
from recap.tasks.digits import make_digits
from recap.tasks.jigsaw import make_jigsaw
from recap.tasks.order import make_order
from recap.tasks.reasoning import make_arith
from recap.tasks.record import Record
from recap.tasks.scene_tasks import make_count, make_describe, make_exists, make_ground
from recap.tasks.shapes import SceneSpec

TaskFn = Callable[..., list[Record]]

TASKS: dict[str, TaskFn] = {
    "count": make_count,
    "exists": make_exists,
    "ground": make_ground,
    "describe": make_describe,
    "digits": make_digits,
    "jigsaw": make_jigsaw,
    "order": make_order,
    "arith": make_arith,
}


def get_task(name: str) -> TaskFn:
    """The generator of built-in task ``name``; the error lists the known names."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known: {sorted(TASKS)}") from None


def task_knobs(name: str) -> list[str]:
    """The keyword knobs accepted by task ``name`` (scene knobs included for scene tasks)."""
    params = inspect.signature(get_task(name)).parameters.values()
    knobs = [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        knobs += [f.name for f in fields(SceneSpec)]  # scene tasks forward **scene to SceneSpec
    return knobs


def make_task(name: str, split: str, n: int, seed: int = 0, **knobs: Any) -> list[Record]:
    """``n`` records of built-in task ``name`` for ``split`` ("train" or "test").

    Deterministic in (name, split, seed, knobs); record ``i`` does not depend on ``n``, except
    for ``exists``, whose yes/no balance and "popular" negatives are set over the whole call.
    Unknown names and knobs raise ``ValueError`` listing the accepted ones.

    >>> [r.answer_type for r in make_task("count", "train", 2)]
    ['count', 'count']
    """
    fn = get_task(name)
    check_split(split)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    accepted = task_knobs(name)
    unknown = sorted(set(knobs) - set(accepted))
    if unknown:
        raise ValueError(f"task {name!r}: unknown knobs {unknown}; accepted: {accepted}")
    return fn(split, n, seed, **knobs)
