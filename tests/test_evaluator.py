"""Evaluator smoke tests with canned policies, the perplexity-gap study, and one tiny-model run."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from recap.evaluation.evaluator import evaluate, save_results
from recap.evaluation.perplexity import (
    perplexity_gap_study,
    perplexity_gaps,
    sequence_perplexity,
    write_perplexity_gap,
)
from recap.evaluation.report import report_from_files
from recap.evaluation.suites import (
    GENERAL,
    SUITES,
    EvalSuite,
    get_suite,
    records_suite,
    resolve_suites,
)
from recap.tasks.prompts import THINK_SUFFIX
from recap.tasks.record import Record


class CannedPolicy:
    """A policy whose completions come from ``answer(record, prompt)``; records its calls."""

    name = "canned"

    def __init__(self, answer):
        self.answer = answer
        self.calls: list[dict] = []

    def generate(self, records, prompts, num_samples=1, temperature=1.0, top_p=1.0,
                 max_new_tokens=64):
        self.calls.append({"n": len(records), "temperature": temperature,
                           "num_samples": num_samples, "prompts": list(prompts)})
        texts = [self.answer(r, p) for r, p in zip(records, prompts, strict=True)
                 for _ in range(num_samples)]
        return SimpleNamespace(texts=texts)


def oracle(record: Record, prompt: str) -> str:
    """The right answer in the prompt's format (three thinking words under the think template)."""
    if prompt.endswith(THINK_SUFFIX):
        return f"<think>a b c</think><answer>{record.answer}</answer>"
    return f"<answer>{record.answer}</answer>"


def test_oracle_scores_one_everywhere_greedy_batched():
    policy = CannedPolicy(oracle)
    res = evaluate(policy, "all", n_per_task=6, batch_size=4, seed=0, progress=False)
    json.dumps(res)  # JSON-ready
    assert list(res["tasks"]) == ["count", "exists", "ground", "digits", "count_think", "arith",
                                  "jigsaw"]
    assert all(c["temperature"] == 0.0 and c["num_samples"] == 1 for c in policy.calls)
    assert [c["n"] for c in policy.calls[:2]] == [4, 2]  # count: 6 records in batches of 4
    for name, entry in res["tasks"].items():
        m = entry["metrics"]
        assert entry["n"] == 6, name
        assert all(m[h] == 1.0 for h in entry["headline"] if not h.endswith("length")), name
        assert m["format"] == 1.0, name
    ex = res["tasks"]["exists"]["metrics"]
    # 3 POPE subsets x 2 records (1 yes, 1 no): yes-ratio 3/6 overall and 1/2 per subset
    assert ex["yes_ratio"] == 0.5 and ex["adversarial/yes_ratio"] == 0.5
    assert ex["popular/f1"] == 1.0
    assert res["tasks"]["arith"]["metrics"]["thinking_length"] == 3.0
    assert res["tasks"]["count"]["metrics"]["thinking_length"] == 0.0
    assert res["config"]["templates"] == {"count": "answer", "exists": "answer",
                                          "ground": "answer", "digits": "answer",
                                          "count_think": "think", "arith": "think",
                                          "jigsaw": "think"}
    assert "per_record" not in res["tasks"]["count"]  # only when asked


def test_per_record_scores_are_kept_when_asked():
    res = evaluate(CannedPolicy(oracle), "quickstart", n_per_task=4, progress=False,
                   per_record=True)
    per = res["tasks"]["count_think"]["per_record"]
    assert len(per["ids"]) == 4 and len(set(per["ids"])) == 4
    assert per["accuracy"] == [1.0] * 4 and per["thinking_length"] == [3.0] * 4
    # the same held-out records whatever else is evaluated alongside
    again = evaluate(CannedPolicy(oracle), "target", n_per_task=4, progress=False,
                     per_record=True)
    assert again["tasks"]["count_think"]["per_record"]["ids"] == per["ids"]


def test_always_yes_pope_metrics_and_stderr():
    policy = CannedPolicy(lambda r, p: "<answer>Yes</answer>")
    suite = EvalSuite("pope", (GENERAL.tasks[1],))
    m = evaluate(policy, suite, n_per_task=12, batch_size=5, progress=False)["tasks"]["exists"]
    met = m["metrics"]
    # 4 per subset, 2 yes + 2 no: TP 6, FP 6, FN 0, TN 0 over 12
    assert met["accuracy"] == 0.5  # 6 / 12
    assert met["precision"] == 0.5 and met["recall"] == 1.0  # 6 / 12, 6 / 6
    assert met["f1"] == pytest.approx(2 / 3)  # 2 * .5 * 1 / 1.5
    assert met["yes_ratio"] == 1.0 and met["random/yes_ratio"] == 1.0
    # six 1s and six 0s: unbiased var 12 * .25 / 11 = 3/11, se = sqrt(3/11 / 12) = sqrt(1/44)
    assert m["stderr"]["accuracy"] == pytest.approx(math.sqrt(1 / 44))


