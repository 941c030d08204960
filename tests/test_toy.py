"""Tests of the toy two-task study (RECAP appendix A.6): functions, front, metrics, runner."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from recap.toy.front import distance_to_front, non_dominated, pareto_front
from recap.toy.functions import LOG_FLOOR, START_POINTS, toy_losses
from recap.toy.metrics import run_metrics, summarise_seed_runs
from recap.toy.runner import LOSS_SHIFT, MethodSpec, noise_for_seed, run_batch
from recap.weighting import build_weighting


def _losses(x1: float, x2: float) -> tuple[float, float]:
    out = toy_losses(torch.tensor([x1, x2], dtype=torch.float64))
    return float(out[0]), float(out[1])


# ---------------------------------------------------------------------------------------------
# The functions at hand-computed points


def test_origin_is_zero() -> None:
    # x2 = 0: f1 = max(tanh 0, 0) = 0 and f2 = 0, so both losses vanish.
    assert _losses(0.0, 0.0) == (0.0, 0.0)


def test_quadratic_branch_at_the_optimum_of_l1() -> None:
    # x = (7, -8): f1 = max(tanh(-4), 0) = 0, f2 = tanh(4) = 0.9993292997.
    # h1 = ((-7 + 7)^2 + 0.1 (8 - 8)^2) / 10 - 20 = -20
    # h2 = ((-7 - 7)^2 + 0) / 10 - 20 = 19.6 - 20 = -0.4
    l1, l2 = _losses(7.0, -8.0)
    assert l1 == pytest.approx(-20 * 0.999329299739067, abs=1e-12)  # -19.98658599
    assert l2 == pytest.approx(-0.4 * 0.999329299739067, abs=1e-12)  # -0.39973172


def test_start_point_with_negative_x2() -> None:
    # x = (9, -1): f1 = 0, f2 = tanh(0.5) = 0.4621171573.
    # h1 = ((-9 + 7)^2 + 0.1 (1 - 8)^2) / 10 - 20 = (4 + 4.9) / 10 - 20 = -19.11
    # h2 = ((-9 - 7)^2 + 4.9) / 10 - 20 = (256 + 4.9) / 10 - 20 = 6.09
    l1, l2 = _losses(9.0, -1.0)
    assert l1 == pytest.approx(0.46211715726000974 * -19.11, abs=1e-12)  # -8.83105888
    assert l2 == pytest.approx(0.46211715726000974 * 6.09, abs=1e-12)  # 2.81429349


def test_start_point_with_positive_x2_uses_reference_g2() -> None:
    # x = (-8.5, 7.5): f2 = 0, f1 = tanh(3.75) = 0.9988944427; tanh(-7.5) = -0.9999993882.
    # g1 = log|0.5 (8.5 - 7) - tanh(-7.5)| + 6 = log(0.75 + 0.9999993882) + 6 = 6.5596154383
    # g2 = log|0.5 (8.5 + 3) + tanh(-7.5) + 2| + 6 = log(5.75 - 0.9999993882 + 2) + 6
    #    = log(6.7500006118) + 6 = 7.9095425955
    # (the paper's misprint "- tanh(-x2)" would give log(8.7499993882) + 6 = 8.1690536.)
    l1, l2 = _losses(-8.5, 7.5)
    assert l1 == pytest.approx(0.9988944427261528 * 6.559615438332816, abs=1e-12)  # 6.5523634
    assert l2 == pytest.approx(0.9988944427261528 * 7.909542595522131, abs=1e-12)  # 7.9007981


def test_log_floor_applies_where_g1_argument_vanishes() -> None:
    # x1 = -7 + 2 tanh(1) makes 0.5 (-x1 - 7) - tanh(-1) = -tanh(1) + tanh(1) = 0, so
    # g1 = log(5e-6) + 6 = -12.2060726 + 6 = -6.2060726 and L1 = tanh(0.5) g1 = -2.8679326.
    x1 = -7.0 + 2.0 * math.tanh(1.0)
    l1, _ = _losses(x1, 1.0)
    assert l1 == pytest.approx(math.tanh(0.5) * (math.log(LOG_FLOOR) + 6.0), abs=1e-9)


def test_losses_are_vectorised_over_leading_dims() -> None:
    x = torch.randn(3, 4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = toy_losses(x)
    assert out.shape == (3, 4, 2)
    assert torch.equal(out[1, 2], toy_losses(x[1, 2]))


# ---------------------------------------------------------------------------------------------
# Pareto front


def test_front_lies_near_x2_minus_8_36() -> None:
    front = pareto_front()
    mid = len(front.weights) // 2
    # w = 1/2: x1* = 14 * 0.5 - 7 = 0, and the CAGrad reference toy marks the front at -8.3552.
    assert front.params[mid, 0] == pytest.approx(0.0, abs=1e-12)
    assert front.params[mid, 1] == pytest.approx(-8.3552, abs=2e-4)
    assert front.params[:, 0].min() == pytest.approx(-7.0)
    assert front.params[:, 0].max() == pytest.approx(7.0)
    assert front.params[:, 1].min() > -8.45 and front.params[:, 1].max() < -8.35
    # At x1 = 0: L1 = L2 = tanh(-x2/2) (19.6 / 4 - 20 + 0.01 (x2 + 8)^2) ~ -15.0916.
    x2 = front.params[mid, 1]
    expected = math.tanh(-x2 / 2) * (-15.1 + 0.01 * (x2 + 8) ** 2)
    assert front.losses[mid] == pytest.approx([expected, expected], abs=1e-9)
    assert expected == pytest.approx(-15.0916, abs=1e-4)


def test_scalarised_quadratic_identity() -> None:
    # w h1 + (1 - w) h2 at x1 = 14 w - 7 equals 19.6 w (1 - w) - 20 + 0.01 (x2 + 8)^2.
    w, x2 = 0.3, -8.1
    x1 = 14 * w - 7
    l1, l2 = _losses(x1, x2)
    c = math.tanh(-x2 / 2)
    assert (w * l1 + (1 - w) * l2) / c == pytest.approx(
        19.6 * w * (1 - w) - 20 + 0.01 * (x2 + 8) ** 2, abs=1e-12
    )


def test_front_matches_the_non_dominated_set_of_a_dense_grid() -> None:
    grid = np.linspace(-10.0, 10.0, 401)
    xs = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2)
    losses = toy_losses(torch.from_numpy(xs)).numpy()
    keep = non_dominated(losses)
    # Every non-dominated grid point is on the analytic front (grid spacing 0.05 in x).
    assert distance_to_front(losses[keep]).max() < 0.02
    # No grid point strictly dominates any front point.
    front = pareto_front().losses[::50]
    dominated = (losses[None, :, 0] < front[:, None, 0] - 1e-9) & (
        losses[None, :, 1] < front[:, None, 1] - 1e-9
    )
    assert not dominated.any()


def test_non_dominated_mask() -> None:
    pts = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.5, 0.5], [2.0, -1.0]])
    # (1, 1) is dominated by (0.5, 0.5); the others trade off.
    assert non_dominated(pts).tolist() == [True, True, False, True, True]


def test_distance_to_front() -> None:
    front = pareto_front()
    assert distance_to_front(front.losses[::97]).max() < 1e-12
    # At the symmetric point the front's normal is (1, 1) / sqrt 2: move 0.5 along it.
    mid = front.losses[len(front.weights) // 2]
    point = mid + 0.5 * np.array([1.0, 1.0]) / math.sqrt(2.0)
    assert distance_to_front(point[None])[0] == pytest.approx(0.5, abs=5e-3)
    assert distance_to_front(np.zeros((2, 3, 2))).shape == (2, 3)


# ---------------------------------------------------------------------------------------------
# Metrics


def test_run_metrics_on_a_synthetic_curve() -> None:
    d = np.array([5.0, 3.0, 0.05, 0.2, 0.08, 0.09])
    m = run_metrics(d, tolerance=0.1, tail=3)
    assert m.final_distance == 0.09
    assert m.reached
    assert m.first_step == 2  # first value <= 0.1
    # tail [0.2, 0.08, 0.09]: mean 0.12333, squared deviations 0.0058778 + 0.0018778
    # + 0.0011111 = 0.0088667, / 3 = 0.0029556, sqrt = 0.0543650
    assert m.tail_std == pytest.approx(0.054365, abs=1e-6)
    assert m.tail_mean == pytest.approx(0.123333, abs=1e-6)


def test_run_metrics_never_reaching() -> None:
    m = run_metrics(np.array([4.0, 3.0, 2.0]), tolerance=0.1, tail=1000)
    assert not m.reached and m.first_step is None
    assert m.tail_std == pytest.approx(math.sqrt(2 / 3))  # std of [4, 3, 2]


def test_summarise_over_seeds() -> None:
    on = run_metrics(np.array([1.0, 0.0]), 0.1, 2)  # reached at step 1, final 0
    off = run_metrics(np.array([1.0, 1.0]), 0.1, 2)  # never, final 1
    s = summarise_seed_runs([[on, on, off], [on, off, off]])
    # reached per seed: 2 and 1 -> mean 1.5, std 0.5
    assert (s["reached_mean"], s["reached_std"]) == (1.5, 0.5)
    # mean final distance per seed: 1/3 and 2/3 -> mean 0.5, std 1/6
    assert s["final_distance_mean"] == pytest.approx(0.5)
    assert s["final_distance_std"] == pytest.approx(1 / 6)
    assert s["first_step_mean"] == 1.0 and s["first_step_std"] == 0.0


# ---------------------------------------------------------------------------------------------
# Runner


def test_seed_free_methods_ignore_the_noise_and_recap_does_not() -> None:
    equal = MethodSpec("equal", "loss", "equal")
    a, b = run_batch(equal, (0,), 40), run_batch(equal, (1,), 40)
    assert np.array_equal(a.traj, b.traj)
    recap = MethodSpec("recap", "loss", "recap", (("window", 2),))
    a, b = run_batch(recap, (0,), 40), run_batch(recap, (1,), 40)
    assert not np.array_equal(a.traj, b.traj)
    assert np.isfinite(a.traj).all() and a.error is None and a.nonpositive == 0


def test_batched_seeds_equal_separate_batches() -> None:
    spec = MethodSpec("rlw", "loss", "rlw")  # own RNG per start and seed
    both = run_batch(spec, (0, 1), 25).traj
    assert np.array_equal(both[:, 5:], run_batch(spec, (1,), 25).traj)
    assert np.array_equal(both[:, :5], run_batch(spec, (0,), 25).traj)


def test_batched_combine_matches_a_slow_per_run_reference_loop() -> None:
    # Reference: one start, its own RECAP object, Weighting.combine, Adam, step by step.
    steps, start = 30, 3
    spec = MethodSpec("recap", "loss", "recap", (("temperature", 1.0), ("window", 3)))
    fast = run_batch(spec, (0,), steps).traj[:, start]
    eps = noise_for_seed(0, steps, len(START_POINTS))[:, start]
    w = build_weighting("recap", objectives=["L1", "L2"], window=3, temperature=1.0)
    x = torch.tensor(START_POINTS[start], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([x], lr=1e-2)
    for t in range(steps):
        assert np.allclose(x.detach().numpy(), fast[t], atol=1e-12)
        l1, l2 = toy_losses(x).unbind()
        l1 = l1 + 3.0 * eps[t] + LOSS_SHIFT
        l2 = l2 + LOSS_SHIFT
        w.update({"L1": float(l1.detach()), "L2": float(l2.detach())})
        opt.zero_grad()
        w.combine({"L1": l1, "L2": l2}).backward()
        opt.step()
    assert np.allclose(x.detach().numpy(), fast[steps], atol=1e-12)


def test_mean_aggregator_follows_equal_weighting() -> None:
    # The mean of the two gradients is the gradient of (L1 + L2) / 2: same Adam path.
    grad = run_batch(MethodSpec("mean", "grad", "mean"), (0,), 30).traj
    loss = run_batch(MethodSpec("equal", "loss", "equal"), (0,), 30).traj
    assert np.allclose(grad, loss, atol=1e-10)


def test_a_failing_run_stops_alone() -> None:
    # Shift 0: start (9, -1) has L1 = -8.83 (+ 3 eps), far below 0, which FAMO's log refuses
    # at step 0, while start (9, 9) has L = (7.94, 6.69) > 0: with seed 0's draws (3 eps never
    # below -6.69 here) it keeps going in the same batch.
    res = run_batch(MethodSpec("famo", "loss", "famo", shift=0.0), (0,), 20)
    assert res.run_errors[4] is not None and res.run_errors[4].startswith("step 0:")
    assert res.run_errors[2] is None
    assert np.isnan(res.traj[1:, 4]).all() and np.isfinite(res.traj[:, 2]).all()
    assert res.nonpositive > 0


def test_unknown_kind_is_reported() -> None:
    res = run_batch(MethodSpec("x", "nope", "equal"), (0,), 3)
    assert res.error is not None and "loss, grad" in res.error


# ---------------------------------------------------------------------------------------------
# Smoke run of the study


def test_quick_study_smoke(tmp_path) -> None:
    from recap.toy.study import run_toy_study

    res = run_toy_study(
        tmp_path,
        quick=True,
        steps=30,
        methods=["recap", "equal", "mgda"],
        ablations=["temperature"],
        workers=1,
    )
    assert res["config"]["steps"] == 30
    assert set(res["main"]) == {"recap", "equal", "mgda"}
    assert "recap[T=30]" in res["runs"] and "recap[alpha=0]" not in res["runs"]
    assert res["runs"]["mgda"]["seeds_run"] == [0] and res["config"]["seeds"] == [0]
    assert res["timing"]["equal"]["ratio_to_equal_cpu"] == 1.0
    for name in (
        "results.json",
        "results.md",
        "pareto_front.csv",
        "trajectories.png",
        "ablation_temperature.png",
        "runtime.png",
        "distance.png",
    ):
        assert (tmp_path / name).stat().st_size > 0
    loaded = json.loads((tmp_path / "results.json").read_text())
    assert loaded["microbench"]["recap_update_K8_W10"]["recap_us_per_call"] > 0
    assert "| recap | loss |" in (tmp_path / "results.md").read_text()


def test_unknown_method_lists_known_names(tmp_path) -> None:
    from recap.toy.study import run_toy_study

    with pytest.raises(ValueError, match="known: recap"):
        run_toy_study(tmp_path, quick=True, methods=["nope"])
