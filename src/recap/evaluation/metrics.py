"""Evaluation metrics: the training rewards aggregated over a test set, plus what rewards lack.

Every per-sample score comes from :mod:`recap.rewards` (STYLE.md point 9): counting accuracy,
OCR exact match, reasoning accuracy, grounding IoU and acc@IoU0.5, jigsaw hit / accuracy and
format compliance are the means of the very functions the trainer optimises, so an evaluation
metric and its training reward cannot drift apart. This module only adds what a per-sample
reward cannot express: POPE-style existence precision / recall / F1 / yes-ratio (a property of
the whole prediction set), means with standard errors, and length statistics.

Deliberate choices:
- A completion without a parsable answer is a wrong answer (accuracy 0), never skipped, so a
  model that forgets the answer format is penalised on every capability.
- Existence predictions that are neither "yes" nor "no" count as "not yes": a false negative
  when the gold is "yes", neither a true negative nor a false positive when it is "no".
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from sklearn.metrics import precision_recall_fscore_support

from recap.parsing import extract_answer, parse_yesno, thinking_length
from recap.rewards import get_reward
from recap.tasks.record import Record

YES, NO = "yes", "no"
_WORD = re.compile(r"\S+")


def normalize_yesno(pred: str | None) -> str | None:
    """``"yes"`` / ``"no"`` for an extracted answer the ``accuracy`` reward reads as yes / no
    (its first word yes/true/y or no/false/n, case and punctuation ignored), else ``None``.

    >>> normalize_yesno(" Yes. "), normalize_yesno("no, there is none"), normalize_yesno("maybe")
    ('yes', 'no', None)
    """
    reading = None if pred is None else parse_yesno(pred)  # the accuracy reward's reading
    return None if reading is None else (YES if reading else NO)


def existence_metrics(preds: Sequence[str | None], golds: Sequence[str]) -> dict[str, float]:
    """POPE-style binary metrics of yes/no object-existence answers, "yes" the positive class.

    POPE (Li et al. 2023; the hallucination row of jigsaw-RFT table 1) reports, over N questions::

        accuracy  = (TP + TN) / N
        precision = TP / (TP + FP)          recall = TP / (TP + FN)
        f1        = 2 * precision * recall / (precision + recall)
        yes_ratio = (TP + FP) / N           (0.5 on a balanced set for an unbiased model)

    Args:
        preds: extracted answers (``None`` when the completion had none), read by
            :func:`normalize_yesno`; anything else is "invalid" (see module docstring).
        golds: yes/no reference answers, same length as ``preds``.

    Returns:
        ``accuracy, precision, recall, f1, yes_ratio, invalid`` (fraction of invalid answers),
        all in [0, 1]; precision, recall and F1 are 0 when their denominator is 0.
    """
    if len(preds) != len(golds):
        raise ValueError(f"{len(preds)} predictions for {len(golds)} references")
    if not golds:
        return {k: 0.0 for k in ("accuracy", "precision", "recall", "f1", "yes_ratio", "invalid")}
    gold = [normalize_yesno(g) for g in golds]
    if None in gold:
        bad = sorted({g for g, n in zip(golds, gold, strict=True) if n is None})
        raise ValueError(f"existence references must be yes/no, got {bad}")
    pred = [normalize_yesno(p) or "invalid" for p in preds]
    p, r, f, _ = precision_recall_fscore_support(
        gold, pred, labels=[YES], average=None, zero_division=0
    )
    n = len(gold)
    return {
        "accuracy": sum(a == b for a, b in zip(pred, gold, strict=True)) / n,
        "precision": float(p[0]),
        "recall": float(r[0]),
        "f1": float(f[0]),
        "yes_ratio": pred.count(YES) / n,
        "invalid": pred.count("invalid") / n,
    }


def mean_and_stderr(values: Sequence[float]) -> tuple[float, float]:
    """Sample mean and its standard error ``s / sqrt(n)`` (``s`` the unbiased std; 0 if n < 2).

    For 0/1 scores this is the usual binomial error bar of an accuracy: a 0.5 accuracy on 100
    examples is 0.5 +- 0.05, which is the scale to read forgetting deltas against.
    """
    n = len(values)
    if n == 0:
        return 0.0, 0.0
    mean = math.fsum(values) / n
    if n < 2:
        return mean, 0.0
    var = math.fsum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def reward_scores(
    reward_names: Mapping[str, str], completions: Sequence[str], records: Sequence[Record]
) -> dict[str, list[float]]:
    """Per-sample scores ``{metric: [reward(completion_i, record_i)]}`` from the reward registry.

    ``reward_names`` maps a metric name (``"exact_match"``) to a reward name (``"accuracy"``);
    unknown reward names raise the registry's error listing the known ones.
    """
    if len(completions) != len(records):
        raise ValueError(f"{len(completions)} completions for {len(records)} records")
    out: dict[str, list[float]] = {}
    for metric, reward in reward_names.items():
        fn = get_reward(reward)
        out[metric] = [float(fn(c, r)) for c, r in zip(completions, records, strict=True)]
    return out


def response_length(completion: str) -> int:
    """Length of a whole completion in whitespace-separated words (RECAP figure 8's unit)."""
    return len(_WORD.findall(completion))


def length_scores(completions: Sequence[str]) -> dict[str, list[float]]:
    """Per-sample ``response_length`` (words) and ``thinking_length`` (the rewards' measure of
    the ``<think>`` segment; RECAP paper figures 7 and 8 track both during training)."""
    return {
        "response_length": [float(response_length(c)) for c in completions],
        "thinking_length": [float(thinking_length(c)) for c in completions],
    }


def existence_breakdown(
    completions: Sequence[str], records: Sequence[Record], group_key: str = "negative"
) -> dict[str, float]:
    """:func:`existence_metrics` of completions, overall and per POPE subset.

    POPE evaluates three balanced subsets that ask about the same positives and differ in how
    the absent object of a "no" question is sampled (random / popular / adversarial); a record's
    subset is ``record.meta[group_key]``. Keys are ``"<metric>"`` over all records and
    ``"<subset>/<metric>"`` per subset; records without the key only count overall.
    """
    preds = [extract_answer(c) for c in completions]
    golds = [r.answer for r in records]
    out = existence_metrics(preds, golds)
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        if r.meta.get(group_key) is not None:
            groups.setdefault(str(r.meta[group_key]), []).append(i)
    for name, idx in groups.items():
        sub = existence_metrics([preds[i] for i in idx], [golds[i] for i in idx])
        out.update({f"{name}/{k}": v for k, v in sub.items()})
    return out
