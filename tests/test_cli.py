"""Command-line options shared by the training and evaluation commands."""

import pytest
import torch
from typer.testing import CliRunner

import recap.evaluation.evaluator as evaluator
from recap.cli import app


def test_threads_option_sets_torch_threads_before_the_work(monkeypatch, tmp_path):
    seen: list[int] = []

    def fake_eval(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return {"wall_s": 0.0}

    monkeypatch.setattr(evaluator, "eval_command", fake_eval)
    monkeypatch.setattr(evaluator, "summary_lines", lambda results: [])
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    try:
        result = CliRunner().invoke(app, ["eval", "builtin:base", "--out",
                                          str(tmp_path / "r.json"), "--threads", str(target)])
        assert result.exit_code == 0, result.output
        assert seen == [target]
    finally:
        torch.set_num_threads(before)
    bad = CliRunner().invoke(app, ["train", "--preset", "recap", "--threads", "0"])
    assert bad.exit_code == 2 and seen == [target]  # rejected before any work


def test_pretrain_passes_threads_to_the_recipe(monkeypatch, tmp_path):
    import recap.pretraining as pretrain_module

    seen = []
    monkeypatch.setattr(pretrain_module, "pretrain",
                        lambda out, cfg, resume: seen.append((cfg.threads, resume)) or out)
    result = CliRunner().invoke(app, ["pretrain", "--out", str(tmp_path / "b"), "--threads", "2",
                                      "--resume"])
    assert result.exit_code == 0, result.output
    assert seen == [(2, True)]
    assert CliRunner().invoke(app, ["pretrain", "--threads", "0"]).exit_code == 2
    assert len(seen) == 1


def test_pretrain_takes_recipe_overrides(monkeypatch, tmp_path):
    import recap.pretraining as pretrain_module

    seen = []
    monkeypatch.setattr(pretrain_module, "pretrain",
                        lambda out, cfg, resume: seen.append(cfg) or out)
    result = CliRunner().invoke(app, ["pretrain", "--out", str(tmp_path / "b"), "--steps", "8",
                                      "--set", "anneal_steps=0",
                                      "--set", "mixture.arith=[think, 2.0]"])
    assert result.exit_code == 0, result.output
    (cfg,) = seen
    assert (cfg.steps, cfg.anneal_steps, cfg.mixture["arith"]) == (8, 0, ("think", 2.0))
    assert cfg.mixture["count"] == ("answer", 1.0)  # the other tasks keep the shipped weights
    bad = CliRunner().invoke(app, ["pretrain", "--set", "anneal_stepz=0"])
    assert bad.exit_code == 2 and "anneal_stepz" in bad.output and len(seen) == 1


def test_a_missing_model_folder_is_a_clear_error(tmp_path):
    from recap.models.loading import resolve_model_path

    result = CliRunner().invoke(app, ["eval", str(tmp_path / "nonexistent")])
    assert result.exit_code == 2
    assert "no such folder" in result.output and "Traceback" not in result.output
    with pytest.raises(FileNotFoundError, match=r"no config\.json in it"):
        resolve_model_path(tmp_path)  # a folder, but not a checkpoint
    assert resolve_model_path("Qwen/Qwen2.5-VL-3B-Instruct") == "Qwen/Qwen2.5-VL-3B-Instruct"
