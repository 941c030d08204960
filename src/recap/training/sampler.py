"""Which records a micro-batch holds: the replay strategies of the RECAP paper sec. 5.1.

Each domain is read as an endless stream of epochs; epoch ``e`` is a fixed permutation of the
domain's pool drawn from ``(seed, domain, e)``, so a position in the stream is all the state a
domain needs. Strategies set the domain probabilities ``p_n``:

=================  ============================================================================
``reasoning_only`` reasoning domains only (no replay), in proportion to their size
``default``        every domain, in proportion to its size (Default baseline)
``uniform``        every domain equally (Uniform baseline; RECAP's sampling)
``coreset``        general pools cut to a fixed random subset of ``coreset_ratio`` x the
                   reasoning volume (split across general domains by size), then by size
``fixed``          user weights per domain (a MoDoMoDo-style static mixture)
=================  ============================================================================

``batch_per="domain"`` takes ``batch_size`` records from every domain with ``p_n > 0`` in each
micro-batch (the mixture is then even by construction; the strategy still picks the domains and
the coreset pools). ``batch_per="total"`` assigns each of the ``batch_size`` slots to a domain
i.i.d. from ``p`` (a multinomial draw from a stream seeded by ``(seed, draw)``).
``batch_per="reasoning"`` keeps the reasoning exposure of a reasoning-only run whatever the
strategy: ``batch_size`` slots go to the reasoning domains (``p`` renormalised over them) and, when
the strategy replays, another ``batch_size`` slots to the general domains (``p`` renormalised over
them): replay comes on top of the reasoning budget instead of out of it.

Data parallel: every process builds the same sampler with its ``rank`` and ``world_size``; the
counts of all ranks are drawn from the shared stream and rank ``r`` reads the slice of each
domain's stream after ranks ``0..r-1``, so processes see disjoint records within an epoch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from recap.config import BatchPer, Strategy
from recap.tasks.record import Record

_PERM, _CHOICE, _CORESET = 0, 1, 2  # independent seed streams


def domain_probabilities(
    sizes: Mapping[str, int],
    roles: Mapping[str, str],
    strategy: Strategy,
    weights: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Domain sampling probabilities ``p_n`` for ``strategy`` (the RECAP paper sec. 5.1).

    ``sizes`` are pool sizes after any coreset cut. Domains with ``p_n = 0`` are not sampled.
    """
    if strategy == "reasoning_only":
        raw = {n: float(s) if roles[n] == "reasoning" else 0.0 for n, s in sizes.items()}
    elif strategy in ("default", "coreset"):
        raw = {n: float(s) for n, s in sizes.items()}
    elif strategy == "uniform":
        raw = dict.fromkeys(sizes, 1.0)
    elif strategy == "fixed":
        if weights is None or set(weights) != set(sizes):
            raise ValueError(f"strategy fixed needs a weight for every domain {sorted(sizes)}")
        raw = {n: float(weights[n]) for n in sizes}
    else:
        raise ValueError(f"unknown sampling strategy {strategy!r}; known: reasoning_only, "
                         f"default, uniform, coreset, fixed")
    total = sum(raw.values())
    if total <= 0:
        raise ValueError(f"strategy {strategy!r} leaves no domain to sample from ({dict(sizes)})")
    return {n: v / total for n, v in raw.items()}


def coreset_sizes(
    sizes: Mapping[str, int], roles: Mapping[str, str], ratio: float
) -> dict[str, int]:
    """Pool sizes after capping general data at ``ratio`` x the reasoning volume (RECAP 5.1).

    The cap ``floor(ratio * reasoning records)`` is split across general domains in proportion to
    their size by largest remainders (at least 1 each, never more than a domain has); reasoning
    domains keep everything.
    """
    reasoning = sum(s for n, s in sizes.items() if roles[n] == "reasoning")
    general = {n: s for n, s in sizes.items() if roles[n] == "general"}
    total = sum(general.values())
    cap = int(ratio * reasoning)
    out = dict(sizes)
    if not general or cap >= total:
        return out
    quotas = {n: cap * s / total for n, s in general.items()}
    keep = {n: math.floor(q) for n, q in quotas.items()}
    by_remainder = sorted(general, key=lambda n: keep[n] - quotas[n])  # largest remainder first
    for n in by_remainder[: cap - sum(keep.values())]:
        keep[n] += 1
    out.update({n: min(general[n], max(1, k)) for n, k in keep.items()})
    return out


