"""The forgetting report renders tables with arrows, figures and HTML from files it is given."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recap.evaluation.report import (
    RESULTS_FORMAT,
    forgetting_rows,
    headline_table,
    load_run_metrics,
    report_from_files,
    write_report,
)
from recap.reporting.markdown import format_delta, md_table
from recap.reporting.plots import moving_average


def _results(name: str, count: float, ground: float, f1: float, think: float) -> dict:
    """An evaluation file as the evaluator writes it (only the fields the report reads)."""
    return {
        "format": RESULTS_FORMAT, "checkpoint": f"ckpt/{name}",
        "config": {"suites": ["all"], "n_per_task": 100, "seed": 0, "max_new_tokens": 64},
        "tasks": {
            "count": {"capability": "Counting", "n": 100, "headline": ["accuracy"],
                      "metrics": {"accuracy": count, "format": 1.0},
                      "stderr": {"accuracy": 0.05, "format": 0.0}},
            "ground": {"capability": "Grounding", "n": 100, "headline": ["acc@0.5"],
                       "metrics": {"acc@0.5": ground}, "stderr": {"acc@0.5": 0.05}},
            "exists": {"capability": "Existence (POPE)", "n": 100,
                       "headline": ["f1", "yes_ratio"],
                       "metrics": {"f1": f1, "yes_ratio": 0.5 + f1 / 4}, "stderr": {}},
            "arith": {"capability": "Reasoning (arith)", "n": 100,
                      "headline": ["accuracy", "thinking_length"],
                      "metrics": {"accuracy": 0.2 + think / 100, "thinking_length": think},
                      "stderr": {"accuracy": 0.04, "thinking_length": 1.0}},
        },
    }


BASE = _results("base", count=0.50, ground=0.60, f1=0.80, think=20.0)
# count:  .50 -> .30: drop .20 > 2 * hypot(.05, .05) = .141 -> bold
# ground: .60 -> .58: drop .02 < .141 -> plain arrow
# f1 (no stderr): .80 -> .74: drop .06 >= 5 points fallback -> bold
GRPO = _results("grpo", count=0.30, ground=0.58, f1=0.74, think=35.0)
# count .50 -> .55 up; ground unchanged "="; f1 .80 -> .77: drop .03 < 5 points -> plain
RECAP = _results("recap", count=0.55, ground=0.60, f1=0.77, think=12.0)


def _write_metrics(run_dir: Path, steps: int, lambdas: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    run_dir.mkdir(parents=True)
    lines = []
    for t in range(steps):
        acc = min(1.0, t / steps + 0.1 * rng.standard_normal())
        row = {
            "step": t, "reward/arith/accuracy/mean": acc, "reward/arith/accuracy/std": 0.1,
            "reward/arith/think_format/mean": 1 - math.exp(-t / 5),
            "reward/count/answer_format/mean": 1.0, "loss/accuracy": 0.5 - acc / 2,
            "kl": 0.01 * t, "beta": 0.0, "length/arith/thinking": 30 - t / 2,
            "length/arith/response": 40 - t / 2, "thinking/arith": 25 - t / 3,
            "signal/accuracy": acc, "time/step": 0.4,
        }
        if lambdas:
            row |= {"lambda/accuracy": 1 + t / steps, "lambda/think_format": 1 - t / steps,
                    "weighting/accuracy/c": 0.9 + t / 100, "weighting/accuracy/i": 0.1}
        lines.append(json.dumps(row))
    # A run killed mid-write leaves a truncated last line: it must be skipped, not crash.
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 99, "rew')


def test_format_delta_arrows_and_bold():
    assert format_delta(0.62, 0.0) == "62.0 (↑62.0)"
    assert format_delta(0.7620, 0.8880, bold=True) == "76.2 (**↓12.6**)"
    assert format_delta(0.5, 0.5) == "50.0 (=0.0)"
    assert format_delta(None, 0.5) == "—"
    assert format_delta(35.0, 20.0, scale=1.0) == "35.0 (↑15.0)"
    assert md_table(["a", "b"], [["1", "x|y"]]) == "| a | b |\n| --- | --- |\n| 1 | x\\|y |"


def test_significant_drop_rules():
    rows = {(r.task, r.metric): r for r in forgetting_rows(BASE, {"grpo": GRPO, "recap": RECAP})}
    assert rows["count", "accuracy"].significant_drop("grpo")
    assert not rows["count", "accuracy"].significant_drop("recap")  # an improvement
    assert not rows["ground", "acc@0.5"].significant_drop("grpo")  # within 2 standard errors
    assert rows["exists", "f1"].significant_drop("grpo")  # 6 points, no stderr
    assert not rows["exists", "f1"].significant_drop("recap")  # 3 points
    assert not rows["exists", "yes_ratio"].significant_drop("grpo")  # no "better" direction
    assert not rows["arith", "thinking_length"].significant_drop("recap")


def test_moving_average_trailing():
    # window 2: [1], [1, 2], [2, 3], [3, 4] -> 1, 1.5, 2.5, 3.5
    assert moving_average([1, 2, 3, 4], 2) == pytest.approx([1.0, 1.5, 2.5, 3.5])
    assert moving_average([1, 2, 3, 4], 10) == pytest.approx([1.0, 1.5, 2.0, 2.5])


def test_write_report_tables_figures_html(tmp_path):
    _write_metrics(tmp_path / "runs" / "grpo", steps=60, lambdas=False, seed=0)
    _write_metrics(tmp_path / "runs" / "recap", steps=60, lambdas=True, seed=1)
    assert len(load_run_metrics(tmp_path / "runs" / "grpo")) == 60  # truncated line skipped
    out = tmp_path / "report"
    md_path = write_report(
        BASE, {"grpo": GRPO, "recap": RECAP},
        {"grpo": tmp_path / "runs" / "grpo", "recap": tmp_path / "runs" / "recap"}, out,
    )
    md = md_path.read_text()
    assert "| capability | metric | base | grpo | recap |" in md
    assert "| Counting | accuracy | 50.0 | 30.0 (**↓20.0**) | 55.0 (↑5.0) |" in md
    assert "| Grounding | acc@0.5 | 60.0 | 58.0 (↓2.0) | 60.0 (=0.0) |" in md
    assert "| Existence (POPE) | f1 | 80.0 | 74.0 (**↓6.0**) | 77.0 (↓3.0) |" in md
    assert "|  | thinking_length (words) | 20.0 | 35.0 (↑15.0) | 12.0 (↓8.0) |" in md
    # the "all metrics" table also has the non-headline format row
    all_metrics = md.split("## All metrics")[1]
    assert ("| Counting | accuracy | 50.0 | 30.0 (**↓20.0**) | 55.0 (↑5.0) |\n"
            "|  | format | 100.0 | 100.0 (=0.0) | 100.0 (=0.0) |") in all_metrics
    pngs = ["capabilities", "capabilities_radar", "rewards", "signals", "lambdas", "recap_signals",
            "lengths", "training"]
    for name in pngs:
        png = out / f"{name}.png"
        assert f"]({name}.png)" in md
        assert png.stat().st_size > 10_000, name
        with Image.open(png) as im:
            assert min(im.size) > 200 and len(np.unique(np.asarray(im.convert("L")))) > 20, name
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(pngs)
    assert "<b>↓20.0</b>" in html


def test_report_degrades_gracefully(tmp_path):
    # A run that logged only one reward, no lambdas/lengths/losses; a base-only report.
    run = tmp_path / "run"
    run.mkdir()
    run.joinpath("metrics.jsonl").write_text(
        "\n".join(json.dumps({"step": t, "reward/x/accuracy/mean": t / 10}) for t in range(10)))
    out = tmp_path / "r"
    md = write_report(BASE, {}, {"run": run}, out).read_text()
    assert (out / "rewards.png").exists()
    for missing in ("signals", "lambdas", "recap_signals", "lengths", "training"):
        assert not (out / f"{missing}.png").exists()
    assert "| Counting | accuracy | 50.0 |" in md


def test_report_from_files_and_terminal_table(tmp_path):
    (tmp_path / "grpo").mkdir()
    base = tmp_path / "base.json"
    base.write_text(json.dumps(BASE))
    run = tmp_path / "grpo" / "results.json"  # generic stem -> named after its folder
    run.write_text(json.dumps(GRPO | {"config": GRPO["config"] | {"seed": 1}}))
    _write_metrics(tmp_path / "runs" / "grpo-run", steps=20, lambdas=True, seed=0)
    md = report_from_files(base, [run], [tmp_path / "runs" / "grpo-run"], tmp_path / "out")
    text = md.read_text()
    assert "| capability | metric | base | grpo |" in text
    assert "grpo was evaluated with a different seed than the base" in text
    assert (tmp_path / "out" / "lambdas.png").exists()
    assert (tmp_path / "out" / "recap_signals.png").exists()  # c_k and i_k per objective
    table = headline_table(BASE, {"grpo": GRPO})
    assert "Counting" in table and "30.0 (!↓20.0!)" in table and "58.0 (↓2.0)" in table
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="not a recap evaluation file"):
        report_from_files(bad, [], [], tmp_path / "x")
