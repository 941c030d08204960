"""`recap quickstart`: equal-budget recipes, the forgetting verdict, and a smoke run end to end."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recap import quickstart as qs
from recap.config import load_config
from recap.evaluation.evaluator import RESULTS_FORMAT
from recap.models.tiny import TinyConfig, build_tiny_model
from recap.quickstart import (
    ARMS,
    QuickstartSettings,
    eval_suite,
    forgetting_verdict,
    quickstart_recipe,
    reading,
    run_quickstart,
)

TINY_POOLS = dict.fromkeys(qs.POOLS, 4)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    small = TinyConfig(hidden_size=64, num_layers=2, intermediate_size=128)
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), small, seed=0)


# ---- recipes ------------------------------------------------------------------------------------


def test_both_arms_share_the_budget_and_differ_only_in_replay_and_weighting(tmp_path):
    settings = QuickstartSettings(steps=7, batch_size=5, num_generations=3)
    a = quickstart_recipe("reasoning-only", settings, "m", tmp_path / "a")
    b = quickstart_recipe("recap", settings, "m", tmp_path / "b")
    da, db = a.model_dump(), b.model_dump()
    for key in ("sampling", "weighting", "output_dir"):
        da.pop(key), db.pop(key)
    assert da == db  # same domains, steps, prompts per step, G, token budget, lr, seed
    assert (a.train.steps, a.train.batch_size, a.rl.num_generations) == (7, 5, 3)
    assert a.train.batch_per == "total"  # batch_size counts prompts of all domains together
    assert [d.name for d in a.active_domains] == ["arith"]
    assert [d.name for d in b.active_domains] == ["arith", "count", "exists", "ground", "digits"]
    assert b.sampling.strategy == "uniform" and b.kl.schedule == "none"
    assert (b.weighting.name, b.weighting.window, b.weighting.temperature) == ("recap", 10, 5.0)
    # seed 000 hybrid layout: perception domains on the answer template, digits as SFT
    assert {d.name: (d.mode, d.template, tuple(d.rewards)) for d in b.domains} == {
        "arith": ("rl", "think", ("think_format", "accuracy")),
        "count": ("rl", "answer", ("answer_format", "accuracy")),
        "exists": ("rl", "answer", ("answer_format", "accuracy")),
        "ground": ("rl", "answer", ("answer_format", "iou")),
        "digits": ("sft", "answer", ()),
    }
    assert b.objective_names == ["think_format", "accuracy", "answer_format", "iou",
                                 "sft:digits"]
    assert a.objective_names == ["think_format", "accuracy"]
    with pytest.raises(ValueError, match="known: reasoning-only, recap"):
        quickstart_recipe("lwf", settings, "m", tmp_path / "c")


@pytest.mark.parametrize("arm", ARMS)
def test_yaml_mirrors_are_the_recipes_the_quickstart_runs(arm):
    path = Path(__file__).parents[1] / "configs" / f"quickstart-{arm}.yaml"
    assert path.read_text().startswith(f"# recap train configs/quickstart-{arm}.yaml\n")
    expected = quickstart_recipe(arm, QuickstartSettings(), "builtin:base",
                                 Path(f"runs/quickstart-{arm}"))
    assert load_config(path) == expected


def test_eval_suite_is_the_general_suite_plus_arith():
    assert [t.name for t in eval_suite().tasks] == ["count", "exists", "ground", "digits",
                                                    "arith"]


# ---- verdict ------------------------------------------------------------------------------------


def _res(count: float, arith: float, se: float = 0.05) -> dict:
    return {"format": RESULTS_FORMAT, "tasks": {
        "count": {"capability": "Counting", "headline": ["accuracy"],
                  "metrics": {"accuracy": count}, "stderr": {"accuracy": se}},
        "arith": {"capability": "Reasoning (arith)", "headline": ["accuracy"],
                  "metrics": {"accuracy": arith}, "stderr": {"accuracy": se}},
    }}


def test_verdict_marks_drops_beyond_two_standard_errors():
    base = _res(count=0.50, arith=0.20)
    # grpo: count .50 -> .30, drop .20 > 2 * hypot(.05, .05) = .141 -> significant
    # recap: count .50 -> .40, drop .10 < .141 -> not significant
    runs = {"reasoning-only": _res(0.30, 0.45), "recap": _res(0.40, 0.30)}
    v = forgetting_verdict(base, runs)
    assert v["reasoning-only"]["significant_drops"] == ["count/accuracy"]
    assert v["recap"]["significant_drops"] == []
    assert v["reasoning-only"]["target_change"] == pytest.approx(0.25)
    assert v["recap"]["general_mean_change"] == pytest.approx(-0.10)
    lines = reading(v, {"reasoning-only": (0.1, 0.4), "recap": None})
    assert lines[0] == ("reasoning-only: arith accuracy +25.0 points (training accuracy reward "
                        "0.10 -> 0.40); general suite mean change -20.0 points; significant "
                        "drops: count/accuracy.")
    assert lines[-1] == ("Reasoning-only GRPO forgot: count/accuracy fell by more than two "
                         "standard errors. RECAP kept 1 of these 1 within noise "
                         "(count/accuracy).")


def test_reading_says_plainly_when_there_is_no_forgetting():
    base = _res(count=0.50, arith=0.20)
    v = forgetting_verdict(base, {"reasoning-only": _res(0.49, 0.30), "recap": _res(0.5, 0.25)})
    assert v["reasoning-only"]["significant_drops"] == []
    last = reading(v, {})[-1]
    assert last.startswith("No forgetting under reasoning-only GRPO")
    assert "(mean change -1.0 points)" in last  # count .50 -> .49
    assert "longer RL" in last and "compete with a general skill" in last


# ---- end to end ---------------------------------------------------------------------------------


def test_smoke_run_writes_report_summary_and_headline_table(tiny, tmp_path):
    out = tmp_path / "qs"
    settings = QuickstartSettings(
        out=out, model=str(tiny), steps=2, batch_size=2, num_generations=2, max_new_tokens=6,
        eval_n=2, eval_batch_size=16, eval_max_new_tokens=6, progress=False, pools=TINY_POOLS)
    lines: list[str] = []
    summary = run_quickstart(settings, echo=lines.append)

    for name in ("report.md", "report.html", "capabilities.png", "rewards.png", "lambdas.png",
                 "headline.txt", "summary.json"):
        assert (out / name).is_file(), name
    stored = json.loads((out / "summary.json").read_text())
    assert stored == json.loads(json.dumps(summary))
    assert list(stored["models"]) == ["base", *ARMS]
    for name in stored["models"]:
        assert json.loads((out / "results" / f"{name}.json").read_text())["format"] == \
            RESULTS_FORMAT
    for arm in ARMS:  # same budget: two logged steps each, a trained model saved
        rows = (out / "runs" / arm / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(r)["step"] for r in rows] == [1, 2]
        assert (out / "runs" / arm / "final" / "config.json").is_file()
    assert set(stored["phases_s"]) == {"eval_base", "train_reasoning-only",
                                       "eval_reasoning-only", "train_recap", "eval_recap",
                                       "report"}
    assert stored["wall_s"] >= sum(stored["phases_s"].values()) - 1.0

    # headline rows: count acc, exists acc + F1, ground acc@0.5 + IoU, digits EM, arith acc +
    # thinking length = 8 rows, one column per model
    table = (out / "headline.txt").read_text()
    assert table in lines
    header = [ln for ln in table.splitlines() if ln.startswith("┃")]
    body = [ln for ln in table.splitlines() if ln.startswith("│")]
    assert len(header) == 1 and len(body) == 8
    for cap in ("Counting", "Existence (POPE)", "Grounding", "OCR (digits)",
                "Reasoning (arith)"):
        assert cap in table
    for metric in ("exact_match", "acc@0.5", "mean_iou", "f1", "thinking_length"):
        assert metric in table
    assert [c.strip() for c in header[0].split("┃")[1:-1]] == [
        "capability", "metric", "base", "reasoning-only", "recap"]
    assert any("total wall time" in ln for ln in lines)
    assert any(ln.startswith("[") and "training recap" in ln for ln in lines)

    with pytest.raises(FileExistsError, match="--overwrite"):
        run_quickstart(settings, echo=lines.append)


def test_cli_passes_the_options(monkeypatch, tmp_path):
    from recap.cli import app

    seen: list[QuickstartSettings] = []
    monkeypatch.setattr(qs, "run_quickstart", lambda s, echo: seen.append(s) or {})
    result = CliRunner().invoke(app, ["quickstart", "--out", str(tmp_path / "x"), "--steps",
                                      "5", "--eval-n", "7", "--seed", "3"])
    assert result.exit_code == 0, result.output
    expected = replace(QuickstartSettings(), out=tmp_path / "x", steps=5, eval_n=7, seed=3)
    assert seen == [expected]
    assert CliRunner().invoke(app, ["quickstart"]).exit_code == 0
    assert seen[1] == QuickstartSettings()  # no option: the documented default budget
