"""Tests of recap.weighting: RECAP against hand-computed cases, its degenerate inputs, the
loss-magnitude baselines, state round-trips and the registry."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from recap.weighting import (
    WEIGHTINGS,
    DWAWeighting,
    FAMOWeighting,
    RandomLossWeighting,
    RecapWeighting,
    StaticWeighting,
    UncertaintyWeighting,
    build_weighting,
    recap_signals,
)


def two_way(s_a: float, s_b: float, temperature: float) -> tuple[float, float]:
    """lambda = 2 softmax([s_a, s_b] / T), written out for K = 2."""
    e_a, e_b = math.exp(s_a / temperature), math.exp(s_b / temperature)
    return 2 * e_a / (e_a + e_b), 2 * e_b / (e_a + e_b)


def feed(weighting, a: list[float], b: list[float]) -> dict[str, float]:
    weights = {}
    for x, y in zip(a, b, strict=True):
        weights = weighting.update({"a": x, "b": y})
    return weights


# Hand case used by several tests: W = 2, objective a halves every step, b is constant.
# a: [1, 0.5, 0.25, 0.125]
#   mu = (0.25 + 0.125) / 2 = 0.1875, mu_old = (1 + 0.5) / 2 = 0.75
#   sigma (Algorithm 2: centred on the 2W mean 0.46875):
#     deviations 0.53125, 0.03125, -0.21875, -0.34375
#     squares 0.2822265625 + 0.0009765625 + 0.0478515625 + 0.1181640625 = 0.44921875
#     sigma = sqrt(0.44921875 / 3) = 0.38696...
#   c = 0.75 / 0.1875 = 4,  i = sigma / (0.1875 + 0.75) = sigma / 0.9375 = 0.41276...
# b: [2, 2, 2, 2] -> mu = mu_old = 2, sigma = 0, c = 1, i = 0
A_VALUES = [1.0, 0.5, 0.25, 0.125]
B_VALUES = [2.0, 2.0, 2.0, 2.0]
SIGMA_A = math.sqrt(0.44921875 / 3)
C_A, I_A = 4.0, SIGMA_A / 0.9375


def test_recap_hand_case_default():
    w = RecapWeighting(["a", "b"], window=2, temperature=5.0)
    weights = feed(w, A_VALUES, B_VALUES)
    # s_a = 4 + 0.41276 = 4.41276, s_b = 1 + 0 = 1
    expected_a, expected_b = two_way(C_A + I_A, 1.0, 5.0)
    assert weights["a"] == pytest.approx(expected_a, abs=1e-9)
    assert weights["b"] == pytest.approx(expected_b, abs=1e-9)
    assert expected_a == pytest.approx(1.3286160, abs=1e-6)  # 2 / (1 + exp(-3.41276 / 5))
    stats = w.last_stats["a"]
    assert stats["mu"] == pytest.approx(0.1875, abs=1e-12)
    assert stats["mu_old"] == pytest.approx(0.75, abs=1e-12)
    assert stats["sigma"] == pytest.approx(SIGMA_A, abs=1e-12)
    assert stats["c"] == pytest.approx(4.0, abs=1e-12)
    assert stats["i"] == pytest.approx(I_A, abs=1e-12)
    assert w.last_stats["b"] == {
        "mu": 2.0,
        "mu_old": 2.0,
        "sigma": 0.0,
        "c": 1.0,
        "i": 0.0,
        "s": 1.0,
    }


def test_recap_sigma_follows_algorithm_2_not_the_text():
    # The text centres the deviations on mu = 0.1875: squares 0.6601..., 0.0976..., 0.0039...,
    # 0.0039... sum 0.765625 -> sigma = sqrt(0.765625 / 3) = 0.50518, which must NOT be used.
    sigma = recap_signals(A_VALUES, window=2)["sigma"]
    assert sigma == pytest.approx(math.sqrt(0.44921875 / 3), abs=1e-12)
    assert sigma != pytest.approx(math.sqrt(0.765625 / 3), abs=1e-3)
    assert sigma == pytest.approx(
        float(torch.tensor(A_VALUES, dtype=torch.float64).std()), abs=1e-12
    )


@pytest.mark.parametrize(
    ("alpha", "s_a", "s_b"),
    [
        (1.0, C_A, 1.0),  # s = c only: 4 vs 1
        (0.0, I_A, 0.0),  # s = i only: 0.41276 vs 0
        (0.5, 0.5 * C_A + 0.5 * I_A, 0.5),  # halves of both: 2.20638 vs 0.5
        (0.25, 0.25 * C_A + 0.75 * I_A, 0.25),
    ],
)
def test_recap_alpha_variants(alpha, s_a, s_b):
    w = RecapWeighting(["a", "b"], window=2, temperature=5.0, alpha=alpha)
    weights = feed(w, A_VALUES, B_VALUES)
    expected_a, expected_b = two_way(s_a, s_b, 5.0)
    assert weights["a"] == pytest.approx(expected_a, abs=1e-9)
    assert weights["b"] == pytest.approx(expected_b, abs=1e-9)


def test_recap_temperature_and_three_objectives():
    # W = 1, T = 2, three objectives; histories after two steps:
    # a: [0.2, 0.4] -> c = 0.2 / 0.4 = 0.5, sigma = |0.4 - 0.2| / sqrt(2) = 0.141421,
    #                  i = 0.141421 / 0.6 = 0.235702, s = 0.735702
    # b: [0.9, 0.3] -> c = 3, sigma = 0.6 / sqrt(2) = 0.424264, i = 0.424264 / 1.2 = 0.353553,
    #                  s = 3.353553
    # c: [0.5, 0.5] -> c = 1, i = 0, s = 1
    w = RecapWeighting(["a", "b", "c"], window=1, temperature=2.0)
    w.update({"a": 0.2, "b": 0.9, "c": 0.5})
    weights = w.update({"a": 0.4, "b": 0.3, "c": 0.5})
    s = [0.5 + (0.2 / math.sqrt(2)) / 0.6, 3.0 + (0.6 / math.sqrt(2)) / 1.2, 1.0]
    exps = [math.exp(x / 2.0) for x in s]
    for name, e in zip("abc", exps, strict=True):
        assert weights[name] == pytest.approx(3 * e / sum(exps), abs=1e-9)
    assert sum(weights.values()) / 3 == pytest.approx(1.0, abs=1e-12)


def test_recap_uniform_until_2w_values_for_every_objective():
    w = RecapWeighting(["a", "b"], window=2)
    for x, y in zip(A_VALUES[:3], B_VALUES[:3], strict=True):
        assert w.update({"a": x, "b": y}) == {"a": 1.0, "b": 1.0}
        assert not w.ready and w.last_stats == {}
    # b misses a step: a now has 4 values but b only 3, so weights stay uniform.
    assert w.update({"a": A_VALUES[3]}) == {"a": 1.0, "b": 1.0}
    weights = w.update({"b": 2.0})
    # Now both hold 2W values: a = [1, .5, .25, .125], b = [2, 2, 2, 2] -> the hand case.
    assert weights["a"] == pytest.approx(two_way(C_A + I_A, 1.0, 5.0)[0], abs=1e-9)


def test_recap_defaults():
    w = RecapWeighting(["a"])
    assert (w.window, w.temperature, w.alpha) == (10, 5.0, None)


def test_recap_mu_zero_gives_neutral_c():
    # a: [0.5, 0.5, 0, 0]: mu = 0 -> c = 1 (neutral instead of mu_old / 0 = inf);
    #   mu_old = 0.5, 2W mean 0.25, deviations +-0.25, sigma = sqrt(4 * 0.0625 / 3) = sqrt(1/12),
    #   i = sqrt(1/12) / 0.5 = 0.57735, s = 1.57735
    # b: constant 1 -> s = 1
    w = RecapWeighting(["a", "b"], window=2)
    weights = feed(w, [0.5, 0.5, 0.0, 0.0], [1.0] * 4)
    assert w.last_stats["a"]["c"] == 1.0
    assert w.last_stats["a"]["i"] == pytest.approx(math.sqrt(1 / 12) / 0.5, abs=1e-12)
    assert weights["a"] == pytest.approx(
        two_way(1 + math.sqrt(1 / 12) / 0.5, 1.0, 5.0)[0], abs=1e-9
    )


def test_recap_all_zero_rewards_are_neutral():
    # A reward that is 0 over the whole 2W window (e.g. accuracy before anything is solved):
    # mu = mu_old = 0 -> c = 1, i = 0, s = 1, the same as a saturated constant objective.
    w = RecapWeighting(["a", "b"], window=2)
    weights = feed(w, [0.0] * 4, [0.7] * 4)
    assert weights == {"a": pytest.approx(1.0, abs=1e-12), "b": pytest.approx(1.0, abs=1e-12)}


@pytest.mark.parametrize(
    ("history", "c", "i"),
    [
        ([-1.0, -1.0, -1.0, -1.0], 1.0, 0.0),  # mu < 0 and mu + mu_old = -2 <= 0: both neutral
        ([1.0, 1.0, -1.0, -1.0], 1.0, 0.0),  # mu = -1 < 0, mu + mu_old = 0: both neutral
        # mu_old = -1 < 0 -> c = 1; mu + mu_old = 1 > 0, 2W mean 0.5, deviations +-1.5,
        # sigma = sqrt(4 * 2.25 / 3) = sqrt(3) -> i = sqrt(3) / 1
        ([-1.0, -1.0, 2.0, 2.0], 1.0, math.sqrt(3)),
        ([1.0, 1.0, 1e-300, 1e-300], 1.0, math.sqrt(4 * 0.25 / 3) / 1.0),  # mu below 1e-12
        ([3.0, 3.0, 3.0, 3.0], 1.0, 0.0),  # constant: sigma = 0 -> i = 0
    ],
)
def test_recap_degenerate_windows(history, c, i):
    stats = recap_signals(history, window=2)
    assert stats["c"] == pytest.approx(c, abs=1e-12)
    assert stats["i"] == pytest.approx(i, abs=1e-12)
    assert stats["s"] == pytest.approx(c + i, abs=1e-12)


def test_recap_huge_scores_stay_finite():
    # a: [1e200, 1e200, 1e-10, 1e-10] -> c = 1e210, s / T overflows exp() unless the softmax
    # is stabilised; the weights must be (2, 0), finite, with mean 1.
    w = RecapWeighting(["a", "b"], window=2)
    weights = feed(w, [1e200, 1e200, 1e-10, 1e-10], [1.0] * 4)
    assert weights == {"a": 2.0, "b": 0.0}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_recap_rejects_non_finite_values(bad):
    clean = RecapWeighting(["a", "b"], window=2)
    dirty = RecapWeighting(["a", "b"], window=2)
    feed(clean, A_VALUES, B_VALUES)
    feed(dirty, A_VALUES, B_VALUES)
    # The non-finite value of a is dropped: same as a being absent from that step.
    got = dirty.update({"a": bad, "b": 2.0})
    expected = clean.update({"b": 2.0})
    assert got == expected
    assert all(math.isfinite(x) for x in got.values())
    assert dirty.num_rejected == 1 and clean.num_rejected == 0
    assert dirty.state_dict()["history"] == clean.state_dict()["history"]
    # during warm-up too
    fresh = RecapWeighting(["a", "b"], window=2)
    assert fresh.update({"a": bad, "b": 1.0}) == {"a": 1.0, "b": 1.0}
    assert fresh.state_dict()["history"] == {"a": [], "b": [1.0]}


def test_recap_single_objective_weight_is_always_one():
    w = RecapWeighting(["only"], window=2)
    for x in [0.1, 5.0, 0.0, -3.0, 0.7, 1e-9, 2.0]:
        assert w.update({"only": x}) == {"only": 1.0}


def test_recap_missing_objective_keeps_history_and_weight():
    w = RecapWeighting(["a", "b"], window=2)
    feed(w, A_VALUES, B_VALUES)
    before = w.state_dict()["history"]["a"]
    weights = w.update({"b": 3.0})
    assert set(weights) == {"a", "b"}
    assert w.state_dict()["history"]["a"] == before
    # a: unchanged hand case, s_a = 4.41276; b: [2, 2, 2, 3] -> mu = 2.5, mu_old = 2, c = 0.8,
    #   2W mean 2.25, deviations -.25, -.25, -.25, .75, sigma = sqrt(0.75 / 3) = 0.5,
    #   i = 0.5 / 4.5 = 0.11111, s_b = 0.91111
    assert weights["a"] == pytest.approx(two_way(C_A + I_A, 0.8 + 0.5 / 4.5, 5.0)[0], abs=1e-9)


def test_recap_unknown_objective_raises():
    w = RecapWeighting(["a", "b"], window=2)
    with pytest.raises(ValueError, match="unknown objective"):
        w.update({"a": 1.0, "c": 2.0})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window": 0},
        {"window": 1.5},
        {"window": True},
        {"temperature": 0.0},
        {"temperature": -1.0},
        {"temperature": math.inf},
        {"alpha": 1.5},
        {"alpha": -0.1},
    ],
)
def test_recap_invalid_options(kwargs):
    with pytest.raises(ValueError):
        RecapWeighting(["a"], **kwargs)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(allow_nan=True, allow_infinity=True, width=64),
            st.floats(min_value=-5, max_value=5),
            st.floats(min_value=0, max_value=1),
        ),
        min_size=1,
        max_size=30,
    ),
    st.integers(min_value=1, max_value=4),
)
# Found by hypothesis: a score near the float maximum overflowed to inf once divided by T < 1.
@example(rows=[(0.0, 0.0, 0.0), (8.98846567431158e307, 0.0, 0.0), (0.0, 0.0, 0.0),
               (1.0, 0.0, 0.0)], window=2)
def test_recap_weights_are_finite_with_mean_one(rows, window):
    w = RecapWeighting(["a", "b", "c"], window=window, temperature=0.5)
    for a, b, c in rows:
        weights = w.update({"a": a, "b": b, "c": c})
        assert set(weights) == {"a", "b", "c"}
        assert all(math.isfinite(x) and x >= 0 for x in weights.values())
        assert sum(weights.values()) / 3 == pytest.approx(1.0, abs=1e-9)


def test_default_combine_is_weighted_mean_with_detached_weights():
    w = RecapWeighting(["a", "b"], window=2)
    feed(w, A_VALUES, B_VALUES)
    lam_a, lam_b = w.weights["a"], w.weights["b"]
    la = torch.tensor(3.0, requires_grad=True)
    lb = torch.tensor(5.0, requires_grad=True)
    loss = w.combine({"a": la, "b": lb})
    # (1/K) sum_k lambda_k L_k = (lam_a * 3 + lam_b * 5) / 2
    assert float(loss.detach()) == pytest.approx((lam_a * 3 + lam_b * 5) / 2, abs=1e-5)
    loss.backward()
    assert float(la.grad) == pytest.approx(lam_a / 2, abs=1e-6)
    assert float(lb.grad) == pytest.approx(lam_b / 2, abs=1e-6)
    # An absent objective contributes nothing; the divisor stays K = 2.
    assert float(w.combine({"a": torch.tensor(3.0)})) == pytest.approx(lam_a * 3 / 2, abs=1e-5)
    with pytest.raises(ValueError, match="unknown objective"):
        w.combine({"z": torch.tensor(1.0)})
    with pytest.raises(ValueError, match="one-element"):
        w.combine({"a": torch.ones(3)})


# --- baselines -------------------------------------------------------------------------------


def test_equal_and_static():
    assert build_weighting("equal", ["a", "b"]).update({"a": 9.0}) == {"a": 1.0, "b": 1.0}
    # weights {a: 3, b: 1} have mean 2 -> {a: 1.5, b: 0.5}
    static = build_weighting("static", ["a", "b"], weights={"a": 3.0, "b": 1.0})
    assert static.update({"a": 0.1, "b": 0.2}) == {"a": 1.5, "b": 0.5}
    # combine: (1.5 * 2 + 0.5 * 4) / 2 = 2.5
    assert float(static.combine({"a": torch.tensor(2.0), "b": torch.tensor(4.0)})) == 2.5
    with pytest.raises(ValueError, match="missing"):
        StaticWeighting(["a", "b"], weights={"a": 1.0})
    with pytest.raises(ValueError, match="unknown objective"):
        StaticWeighting(["a"], weights={"a": 1.0, "x": 1.0})
    for bad in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match="> 0"):
            StaticWeighting(["a", "b"], weights={"a": 1.0, "b": bad})


def test_dwa_hand_case():
    w = DWAWeighting(["a", "b"], temperature=2.0)
    # The first two updates have fewer than two earlier values: uniform.
    assert w.update({"a": 1.0, "b": 2.0}) == {"a": 1.0, "b": 1.0}
    assert w.update({"a": 0.5, "b": 2.0}) == {"a": 1.0, "b": 1.0}
    # Third update uses L(t-1) / L(t-2): r_a = 0.5 / 1 = 0.5, r_b = 2 / 2 = 1
    # lambda_a = 2 e^{0.25} / (e^{0.25} + e^{0.5}) = 2 / (1 + e^{0.25}) = 0.8756...
    weights = w.update({"a": 0.4, "b": 1.0})
    assert weights["a"] == pytest.approx(2 / (1 + math.exp(0.25)), abs=1e-12)
    assert weights["b"] == pytest.approx(2 - 2 / (1 + math.exp(0.25)), abs=1e-12)
    # Fourth: r_a = 0.4 / 0.5 = 0.8, r_b = 1 / 2 = 0.5 -> lambda_a = 2 / (1 + e^{(0.5-0.8)/2})
    weights = w.update({"a": 0.4, "b": 1.0})
    assert weights["a"] == pytest.approx(2 / (1 + math.exp(-0.15)), abs=1e-12)


def test_dwa_window_and_degenerate_ratio():
    # window 2: L(t-1) = mean of the 2 latest earlier values, L(t-2) = mean of the 2 before.
    w = DWAWeighting(["a", "b"], temperature=1.0, window=2)
    for a, b in [(4.0, 0.0), (4.0, 0.0), (1.0, 1.0), (3.0, 1.0)]:
        assert w.update({"a": a, "b": b}) == {"a": 1.0, "b": 1.0}
    # r_a = mean(1, 3) / mean(4, 4) = 0.5; b: older mean 0 -> neutral r_b = 1
    weights = w.update({"a": 1.0, "b": 1.0})
    assert weights["a"] == pytest.approx(2 / (1 + math.exp(0.5)), abs=1e-12)


def test_dwa_matches_torchjd_dwa_per_iteration():
    from torchjd.scalarization import DWA

    rng = np.random.default_rng(0)
    ours = DWAWeighting(["a", "b", "c"], temperature=2.0)
    theirs = DWA(temperature=2.0)
    for _ in range(8):
        values = rng.uniform(0.1, 2.0, size=3)
        x = torch.tensor(values, dtype=torch.float64, requires_grad=True)
        theirs(x).backward()  # d/dx sum_k w_k x_k = w_k, torchjd's weights (sum K)
        theirs.step()  # one "epoch" per iteration
        weights = ours.update(dict(zip("abc", values.tolist(), strict=True)))
        assert [weights[k] for k in "abc"] == pytest.approx(x.grad.tolist(), abs=1e-12)


def test_rlw_determinism_and_formula():
    a = RandomLossWeighting(["x", "y", "z"], seed=7)
    b = RandomLossWeighting(["x", "y", "z"], seed=7)
    c = RandomLossWeighting(["x", "y", "z"], seed=8)
    seq_a = [a.update({}) for _ in range(5)]
    seq_b = [b.update({}) for _ in range(5)]
    seq_c = [c.update({}) for _ in range(5)]
    assert seq_a == seq_b and seq_a != seq_c
    # First draw: lambda = 3 softmax(z), z the generator's first 3 normals.
    z = np.random.default_rng(7).standard_normal(3)
    expected = 3 * np.exp(z) / np.exp(z).sum()
    assert [seq_a[0][k] for k in "xyz"] == pytest.approx(expected.tolist(), abs=1e-12)
    for weights in seq_a:
        assert sum(weights.values()) / 3 == pytest.approx(1.0, abs=1e-12)
        assert len(set(weights.values())) == 3  # really random, not uniform


def test_uw_combine_and_gradients():
    w = UncertaintyWeighting(["a", "b"])
    la = torch.tensor(2.0, requires_grad=True)
    lb = torch.tensor(4.0, requires_grad=True)
    # s = 0: 0.5 * (2 + 4) + 0 = 3
    loss = w.combine({"a": la, "b": lb})
    assert float(loss.detach()) == pytest.approx(3.0, abs=1e-6)
    loss.backward()
    # d/ds_k = -0.5 e^{-s_k} L_k + 0.5 -> a: -1 + 0.5 = -0.5, b: -2 + 0.5 = -1.5
    assert w.log_var.grad.tolist() == pytest.approx([-0.5, -1.5], abs=1e-6)
    assert float(la.grad) == pytest.approx(0.5, abs=1e-6)  # 0.5 e^0
    assert w.parameters() == [w.log_var]
    # Same value as torchjd's UW (same halving convention).
    from torchjd.scalarization import UW

    reference = UW(2)
    with torch.no_grad():
        w.log_var.copy_(torch.tensor([0.3, -0.2]))
        reference.log_var.copy_(torch.tensor([0.3, -0.2]))
    losses = torch.tensor([2.0, 4.0])
    assert float(w.combine({"a": losses[0], "b": losses[1]}).detach()) == pytest.approx(
        float(reference(losses).detach()), abs=1e-6
    )
    # Only present objectives contribute: 0.5 e^{-0.3} 2 + 0.5 * 0.3
    w.log_var.grad = None
    partial = w.combine({"a": torch.tensor(2.0)})
    assert float(partial.detach()) == pytest.approx(math.exp(-0.3) + 0.15, abs=1e-6)
    partial.backward()
    assert float(w.log_var.grad[1]) == 0.0


def test_uw_update_reports_normalised_precisions():
    w = UncertaintyWeighting(["a", "b"])
    with torch.no_grad():
        w.log_var.copy_(torch.tensor([0.0, math.log(3.0)]))
    # exp(-s) = [1, 1/3], mean 2/3 -> [1.5, 0.5]
    assert w.update({"a": 0.5}) == {
        "a": pytest.approx(1.5, abs=1e-6),
        "b": pytest.approx(0.5, abs=1e-6),
    }


def test_famo_combine_hand_case():
    w = FAMOWeighting(["a", "b"], eps=0.0)
    la = torch.tensor(1.0, requires_grad=True)
    lb = torch.tensor(4.0, requires_grad=True)
    # z = [0.5, 0.5], c = 0.5 / 1 + 0.5 / 4 = 0.625
    # loss = (0.5 log 1 + 0.5 log 4) / 0.625 = 0.5 * 1.386294 / 0.625 = 1.109035
    loss = w.combine({"a": la, "b": lb})
    assert float(loss.detach()) == pytest.approx(0.5 * math.log(4.0) / 0.625, abs=1e-6)
    loss.backward()
    # dloss/dL_k = z_k / (c L_k): 0.5 / 0.625 = 0.8 and 0.5 / 2.5 = 0.2, a convex combination
    assert (float(la.grad), float(lb.grad)) == pytest.approx((0.8, 0.2), abs=1e-6)
    assert w.parameters() == []


def test_famo_post_step_hand_case():
    w = FAMOWeighting(["a", "b"], eps=0.0)
    w.combine({"a": torch.tensor(1.0), "b": torch.tensor(4.0)})
    # a halves, b does not move: delta = [log 2, 0]; <z, delta> = 0.34657
    # grad = z * (delta - <z, delta>) = [+0.17329, -0.17329]; Adam's first step moves each logit
    # by lr * g / (|g| + 1e-8) = -+0.025 (weight decay on zero logits adds nothing).
    w.post_step({"a": 0.5, "b": 4.0})
    assert w.logits.detach().tolist() == pytest.approx([-0.025, 0.025], abs=1e-6)
    # K softmax(xi) = [1 - tanh(0.025), 1 + tanh(0.025)]: the objective that improved least
    # (b) gains weight.
    weights = w.update({})
    assert weights["a"] == pytest.approx(1 - math.tanh(0.025), abs=1e-6)
    assert weights["b"] == pytest.approx(1 + math.tanh(0.025), abs=1e-6)
    assert w.last_stats["a"]["delta"] == pytest.approx(math.log(2.0), abs=1e-6)


def test_famo_matches_torchjd_famo():
    from torchjd.scalarization import FAMO

    torch.manual_seed(0)
    ours = FAMOWeighting(["a", "b", "c"])
    theirs = FAMO(3)
    for _ in range(6):
        losses = torch.rand(3) + 0.1
        after = losses * (torch.rand(3) * 0.5 + 0.6)
        ours_loss = ours.combine(dict(zip("abc", losses, strict=True)))
        assert float(ours_loss) == pytest.approx(float(theirs(losses)), abs=1e-5)
        ours.post_step(dict(zip("abc", after, strict=True)))
        theirs.update(after)


def test_famo_errors():
    w = FAMOWeighting(["a", "b"])
    with pytest.raises(RuntimeError, match="combine"):
        w.post_step({"a": 1.0, "b": 1.0})
    with pytest.raises(ValueError, match="lower bound"):
        w.combine({"a": torch.tensor(-0.5), "b": torch.tensor(1.0)})
    with pytest.raises(ValueError, match="missing"):
        w.combine({"a": torch.tensor(1.0)})
    # A lower bound makes negative losses usable: L - b = -0.5 + 1 > 0.
    bounded = FAMOWeighting(["a", "b"], min_losses={"a": -1.0})
    assert math.isfinite(float(bounded.combine({"a": torch.tensor(-0.5), "b": torch.tensor(1.0)})))


def test_learnable_parameters_receive_gradients_through_combine():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3)
    for name in ("uw", "famo"):
        model.zero_grad()
        w = build_weighting(name, ["a", "b"])
        out = model(x)
        losses = {"a": out[:, 0].pow(2).mean(), "b": out[:, 1].pow(2).mean()}
        w.combine(losses).backward()
        assert model.weight.grad is not None and model.weight.grad.abs().sum() > 0
        for p in w.parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0


# --- state round-trips and registry ------------------------------------------------------------

OPTIONS = {
    "static": {"weights": {"a": 1.0, "b": 2.0, "c": 3.0}},
    "recap": {"window": 2},
    "dwa": {"window": 1},
    "rlw": {"seed": 3},
}


def run_steps(w, steps: list[dict[str, float]]) -> list[tuple[dict[str, float], float]]:
    """update -> combine -> (learnable: SGD step) -> post_step, returning weights and losses."""
    record = []
    for values in steps:
        weights = w.update(values)
        losses = {k: torch.tensor(v + 0.5) for k, v in values.items()}
        loss = w.combine(losses)
        for p in w.parameters():
            (grad,) = torch.autograd.grad(loss, p)
            with torch.no_grad():
                p -= 0.1 * grad
        w.post_step({k: v + 0.4 for k, v in values.items()})
        record.append((weights, float(loss.detach())))
    return record


@pytest.mark.parametrize("name", WEIGHTINGS)
def test_state_round_trip(name):
    rng = np.random.default_rng(1)
    steps = [dict(zip("abc", rng.uniform(0.1, 1.0, 3).tolist(), strict=True)) for _ in range(12)]
    original = build_weighting(name, ["a", "b", "c"], **OPTIONS.get(name, {}))
    run_steps(original, steps[:6])
    state = json.loads(json.dumps(original.state_dict()))  # plain data survives JSON
    restored = build_weighting(name, ["a", "b", "c"], **OPTIONS.get(name, {}))
    restored.load_state_dict(state)
    assert restored.weights == original.weights
    expected = run_steps(original, steps[6:])
    got = run_steps(restored, steps[6:])
    assert got == expected
    if name in ("recap", "dwa", "rlw", "famo", "uw"):  # the state really changes the weights
        assert len({tuple(w.values()) for w, _ in expected}) > 1


def test_load_state_dict_checks_name_and_objectives():
    state = RecapWeighting(["a", "b"]).state_dict()
    with pytest.raises(ValueError, match="objectives"):
        RecapWeighting(["a", "c"]).load_state_dict(state)
    with pytest.raises(ValueError, match="weighting 'recap'"):
        DWAWeighting(["a", "b"]).load_state_dict(state)
    with pytest.raises(ValueError, match="window"):
        RecapWeighting(["a", "b"], window=3).load_state_dict(state)


def test_registry_names_and_errors():
    assert WEIGHTINGS == ("recap", "equal", "static", "dwa", "uw", "rlw", "famo")
    for name in WEIGHTINGS:
        w = build_weighting(name, ["a", "b", "c"], **OPTIONS.get(name, {}))
        assert w.name == name
        weights = w.update({"a": 0.5})
        assert set(weights) == {"a", "b", "c"}
        assert sum(weights.values()) / 3 == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match=r"unknown weighting 'nope'.*recap, equal, static"):
        build_weighting("nope", ["a"])
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['windw'\].*window"):
        build_weighting("recap", ["a"], windw=3)
    with pytest.raises(ValueError, match=r"needs option\(s\) \['weights'\]"):
        build_weighting("static", ["a"])
    with pytest.raises(ValueError, match="temperature"):
        build_weighting("recap", ["a"], temperature=0.0)
    with pytest.raises(ValueError, match="unique"):
        build_weighting("equal", ["a", "a"])
    with pytest.raises(ValueError, match="at least one"):
        build_weighting("equal", [])
