"""Evaluation metrics against hand-computed cases (recap.evaluation.metrics)."""

from __future__ import annotations

import math

import pytest

from recap.evaluation.metrics import (
    existence_breakdown,
    existence_metrics,
    length_scores,
    mean_and_stderr,
    normalize_yesno,
    response_length,
    reward_scores,
)
from recap.rewards import get_reward
from recap.tasks.record import Record


def test_normalize_yesno_reads_like_the_accuracy_reward():
    assert normalize_yesno("Yes.") == "yes"
    assert normalize_yesno("no, there is none") == "no"
    assert normalize_yesno("NO") == "no"
    assert normalize_yesno("maybe") is None
    assert normalize_yesno("") is None
    assert normalize_yesno(None) is None


def test_existence_metrics_hand_computed():
    preds = ["yes", "yes", "no", None, "no", "yes", "Yes.", "banana"]
    golds = ["yes", "no", "no", "yes", "yes", "yes", "no", "no"]
    # i: pred / gold -> outcome
    # 0 yes/yes TP, 1 yes/no FP, 2 no/no TN, 3 None/yes FN (invalid), 4 no/yes FN,
    # 5 yes/yes TP, 6 yes/no FP, 7 invalid/no (neither TN nor FP; wrong)
    # TP = 2, FP = 2, TN = 1, FN = 2, invalid = 2, N = 8
    m = existence_metrics(preds, golds)
    assert m["accuracy"] == pytest.approx(3 / 8)  # (TP + TN) / N
    assert m["precision"] == pytest.approx(2 / 4)  # TP / (TP + FP)
    assert m["recall"] == pytest.approx(2 / 4)  # TP / (TP + FN): golds yes at 0, 3, 4, 5
    assert m["f1"] == pytest.approx(0.5)  # 2 * 0.5 * 0.5 / (0.5 + 0.5)
    assert m["yes_ratio"] == pytest.approx(4 / 8)  # predicted yes at 0, 1, 5, 6
    assert m["invalid"] == pytest.approx(2 / 8)


def test_existence_metrics_degenerate_and_errors():
    # A model that always says "no": no positive predictions -> precision 0 (zero_division=0),
    # recall 0, F1 0; accuracy = share of "no" golds = 2 / 3; yes_ratio 0.
    m = existence_metrics(["no", "no", "no"], ["no", "yes", "no"])
    assert (m["precision"], m["recall"], m["f1"], m["yes_ratio"]) == (0.0, 0.0, 0.0, 0.0)
    assert m["accuracy"] == pytest.approx(2 / 3)
    # Always "yes" on a balanced set: P = 1/2, R = 1, F1 = 2 * 0.5 * 1 / 1.5 = 2/3.
    m = existence_metrics(["yes"] * 4, ["yes", "no", "yes", "no"])
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["yes_ratio"] == 1.0
    with pytest.raises(ValueError, match="2 predictions for 1"):
        existence_metrics(["yes", "no"], ["yes"])
    with pytest.raises(ValueError, match="yes/no"):
        existence_metrics(["yes"], ["3"])


def _yn(i: int, answer: str, negative: str) -> Record:
    return Record(f"e{i}", "exists", [], "Is there a red circle?", answer, "yesno",
                  {"negative": negative})


def test_existence_breakdown_per_subset_and_reward_agreement():
    records = [
        _yn(0, "yes", "random"), _yn(1, "no", "random"),
        _yn(2, "yes", "adversarial"), _yn(3, "no", "adversarial"),
    ]
    completions = [
        "<answer>yes</answer>", "<answer>no</answer>",  # random: both right
        "<answer>yes</answer>", "<answer>yes</answer>",  # adversarial: FP on the negative
    ]
    m = existence_breakdown(completions, records)
    # overall: TP 2, TN 1, FP 1 -> acc 3/4, P 2/3, R 1, yes_ratio 3/4
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["yes_ratio"] == pytest.approx(0.75)
    assert m["random/accuracy"] == 1.0 and m["random/f1"] == 1.0
    # adversarial: TP 1, FP 1 -> acc 1/2, P 1/2, R 1, F1 = 2 * 0.5 / 1.5 = 2/3
    assert m["adversarial/accuracy"] == 0.5
    assert m["adversarial/f1"] == pytest.approx(2 / 3)
    # The accuracy here is the training reward's accuracy: the metric cannot drift from it.
    acc = get_reward("accuracy")
    assert m["accuracy"] == pytest.approx(
        sum(acc(c, r) for c, r in zip(completions, records, strict=True)) / 4)


