"""`recap study`: the study file, a two-arm two-seed smoke study end to end, resuming, and the
exposure accounting of its report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from recap.config import ConfigError
from recap.models.tiny import TinyConfig, build_tiny_model
from recap.studies import StudySpec, load_study, run_study
from recap.studies.report import exposure
from recap.studies.runner import eval_path, run_dir


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    small = TinyConfig(hidden_size=64, num_layers=2, intermediate_size=128)
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), small, seed=0)


def _recipe(model: Path) -> dict:
    return {
        "model": {"path": str(model)},
        "domains": [
            {"name": "count_think", "source": "count", "role": "reasoning", "mode": "rl",
             "template": "think", "rewards": ["think_format", "accuracy"], "n": 4},
            {"name": "exists", "source": "exists", "role": "general", "mode": "rl",
             "template": "answer", "rewards": ["answer_format", "accuracy"], "n": 4},
            {"name": "digits", "source": "digits", "role": "general", "mode": "sft",
             "template": "answer", "n": 4},
        ],
        "rl": {"num_generations": 2, "max_new_tokens": 6},
        "optim": {"lr": 1e-3},
        "train": {"steps": 2, "batch_size": 2, "batch_per": "total"},
        "logging": {"tensorboard": False, "progress": False},
        "checkpoint": {"every": 0, "keep_last": 1, "export_model": False},
    }


def _spec(model: Path) -> StudySpec:
    return StudySpec(
        name="smoke", base=str(model), recipe=_recipe(model),
        arms={"reasoning-only": {"set": ["sampling.strategy=reasoning_only"]},
              "uniform": {"set": ["sampling.strategy=uniform"]}},
        seeds=[0, 1], reference="uniform",
        eval={"suite": "quickstart", "n": 3, "seed": 7, "batch_size": 8, "max_new_tokens": 6},
    )


def test_two_arm_two_seed_study_runs_resumes_and_reports(tiny, tmp_path):
    out = tmp_path / "study"
    lines: list[str] = []
    result = run_study(_spec(tiny), out, echo=lines.append)
    assert "5 of 5 jobs to do" in lines[0]

    for name in ("study.json", "study.yaml", "report.md", "report.html", "capabilities.png",
                 "training.png"):
        assert (out / name).is_file(), name
    assert json.loads((out / "study.json").read_text()) == json.loads(json.dumps(result))
    assert result["targets"] == ["count_think"]
    assert all(a["targets"] == ["count_think"] for a in result["arms"].values())
    assert "count_think/accuracy" in result["metrics"] and "exists/f1" not in result["metrics"]
    for arm in ("reasoning-only", "uniform"):
        for seed in (0, 1):  # ordinary run directories, trained with their own seed
            cfg = yaml.safe_load((run_dir(out, arm, seed) / "config.yaml").read_text())
            assert cfg["train"]["seed"] == seed
            assert (run_dir(out, arm, seed) / "final" / "config.json").is_file()
        m = result["arms"][arm]["metrics"]["count/accuracy"]
        assert len(m["per_seed"]) == 2 and m["ci_low"] <= m["mean"] <= m["ci_high"]
        assert m["mean"] == pytest.approx(sum(m["per_seed"]) / 2)
    # the same held-out records for every model, whatever the training seed
    ids = {json.dumps(json.loads(p.read_text())["tasks"]["count"]["per_record"]["ids"])
           for p in (out / "evals").rglob("*.json")}
    assert len(ids) == 1
    cmp = result["comparisons"]
    assert set(cmp) == {"reasoning-only vs base", "uniform vs base", "reasoning-only vs uniform"}
    d = cmp["reasoning-only vs uniform"]["count/accuracy"]
    a, b = (result["arms"][x]["metrics"]["count/accuracy"]["mean"]
            for x in ("reasoning-only", "uniform"))
    assert d["diff"] == pytest.approx(a - b) and 0.0 <= d["p"] <= 1.0
    ex = result["arms"]
    assert ex["reasoning-only"]["exposure"]["replay_prompts"] == 0
    assert ex["reasoning-only"]["exposure"]["reasoning_prompts"] == 4  # 2 steps x 2 prompts
    assert (ex["uniform"]["exposure"]["reasoning_prompts"]
            + ex["uniform"]["exposure"]["replay_prompts"]) == 4
    assert any(line.startswith("reasoning-only vs base") for line in result["reading"])

    # resume: nothing left to do; a lost evaluation is redone, and only it
    lines.clear()
    again = run_study(_spec(tiny), out, echo=lines.append, report=False)
    assert "0 of 5 jobs to do" in lines[0]
    assert again["arms"] == result["arms"]
    eval_path(out, "uniform", 1).unlink()
    lines.clear()
    run_study(_spec(tiny), out, echo=lines.append, report=False)
    assert "1 of 5 jobs to do" in lines[0] and "uniform/seed1 done (eval" in lines[1]


def test_study_file_paths_and_errors(tmp_path, tiny):
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(_recipe(tiny)))
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"recipe": "recipe.yaml", "seeds": [3],
                                    "arms": {"a": {"set": ["optim.lr=0.01"]}}}))
    spec = load_study(path)
    cfg = spec.arm_config("a", 3, tmp_path / "run")
    assert (cfg.optim.lr, cfg.train.seed, cfg.output_dir) == (0.01, 3, str(tmp_path / "run"))
    assert load_study(path, ["seeds=[0, 1]"]).seeds == [0, 1]
    sets = load_study(path, sets=["eval.n=7", "arms.a.set=[optim.lr=0.02]"])
    assert sets.eval.n == 7 and sets.arm_config("a", 3, tmp_path / "r").optim.lr == 0.02
    with pytest.raises(ConfigError, match=r"eval\.nn"):
        load_study(path, sets=["eval.nn=7"])

    path.write_text(yaml.safe_dump({"arms": {"a": {}}, "reference": "b"}))
    with pytest.raises(ConfigError, match="reference 'b' is not an arm"):
        load_study(path)
    path.write_text(yaml.safe_dump({"arms": {"a": {"set": ["optim.lr=-1"]}},
                                    "recipe": "recipe.yaml"}))
    with pytest.raises(ConfigError, match=r"(?s)arm 'a'.*optim\.lr"):
        load_study(path).arm_config("a", 0, tmp_path / "x")
    with pytest.raises(ConfigError, match="cannot read"):
        load_study(tmp_path / "missing.yaml")
    result = CliRunner().invoke(__import__("recap.cli").cli.app, ["study", str(path)])
    assert result.exit_code == 2 and "optim.lr" in result.output


def test_exposure_counts_prompts_and_loss_shares():
    domains = [
        {"name": "r", "role": "reasoning", "mode": "rl", "rewards": ["fmt", "acc"]},
        {"name": "g", "role": "general", "mode": "rl", "rewards": ["acc"]},
        {"name": "s", "role": "general", "mode": "sft"},
    ]
    rows = [
        # step 1: all three domains; lambda fmt 1, acc 2, sft:s 1 (sum 4)
        {"prompts/r": 2, "prompts/g": 1, "prompts/s": 1,
         "lambda/fmt": 1.0, "lambda/acc": 2.0, "lambda/sft:s": 1.0},
        # step 2: only r; fmt and acc at 1 (sum 2); sft:s is weighted but absent
        {"prompts/r": 4, "lambda/fmt": 1.0, "lambda/acc": 1.0, "lambda/sft:s": 1.0},
    ]
    ex = exposure(rows, domains)
    assert ex["prompts"] == {"r": 6, "g": 1, "s": 1}
    assert (ex["reasoning_prompts"], ex["replay_prompts"]) == (6, 2)
    assert ex["objectives"]["acc"] == {"mean_weight": 1.5, "min_weight": 1.0, "max_weight": 2.0,
                                       "loss_share": (2 / 4 + 1 / 2) / 2}
    # r's share: step 1 fmt 1/4 + acc (2/4 shared by r and g) / 2 = 1/2; step 2: 1 -> mean 3/4
    assert ex["domain_loss_share"]["r"] == pytest.approx(0.75)
    assert ex["domain_loss_share"]["g"] == pytest.approx((1 / 4) / 2)
    assert ex["domain_loss_share"]["s"] == pytest.approx((1 / 4) / 2)
    assert ex["objectives"]["sft:s"]["loss_share"] == pytest.approx((1 / 4 + 0) / 2)  # absent

    # weights on the rewards: RL domains share 1 / (RL domains present), SFT ones lambda
    rows = [{"prompts/r": 2, "prompts/g": 1, "prompts/s": 1, "lambda/r/fmt": 1.0,
             "lambda/r/acc": 1.0, "lambda/g/acc": 1.0, "lambda/sft:s": 0.5}]
    ex = exposure(rows, domains, apply="rewards")
    # coefficients r 1/2, g 1/2, s 0.5 -> shares 1/3 each
    assert ex["domain_loss_share"] == pytest.approx({"r": 1 / 3, "g": 1 / 3, "s": 1 / 3})
    assert ex["objectives"]["sft:s"]["loss_share"] == pytest.approx(0.5 / 3.5)

    # one combined advantage per RL domain (rl.advantage: combined): its objective is "reward"
    rows = [{"prompts/r": 2, "prompts/s": 2, "lambda/reward": 1.0, "lambda/sft:s": 3.0}]
    ex = exposure(rows, domains, combined=True)
    assert ex["objectives"]["reward"]["loss_share"] == pytest.approx(1 / 4)
    assert ex["domain_loss_share"] == pytest.approx({"r": 1 / 4, "g": 0.0, "s": 3 / 4})


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "configs" / "studies")
                                        .glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_study_loads(path, tmp_path):
    assert path.read_text().startswith(f"# recap study configs/studies/{path.name}")
    spec = load_study(path)
    for arm in spec.arms:  # every arm's recipe validates
        spec.arm_config(arm, spec.seeds[0], tmp_path / arm)
    assert spec.eval.n >= 500 and len(spec.seeds) >= 3


def test_an_arm_trains_on_another_arms_rollouts_after_it(tiny, tmp_path):
    """jigsaw RFT paper sec. 5.3 as a study arm: the source run of the same seed finishes first
    (in a two-worker pool), its model's kept rollouts become the SFT domain's data."""
    recipe = _recipe(tiny)
    spec = StudySpec(
        name="rollouts", base=str(tiny), recipe=recipe, seeds=[0],
        arms={"own": {"set": ["domains.count_think.mode=sft", "domains.count_think.rewards=[]",
                              "sampling.strategy=reasoning_only"],
                      "rollouts": {"arm": "rl", "domain": "count_think", "task": "count", "n": 3,
                                   "reward": "think_format", "threshold": 0.0, "samples": 2,
                                   "max_new_tokens": 6}},
              "rl": {"set": ["sampling.strategy=reasoning_only"]}},
        eval={"suite": "general", "n": 2, "seed": 7, "batch_size": 8, "max_new_tokens": 4},
    )
    out = tmp_path / "study"
    lines: list[str] = []
    run_study(spec, out, jobs=2, echo=lines.append, report=False)
    done = [line.split("] ", 1)[1].split()[1] for line in lines[1:]]
    assert done.index("rl/seed0") < done.index("own/seed0")  # "own" waited for its source
    rd = run_dir(out, "own", 0)
    info = json.loads((rd / "rollouts" / "rollouts.json").read_text())
    assert info["source"] == str(run_dir(out, "rl", 0) / "final")
    assert (info["sampled"], info["kept"]) == (6, 6)  # threshold 0 keeps every rollout
    rows = [json.loads(x) for x in (rd / "rollouts" / "rollouts.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all("completion" in r["meta"] for r in rows)
    cfg = yaml.safe_load((rd / "config.yaml").read_text())
    (domain,) = [d for d in cfg["domains"] if d["name"] == "count_think"]
    assert domain["mode"] == "sft" and domain["source"]["path"].endswith("rollouts.jsonl")

    for arms in ({"a": {"rollouts": {"arm": "b", "domain": "x"}}},  # no such arm
                 {"a": {"rollouts": {"arm": "b", "domain": "x"}},  # a chain
                  "b": {"rollouts": {"arm": "a", "domain": "x"}}}):
        with pytest.raises(ValueError, match="must be an arm that does not itself"):
            StudySpec(arms=arms)


def test_reading_names_each_arm_its_own_target():
    """Arms trained on different tasks: each arm's target is its own reasoning domain; the other
    arm's target is a general metric for it (a cross-task loss shows as forgetting)."""
    from recap.studies.report import reading

    def diff(d: float) -> dict:
        return {"diff": d, "ci_low": d - 0.05, "ci_high": d + 0.05, "p": 0.01}

    keys = ["count_think/accuracy", "arith/accuracy", "ground/acc@0.5"]
    result = {
        "seeds": [0, 1, 2], "reference": None, "targets": ["arith", "count_think"],
        "metrics": keys,
        "arms": {"count-sft": {"targets": ["count_think"]}, "arith-sft": {"targets": ["arith"]}},
        "comparisons": {
            "count-sft vs base": dict(zip(keys, map(diff, [0.46, -0.18, -0.43]), strict=True)),
            "arith-sft vs base": dict(zip(keys, map(diff, [0.0, 0.02, 0.0]), strict=True)),
        },
    }
    count, arith = reading(result)
    assert "target count_think/accuracy +46.0" in count and "arith/accuracy -18.0" in count
    assert count.index("arith/accuracy") > count.index("Forgot")  # a cross-task loss
    assert "target arith/accuracy +2.0" in arith and "count_think" not in arith
    assert "not distinguishable" in arith
