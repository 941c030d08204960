"""The base-model build: deterministic data, schedule, and exact resume."""

import json

import pytest
import torch
from safetensors.torch import load_file

from recap.pretrain import PretrainConfig, _lr_at, pretrain, sample_batch

SMALL = {"hidden_size": 32, "num_layers": 1, "intermediate_size": 64}


def small_config(**kw) -> PretrainConfig:
    base = dict(steps=4, batch_size=4, warmup_steps=4, eval_every=1000, eval_n=2, save_every=2,
                final_eval_n=2, model_config=SMALL)
    return PretrainConfig(**{**base, **kw})


def test_batches_are_a_function_of_seed_and_step():
    cfg = small_config(batch_size=8)
    a, ta = sample_batch(cfg, 3)
    b, tb = sample_batch(cfg, 3)
    c, _ = sample_batch(cfg, 4)
    assert [r.id for r in a] == [r.id for r in b] and ta == tb
    assert [r.id for r in a] != [r.id for r in c]
    # arith carries worked solutions, so it trains on the think template; the rest on answer.
    assert all((t == "think") == (r.domain == "arith") for r, t in zip(a, ta, strict=True))


def test_learning_rate_warms_up_then_decays_to_the_floor():
    cfg = PretrainConfig(steps=100, warmup_steps=10, lr=1e-3, min_lr_ratio=0.1)
    assert _lr_at(0, cfg) == pytest.approx(1e-4)  # (0 + 1) / 10 of the peak
    assert _lr_at(9, cfg) == pytest.approx(1e-3)
    # cosine from the peak at step 10 to 0.1 * peak at step 100; halfway (step 55) is
    # 0.1 + 0.9 * 0.5 = 0.55 of the peak.
    assert _lr_at(55, cfg) == pytest.approx(0.55e-3)
    assert _lr_at(100, cfg) == pytest.approx(1e-4)


def test_resumed_build_equals_uninterrupted(tmp_path):
    full = pretrain(tmp_path / "full" / "base", small_config())
    # Same recipe stopped after 2 steps (its checkpoint), then resumed to 4. The warm-up covers
    # all four steps, so the learning rates of both schedules agree step by step.
    pretrain(tmp_path / "cut" / "base", small_config(steps=2))
    resumed = pretrain(tmp_path / "cut" / "base", small_config(), resume=True)
    a = load_file(full / "model.safetensors")
    b = load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    card = json.loads((resumed / "card.json").read_text())
    assert card["recipe"]["steps"] == 4 and card["parameters"] > 0
    assert set(card["test_metrics"]) >= {"count/accuracy", "ground/iou", "digits/accuracy"}
    assert (resumed / "pretraining.png").stat().st_size > 1000