def test_grounding_aggregation_from_rewards():
    rec = Record("g", "ground", [], "Where is the square?", "[0, 0, 10, 10]", "bbox")
    completions = [
        "<answer>[0, 0, 10, 10]</answer>",  # IoU 1
        "<answer>[0, 0, 10, 5]</answer>",  # IoU 50 / 100 = 0.5 -> counts at the 0.5 threshold
        "<answer>[5, 0, 15, 10]</answer>",  # IoU 50 / 150 = 1/3
        "no box at all",  # no answer block -> IoU 0
    ]
    s = reward_scores({"mean_iou": "iou", "acc@0.5": "iou_at_05"}, completions, [rec] * 4)
    assert s["mean_iou"] == pytest.approx([1.0, 0.5, 1 / 3, 0.0])
    mean, se = mean_and_stderr(s["mean_iou"])
    assert mean == pytest.approx((1 + 0.5 + 1 / 3) / 4)  # 0.4583
    assert mean_and_stderr(s["acc@0.5"])[0] == pytest.approx(2 / 4)
    # mean 11/24; deviations 13/24, 1/24, -3/24, -11/24 -> squares sum (169+1+9+121)/576 = 25/48
    # unbiased var = 25/48 / 3 = 25/144; se = sqrt(25/144 / 4) = 5/24
    assert se == pytest.approx(5 / 24)


def test_jigsaw_aggregation_from_rewards():
    rec = Record("j", "jigsaw", [], "Reorder.", "[2, 0, 3, 1]", "permutation", {"grid": (2, 2)})
    completions = [
        "<think>t</think><answer>[2, 0, 3, 1]</answer>",  # hit 4/4, acc 1
        "<think>t</think><answer>[2, 0, 1, 3]</answer>",  # hit 2/4, acc 0
        "<think>t</think><answer>[0, 1, 2, 3]</answer>",  # hit 0/4, acc 0
    ]
    s = reward_scores({"hit": "jigsaw_hit", "accuracy": "jigsaw_acc"}, completions, [rec] * 3)
    assert mean_and_stderr(s["hit"])[0] == pytest.approx((1 + 0.5 + 0) / 3)
    assert mean_and_stderr(s["accuracy"])[0] == pytest.approx(1 / 3)


def test_mean_and_stderr_binomial_scale():
    # 50 ones and 50 zeros: mean .5, unbiased var = 25 / 99, se = sqrt(25 / 99 / 100) = .0503
    mean, se = mean_and_stderr([1.0] * 50 + [0.0] * 50)
    assert mean == 0.5
    assert se == pytest.approx(math.sqrt(25 / 99 / 100))
    assert mean_and_stderr([]) == (0.0, 0.0)
    assert mean_and_stderr([0.7]) == (0.7, 0.0)


def test_lengths_in_words():
    c = "<think>one two three</think> <answer>4</answer>"
    assert response_length(c) == 4  # "<think>one", "two", "three</think>", "<answer>4</answer>"
    assert length_scores([c, "<answer>4</answer>"]) == {
        "response_length": [4.0, 1.0], "thinking_length": [3.0, 0.0]}


def test_reward_scores_unknown_reward_lists_known():
    rec = Record("c", "count", [], "How many?", "3", "count")
    with pytest.raises(ValueError, match="known:"):
        reward_scores({"x": "no_such_reward"}, ["<answer>3</answer>"], [rec])