class DomainSampler:
    """Deterministic, resumable draw of micro-batches of records from several domains.

    Args:
        pools: domain name -> its records (order = the order batches list domains in).
        roles: domain name -> ``"reasoning"`` or ``"general"``.
        strategy: see the module docstring.
        batch_size: records per domain (``batch_per="domain"``) or in total per micro-batch.
        batch_per: ``"domain"``, ``"total"`` or ``"reasoning"``.
        seed: data seed.
        weights: domain weights for ``strategy="fixed"``.
        coreset_ratio: general volume kept by ``"coreset"``, relative to reasoning volume.
        rank, world_size: this process in data parallel.
    """

    def __init__(
        self,
        pools: Mapping[str, Sequence[Record]],
        roles: Mapping[str, str],
        *,
        strategy: Strategy,
        batch_size: int,
        batch_per: BatchPer = "domain",
        seed: int = 0,
        weights: Mapping[str, float] | None = None,
        coreset_ratio: float = 0.5,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        empty = [n for n, p in pools.items() if len(p) == 0]
        if empty:
            raise ValueError(f"domains with no records: {empty}")
        self.names = list(pools)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.batch_size, self.batch_per = batch_size, batch_per
        self.roles = {n: roles[n] for n in self.names}
        self.pools: dict[str, list[Record]] = {}
        sizes = {n: len(p) for n, p in pools.items()}
        if strategy == "coreset":
            sizes = coreset_sizes(sizes, roles, coreset_ratio)
        for i, (name, pool) in enumerate(pools.items()):
            if sizes[name] < len(pool):  # a fixed random subset, the same on every rank
                keep = np.random.default_rng([seed, _CORESET, i]).permutation(len(pool))
                pool = [pool[j] for j in sorted(keep[: sizes[name]])]
            self.pools[name] = list(pool)
        self.probabilities = domain_probabilities(sizes, roles, strategy, weights)
        self.active = [n for n in self.names if self.probabilities[n] > 0]
        self.position = dict.fromkeys(self.names, 0)  # records consumed per domain, all ranks
        self.draws = 0  # micro-batches drawn so far
        self._perm_cache: dict[tuple[int, int], np.ndarray] = {}

    # ---- drawing --------------------------------------------------------------------------
    def next_batch(self) -> dict[str, list[Record]]:
        """The next micro-batch: domain -> records, domains in pool order, empty ones omitted."""
        counts = self._counts()  # [world, D] records per rank and domain
        batch: dict[str, list[Record]] = {}
        for d, name in enumerate(self.names):
            before = int(counts[: self.rank, d].sum())
            mine = int(counts[self.rank, d])
            if mine:
                start = self.position[name] + before
                batch[name] = [self._record(d, name, start + j) for j in range(mine)]
            self.position[name] += int(counts[:, d].sum())
        self.draws += 1
        return batch

    def _counts(self) -> np.ndarray:
        if self.batch_per == "domain":
            row = [self.batch_size if n in self.active else 0 for n in self.names]
            return np.tile(np.array(row, dtype=np.int64), (self.world_size, 1))
        rng = np.random.default_rng([self.seed, _CHOICE, self.draws])
        p = np.array([self.probabilities[n] for n in self.names])
        if self.batch_per == "total":
            return rng.multinomial(self.batch_size, p, size=self.world_size)  # [world, D]
        counts = np.zeros((self.world_size, len(self.names)), dtype=np.int64)
        for role in ("reasoning", "general"):  # batch_per == "reasoning": one draw per role
            part = p * np.array([self.roles[n] == role for n in self.names])
            if part.sum() > 0:
                counts += rng.multinomial(self.batch_size, part / part.sum(), size=self.world_size)
        return counts

    def _record(self, d: int, name: str, position: int) -> Record:
        n = len(self.pools[name])
        epoch, index = divmod(position, n)
        key = (d, epoch)
        if key not in self._perm_cache:
            if len(self._perm_cache) > 4 * len(self.names):
                self._perm_cache.clear()
            rng = np.random.default_rng([self.seed, _PERM, d, epoch])
            self._perm_cache[key] = rng.permutation(n)
        return self.pools[name][int(self._perm_cache[key][index])]

    # ---- bookkeeping ----------------------------------------------------------------------
    def expected_per_batch(self, name: str) -> float:
        """Expected records of ``name`` per micro-batch, summed over ranks."""
        p = self.probabilities[name]
        if self.batch_per == "domain":
            per_rank = self.batch_size if name in self.active else 0
        elif self.batch_per == "reasoning":
            same_role = sum(q for n, q in self.probabilities.items()
                            if self.roles[n] == self.roles[name])
            per_rank = self.batch_size * p / same_role if p > 0 else 0.0
        else:
            per_rank = self.batch_size * p
        return per_rank * self.world_size

    def steps_per_epoch(self, grad_accum: int = 1) -> int:
        """Optimiser steps for one pass over the largest active pool (in expectation)."""
        return max(
            math.ceil(len(self.pools[n]) / (self.expected_per_batch(n) * grad_accum))
            for n in self.active
        )

    def state_dict(self) -> dict[str, Any]:
        """Stream positions and draw count (plain data)."""
        return {"position": dict(self.position), "draws": self.draws}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`; domain names must match."""
        if set(state["position"]) != set(self.names):
            raise ValueError(f"sampler state is for domains {sorted(state['position'])}, "
                             f"not {sorted(self.names)}")
        self.position = {n: int(state["position"][n]) for n in self.names}
        self.draws = int(state["draws"])
