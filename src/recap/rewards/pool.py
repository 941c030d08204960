"""Scoring completions in worker processes, off the training loop's critical path.

A reward such as ``accuracy`` on math answers goes through math-verify (tens to hundreds of ms a
call, measured up to 384 ms on a 680 kB completion); B x G completions x rewards scored serially
in the training process stall the GPU. :class:`RewardPool` scores them in ``workers`` spawned
processes while the trainer goes on (the next domain's generation, the reference forward) and
collects them when the advantages need them.

Each call is capped at ``timeout_s`` seconds of CPU time (``ITIMER_VIRTUAL``, so it does not
clash with the ``SIGALRM`` math-verify uses for its own timeouts); a call that runs past it
scores 0.0 and is counted (:attr:`RewardPool.timeouts`). Only rewards known in a fresh process
(recap's built-in ones, registered on import) can go to the workers: :func:`pool_can_score`
tells, and the trainer scores the others in-process.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from recap.rewards.registry import REWARDS, get_reward
from recap.tasks.record import Record

BUILTIN_REWARDS = frozenset(REWARDS)  # registered by recap.rewards on import: workers know them


class _CallTimeout(BaseException):  # not an Exception: the reward wrapper must not swallow it
    pass


def _on_timer(signum: int, frame: object) -> None:
    raise _CallTimeout


def _score_calls(calls: list[tuple[str, str, Record]], timeout_s: float
                 ) -> tuple[list[float], int]:
    """Worker side: each (reward, completion, record) under a CPU-time cap."""
    import recap.rewards  # noqa: F401  (registers the built-in rewards in this process)

    signal.signal(signal.SIGVTALRM, _on_timer)
    values, timeouts = [], 0
    for name, text, record in calls:
        signal.setitimer(signal.ITIMER_VIRTUAL, timeout_s)
        try:
            values.append(get_reward(name)(text, record))
        except _CallTimeout:
            values.append(0.0)
            timeouts += 1
        finally:
            signal.setitimer(signal.ITIMER_VIRTUAL, 0)
    return values, timeouts


def pool_can_score(reward_names: Sequence[str]) -> bool:
    """Whether every reward is one a worker process knows (recap's built-in rewards)."""
    return all(name in BUILTIN_REWARDS for name in reward_names)


@dataclass
class PendingScores:
    """Rewards being scored: ``RewardPool.result`` turns them into name -> ``[B, G]``."""

    futures: list[Future]
    names: list[str]
    shape: tuple[int, int]


class RewardPool:
    """``workers`` processes scoring completions; see the module docstring."""

    def __init__(self, workers: int, timeout_s: float = 10.0) -> None:
        if workers < 1 or timeout_s <= 0:
            raise ValueError("RewardPool needs workers >= 1 and timeout_s > 0")
        self.workers, self.timeout_s, self.timeouts = workers, timeout_s, 0
        self._executor: ProcessPoolExecutor | None = None

    def submit(self, texts: Sequence[str], records: Sequence[Record],
               reward_names: Sequence[str], group: int) -> PendingScores:
        """Start scoring every reward of every completion (completion j is record j // group)."""
        if self._executor is None:  # spawned lazily: a run without RL domains never pays for it
            self._executor = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"))
        light = [replace(r, images=[]) for r in records]  # rewards read text, never pixels
        calls = [(name, text, light[j // group]) for name in reward_names
                 for j, text in enumerate(texts)]
        size = -(-len(calls) // self.workers)
        futures = [self._executor.submit(_score_calls, calls[i:i + size], self.timeout_s)
                   for i in range(0, len(calls), size)]
        return PendingScores(futures, list(reward_names), (len(records), group))

    def result(self, pending: PendingScores) -> dict[str, Tensor]:
        """Wait for ``pending``: reward name -> ``[B, G]`` scores."""
        values: list[float] = []
        for future in pending.futures:
            part, timeouts = future.result()
            values += part
            self.timeouts += timeouts
        scores = torch.tensor(values, dtype=torch.float32)
        per_name = scores.view(len(pending.names), *pending.shape)
        return dict(zip(pending.names, per_name, strict=True))

    def close(self) -> None:
        """Stop the workers."""
        if self._executor is not None:
            self._executor.shutdown(cancel_futures=True)
            self._executor = None
