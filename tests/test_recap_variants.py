"""RECAP in its three readings (eq. 1, the paper's runs, the authors' code), weights on the
rewards, and loss-based weightings fed losses (they used to get rewards or ~0 surrogates)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from recap.config import load_config
from recap.models.tiny import TinyConfig, build_tiny_model
from recap.training import step as step_module
from recap.training.objectives import rl_weighting_values, sft_weighting_values
from recap.training.trainer import train
from recap.weighting import (
    OfficialRecapWeighting,
    RecapWeighting,
    build_weighting,
    official_signals,
)


def _sm(xs, t=1.0):
    e = [math.exp(x / t) for x in xs]
    return [v / sum(e) for v in e]


# ---- the authors' code (variant official) ------------------------------------------------------


def test_official_first_steps_by_hand():
    w = build_weighting("recap", ["a", "b", "sft:s"], variant="official", window=2,
                        temperature=1.0, alpha=0.5)
    assert isinstance(w, OfficialRecapWeighting)
    # step 1: one value each -> c = 1, i = 0 -> both softmaxes uniform over the K = 2 seen
    assert w.update({"a": 0.5, "b": 0.25}) == {"a": 1.0, "b": 1.0, "sft:s": 1.0}
    assert w.last_stats["a"]["k"] == 2.0  # sft:s is not seen yet: not in K

    # step 2: the GRPO path first (c = old/new for every objective), then the SFT path
    got = w.update({"a": 1.0, "b": 0.25, "sft:s": 2.0})
    # GRPO path over a, b: a [0.5, 1.0]: c = 0.5 / 1.0, i = pstd 0.25 / mean 0.75; b: c 1, i 0
    sc, si = _sm([0.5, 1.0]), _sm([0.25 / 0.75, 0.0])
    assert got["a"] == pytest.approx(2 * (0.5 * sc[0] + 0.5 * si[0]))
    assert got["b"] == pytest.approx(2 * (0.5 * sc[1] + 0.5 * si[1]))
    # SFT path over a, b, sft:s (K = 3), c = new/old for every objective (the quirk):
    # a 1.0 / 0.5 = 2, b 1, sft:s (one value) 1; i: a 1/3, b 0, sft:s 0
    sc, si = _sm([2.0, 1.0, 1.0]), _sm([1 / 3, 0.0, 0.0])
    assert got["sft:s"] == pytest.approx(3 * (0.5 * sc[2] + 0.5 * si[2]))
    assert w.last_stats["sft:s"]["path"] == 1.0 and w.last_stats["a"]["path"] == 0.0

    # step 3: a has 3 values, an odd n: the oldest is dropped, [1.0, 0.0] is used
    w.update({"a": 0.0})
    assert w.last_stats["a"]["c"] == pytest.approx(1.0 / 1e-15)  # no guard, as the original
    assert w.last_stats["a"]["i"] == pytest.approx(0.5 / 0.5)
    assert set(w.last_stats) == {"a", "b"}  # the GRPO path only: sft:s keeps its weight
    assert w.weights["sft:s"] == pytest.approx(got["sft:s"])


def test_official_signals_window_and_directions():
    # 2W = 4 values kept; n = 4: old [1, 2], new [3, 4]
    assert official_signals([1.0, 2.0, 3.0, 4.0], sft_direction=False)["c"] == \
        pytest.approx(3 / 7)
    assert official_signals([1.0, 2.0, 3.0, 4.0], sft_direction=True)["c"] == pytest.approx(7 / 3)
    assert official_signals([5.0], sft_direction=False) == {"c": 1.0, "i": 0.0, "n": 1.0}
    w = OfficialRecapWeighting(["a"], window=2)
    for v in (1.0, 2.0, 3.0, 4.0, 5.0):
        w.update({"a": v})
    assert w.state_dict()["history"]["a"] == [2.0, 3.0, 4.0, 5.0]  # at most 2W values


def test_official_alpha_schedule_when_alpha_is_outside_0_1():
    w = OfficialRecapWeighting(["a", "b"], window=2, alpha=-1.0, max_steps=4)
    seen = []
    for _ in range(5):
        seen.append(w.current_alpha())
        w.update({"a": 1.0, "b": 1.0})
    assert seen == [1.0, 0.75, 0.5, 0.25, 0.0]  # 1 - step / max_steps
    with pytest.raises(ValueError, match="left \\[0, 1\\]"):
        w.update({"a": 1.0})
    with pytest.raises(ValueError, match="max_steps"):
        OfficialRecapWeighting(["a"], alpha=-1.0)


def test_official_state_round_trip_and_variant_check():
    w = OfficialRecapWeighting(["a", "sft:s"], window=2)
    for v in (0.2, 0.4, 0.5):
        w.update({"a": v, "sft:s": 1.0 - v})
    clone = OfficialRecapWeighting(["a", "sft:s"], window=2)
    clone.load_state_dict(json.loads(json.dumps(w.state_dict())))
    assert clone.update({"a": 0.7}) == w.update({"a": 0.7})
    with pytest.raises(ValueError, match="variant"):
        RecapWeighting(["a", "sft:s"], window=2).load_state_dict(w.state_dict())


# ---- eq. 1 and the paper's runs ----------------------------------------------------------------


def test_paper_variant_is_eq1_with_alpha_one_half():
    seq = [{"a": 0.1 * t, "b": 0.5 + 0.01 * t} for t in range(1, 9)]
    paper = build_weighting("recap", ["a", "b"], variant="paper", window=2, temperature=1.0)
    half = build_weighting("recap", ["a", "b"], window=2, temperature=1.0, alpha=0.5)
    eq1 = build_weighting("recap", ["a", "b"], window=2, temperature=1.0)
    for values in seq:
        wp, wh, we = paper.update(values), half.update(values), eq1.update(values)
        assert wp == wh
    assert wp != we  # s = c + i is twice as sharp as 0.5 c + 0.5 i
    s = eq1.last_stats["a"]["c"] + eq1.last_stats["a"]["i"]
    assert paper.last_stats["a"]["s"] == pytest.approx(s / 2)
    with pytest.raises(ValueError, match="known: eq1, paper, official"):
        build_weighting("recap", ["a"], variant="eq2")


# ---- weights on the rewards, in a trained run ------------------------------------------------


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    small = TinyConfig(hidden_size=64, num_layers=2, intermediate_size=128)
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), small, seed=0)


@pytest.fixture
def length_like():
    from recap.rewards import REWARDS, register_reward

    register_reward("length_like")(lambda c, r: min(1.0, len(c) / 6))  # uneven within groups
    yield
    REWARDS.pop("length_like", None)  # other modules check the exact registry


def test_official_run_weighs_rewards_before_normalisation(tiny, tmp_path, monkeypatch,
                                                          length_like):
    seen: list[tuple[dict, dict, torch.Tensor]] = []
    real = step_module.reward_weighted_advantages

    def record(rewards, weights, *, eps):
        adv = real(rewards, weights, eps=eps)
        seen.append(({k: v.clone() for k, v in rewards.items()}, dict(weights), adv))
        return adv

    monkeypatch.setattr(step_module, "reward_weighted_advantages", record)
    out = tmp_path / "official"
    cfg = load_config(None, [
        f"model.path={tiny}", f"output_dir={out}", "train.steps=4", "train.batch_size=1",
        "train.batch_per=domain", "rl.num_generations=3", "rl.max_new_tokens=6",
        "domains.arith.n=4", "domains.ground.n=4", "domains.digits.n=4",
        "domains.arith.rewards=[think_format, accuracy, length_like]",
        "weighting.window=1", "weighting.temperature=0.5",
        "logging.progress=false", "logging.tensorboard=false", "checkpoint.export_model=false",
    ], preset="recap-official")
    train(cfg)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").open()]
    assert len(seen) == 2 * len(rows)  # arith and ground each step
    for step, row in enumerate(rows):
        for rewards, weights, adv in seen[2 * step: 2 * step + 2]:
            domain = "arith" if "accuracy" in rewards else "ground"
            for name, lam in weights.items():  # the step's lambda, as logged
                assert lam == pytest.approx(row[f"lambda/{domain}/{name}"])
            total = sum(weights[k] * rewards[k] for k in rewards)  # [B, G], before normalising
            mean, std = total.mean(1, keepdim=True), total.std(1, keepdim=True)
            expected = ((total - mean) / (std + cfg.rl.std_eps)).reshape(-1)
            assert torch.allclose(adv, expected, atol=1e-6)
        # the loss: mean of the two domains' surrogates + lambda_sft * L_sft, no 1/K
        rl = (row["loss/rl:arith"] + row["loss/rl:ground"]) / 2
        assert row["loss"] == pytest.approx(rl + row["lambda/sft:digits"] * row["loss/sft:digits"],
                                            rel=1e-5, abs=1e-6)
        assert row["signal/sft:digits"] == pytest.approx(row["loss/sft:digits"], rel=1e-5)
    assert any(abs(row["lambda/arith/length_like"] - 1.0) > 1e-3 for row in rows)  # it moves


# ---- loss-based weightings get losses ----------------------------------------------------------


def _drive(kind: str, consumes: str) -> list[dict[str, float]]:
    """Feed a weighting what the trainer would: objective "up" improves, "flat" does not."""
    names = ["up", "flat"] if kind == "rl" else ["sft:up", "sft:flat"]
    w = build_weighting({"loss-dwa": "dwa", "loss-uw": "uw", "loss-famo": "famo"}[consumes],
                        names)
    opt = torch.optim.SGD(w.parameters(), lr=0.5) if w.parameters() else None
    history = []
    for t in range(30):
        improving = 0.2 + 0.6 * t / 29  # reward 0.2 -> 0.8 ; SFT loss 2.0 -> 0.5
        if kind == "rl":
            raw = {"up": improving, "flat": 0.5}
            values = rl_weighting_values(raw, w.consumes)
            loss_values = rl_weighting_values(raw, "loss")  # the trainer's constant offset
        else:
            loss_values = {"sft:up": 2.0 - 1.5 * t / 29, "sft:flat": 1.25}
            values = sft_weighting_values(loss_values, {k: 0.0 for k in loss_values}, w.consumes)
        if t and w.name == "famo":
            w.post_step({k: torch.tensor(v) for k, v in loss_values.items()})
        history.append(w.update(values))
        loss = w.combine({k: torch.tensor(v) for k, v in loss_values.items()})
        if opt is not None:
            opt.zero_grad()
            loss.backward()
            opt.step()
    return history


@pytest.mark.parametrize("kind", ["rl", "sft"])
@pytest.mark.parametrize("method", ["loss-dwa", "loss-uw", "loss-famo"])
def test_loss_weightings_move_the_right_way(method, kind):
    weights = _drive(kind, method)
    up, flat = ("up", "flat") if kind == "rl" else ("sft:up", "sft:flat")
    last = weights[-1]
    if method == "loss-uw":  # UW: weight ~ 1 / loss; the improving objective's loss is lower
        assert last[up] > last[flat]
    else:  # DWA and FAMO favour the objective whose loss falls slowest: the flat one
        assert last[flat] > last[up]
