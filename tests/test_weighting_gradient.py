"""Tests of the gradient-based path (torchjd aggregators) of recap.weighting."""

from __future__ import annotations

import warnings

import pytest
import torch

from recap.weighting import (
    GRADIENT_AGGREGATORS,
    aggregate_gradients,
    gradient_step,
    make_aggregator,
)

# Two conflicting gradients: g1 . g2 = -1 < 0.
CONFLICT = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
ORTHOGONAL = torch.tensor([[1.0, 0.0], [0.0, 1.0]])


def test_pcgrad_hand_case():
    # g1' = g1 - (g1.g2 / |g2|^2) g2 = (1, 0) + 0.5 (-1, 1) = (0.5, 0.5)
    # g2' = g2 - (g1.g2 / |g1|^2) g1 = (-1, 1) + (1, 0) = (0, 1);  PCGrad sums: (0.5, 1.5)
    assert aggregate_gradients("pcgrad", CONFLICT).tolist() == pytest.approx([0.5, 1.5], abs=1e-6)
    # No conflict: nothing is projected, the sum is returned.
    assert aggregate_gradients("pcgrad", ORTHOGONAL).tolist() == pytest.approx([1.0, 1.0])


def test_mgda_min_norm_point():
    # min_a |a g1 + (1 - a) g2|^2 = (2a - 1)^2 + (1 - a)^2; derivative 10a - 6 = 0 -> a = 0.6,
    # point (0.2, 0.4). Orthogonal unit vectors: a = 0.5, point (0.5, 0.5).
    assert aggregate_gradients("mgda", CONFLICT).tolist() == pytest.approx([0.2, 0.4], abs=1e-3)
    assert aggregate_gradients("MGDA", ORTHOGONAL).tolist() == pytest.approx([0.5, 0.5], abs=1e-3)


def test_upgrad_never_conflicts_with_any_gradient():
    generator = torch.Generator().manual_seed(0)
    jacobian = torch.randn(4, 6, generator=generator, dtype=torch.float64)
    jacobian[1] = -0.8 * jacobian[0] + 0.1 * jacobian[1]  # force a strong conflict
    direction = aggregate_gradients("upgrad", jacobian)
    assert (jacobian @ direction >= -1e-6).all()


def test_imtlg_equal_projections_on_unit_gradients():
    # IMTL-G picks d whose projections on every unit gradient u_k are equal:
    # u1 = (1, 0), u2 = (-1, 1) / sqrt(2).
    direction = aggregate_gradients("imtlg", CONFLICT)
    units = CONFLICT / CONFLICT.norm(dim=1, keepdim=True)
    projections = units @ direction
    assert float(projections[0]) == pytest.approx(float(projections[1]), abs=1e-4)
    assert float(projections[0]) > 0


def test_cagrad_identical_gradients():
    # All gradients equal g: g0 = g and the worst-case direction is g, so d = g + c |g| g / |g|
    # = (1 + c) g (torchjd does not rescale by 1 / (1 + c)).
    g = torch.tensor([[1.0, 2.0, 2.0], [1.0, 2.0, 2.0]])
    d = aggregate_gradients("cagrad", g, c=0.5)
    assert d.tolist() == pytest.approx([1.5, 3.0, 3.0], abs=1e-3)


def test_every_aggregator_runs_and_descends_orthogonal_objectives():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cvxpy's "not DPP" notice for Nash-MTL
        for name in GRADIENT_AGGREGATORS:
            direction = aggregate_gradients(name, ORTHOGONAL)
            assert direction.shape == (2,)
            assert torch.isfinite(direction).all(), name
            if name != "graddrop":  # GradDrop drops signs at random, it may zero a coordinate
                assert (ORTHOGONAL @ direction > 0).all(), name


def test_registry_errors():
    with pytest.raises(ValueError, match=r"unknown gradient aggregator 'sgd'.*upgrad"):
        make_aggregator("sgd", 2)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['cc'\].*'c'"):
        make_aggregator("cagrad", 2, cc=0.1)
    with pytest.raises(ValueError, match="n_tasks"):
        make_aggregator("nashmtl", 2, n_tasks=3)
    with pytest.raises(ValueError, match=r"\[K, P\]"):
        aggregate_gradients("upgrad", torch.ones(3))
    assert make_aggregator("nashmtl", 3).n_tasks == 3


def test_gradient_step_fills_grad_with_aggregated_jacobian():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    x = torch.randn(5, 3)

    def losses():
        out = model(x)
        return [out[:, 0].pow(2).mean(), (out[:, 1] - 1).pow(2).mean()]

    # Reference: per-objective gradients by plain autograd, flattened into J [2, P].
    params = list(model.parameters())
    rows = []
    for loss in losses():
        grads = torch.autograd.grad(loss, params, retain_graph=True)
        rows.append(torch.cat([g.reshape(-1) for g in grads]))
    jacobian = torch.stack(rows)  # [K, P]

    for name in ("mean", "upgrad"):
        model.zero_grad()
        weights = gradient_step(model.parameters(), losses(), make_aggregator(name, 2))
        got = torch.cat([p.grad.reshape(-1) for p in params])
        assert torch.allclose(got, aggregate_gradients(name, jacobian), atol=1e-5)
        assert weights is not None and weights.shape == (2,)
    # "mean" is the gradient of the mean loss.
    model.zero_grad()
    gradient_step(model.parameters(), {"a": losses()[0], "b": losses()[1]}, "mean")
    assert torch.allclose(
        torch.cat([p.grad.reshape(-1) for p in params]), jacobian.mean(dim=0), atol=1e-6
    )
