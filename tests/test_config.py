"""Recipe schema: YAML + presets + overrides, and clear errors for recipes that cannot run."""

from pathlib import Path

import pytest
import yaml

from recap.config import ConfigError, apply_override, load_config, validate_config
from recap.config.presets import LAB_BASE, PRESETS, preset_recipe

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


def _recipe(**changes):
    data = preset_recipe("uniform")
    data.update(changes)
    return data


def _error(data) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(data)
    return str(info.value)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_yaml_loads(path):
    cfg = load_config(path, [])
    first = path.read_text().splitlines()[0]
    assert "recap" in first and " train " in first  # each recipe starts with its command
    # what the file says is what loads (no key silently dropped or defaulted away)
    raw = yaml.safe_load(path.read_text())
    if "preset" not in raw:
        assert [d.name for d in cfg.domains] == [d["name"] for d in raw["domains"]]
        assert cfg.model.path == raw["model"]["path"]
    for key in ("steps", "batch_size", "seed"):
        if key in raw.get("train", {}):
            assert getattr(cfg.train, key) == raw["train"][key]


def test_lab_recap_yaml_is_the_recap_preset_written_out():
    explicit = load_config(Path(__file__).parents[1] / "configs/lab-recap.yaml", [])
    preset = load_config(None, [], preset="recap")
    keep = {"preset", "output_dir", "eval"}
    assert explicit.model_dump(exclude=keep) == preset.model_dump(exclude=keep)


def test_presets_encode_the_papers_settings():
    cfg = {name: load_config(None, [], preset=name) for name in PRESETS}
    assert cfg["reasoning-only"].active_domains[0].name == "arith"
    assert len(cfg["reasoning-only"].active_domains) == 1
    assert cfg["default"].sampling.strategy == "default"
    assert cfg["coreset"].sampling.coreset_ratio == 0.5
    assert (cfg["lwf"].kl.schedule, cfg["lwf"].kl.beta) == ("constant", 0.01)
    assert cfg["lwf"].sampling.strategy == "uniform" and cfg["lwf"].uses_reference
    assert cfg["recap"].weighting.name == "recap" and not cfg["recap"].uses_reference
    assert (cfg["grpo"].kl.schedule, cfg["grpo"].kl.beta) == ("constant", 0.04)
    assert (cfg["grpo-d"].kl.beta_min, cfg["grpo-d"].kl.beta_max) == (0.04, 0.1)
    assert cfg["grpo-d"].objective_names == ["reward"]  # R = R_acc + R_format (OThink-MR1 eq. 1)
    restart = cfg["grpo-restart"]
    assert (restart.rl.num_generations, restart.rl.temperature, restart.kl.beta) == (4, 1.0, 0.04)
    assert restart.restart.every_epochs == 2
    assert cfg["sft-gt"].objective_names == ["sft:jigsaw"]
    assert cfg["recap"].objective_names == [
        "think_format", "accuracy", "answer_format", "iou", "sft:digits"]
    # RECAP's three readings: the paper's runs (default preset), its eq. 1, its authors' code
    assert (cfg["recap"].weighting.variant, cfg["recap"].weighting.temperature) == ("paper", 5.0)
    assert cfg["recap-eq1"].weighting.variant == "eq1"
    official = cfg["recap-official"].weighting
    assert (official.variant, official.alpha, official.apply) == ("official", 0.5, "rewards")
    assert cfg["recap-official"].rl.loss_aggregation == "token"  # the authors' DAPO-style loss
    assert cfg["recap-official"].objective_names == [  # one objective per (domain, reward)
        "arith/think_format", "arith/accuracy", "ground/answer_format", "ground/iou",
        "sft:digits"]


