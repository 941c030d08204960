"""The Python API exported from ``recap``: light to import, the same functions as the CLI's."""

import subprocess
import sys
from pathlib import Path

import pytest

import recap
from recap.config import RunConfig


def test_import_recap_stays_light():
    code = "import sys, recap, recap.rewards; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # reward workers and CLI start-up do not pay for torch


def test_exports_are_the_library_functions():
    from recap.evaluation.evaluator import evaluate
    from recap.training.trainer import train

    assert recap.train is train and recap.evaluate is evaluate
    assert set(recap.__all__) >= {"train", "evaluate", "load_config", "load_policy",
                                  "build_weighting", "run_study"}
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        recap.nope  # noqa: B018


def test_train_takes_a_recipe_path_with_overrides(tmp_path):
    cfg = recap.load_config("configs/quickstart-reasoning-only.yaml", ["train.steps=3"])
    assert isinstance(cfg, RunConfig) and cfg.train.steps == 3
    with pytest.raises(ValueError, match="overrides apply to a recipe path"):
        recap.train(cfg, overrides=["train.steps=1"])
    out = recap.train("configs/quickstart-reasoning-only.yaml", overrides=[
        "train.steps=1", "train.batch_size=2", "rl.max_new_tokens=8", f"output_dir={tmp_path}",
        "logging.progress=false", "logging.tensorboard=false", "checkpoint.export_model=false"])
    assert out == tmp_path and (out / "metrics.jsonl").read_text().count("\n") == 1


# The layer picture of docs/architecture.md, bottom (0) to top.
LAYERS = {"parsing": 0, "tasks": 1, "config": 2, "models": 3, "rewards": 3, "weighting": 3,
          "reporting": 3, "evaluation": 4, "training": 5, "studies": 6, "integrations": 6,
          "pretraining": 6, "toy": 6, "quickstart": 7, "cli": 8}


def test_imports_flow_down_the_layers():
    """Every ``recap.X`` import inside package ``recap.Y`` has X strictly below Y."""
    import ast

    root = Path(recap.__file__).parent
    upward = []
    for path in sorted(root.rglob("*.py")):
        here = path.relative_to(root).parts[0].removesuffix(".py")
        if here in ("__init__", "__main__", "assets"):
            continue
        assert here in LAYERS, f"{here} is missing from the layer picture"
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([node.module] if isinstance(node, ast.ImportFrom) and node.module else
                     [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            for name in names:
                parts = name.split(".")
                if (parts[0] == "recap" and len(parts) > 1 and parts[1] != here
                        and LAYERS[parts[1]] >= LAYERS[here]):
                    upward.append(f"{path.relative_to(root)} imports {name}")
    assert upward == []
