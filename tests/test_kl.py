"""KL schedules: constant beta and GRPO-D (OThink-MR1 eq. 3)."""

import itertools

import pytest

from recap.config import KLSpec
from recap.training.kl import KLSchedule, grpo_d_beta


def test_grpo_d_at_known_steps():
    # t = 10, w = 0.3 t = 3, beta_min 0.04, beta_max 0.1, beta_mid 0.07 (counting; OThink-MR1 4)
    kw = {"last_step": 10, "beta_min": 0.04, "beta_max": 0.1, "warm_fraction": 0.3}
    assert grpo_d_beta(0, **kw) == pytest.approx(0.07)  # starts at beta_mid
    assert grpo_d_beta(1, **kw) == pytest.approx(0.07 - 0.03 / 3)  # falls 0.01 per step
    assert grpo_d_beta(3, **kw) == pytest.approx(0.04)  # beta_min at s = w
    assert grpo_d_beta(5, **kw) == pytest.approx(0.04 + 0.06 * 2 / 7)  # rises over t - w = 7
    assert grpo_d_beta(10, **kw) == pytest.approx(0.1)  # beta_max at the last step
    assert grpo_d_beta(12, **kw) == pytest.approx(0.1)  # held after t


def test_schedule_maps_run_steps_to_first_and_last():
    # an 11-step run: steps 0..10, so GRPO-D's t is 10 and the last step reaches beta_max
    sched = KLSchedule(KLSpec(schedule="grpo_d", beta_min=0.0, beta_max=0.02), total_steps=11)
    assert [round(sched.beta(s), 6) for s in (0, 3, 10)] == [0.01, 0.0, 0.02]
    assert KLSchedule(KLSpec(schedule="constant", beta=0.04), total_steps=5).beta(3) == 0.04
    assert KLSchedule(KLSpec(), total_steps=5).beta(3) == 0.0


def test_grpo_d_is_piecewise_linear_and_continuous():
    kw = {"last_step": 100, "beta_min": 0.04, "beta_max": 0.1, "warm_fraction": 0.3}
    values = [grpo_d_beta(s, **kw) for s in range(101)]
    assert min(values) == pytest.approx(0.04) and values.index(min(values)) == 30
    steps = [b - a for a, b in itertools.pairwise(values)]
    assert all(d == pytest.approx(-0.03 / 30) for d in steps[:30])
    assert all(d == pytest.approx(0.06 / 70) for d in steps[30:])
