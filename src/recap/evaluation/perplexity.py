"""Perplexity-gap analysis (the jigsaw RFT paper sec. 5.2-5.4, figures 3, 5 and 8).

Jigsaw-RFT explains why RL forgets less than SFT by the data each trains on: responses the model
samples itself are likely under the base model, hand-written ground truth is not. It measures
this with the per-token perplexity of a response under the *base* model,

    PPL(y | x) = exp( -(1 / |y|) * sum_t log pi_base(y_t | x, y_<t) ),

and, per question q, the gap between a candidate response set and the base model's own
rollouts for the same prompt:

    gap_q = median_j PPL(candidate_qj) - Q_0.25( PPL(base_rollout_qk), k = 1..G ),

i.e. the candidates' median against the lower quartile of what the base model itself samples
(G = 16 rollouts per question, 200 questions in the paper). Candidates are the trained model's
rollouts under the reasoning prompt (compared with base rollouts under the same prompt), or the
single ground-truth answer under the SFT prompt (compared with base rollouts under the SFT
prompt). A distribution of gaps shifted left means data closer to the base model's prior.

Figure 3 (perplexity of a fixed response set across checkpoints) is :func:`mean_perplexity`
evaluated on each checkpoint with the same responses.

Choices made here: the scored response is the completion text followed by the end-of-turn token
(``Policy.target_logprobs``), for candidates and base rollouts alike; the trained model's
rollouts are kept only when correct (``only_correct``, the corpus SFT-on-rollouts trains on) and
a question with no correct rollout has no gap (counted in ``summary``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from recap.evaluation.rollouts import correct_rollouts
from recap.models.logprobs import teacher_forced_batches
from recap.tasks.prompts import render_prompt, render_target
from recap.tasks.record import Record


def sequence_perplexity(logprobs: Tensor, mask: Tensor) -> Tensor:
    """Per-sequence perplexity ``exp(-sum_t m_t * logp_t / sum_t m_t)``.

    Args:
        logprobs: [N, L] token log-probabilities (any value where ``mask`` is 0).
        mask: [N, L] 1 on scored tokens.

    Returns:
        [N] perplexities (``nan`` for a row with no scored token).
    """
    mask = mask.to(logprobs.dtype)
    nll = -(logprobs * mask).sum(-1) / mask.sum(-1)  # [N]
    return torch.exp(nll)


def response_perplexities(
    policy: Any, records: Sequence[Record], prompts: Sequence[str], responses: Sequence[str],
    batch_size: int = 16,
) -> list[float]:
    """Perplexity of ``responses[i]`` given ``(records[i], prompts[i])`` under ``policy``.

    Uses ``policy.target_logprobs`` (teacher forcing, prompt tokens excluded) in eval mode.
    """
    return [value for logp, mask in teacher_forced_batches(policy, records, prompts, responses,
                                                           batch_size)
            for value in sequence_perplexity(logp, mask).tolist()]  # sync once per batch


def mean_perplexity(
    policy: Any, records: Sequence[Record], prompts: Sequence[str], responses: Sequence[str],
    batch_size: int = 16,
) -> dict[str, float]:
    """Mean and median perplexity of a fixed response set (one point of jigsaw-RFT figure 3)."""
    ppl = response_perplexities(policy, records, prompts, responses, batch_size)
    return {"mean": float(np.nanmean(ppl)), "median": float(np.nanmedian(ppl)), "n": len(ppl)}


def perplexity_gaps(
    candidates: Sequence[Sequence[float]], references: Sequence[Sequence[float]],
    candidate_quantile: float = 0.5, reference_quantile: float = 0.25,
) -> list[float]:
    """Per-question gaps ``Q_c(candidates_q) - Q_r(references_q)`` (the jigsaw RFT paper sec. 5.4).

    Defaults: the candidates' median minus the reference rollouts' lower quartile (numpy's
    linear quantile). A question with no candidate or no reference gets ``nan``.
    """
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidate sets for {len(references)} references")
    gaps = []
    for cand, ref in zip(candidates, references, strict=True):
        if len(cand) == 0 or len(ref) == 0:
            gaps.append(math.nan)
            continue
        gaps.append(float(np.quantile(cand, candidate_quantile)
                          - np.quantile(ref, reference_quantile)))
    return gaps


def _summary(gaps: Sequence[float]) -> dict[str, float]:
    x = np.array([g for g in gaps if math.isfinite(g)])
    if x.size == 0:
        return {"n": 0, "skipped": len(gaps)}
    return {"n": int(x.size), "skipped": len(gaps) - int(x.size), "mean": float(x.mean()),
            "median": float(np.median(x)), "share_negative": float((x < 0).mean())}


def _rollout_ppl(
    sampler: Any, scorer: Any, records: Sequence[Record], template: str, num_samples: int,
    temperature: float, max_new_tokens: int, batch_size: int, keep: str | None = None,
    desc: str = "rollouts", progress: bool = False,
) -> list[list[float]]:
    """G rollouts of ``sampler`` per record, scored by ``scorer``; ``keep`` names a reward a
    rollout must score 1 on to be kept. Returns per-record lists of perplexities."""
    kept, _ = correct_rollouts(sampler, records, template=template, reward=keep, threshold=1.0,
                               num_samples=num_samples, temperature=temperature,
                               max_new_tokens=max_new_tokens, batch_size=batch_size,
                               progress=progress, desc=desc)
    ppl = response_perplexities(scorer, kept, [render_prompt(r, template) for r in kept],
                                [r.meta["completion"] for r in kept], batch_size)
    out: list[list[float]] = [[] for _ in records]
    for record, value in zip(kept, ppl, strict=True):
        out[record.meta["source_index"]].append(value)
    return out


def perplexity_gap_study(
    base: Any, trained: Any | None, records: Sequence[Record], num_samples: int = 16,
    rollout_template: str = "think", gt_template: str = "answer", temperature: float = 1.0,
    max_new_tokens: int = 128, only_correct: bool = True, correct_reward: str = "accuracy",
    batch_size: int = 8, seed: int = 0, progress: bool = False,
) -> dict[str, Any]:
    """Jigsaw RFT paper figure 5: perplexity gaps of ground truth and of trained-model rollouts.

    Args:
        base: the base policy; every perplexity is measured under it.
        trained: the trained policy whose rollouts are the RL-style candidates (``None``: only
            the ground-truth comparison).
        records: the questions (the paper samples 200 from the novel task's training split).
        num_samples: G rollouts per question and per sampler (16 in the paper).
        rollout_template: the reasoning ("GRPO-style") prompt of both samplers' rollouts.
        gt_template: the SFT prompt; the ground truth is ``render_target(record, gt_template)``.
        only_correct: keep only trained rollouts scoring 1 on ``correct_reward``.
        seed: torch seed set before sampling (rollouts are reproducible on one machine).
        progress: a progress bar per phase (rollouts, scoring).

    Returns:
        ``{"gaps": {"ground_truth": [...], "trained_rollouts": [...]}, "perplexities": {...},
        "summary": {name: {n, skipped, mean, median, share_negative}}, "config": {...}}``.
    """
    torch.manual_seed(seed)
    recs = list(records)
    common = dict(num_samples=num_samples, temperature=temperature,
                  max_new_tokens=max_new_tokens, batch_size=batch_size, progress=progress)
    base_sft = _rollout_ppl(base, base, recs, gt_template, desc="base rollouts, SFT prompt",
                            **common)
    gt_prompts = [render_prompt(r, gt_template) for r in recs]  # type: ignore[arg-type]
    gt = response_perplexities(
        base, recs, gt_prompts, [render_target(r, gt_template) for r in recs],  # type: ignore[arg-type]
        batch_size,
    )
    ppl: dict[str, list[list[float]]] = {
        "ground_truth": [[p] for p in gt], "base_rollouts_sft_prompt": base_sft,
    }
    gaps = {"ground_truth": perplexity_gaps(ppl["ground_truth"], base_sft)}
    if trained is not None:
        ppl["base_rollouts"] = _rollout_ppl(base, base, recs, rollout_template,
                                            desc="base rollouts, RL prompt", **common)
        ppl["trained_rollouts"] = _rollout_ppl(
            trained, base, recs, rollout_template, keep=correct_reward if only_correct else None,
            desc="trained rollouts, RL prompt", **common,
        )
        gaps["trained_rollouts"] = perplexity_gaps(ppl["trained_rollouts"], ppl["base_rollouts"])
    return {
        "gaps": gaps,
        "perplexities": ppl,
        "summary": {k: _summary(v) for k, v in gaps.items()},
        "config": {"n_questions": len(recs), "num_samples": num_samples,
                   "rollout_template": rollout_template, "gt_template": gt_template,
                   "temperature": temperature, "max_new_tokens": max_new_tokens,
                   "only_correct": only_correct, "seed": seed},
    }


def _json_safe(obj: Any) -> Any:
    """``nan`` (a question without a gap) as ``null``: strict JSON has no NaN."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def write_perplexity_gap(result: Mapping[str, Any], out_dir: Path) -> Path:
    """Save the study as ``perplexity_gap.json`` and its histogram ``perplexity_gap.png``
    (the jigsaw RFT paper figure 5, right); returns the JSON path."""
    from recap.reporting.plots import histograms

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "perplexity_gap.json"
    path.write_text(json.dumps(_json_safe(result), indent=2) + "\n")
    histograms(
        {k.replace("_", " "): v for k, v in result["gaps"].items()}, out_dir / "perplexity_gap.png",
        title="Perplexity gap vs base rollouts (lower = closer to the base model)",
        xlabel="median PPL(candidates) - Q1 PPL(base rollouts)",
    )
    return path


# Sized for the lab (2 CPU cores, the tiny model: about 5 minutes with a trained model); the
# paper's study is --n 200 --samples 16 --max-new-tokens 256.
DEFAULT_QUESTIONS, DEFAULT_SAMPLES, DEFAULT_MAX_NEW_TOKENS = 50, 8, 128


def perplexity_gap_command(
    base: str | Path, trained: str | Path | None = None, task: str = "jigsaw",
    split: str = "train", n: int = DEFAULT_QUESTIONS, num_samples: int = DEFAULT_SAMPLES,
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, batch_size: int = 8, seed: int = 0,
    out_dir: Path = Path("perplexity_gap"), progress: bool = True,
) -> dict[str, Any]:
    """``recap perplexity-gap``: the study on ``n`` questions of a built-in task (the jigsaw
    RFT paper uses 200 training questions of the novel task), written to ``out_dir``. Prints
    the work it is about to do first, then a progress bar per phase."""
    from recap.models.loading import load_policy
    from recap.tasks.registry import make_task

    generations = n * num_samples * (3 if trained else 1)  # base SFT; base and trained RL
    rl_part = ", and from base and trained under the RL prompt" if trained else ""
    if progress:
        print(f"perplexity gap on {n} {task} questions ({split} split): {generations} rollouts "
              f"of <= {max_new_tokens} tokens ({num_samples} per question from the base under "
              f"the SFT prompt{rl_part}"
              f"), each scored under the base model; the paper's sizes: --n 200 --samples 16 "
              f"--max-new-tokens 256", flush=True)
    records = make_task(task, split, n, seed=seed)
    result = perplexity_gap_study(
        load_policy(base), load_policy(trained) if trained else None, records,
        num_samples=num_samples, max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed,
        progress=progress,
    )
    result["config"] |= {"base": str(base), "trained": str(trained) if trained else None,
                         "task": task, "split": split}
    write_perplexity_gap(result, out_dir)
    return result
