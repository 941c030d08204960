"""`recap quickstart`: equal-budget recipes of its three arms, its study files, and a smoke run
end to end."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recap import quickstart as qs
from recap.config import load_config
from recap.evaluation.suites import get_suite
from recap.models.tiny import TinyConfig, build_tiny_model
from recap.quickstart import (
    ARMS,
    QuickstartSettings,
    quickstart_recipe,
    quickstart_study,
    run_quickstart,
)
from recap.studies import load_study

TINY_POOLS = dict.fromkeys(qs.POOLS, 4)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    small = TinyConfig(hidden_size=64, num_layers=2, intermediate_size=128)
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), small, seed=0)


# ---- recipes ------------------------------------------------------------------------------------


def test_arms_share_the_budget_and_differ_only_in_replay_and_weighting(tmp_path):
    settings = QuickstartSettings(steps=7, batch_size=5, num_generations=3)
    a, u, b = (quickstart_recipe(arm, settings, "m", tmp_path / arm) for arm in ARMS)
    assert ARMS == ("reasoning-only", "uniform", "recap")
    dumps = [x.model_dump() for x in (a, u, b)]
    for d in dumps:
        for key in ("sampling", "weighting", "output_dir"):
            d.pop(key)
    assert dumps[0] == dumps[1] == dumps[2]  # same domains, steps, prompts, G, tokens, lr, seed
    assert (a.train.steps, a.train.batch_size, a.rl.num_generations) == (7, 5, 3)
    assert a.train.batch_per == "total"  # batch_size counts prompts of all domains together
    assert [d.name for d in a.active_domains] == ["count_think"]
    assert [d.name for d in u.active_domains] == ["count_think", "count", "exists", "ground",
                                                  "digits"]
    assert (u.sampling.strategy, u.weighting.name) == ("uniform", "equal")
    assert b.sampling.strategy == "uniform" and b.kl.schedule == "none"
    assert (b.weighting.name, b.weighting.window, b.weighting.temperature) == ("recap", 10, 5.0)
    # RECAP paper hybrid layout: perception domains on the answer template, digits as SFT; the
    # target is "how many objects" asked with the think template
    assert {d.name: (d.source, d.mode, d.template, tuple(d.rewards)) for d in b.domains} == {
        "count_think": ("count", "rl", "think", ("think_format", "accuracy")),
        "count": ("count", "rl", "answer", ("answer_format", "accuracy")),
        "exists": ("exists", "rl", "answer", ("answer_format", "accuracy")),
        "ground": ("ground", "rl", "answer", ("answer_format", "iou")),
        "digits": ("digits", "sft", "answer", ()),
    }
    assert b.domains[0].knobs == {"queries": ["all"]}
    with pytest.raises(ValueError, match="known: reasoning-only, uniform, recap"):
        quickstart_recipe("lwf", settings, "m", tmp_path / "c")


def test_equal_budget_gives_every_arm_the_same_reasoning_prompts(tmp_path):
    settings = QuickstartSettings(budget="equal")
    for arm in ARMS:
        assert quickstart_recipe(arm, settings, "m", tmp_path / arm).train.batch_per == \
            "reasoning"
    spec = quickstart_study(settings)
    assert spec.budget.startswith("equal reasoning exposure") and spec.reference == "uniform"
    with pytest.raises(ValueError, match="known: total, equal"):
        quickstart_study(QuickstartSettings(budget="half"))  # type: ignore[arg-type]


@pytest.mark.parametrize("arm", ARMS)
def test_yaml_mirrors_are_the_recipes_the_quickstart_runs(arm):
    path = Path(__file__).parents[1] / "configs" / f"quickstart-{arm}.yaml"
    assert path.read_text().startswith(f"# recap train configs/quickstart-{arm}.yaml\n")
    expected = quickstart_recipe(arm, QuickstartSettings(), "builtin:base",
                                 Path(f"runs/quickstart-{arm}"))
    assert load_config(path) == expected


def test_the_committed_study_files_are_the_quickstart_arms(tmp_path):
    configs = Path(__file__).parents[1] / "configs" / "studies"
    for name, budget in (("quickstart.yaml", "total"), ("quickstart-equal.yaml", "equal")):
        spec = load_study(configs / name)
        qs_spec = quickstart_study(QuickstartSettings(budget=budget))
        assert list(spec.arms) == list(ARMS) and spec.reference == "uniform"
        assert len(spec.seeds) >= 5 and spec.eval.n >= 500
        assert spec.eval.seed == qs_spec.eval.seed and spec.eval.suite == "quickstart"
        for arm in ARMS:  # same recipes as the quickstart, but for the seed and the folder
            mine = spec.arm_config(arm, 3, tmp_path / arm)
            theirs = qs_spec.arm_config(arm, 3, tmp_path / arm)
            assert mine.model_dump() == theirs.model_dump()


def test_eval_suite_is_the_general_suite_plus_counting_with_thinking():
    suite = get_suite("quickstart")
    assert [t.name for t in suite.tasks] == ["count", "exists", "ground", "digits",
                                             "count_think"]
    target = suite.tasks[-1]
    assert (target.task, target.template, dict(target.knobs)) == ("count", "think",
                                                                   {"queries": ("all",)})


# ---- end to end ---------------------------------------------------------------------------------


def test_smoke_run_writes_report_summary_and_headline_table(tiny, tmp_path):
    out = tmp_path / "qs"
    settings = QuickstartSettings(
        out=out, model=str(tiny), steps=2, batch_size=2, num_generations=2, max_new_tokens=6,
        eval_n=2, eval_batch_size=16, eval_max_new_tokens=6, jobs=1, pools=TINY_POOLS)
    lines: list[str] = []
    summary = run_quickstart(settings, echo=lines.append)

    for name in ("report.md", "report.html", "capabilities.png", "training.png", "lambdas.png",
                 "headline.txt", "summary.json", "study.json"):
        assert (out / name).is_file(), name
    stored = json.loads((out / "summary.json").read_text())
    assert stored == json.loads(json.dumps(summary))
    assert stored["arms"] == list(ARMS) and stored["budget"].startswith("total")
    study = json.loads((out / "study.json").read_text())
    assert list(study["arms"]) == list(ARMS) and study["seeds"] == [0]
    assert study["targets"] == ["count_think"]
    for arm in ARMS:  # same budget: two logged steps each, a trained model saved
        rows = (out / "runs" / arm / "seed0" / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(r)["step"] for r in rows] == [1, 2]
        assert (out / "runs" / arm / "seed0" / "final" / "config.json").is_file()
    assert stored["wall_s"] > 0 and set(stored["train_s"]) == set(ARMS)

    table = (out / "headline.txt").read_text()
    assert table in lines
    header = [ln for ln in table.splitlines() if ln.startswith("┃")]
    body = [ln for ln in table.splitlines() if ln.startswith("│")]
    assert [c.strip() for c in header[0].split("┃")[1:-1]] == ["metric", "base", *ARMS]
    # count, exists, ground (2), digits, count_think accuracy + thinking length + format
    assert [ln.split("│")[1].strip() for ln in body] == [
        "count/accuracy", "exists/accuracy", "ground/acc@0.5", "ground/mean_iou",
        "digits/exact_match", "count_think/accuracy", "count_think/thinking_length",
        "count_think/format"]
    assert any("total wall time" in ln for ln in lines)
    assert any(ln.startswith("One training seed") for ln in lines)

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
    result = CliRunner().invoke(app, ["quickstart", "--budget", "equal", "--jobs", "1"])
    assert result.exit_code == 0 and seen[2] == replace(QuickstartSettings(), budget="equal",
                                                        jobs=1)
    bad = CliRunner().invoke(app, ["quickstart", "--budget", "half"])
    assert bad.exit_code == 2 and "total, equal" in bad.output and len(seen) == 3
