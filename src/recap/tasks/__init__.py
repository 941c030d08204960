"""Records, prompt templates, built-in task generators and dataset loaders."""

from recap.tasks.loaders import FORMATS, LoadResult, load_records
from recap.tasks.prompts import render_prompt, render_target
from recap.tasks.record import ANSWER_TYPES, Record
from recap.tasks.registry import TASKS, make_task

__all__ = [
    "ANSWER_TYPES",
    "FORMATS",
    "TASKS",
    "LoadResult",
    "Record",
    "load_records",
    "make_task",
    "render_prompt",
    "render_target",
]
