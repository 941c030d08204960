"""SFT data from a model's own correct rollouts (the jigsaw RFT paper sec. 5.3).

The jigsaw RFT paper trains SFT on the correct completions a GRPO-trained model sampled and finds
it forgets as little as GRPO: what matters is that the targets are likely under the model, not
the RL objective. :func:`correct_rollouts` samples G completions per record, keeps those whose
reward reaches a threshold, and returns them as Records whose ``meta["completion"]`` holds the
completion: :func:`recap.tasks.prompts.render_target` then returns it verbatim, so a recipe's SFT
domain trains on exactly what the model wrote. :func:`write_rollouts` saves them as JSONL in
recap's own record layout (images as PNG files next to it), which a recipe reads with
``source: {path: rollouts.jsonl, format: record}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from recap.rewards import get_reward
from recap.tasks.prompts import render_prompt
from recap.tasks.record import Record


def correct_rollouts(
    policy: Any, records: Sequence[Record], *, template: str = "think",
    reward: str | None = "accuracy", threshold: float = 1.0, num_samples: int = 8,
    temperature: float = 1.0, max_new_tokens: int = 128, batch_size: int = 8,
    progress: bool = False, desc: str | None = None,
) -> tuple[list[Record], dict[str, int]]:
    """Rollouts of ``policy`` scoring at least ``threshold`` on ``reward`` (every rollout when
    ``reward`` is None), as SFT records.

    Each kept record copies its source (images, question, answer) with ``id`` ``<id>#<j>`` and
    ``meta`` extended by ``completion``, ``source_id``, ``source_index`` (its question's position
    in ``records``), ``reward`` and ``score``. Returns the records and counts (``sampled``,
    ``kept``, ``questions_with_one``).
    """
    from tqdm.auto import tqdm

    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1] (rewards are), got {threshold}")
    fn = get_reward(reward) if reward is not None else None
    kept: list[Record] = []
    covered: set[int] = set()
    label = desc or (f"rollouts ({reward} >= {threshold})" if reward else "rollouts")
    bar = tqdm(total=len(records), desc=label, unit="question", disable=not progress)
    for start in range(0, len(records), batch_size):
        batch = list(records[start:start + batch_size])
        prompts = [render_prompt(r, template) for r in batch]  # type: ignore[arg-type]
        gen = policy.generate(batch, prompts, num_samples=num_samples, temperature=temperature,
                              max_new_tokens=max_new_tokens)
        for j, text in enumerate(gen.texts):
            source = batch[j // num_samples]
            score = fn(text, source) if fn is not None else None
            if score is None or score >= threshold:
                covered.add(start + j // num_samples)
                kept.append(Record(
                    f"{source.id}#{j % num_samples}", source.domain, list(source.images),
                    source.question, source.answer, source.answer_type,
                    {**source.meta, "completion": text, "source_id": source.id,
                     "source_index": start + j // num_samples, "reward": reward,
                     "score": score}))
        bar.update(len(batch))
    bar.close()
    counts = {"sampled": len(records) * num_samples, "kept": len(kept),
              "questions_with_one": len(covered)}
    return kept, counts


def checkpoint_rollouts(
    checkpoint: str | Path, task: str, split: str, n: int, *, question_seed: int,
    sampling_seed: int, **sampling: Any,
) -> tuple[list[Record], dict[str, int]]:
    """:func:`correct_rollouts` of a saved model on ``n`` questions of built-in ``task``
    (``question_seed``), sampled from torch seed ``sampling_seed``; ``sampling`` are
    :func:`correct_rollouts`' keywords. What ``recap rollouts`` and a study's rollouts arm run."""
    import torch

    from recap.models.loading import load_policy
    from recap.tasks.registry import make_task

    torch.manual_seed(sampling_seed)
    return correct_rollouts(load_policy(checkpoint),
                            make_task(task, split, n, seed=question_seed), **sampling)


def write_rollouts(records: Sequence[Record], path: str | Path) -> Path:
    """Write ``records`` as JSONL in recap's record layout; in-memory images are saved as PNG
    files in ``<stem>_images/`` and referenced by absolute path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image_dir = path.with_name(f"{path.stem}_images")
    with path.open("w") as f:
        for i, record in enumerate(records):
            images = []
            for k, image in enumerate(record.images):
                if isinstance(image, Image.Image):
                    image_dir.mkdir(exist_ok=True)
                    file = image_dir / f"{i:06d}_{k}.png"
                    image.save(file)
                    image = file
                images.append(str(Path(image).resolve()))
            f.write(json.dumps({
                "id": record.id, "domain": record.domain, "images": images,
                "question": record.question, "answer": record.answer,
                "answer_type": record.answer_type, "meta": record.meta,
            }, default=str) + "\n")
    return path
