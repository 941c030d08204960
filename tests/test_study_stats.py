"""recap.studies.stats: intervals over seeds and records, paired differences, on hand-computed
cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from recap.studies.stats import estimate, paired_difference

T1 = 12.706204736174703  # t(0.975, df=1)
T2 = 4.302652729749464  # t(0.975, df=2)


def test_estimate_adds_seed_and_record_variance():
    # 2 seeds x 3 records
    x = [[1.0, 0.0, 1.0],   # seed means: 2/3
         [1.0, 1.0, 1.0]]   #             1
    e = estimate(x)
    # grand mean 5/6; seed means 2/3, 1 -> unbiased var = (1/6)^2 * 2 = 1/18, / S=2 -> 1/36
    # record means 1, 1/2, 1 -> mean 5/6, unbiased var = ((1/6)^2*2 + (1/3)^2)/2 = 1/12, /N=3
    se = math.sqrt(1 / 36 + 1 / 36)
    assert e.mean == pytest.approx(5 / 6)
    assert e.se == pytest.approx(se)
    assert e.ci_low == pytest.approx(5 / 6 - T1 * se)
    assert e.ci_high == pytest.approx(5 / 6 + T1 * se)
    assert e.per_seed == pytest.approx([2 / 3, 1.0])
    assert (e.n_seeds, e.n_records) == (2, 3)
    assert e.p is None and "p" not in e.as_dict()


def test_one_seed_uses_the_records_alone_with_the_normal_quantile():
    e = estimate([[0.0, 1.0, 1.0, 0.0]])
    se = math.sqrt((1 / 3) / 4)  # unbiased var of 0,1,1,0 is 1/3
    assert e.se == pytest.approx(se)
    assert e.ci_high - e.mean == pytest.approx(1.959963984540054 * se)


def test_paired_difference_against_one_model_broadcasts_over_seeds():
    base = [[1.0, 0.0, 1.0]]
    arm = [[1.0, 1.0, 1.0],
           [0.0, 1.0, 1.0],
           [1.0, 1.0, 0.0]]
    d = paired_difference(arm, base)
    # differences per seed: [0, 1, 0], [-1, 1, 0], [0, 1, -1] -> seed means 1/3, 0, 0
    # grand diff 1/9; seed var: mean 1/9, devs 2/9, -1/9, -1/9 -> (4+1+1)/81/2 = 1/27, /3
    # record means: -1/3, 1, -1/3 -> mean 1/9, devs -4/9, 8/9, -4/9 -> (16+64+16)/81/2 = 16/27, /3
    se = math.sqrt(1 / 81 + 16 / 81)
    assert d.mean == pytest.approx(1 / 9)
    assert d.se == pytest.approx(se)
    assert d.ci_low == pytest.approx(1 / 9 - T2 * se)
    assert d.p == pytest.approx(2 * sps.t.sf((1 / 9) / se, 2))
    assert d.per_seed == pytest.approx([1 / 3, 0.0, 0.0])
    assert d.as_dict("diff")["diff"] == pytest.approx(1 / 9)


def test_paired_difference_is_paired_by_seed():
    # arm b is arm a minus 0.1 everywhere: a paired test sees an exact, certain difference,
    # although each arm's own seed spread is large.
    rng = np.random.default_rng(0)
    a = rng.uniform(size=(4, 50))
    d = paired_difference(a, a - 0.1)
    assert d.mean == pytest.approx(0.1)
    assert d.se == pytest.approx(0.0, abs=1e-12)
    assert d.p < 1e-12
    same = paired_difference(a, a)
    assert (same.mean, same.p) == (0.0, 1.0)


def test_rate_intervals_are_clipped_to_their_range():
    e = estimate([[1.0, 1.0, 1.0, 0.0]], bounds=(0.0, 1.0))
    assert e.ci_high == 1.0 and e.ci_low == pytest.approx(0.75 - 1.959963984540054 * 0.25)
    assert estimate([[1.0, 1.0, 1.0, 0.0]]).ci_high > 1.0


def test_a_larger_seed_spread_widens_the_interval():
    records = np.tile([0.0, 1.0], 10)  # 20 records, mean 0.5
    calm = np.stack([records, records])
    noisy = np.stack([records * 0 + 0.2, records * 0 + 0.8])
    assert estimate(calm).se < estimate(noisy).se


@pytest.mark.parametrize("bad", [[], [[]], [1.0, 2.0], [[float("nan")]]])
def test_bad_input_is_a_clear_error(bad):
    with pytest.raises(ValueError):
        estimate(bad)


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="same"):
        paired_difference([[1.0, 0.0]], [[1.0, 0.0, 1.0]])
