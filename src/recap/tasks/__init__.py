"""Records, prompt templates, built-in task generators and dataset loaders."""

from recap.tasks.prompts import render_prompt, render_target
from recap.tasks.record import ANSWER_TYPES, Record

__all__ = ["ANSWER_TYPES", "Record", "render_prompt", "render_target"]
