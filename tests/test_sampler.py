"""Replay strategies of the RECAP paper sec. 5.1 and the sampler's resumable, sharded streams."""

from collections import Counter

import pytest

from recap.tasks.record import Record
from recap.training.sampler import DomainSampler, coreset_sizes, domain_probabilities


def _pool(domain: str, n: int) -> list[Record]:
    return [Record(f"{domain}-{i}", domain, [], f"q{i}", str(i), "number") for i in range(n)]


ROLES = {"math": "reasoning", "ground": "general", "ocr": "general"}


def _pools(sizes=(10, 40, 20)):
    return {name: _pool(name, n) for name, n in zip(ROLES, sizes, strict=True)}


def test_probabilities_per_strategy():
    sizes = {"math": 10, "ground": 30, "ocr": 10}
    assert domain_probabilities(sizes, ROLES, "default") == {"math": 0.2, "ground": 0.6,
                                                             "ocr": 0.2}
    assert domain_probabilities(sizes, ROLES, "uniform") == pytest.approx(
        {"math": 1 / 3, "ground": 1 / 3, "ocr": 1 / 3})
    assert domain_probabilities(sizes, ROLES, "reasoning_only") == {"math": 1.0, "ground": 0.0,
                                                                    "ocr": 0.0}
    fixed = domain_probabilities(sizes, ROLES, "fixed", {"math": 2, "ground": 1, "ocr": 1})
    assert fixed == {"math": 0.5, "ground": 0.25, "ocr": 0.25}
    with pytest.raises(ValueError, match="known: reasoning_only"):
        domain_probabilities(sizes, ROLES, "bogus")


def test_coreset_caps_general_at_half_the_reasoning_volume():
    # reasoning 10 -> cap 5 general records; quotas 5*40/60 = 3.33 and 5*20/60 = 1.67:
    # floors 3 + 1 = 4, the one left goes to the larger remainder (ocr, 0.67) -> 3 + 2
    sizes = coreset_sizes({"math": 10, "ground": 40, "ocr": 20}, ROLES, 0.5)
    assert sizes == {"math": 10, "ground": 3, "ocr": 2}
    sampler = DomainSampler(_pools(), ROLES, strategy="coreset", batch_size=1, seed=0)
    assert [len(sampler.pools[n]) for n in ROLES] == [10, 3, 2]
    # the kept subset is fixed: over many micro-batches only those 3 ground records appear
    seen = {r.id for _ in range(30) for r in sampler.next_batch()["ground"]}
    assert seen == {r.id for r in sampler.pools["ground"]} and len(seen) == 3


def test_per_domain_batches_cover_each_epoch_once():
    sampler = DomainSampler(_pools((4, 6, 2)), ROLES, strategy="uniform", batch_size=2, seed=3)
    first, second = sampler.next_batch(), sampler.next_batch()
    assert list(first) == ["math", "ground", "ocr"]
    assert all(len(v) == 2 for v in first.values())
    math_ids = [r.id for r in first["math"] + second["math"]]
    assert sorted(math_ids) == [f"math-{i}" for i in range(4)]  # one epoch, no repeats
    assert sampler.steps_per_epoch(grad_accum=1) == 3  # ground: 6 records / 2 per step


def test_reasoning_only_never_replays():
    sampler = DomainSampler(_pools(), ROLES, strategy="reasoning_only", batch_size=3,
                            batch_per="total", seed=0)
    for _ in range(5):
        assert list(sampler.next_batch()) == ["math"]


def test_total_batches_follow_the_size_mixture():
    sampler = DomainSampler(_pools((10, 30, 10)), ROLES, strategy="default", batch_size=4,
                            batch_per="total", seed=1)
    counts = Counter()
    for _ in range(500):
        batch = sampler.next_batch()
        assert sum(len(v) for v in batch.values()) == 4
        counts.update({k: len(v) for k, v in batch.items()})
    # 2000 draws with p = (0.2, 0.6, 0.2): standard error 0.009, so 0.03 is > 3 sigma
    assert counts["ground"] / 2000 == pytest.approx(0.6, abs=0.03)
    assert counts["math"] / 2000 == pytest.approx(0.2, abs=0.03)


def test_state_dict_resumes_the_same_stream():
    def ids(batch):
        return [r.id for v in batch.values() for r in v]

    a = DomainSampler(_pools(), ROLES, strategy="default", batch_size=3, batch_per="total",
                      seed=7)
    for _ in range(4):
        a.next_batch()
    state = a.state_dict()
    expected = [ids(a.next_batch()) for _ in range(6)]
    b = DomainSampler(_pools(), ROLES, strategy="default", batch_size=3, batch_per="total",
                      seed=7)
    b.load_state_dict(state)
    assert [ids(b.next_batch()) for _ in range(6)] == expected
    with pytest.raises(ValueError, match="domains"):
        b.load_state_dict({"position": {"x": 0}, "draws": 0})


def test_ranks_read_disjoint_slices_of_one_stream():
    # two ranks with 1 record each per domain == one process with 2, split in rank order
    single = DomainSampler(_pools(), ROLES, strategy="uniform", batch_size=2, seed=5)
    ranks = [DomainSampler(_pools(), ROLES, strategy="uniform", batch_size=1, seed=5, rank=r,
                           world_size=2) for r in (0, 1)]
    for _ in range(3):
        whole = single.next_batch()
        parts = [s.next_batch() for s in ranks]
        for name in ROLES:
            assert [r.id for r in whole[name]] == [p[name][0].id for p in parts]


@pytest.mark.parametrize("strategy", ["reasoning_only", "uniform", "default"])
def test_batch_per_reasoning_keeps_the_reasoning_exposure_and_adds_replay_on_top(strategy):
    pools = {"math": _pool("math", 10), "chem": _pool("chem", 30), "ground": _pool("ground", 40),
             "ocr": _pool("ocr", 20)}
    roles = {"math": "reasoning", "chem": "reasoning", "ground": "general", "ocr": "general"}
    s = DomainSampler(pools, roles, strategy=strategy, batch_size=6, batch_per="reasoning")
    seen: Counter = Counter()
    for _ in range(200):
        batch = s.next_batch()
        counts = {n: len(r) for n, r in batch.items()}
        assert counts.get("math", 0) + counts.get("chem", 0) == 6  # every step: 6 reasoning
        replay = counts.get("ground", 0) + counts.get("ocr", 0)
        assert replay == (0 if strategy == "reasoning_only" else 6)  # and 6 replayed on top
        seen.update(counts)
    # within a role the strategy's proportions hold: uniform 1:1, by size otherwise
    ratio = {"uniform": 1.0}.get(strategy, 30 / 10)
    assert seen["chem"] / seen["math"] == pytest.approx(ratio, rel=0.15)
    assert s.expected_per_batch("math") == pytest.approx(6 / (1 + ratio))
    if strategy != "reasoning_only":
        assert s.expected_per_batch("ground") == pytest.approx(
            6 * (0.5 if strategy == "uniform" else 40 / 60))