def test_template_override_and_errors():
    policy = CannedPolicy(oracle)
    suite = EvalSuite("c", (GENERAL.tasks[0],))
    res = evaluate(policy, suite, n_per_task=2, templates={"count": "think"}, progress=False)
    assert all(p.endswith(THINK_SUFFIX) for p in policy.calls[0]["prompts"])
    assert res["tasks"]["count"]["metrics"]["format"] == 1.0  # think_format of the oracle
    with pytest.raises(ValueError, match="known: \\['answer', 'think'\\]"):
        evaluate(policy, suite, n_per_task=2, templates={"count": "chat"}, progress=False)
    with pytest.raises(ValueError, match="unknown tasks \\['cout'\\]; known: \\['count'\\]"):
        evaluate(policy, suite, n_per_task=2, templates={"cout": "think"}, progress=False)
    with pytest.raises(ValueError, match="unknown eval suite 'nope'; known: \\['all'"):
        get_suite("nope")
    assert [s.name for s in resolve_suites("general,target")] == ["general", "target"]
    assert set(SUITES) == {"general", "target", "all", "quickstart", "jigsaw"}
    assert [t.name for t in get_suite("jigsaw").tasks] == ["count", "exists", "ground", "digits",
                                                           "jigsaw"]


class TruncatingPolicy(CannedPolicy):
    """Generations that say which completions ended (every third one ran out of tokens)."""

    def generate(self, records, prompts, **kwargs):
        gen = super().generate(records, prompts, **kwargs)
        gen.finished = [i % 3 != 2 for i in range(len(gen.texts))]
        return gen


def test_truncation_share_is_reported():
    suite = EvalSuite("c", (GENERAL.tasks[0],))
    res = evaluate(TruncatingPolicy(oracle), suite, n_per_task=6, batch_size=3, progress=False)
    # per batch of 3, index 2 is cut: 2 of 6
    assert res["tasks"]["count"]["metrics"]["truncated"] == pytest.approx(2 / 6)
    plain = evaluate(CannedPolicy(oracle), suite, n_per_task=2, progress=False)
    assert "truncated" not in plain["tasks"]["count"]["metrics"]  # unknown, not guessed


def test_external_records_suite_from_jsonl(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "im.png")
    rows = [
        {"id": "a", "domain": "sci", "images": ["im.png"], "question": "Which?", "answer": "B",
         "answer_type": "choice", "meta": {"choices": ["x", "y"]}},
        {"id": "b", "domain": "boxes", "images": ["im.png"], "question": "Where?",
         "answer": "[0, 0, 4, 4]", "answer_type": "bbox"},
        {"id": "c", "domain": "pope", "images": ["im.png"], "question": "Is there?",
         "answer": "no", "answer_type": "yesno", "meta": {"negative": "random"}},
        {"id": "d", "domain": "algebra", "images": ["im.png"], "question": "x?",
         "answer": "\\frac{1}{2}", "answer_type": "math"},
    ]
    path = tmp_path / "ext.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    (suite,) = resolve_suites(str(path))
    by = {t.name: t for t in suite.tasks}
    assert by["boxes"].metrics == {"mean_iou": "iou", "acc@0.5": "iou_at_05"}
    assert by["pope"].existence and by["algebra"].template == "think"
    assert by["sci"].template == "answer"
    res = evaluate(CannedPolicy(oracle), suite, progress=False)
    assert res["tasks"]["boxes"]["metrics"]["mean_iou"] == 1.0
    assert res["tasks"]["algebra"]["metrics"]["accuracy"] == 1.0
    assert res["tasks"]["pope"]["metrics"]["random/accuracy"] == 1.0
    # a seeded sample when fewer are asked for than the file holds
    recs = [Record(f"r{i}", "d", [], "q", str(i), "number") for i in range(10)]
    picked = records_suite(recs).tasks[0].load(3, seed=0)
    assert len(picked) == 3 and picked == records_suite(recs).tasks[0].load(3, seed=0)


