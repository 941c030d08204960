"""Prompt templates (the RECAP paper appendix A.1/A.2; jigsaw RFT paper section 3 for jigsaw).

A template turns a Record's question into the user message. ``think`` asks for a reasoning trace
in ``<think>...</think>`` followed by ``<answer>...</answer>`` (reasoning domains); ``answer`` asks
for the bare ``<answer>...</answer>`` (perception domains). Images are not part of the text: the
model adapter inserts one image placeholder per image before the text.
"""

from __future__ import annotations

from typing import Literal

from recap.tasks.record import Record

Template = Literal["think", "answer"]

# Shorter than the RECAP paper's figure 9 wording with the same instruction: the tiny lab's
# character-level model pays for every prompt character.
THINK_SUFFIX = " Think in <think> </think>, then answer in <answer> </answer>."
ANSWER_SUFFIX = " Answer in <answer> </answer>."

TEMPLATES: dict[str, str] = {"think": THINK_SUFFIX, "answer": ANSWER_SUFFIX}


def render_prompt(record: Record, template: Template) -> str:
    """The user message for ``record`` under ``template`` ("think" or "answer")."""
    try:
        suffix = TEMPLATES[template]
    except KeyError:
        raise ValueError(f"unknown template {template!r}; known: {sorted(TEMPLATES)}") from None
    return record.question.rstrip() + suffix


def render_target(record: Record, template: Template) -> str:
    """The supervised target completion for ``record`` (SFT).

    ``think`` wraps ``record.meta["solution"]`` (or a one-line restatement when a task has no
    worked solution) in think tags before the answer. A record carrying a model's own completion
    (``meta["completion"]``, written by ``recap rollouts``) is trained on that text verbatim.
    """
    if isinstance(record.meta.get("completion"), str):
        return record.meta["completion"]
    answer = f"<answer>{record.answer}</answer>"
    if template == "answer":
        return answer
    if template == "think":
        solution = record.meta.get("solution") or f"The answer is {record.answer}."
        return f"<think>{solution}</think>{answer}"
    raise ValueError(f"unknown template {template!r}; known: {sorted(TEMPLATES)}")
