"""recap's domains as TRL inputs: one replay dataset, per-(domain, reward) reward functions.

A recap recipe (``RunConfig``) names the domains, their templates and rewards, the replay
strategy and the seed. :func:`replay_data` turns it into what ``trl.GRPOTrainer`` takes:

- ``dataset``: the RL domains' prompts as a ``datasets.Dataset`` in the order recap's own
  :class:`~recap.training.sampler.DomainSampler` draws them (reasoning-only, default, uniform,
  coreset or fixed mixtures of the RECAP paper, sec. 5.1), with a ``domain`` column. TRL reads it
  in that order with ``GRPOConfig(shuffle_dataset=False)``; a step of ``B`` unique prompts then
  sees what a recap step of ``batch_size = B`` sees (exactly with ``train.batch_per: total``).
- ``reward_funcs``: one function per RL domain and reward, named ``<domain>/<reward>`` (the
  objectives of ``weighting.apply: rewards``); it scores its own domain's rows and returns
  ``None`` elsewhere, TRL's convention for "does not apply" (the row is left out of that
  reward's mean, and ``nansum`` skips it in the weighted sum).
- ``sft``: the SFT domains' record pools, which :class:`~recap.integrations.trl.RecapGRPOTrainer`
  replays as a supervised term in the same optimiser step.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset

from recap.config import DomainSpec, RunConfig, load_config
from recap.rewards import get_reward
from recap.tasks.prompts import render_prompt
from recap.tasks.record import Record
from recap.training.build import domain_records
from recap.training.sampler import DomainSampler


@dataclass(frozen=True)
class ReplayData:
    """Everything :func:`replay_data` builds from a recipe (see the module docstring).

    Attributes:
        config: the recipe, with ``weighting.apply`` set to ``rewards``.
        dataset: RL prompts in draw order (columns ``prompt``, ``images``, ``domain``,
            ``record``: the Record as JSON, for the rewards).
        reward_funcs: one TRL reward function per RL objective, in ``objectives`` order.
        sft: SFT domain name -> (its records, its template).
        objectives: the weighting's objectives: ``<domain>/<reward>``, then ``sft:<domain>``.
        prompts_per_step: unique prompts per draw when every draw has as many (``batch_per``
            ``total`` or ``reasoning``, or one RL domain): ``GRPOConfig``'s
            ``per_device_train_batch_size`` is this times ``num_generations``; None when the
            count varies, and TRL's fixed-size steps then cut across draws.
    """

    config: RunConfig
    dataset: Dataset
    reward_funcs: list[Callable[..., list[float | None]]]
    sft: dict[str, tuple[list[Record], str]]
    objectives: list[str]
    prompts_per_step: int | None


def replay_data(recipe: RunConfig | str | Path, overrides: Sequence[str] = ()) -> ReplayData:
    """Build TRL inputs from a recipe (a ``RunConfig`` or a YAML path, with ``--set`` overrides).

    The dataset holds ``train.steps x train.grad_accum`` draws of recap's sampler. Built-in
    records are generated exactly as ``recap train`` generates them (same seed); file sources are
    read by recap's loaders.
    """
    cfg = recipe if isinstance(recipe, RunConfig) else load_config(recipe, list(overrides))
    if cfg.weighting.apply != "rewards":  # TRL's weights act on the rewards (RECAP authors' code)
        data = cfg.model_dump()
        data["weighting"]["apply"] = "rewards"
        cfg = RunConfig.model_validate(data)
    rl = [d for d in cfg.active_domains if d.mode == "rl"]
    if not rl:
        raise ValueError("the recipe has no RL domain; GRPOTrainer needs prompts to sample")
    pools = {d.name: domain_records(d, cfg.train.seed) for d in cfg.active_domains}
    sampler = DomainSampler(
        {d.name: pools[d.name] for d in rl}, {d.name: d.role for d in rl},
        strategy=cfg.sampling.strategy if any(d.role == "reasoning" for d in rl) else "uniform",
        batch_size=cfg.train.batch_size, batch_per=cfg.train.batch_per, seed=cfg.train.seed,
        weights={d.name: d.weight for d in rl if d.weight is not None} or None,
        coreset_ratio=cfg.sampling.coreset_ratio)
    rows: list[dict[str, Any]] = []
    spec, counts = {d.name: d for d in rl}, set()
    for _ in range(cfg.train.steps * cfg.train.grad_accum):  # one draw per recap micro-batch
        batch = sampler.next_batch()
        counts.add(sum(len(records) for records in batch.values()))
        rows += [_row(r, spec[name]) for name, records in batch.items() for r in records]
    if not any(row["images"] for row in rows):  # text-only: TRL's text path
        rows = [{k: v for k, v in row.items() if k != "images"} for row in rows]
    return ReplayData(
        config=cfg,
        dataset=Dataset.from_list(rows),
        reward_funcs=[domain_reward(d.name, r) for d in rl for r in d.rewards],
        sft={d.name: (pools[d.name], d.template) for d in cfg.active_domains if d.mode == "sft"},
        objectives=cfg.objective_names,
        prompts_per_step=counts.pop() if len(counts) == 1 else None,
    )


def domain_reward(domain: str, reward: str) -> Callable[..., list[float | None]]:
    """TRL reward function ``<domain>/<reward>``: recap's reward on rows of ``domain``, else None.

    It reads the ``domain`` and ``record`` columns that :func:`replay_data` writes; completions
    may be plain strings or conversational (``[{"role": "assistant", "content": ...}]``).
    """
    fn = get_reward(reward)  # fails now, not mid-run, on an unknown reward name

    def reward_func(completions: list[Any], domain: list[str], record: list[str],
                    **_: Any) -> list[float | None]:
        return [fn(_text(c), _record(r, d)) if d == reward_func.domain else None
                for c, d, r in zip(completions, domain, record, strict=True)]

    reward_func.domain = domain  # type: ignore[attr-defined]
    reward_func.__name__ = reward_func.__qualname__ = f"{domain}/{reward}"
    return reward_func


def _row(record: Record, domain: DomainSpec) -> dict[str, Any]:
    meta = {"id": record.id, "question": record.question, "answer": record.answer,
            "answer_type": record.answer_type, "meta": record.meta}
    return {"prompt": [{"role": "user", "content": render_prompt(record, domain.template)}],
            "images": record.load_images(), "domain": domain.name,
            "record": json.dumps(meta, default=str)}


def _record(data: str, domain: str) -> Record:
    fields = json.loads(data)
    return Record(fields["id"], domain, [], fields["question"], fields["answer"],
                  fields["answer_type"], fields["meta"])


def _text(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion:  # conversational: the assistant turn
        content = completion[-1].get("content", "")
        if isinstance(content, list):  # structured blocks
            return "".join(b.get("text", "") for b in content if isinstance(b, dict))
        return str(content)
    return ""