def test_eval_then_report_roundtrip(tmp_path):
    suite = EvalSuite("s", GENERAL.tasks[:1])
    base = evaluate(CannedPolicy(oracle), suite, n_per_task=20, progress=False)
    run = evaluate(CannedPolicy(lambda r, p: "<answer>0</answer>"), suite, n_per_task=20,
                   progress=False)
    bp = save_results(base, tmp_path / "base.json")
    rp = save_results(run, tmp_path / "forgot" / "results.json")
    md = report_from_files(bp, [rp], [], tmp_path / "report").read_text()
    # accuracy 100 -> the share of counts that are 0 (none here), a bold drop
    acc = run["tasks"]["count"]["metrics"]["accuracy"]
    assert f"| Counting | accuracy | 100.0 | {100 * acc:.1f} (**↓{100 - 100 * acc:.1f}**) |" in md


def test_sequence_perplexity_and_gaps_hand_computed():
    logp = torch.log(torch.tensor([[0.5, 0.5, 0.1], [0.25, 1.0, 1.0]]))
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    # row 0: exp(-(2 ln .5) / 2) = 2; row 1: exp(-ln .25) = 4
    assert sequence_perplexity(logp, mask).tolist() == pytest.approx([2.0, 4.0])
    # median(3, 5, 10) = 5; Q1 of (1, 2, 3, 4, 5) = 2 (numpy linear: index 1.0) -> gap 3
    # median(7) = 7; Q1 of (4, 8) = 4 + .25 * 4 = 5 -> gap 2; empty candidates -> nan
    gaps = perplexity_gaps([[3, 5, 10], [7], []], [[1, 2, 3, 4, 5], [4, 8], [1]])
    assert gaps[:2] == pytest.approx([3.0, 2.0]) and math.isnan(gaps[2])


class LengthScorer(CannedPolicy):
    """Perplexity of a response = its length in characters (one scored token, logp -ln len)."""

    def target_logprobs(self, records, prompts, targets):
        logp = torch.tensor([[-math.log(len(t))] for t in targets])
        return logp, torch.ones_like(logp, dtype=torch.long), torch.zeros_like(logp)


def test_perplexity_gap_study_with_fake_models(tmp_path):
    rec = Record("q", "arith", [], "2 + 1?", "3", "number")
    # base samples lengths 10, 20, 30, 40 in turn (cycled); the trained model a right answer
    # (length 18) and a wrong one; only the right one is kept.
    lengths = iter([10, 20, 30, 40] * 4)
    base = LengthScorer(lambda r, p: "x" * next(lengths))
    flip = iter([True, False] * 8)
    trained = CannedPolicy(
        lambda r, p: "<answer>3</answer>" if next(flip) else "<answer>4</answer>")
    res = perplexity_gap_study(base, trained, [rec], num_samples=4, max_new_tokens=8)
    # ground truth "<answer>3</answer>" has 18 chars -> PPL 18; base SFT-prompt rollouts
    # 10, 20, 30, 40 -> Q1 = 10 + .75 * 10 = 17.5; gap = .5
    assert res["gaps"]["ground_truth"] == pytest.approx([0.5])
    # trained: two correct rollouts of 18 chars -> median 18; base rollouts again 10..40 -> 17.5
    assert res["perplexities"]["trained_rollouts"] == [[18.0, 18.0]]
    assert res["gaps"]["trained_rollouts"] == pytest.approx([0.5])
    assert res["summary"]["ground_truth"]["n"] == 1
    path = write_perplexity_gap(res, tmp_path)
    assert json.loads(path.read_text())["gaps"]["ground_truth"] == pytest.approx([0.5])
    assert (tmp_path / "perplexity_gap.png").stat().st_size > 5_000


@pytest.mark.slow
def test_tiny_model_eval_and_perplexity(tmp_path):
    from recap.models.loading import load_policy
    from recap.models.tiny import build_tiny_model

    policy = load_policy(build_tiny_model(tmp_path / "tiny"))
    suite = EvalSuite("s", GENERAL.tasks[:1])
    a = evaluate(policy, suite, n_per_task=2, batch_size=2, max_new_tokens=4, progress=False)
    b = evaluate(policy, suite, n_per_task=2, batch_size=2, max_new_tokens=4, progress=False)
    assert a["tasks"]["count"]["samples"] == b["tasks"]["count"]["samples"]  # greedy
    assert a["checkpoint"].endswith("tiny")
    recs = [Record(f"r{i}", "count", [Image.new("RGB", (32, 32))], "How many?", "1", "count")
            for i in range(2)]
    res = perplexity_gap_study(policy, None, recs, num_samples=2, max_new_tokens=4)
    # an untrained char-level model: perplexity of the ground truth is finite and > 1
    assert all(1.0 < g[0] < 1e4 for g in res["perplexities"]["ground_truth"])
    assert len(res["gaps"]["ground_truth"]) == 2
