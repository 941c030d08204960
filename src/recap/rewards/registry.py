"""Reward registry: name -> ``fn(completion, record) -> float in [0, 1]`` (DESIGN.md "Contracts").

Every function registered with :func:`register_reward` is wrapped so the contract holds whatever
the model emits or a record contains: a non-string completion scores 0.0, an exception inside the
reward scores 0.0 (logged once per reward name at WARNING, so a broken record or a bug is visible
without crashing a run), NaN scores 0.0 and the value is clamped to [0, 1].
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable, Mapping

from recap.tasks.record import Record

RewardFn = Callable[[str, Record], float]

REWARDS: dict[str, RewardFn] = {}

logger = logging.getLogger(__name__)
_WARNED: set[str] = set()


def total_reward(name: str, fn: RewardFn) -> RewardFn:
    """Wrap ``fn`` so it never raises and always returns a float in [0, 1]."""

    @functools.wraps(fn)
    def wrapped(completion: str, record: Record) -> float:
        if not isinstance(completion, str):
            return 0.0
        try:
            value = float(fn(completion, record))
        except Exception as exc:  # totality is the contract: any failure is a zero reward
            if name not in _WARNED:
                _WARNED.add(name)
                logger.warning("reward %r raised %r; scored 0.0 (logged once)", name, exc)
            return 0.0
        if math.isnan(value):
            return 0.0
        return min(1.0, max(0.0, value))

    return wrapped


def register_reward(name: str) -> Callable[[RewardFn], RewardFn]:
    """Decorator: register ``fn`` under ``name`` (wrapped to be total) and return the wrapper."""

    def decorator(fn: RewardFn) -> RewardFn:
        if name in REWARDS:
            raise ValueError(f"reward {name!r} is already registered")
        wrapped = total_reward(name, fn)
        REWARDS[name] = wrapped
        return wrapped

    return decorator


def get_reward(name: str) -> RewardFn:
    """The registered reward called ``name``; ``ValueError`` listing the known names otherwise."""
    try:
        return REWARDS[name]
    except KeyError:
        raise ValueError(f"unknown reward {name!r}; known: {sorted(REWARDS)}") from None


def resolve_rewards(names: Iterable[str], extra: Mapping[str, RewardFn] | None = None
                    ) -> dict[str, RewardFn]:
    """The reward function of every name: from ``extra`` (callables passed to a run, wrapped to
    be total like registered ones) or else the registry. An ``extra`` name that is also
    registered is refused (one name, one reward)."""
    extra = dict(extra or {})
    clash = sorted(set(extra) & set(REWARDS))
    if clash:
        raise ValueError(f"rewards {clash} are already registered; give your functions other names")
    out: dict[str, RewardFn] = {}
    for name in names:
        if name in extra:
            out[name] = total_reward(name, extra[name])
        elif name in REWARDS:
            out[name] = REWARDS[name]
        else:
            raise ValueError(f"unknown reward {name!r}; known: {sorted(REWARDS)} and the ones "
                             f"passed in ({sorted(extra)})")
    return out
