"""Rewards scored in worker processes equal in-process scoring; a runaway call is capped."""

import time

import pytest

from recap.rewards import REWARDS, register_reward, resolve_rewards
from recap.rewards.pool import RewardPool, _score_calls, pool_can_score
from recap.tasks.registry import make_task
from recap.training.objectives import score


def test_pool_scores_equal_in_process_scores():
    records = make_task("count", "test", 6, seed=3) + make_task("ground", "test", 2, seed=3)
    texts = [f"<answer>{r.answer}</answer>" if i % 3 else "<answer>7</answer>"
             for i, r in enumerate(records) for _ in range(2)]
    names = ["answer_format", "accuracy", "iou"]
    pool = RewardPool(workers=2)
    try:
        got = pool.result(pool.submit(texts, records, names, group=2))
    finally:
        pool.close()
    expected = score(texts, records, resolve_rewards(names), 2)
    assert set(got) == set(names)
    for name in names:
        assert got[name].shape == (8, 2) and got[name].tolist() == expected[name].tolist()
    assert 0 < float(got["accuracy"].mean()) < 1 and pool.timeouts == 0


@pytest.fixture
def spin_reward():
    @register_reward("test_spin")
    def spin(completion, record):
        end = time.process_time() + 5.0
        while time.process_time() < end:  # burns CPU: only the cap can stop it early
            pass
        return 1.0

    yield
    REWARDS.pop("test_spin")


def test_a_runaway_call_is_capped_and_counted(spin_reward):
    record = make_task("count", "test", 1, seed=0)[0]
    start = time.process_time()
    values, timeouts = _score_calls([("test_spin", "x", record), ("answer_format", "x", record)],
                                    timeout_s=0.2)
    assert values == [0.0, 0.0] and timeouts == 1
    assert time.process_time() - start < 2.0
    assert not pool_can_score(["test_spin"]) and pool_can_score(["accuracy", "iou"])
