"""Hand-computed checks of the GRPO math (RECAP sec. 3; jigsaw-RFT app. A; OThink-MR1 eq. 1-2)."""

import math

import pytest
import torch

from recap.training.grpo import (
    aggregate,
    clipped_surrogate,
    combine_rewards,
    group_advantages,
    grpo_loss,
    k3_kl,
    sequence_mean,
)
from recap.training.objectives import objective_advantages, surrogate_lower_bound

LN2 = math.log(2.0)


def test_group_advantages_by_hand():
    rewards = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    adv = group_advantages(rewards, eps=1e-12)
    # [1, 0]: mean 0.5, unbiased std sqrt((0.25 + 0.25) / 1) = 0.70711 -> +-0.70711
    assert adv[0].tolist() == pytest.approx([0.70711, -0.70711], abs=1e-5)
    # [0.5, 0.5]: std 0 -> 0 / (0 + eps) = 0 (a constant group carries no signal)
    assert adv[1].tolist() == [0.0, 0.0]


def test_group_advantages_three_samples_and_eps():
    rewards = torch.tensor([[1.0, 0.0, 0.0]])
    # mean 1/3; deviations (2/3, -1/3, -1/3); unbiased var (4/9 + 1/9 + 1/9) / 2 = 1/3
    # std 0.57735 -> A = (1.15470, -0.57735, -0.57735)
    adv = group_advantages(rewards, eps=0.0)
    assert adv[0].tolist() == pytest.approx([1.15470, -0.57735, -0.57735], abs=1e-5)
    # eps = 0.42265 makes the denominator exactly 1 -> A = deviations
    adv = group_advantages(rewards, eps=1.0 - 0.5773503)
    assert adv[0].tolist() == pytest.approx([2 / 3, -1 / 3, -1 / 3], abs=1e-5)
    with pytest.raises(ValueError, match="G >= 2"):
        group_advantages(torch.ones(3, 1), eps=1e-4)


def _two_sequences():
    # seq 0: A = +1, ratios (1.5, 1.0, 0.5), 3 real tokens
    # seq 1: A = -1, ratios (1.5, 0.5), 2 real tokens + 1 pad (its ratio 3.0 must not count)
    old = torch.zeros(2, 3)
    logp = torch.log(torch.tensor([[1.5, 1.0, 0.5], [1.5, 0.5, 3.0]])).requires_grad_()
    adv = torch.tensor([1.0, -1.0])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    return logp, old, adv, mask


def test_clipped_surrogate_both_sides_by_hand():
    logp, old, adv, mask = _two_sequences()
    loss, m = clipped_surrogate(logp, old, adv, mask, clip_eps=0.2)
    # seq 0 (A=+1): r*A = (1.5, 1, 0.5); clip(r)*A = (1.2, 1, 0.8); min = (1.2, 1, 0.5)
    #   token mean = 2.7 / 3 = 0.9
    # seq 1 (A=-1): r*A = (-1.5, -0.5); clip(r)*A = (-1.2, -0.8); min = (-1.5, -0.8)
    #   token mean = -2.3 / 2 = -1.15
    # J = (0.9 - 1.15) / 2 = -0.125 ; loss = -J = 0.125
    assert loss.item() == pytest.approx(0.125, abs=1e-6)
    # clipped (gradient cut): seq0 t0 (r > 1.2, A > 0) and seq1 t1 (r < 0.8, A < 0): 2 of 5 tokens
    assert m["clip_high"].item() == pytest.approx(1 / 5)
    assert m["clip_low"].item() == pytest.approx(1 / 5)
    assert m["clip_frac"].item() == pytest.approx(2 / 5)
    # k3 = r - 1 - ln r per token: r = 1.5 -> 0.0945349, 1 -> 0, 0.5 -> 0.1931472; token mean
    k3 = {1.5: 0.5 - math.log(1.5), 1.0: 0.0, 0.5: -0.5 - math.log(0.5)}
    assert m["sample_kl"].item() == pytest.approx((2 * k3[1.5] + 2 * k3[0.5]) / 5, abs=1e-6)
    loss.backward()
    # d loss / d logp_t = -(1/2)(1/|o|) r A on unclipped tokens, 0 on clipped ones and padding:
    # seq0: t0 clipped 0; t1 -(1/2)(1/3)(1)(1) = -1/6; t2 -(1/2)(1/3)(0.5)(1) = -1/12
    # seq1: t0 -(1/2)(1/2)(1.5)(-1) = 0.375; t1 clipped 0; t2 padding 0
    expected = torch.tensor([[0.0, -1 / 6, -1 / 12], [0.375, 0.0, 0.0]])
    assert torch.allclose(logp.grad, expected, atol=1e-6)