def test_yaml_over_preset_and_overrides_last(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("preset: lwf\nrl:\n  num_generations: 8\ntrain:\n  steps: 7\n")
    cfg = load_config(path, ["rl.num_generations=4", "domains.arith.n=32", "domains.1.n=16",
                             "rl.reward_weights={}", "output_dir=/tmp/x"])
    assert cfg.preset == "lwf" and cfg.kl.beta == 0.01  # from the preset
    assert cfg.train.steps == 7  # from the YAML
    assert cfg.rl.num_generations == 4  # override beats YAML
    assert [d.n for d in cfg.domains] == [32, 16, 384]
    assert cfg.model.path == LAB_BASE["model"]["path"]


def test_override_syntax_errors_name_the_key():
    with pytest.raises(ConfigError, match="key=value"):
        apply_override({}, "rl.num_generations")
    with pytest.raises(ConfigError, match="no item named 'nope'; known: \\['arith'"):
        apply_override(preset_recipe("uniform"), "domains.nope.n=3")
    with pytest.raises(ConfigError, match="index 9 out of range"):
        apply_override(preset_recipe("uniform"), "domains.9.n=3")
    with pytest.raises(ConfigError, match="unknown preset 'nope'; known: reasoning-only"):
        load_config(None, [], preset="nope")


def test_unknown_keys_and_values_list_the_allowed_ones():
    msg = _error(_recipe(rl={"num_generation": 4}))
    assert "rl.num_generation" in msg and "Extra inputs are not permitted" in msg
    msg = _error(_recipe(sampling={"strategy": "by_size"}))
    assert "sampling.strategy" in msg and "'uniform'" in msg and "'coreset'" in msg
    msg = _error(_recipe(kl={"schedule": "adaptive"}))
    assert "kl.schedule" in msg and "'grpo_d'" in msg


@pytest.mark.parametrize(("changes", "expected"), [
    ({"kl": {"schedule": "grpo_d", "beta_min": 0.2, "beta_max": 0.1}},
     "kl.beta_min (0.2) must be <= kl.beta_max (0.1)"),
    ({"kl": {"schedule": "constant", "beta": 0.0}}, "kl.schedule=constant needs kl.beta > 0"),
    ({"kl": {"schedule": "none", "beta": 0.1}}, "kl.beta is set but kl.schedule=none"),
    ({"sampling": {"strategy": "default"}, "train": {"batch_per": "domain"}},
     "needs train.batch_per=total or reasoning"),
    ({"domains": [{"name": "g", "source": "ground", "role": "general", "mode": "rl",
                   "template": "answer", "rewards": ["iou"]}],
      "train": {"batch_per": "reasoning"}},
     "train.batch_per=reasoning needs a domain with role: reasoning"),
    ({"sampling": {"strategy": "fixed"}}, "sampling.strategy=fixed needs domains[*].weight"),
    ({"weighting": {"name": "static"}}, "weighting.weights: static weighting needs exactly"),
    ({"weighting": {"name": "equal", "temperature": 2.0}}, "weighting.temperature is only read"),
    ({"weighting": {"name": "famo"}}, "famo needs every objective in every micro-batch"),
    ({"rl": {"reward_weights": {"accuracy": 2.0}}},
     "rl.reward_weights is only read by rl.advantage=combined"),
    ({"restart": {"every_steps": 2, "every_epochs": 1}}, "set every_steps or every_epochs"),
    ({"weighting": {"name": "recap", "alpha": 1.5}}, "alpha must be in [0, 1] for variant eq1"),
    ({"weighting": {"name": "dwa", "variant": "paper"}}, "weighting.variant is only read by"),
    ({"weighting": {"name": "dwa", "apply": "rewards"}}, "apply=rewards needs weights known"),
    ({"weighting": {"name": "recap", "apply": "rewards"}, "rl": {"advantage": "combined"}},
     "needs rl.advantage=decoupled"),
    ({"weighting": {"name": "dwa", "signal": "deficit"}}, "signal=deficit is an ablation"),
])
def test_incompatible_combinations_are_rejected(changes, expected):
    assert expected in _error(_recipe(**changes))


def test_domain_errors_name_the_domain():
    base = preset_recipe("uniform")
    domains = [dict(d) for d in base["domains"]]
    domains[0]["rewards"] = []
    domains[2]["rewards"] = ["accuracy"]
    domains[1]["rewards"] = ["answer_format", "iou_typo"]
    msg = _error(_recipe(domains=domains))
    assert "domains[0] (arith).rewards: an rl domain needs at least one reward" in msg
    assert "domains[2] (digits).rewards: must be empty for an sft domain" in msg
    assert "domains[1] (ground).rewards: unknown ['iou_typo']; known:" in msg
    general_only = [d for d in base["domains"] if d["role"] == "general"]
    msg = _error(_recipe(domains=general_only, sampling={"strategy": "reasoning_only"}))
    assert "reasoning_only needs a domain with role: reasoning" in msg
    msg = _error(_recipe(domains=[{**base["domains"][0], "source": "arithmetic"}]))
    assert "unknown built-in task 'arithmetic'; known: ['arith'" in msg
    msg = _error(_recipe(domains=[base["domains"][0], base["domains"][0]]))
    assert "names must be unique" in msg
    from_file = {**base["domains"][2], "source": {"path": "x", "format": "csv"}}
    msg = _error(_recipe(domains=[from_file]))
    assert "source.format: unknown 'csv'" in msg


def test_resolved_recipe_round_trips_through_yaml(tmp_path):
    cfg = load_config(None, ["train.steps=3"], preset="grpo-d")
    path = tmp_path / "resolved.yaml"
    path.write_text(cfg.to_yaml())
    assert load_config(path, []) == cfg


def test_kl_none_turns_a_presets_kl_off_in_one_override():
    cfg = load_config(None, ["kl=none"], preset="lwf")  # lwf: constant beta 0.01
    assert cfg.kl.schedule == "none" and cfg.kl.beta == 0.0 and not cfg.uses_reference
    msg = _error(_recipe(kl={"schedule": "none", "beta": 0.1}))
    assert "kl=none" in msg  # the error says how to turn it off