def test_on_policy_ratio_is_one_and_gradient_is_advantage_weighted():
    # old == current: loss = -mean(A) = 0 here, gradient -A / (G |o|) (jigsaw-RFT app. A eq. 9)
    logp = torch.full((2, 2), -1.0, requires_grad=True)
    adv = torch.tensor([0.5, -0.5])
    loss, m = clipped_surrogate(logp, logp.detach(), adv, torch.ones(2, 2), clip_eps=0.2)
    assert loss.item() == pytest.approx(0.0)
    assert m["clip_frac"].item() == 0.0 and m["ratio_mean"].item() == pytest.approx(1.0)
    assert m["sample_kl"].item() == 0.0
    loss.backward()
    # -(1/2)(1/2) * 0.5 = -0.125 ; -(1/2)(1/2) * (-0.5) = +0.125
    assert logp.grad.tolist() == [[-0.125, -0.125], [0.125, 0.125]]


def test_k3_kl_by_hand():
    # log(pi_ref / pi) = (ln2, 0, -ln2): k3 = (2 - ln2 - 1) + 0 + (0.5 + ln2 - 1) = 0.5 -> mean 1/6
    # second sequence: one real token with pi_ref = pi -> 0 (padding values 5, 7 ignored)
    logp = torch.zeros(2, 3)
    ref = torch.tensor([[LN2, 0.0, -LN2], [0.0, 5.0, 7.0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    assert k3_kl(logp, ref, mask).item() == pytest.approx((0.5 / 3 + 0.0) / 2, abs=1e-6)
    # identical policies: exactly 0
    assert k3_kl(ref, ref, torch.ones(2, 3)).item() == 0.0


def test_grpo_loss_adds_beta_times_kl():
    logp, old, adv, mask = _two_sequences()
    ref = logp.detach() + torch.tensor([[LN2, 0.0, -LN2], [0.0, 0.0, 9.0]])
    loss, m = grpo_loss(logp, old, adv, mask, clip_eps=0.2, beta=0.04, ref_logp=ref)
    # surrogate 0.125 (above); KL: seq0 0.5/3, seq1 0 -> 1/12 ; loss = 0.125 + 0.04/12
    assert m["kl"].item() == pytest.approx(1 / 12, abs=1e-6)
    assert loss.item() == pytest.approx(0.125 + 0.04 / 12, abs=1e-6)
    loss0, m0 = grpo_loss(logp, old, adv, mask, clip_eps=0.2, beta=0.0)
    assert loss0.item() == pytest.approx(0.125) and m0["kl"].item() == 0.0
    with pytest.raises(ValueError, match="ref_logp"):
        grpo_loss(logp, old, adv, mask, clip_eps=0.2, beta=0.1)


def test_sequence_mean_weights_sequences_not_tokens():
    # seq 0: 4 tokens of 1 -> 1 ; seq 1: 1 token of 0 -> 0 ; mean 0.5 (a token mean would be 0.8)
    values = torch.tensor([[1.0, 1, 1, 1], [0.0, 9, 9, 9]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0]])
    assert sequence_mean(values, mask).item() == pytest.approx(0.5)


def test_token_and_constant_aggregations_by_hand():
    values = torch.tensor([[1.0, 1, 1, 1], [0.0, 9, 9, 9]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 0, 0, 0]])
    # token (DAPO): (4 * 1 + 0) / 5 real tokens = 0.8
    assert aggregate(values, mask, how="token").item() == pytest.approx(0.8)
    # constant (Dr. GRPO): 4 / (2 rows * 8 max tokens) = 0.25
    assert aggregate(values, mask, how="constant", max_tokens=8).item() == pytest.approx(0.25)
    assert aggregate(values, mask).item() == pytest.approx(0.5)  # sequence is the default
    with pytest.raises(ValueError, match="max_tokens"):
        aggregate(values, mask, how="constant")
    with pytest.raises(ValueError, match="known: sequence, token, constant"):
        aggregate(values, mask, how="mean")
    # the surrogate uses it: on-policy, -A per token; A = [1, -1] -> token: -(4 - 1) / 5
    logp = torch.zeros(2, 4)
    loss, _ = clipped_surrogate(logp, logp, torch.tensor([1.0, -1.0]), mask, clip_eps=0.2,
                                aggregation="token")
    assert loss.item() == pytest.approx(-0.6)


def test_decoupled_and_combined_advantages_differ():
    fmt = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    acc = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    rewards = {"think_format": fmt, "accuracy": acc}
    adv, sig = objective_advantages(rewards, mode="decoupled", reward_weights={}, eps=0.0)
    # format: mean 0.5, unbiased var 4 * 0.25 / 3 = 1/3, std 0.57735 -> +-0.86603
    assert adv["think_format"].tolist() == pytest.approx([0.86603, 0.86603, -0.86603, -0.86603],
                                                         abs=1e-5)
    # accuracy: mean 0.25, var (0.5625 + 3 * 0.0625) / 3 = 0.25, std 0.5 -> (1.5, -.5, -.5, -.5)
    assert adv["accuracy"].tolist() == pytest.approx([1.5, -0.5, -0.5, -0.5], abs=1e-6)
    assert sig["think_format"].item() == 0.5 and sig["accuracy"].item() == 0.25
    # combined R = 1*acc + 1*fmt = (2, 1, 0, 0): mean 0.75, var (1.5625 + 0.0625 + 2 * 0.5625) / 3
    # = 0.91667, std 0.95743 -> (1.30558, 0.26112, -0.78335, -0.78335)
    cadv, csig = objective_advantages(rewards, mode="combined", reward_weights={}, eps=0.0)
    assert list(cadv) == ["reward"]
    assert cadv["reward"].tolist() == pytest.approx([1.30558, 0.26112, -0.78335, -0.78335],
                                                    abs=1e-5)
    # signal: mean R / sum of weights = 0.75 / 2
    assert csig["reward"].item() == pytest.approx(0.375)
    # sample 2 (format right, answer wrong): decoupled sum 0.86603 - 0.5 = 0.366 > 0, combined
    # 0.261 > 0, but sample 3 gets -1.366 vs -0.783: not proportional, unlike a rescaling
    dsum = adv["think_format"] + adv["accuracy"]
    assert not torch.allclose(dsum / dsum[0], cadv["reward"] / cadv["reward"][0], atol=1e-3)


def test_combined_reward_weights():
    r = {"a": torch.tensor([[1.0, 0.0]]), "b": torch.tensor([[0.0, 1.0]])}
    # c_a = 2, c_b = 1 (default): R = (2, 1)
    assert combine_rewards(r, {"a": 2.0}).tolist() == [[2.0, 1.0]]


def test_surrogate_lower_bound_holds_at_the_extreme():
    # G = 4, one success: A = (1.5, -.5, -.5, -.5); ratio pushed to 1+eps on the winner only
    g, eps = 4, 0.2
    adv = group_advantages(torch.tensor([[1.0, 0.0, 0.0, 0.0]]), eps=0.0).reshape(-1)
    logp = torch.log(torch.tensor([[5.0], [1e-3], [1e-3], [1e-3]]))
    loss, _ = clipped_surrogate(logp, torch.zeros(4, 1), adv, torch.ones(4, 1), clip_eps=eps)
    # winner: min(5 * 1.5, 1.2 * 1.5) = 1.8 ; losers: min(-0.0005, -0.4) = -0.4 each
    # J = (1.8 - 3 * 0.4) / 4 = 0.15 -> loss -0.15
    assert loss.item() == pytest.approx(-(1.8 - 1.2) / 4, abs=1e-4)
    # The bound is tight: the winner's row alone reaches -(1 + eps)(G - 1)/sqrt(G) = -1.8, the
    # bound minus its 0.01 margin; no row of any group can go lower.
    alone, _ = clipped_surrogate(logp[:1], torch.zeros(1, 1), adv[:1], torch.ones(1, 1),
                                 clip_eps=eps)
    assert alone.item() == pytest.approx(-1.8, abs=1e-5)
    assert alone.item() - surrogate_lower_bound(g, eps) == pytest.approx(0.01, abs=1e-5)
