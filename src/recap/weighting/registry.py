"""Name -> weighting strategy table and `build_weighting` with clear errors."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

from recap.weighting.base import Weighting
from recap.weighting.baselines import (
    DWAWeighting,
    EqualWeighting,
    RandomLossWeighting,
    StaticWeighting,
)
from recap.weighting.learnable import FAMOWeighting, UncertaintyWeighting
from recap.weighting.recap import make_recap

# name -> builder(objectives, **options): a class, or a factory where one name has variants.
_STRATEGIES: dict[str, Callable[..., Weighting]] = {"recap": make_recap} | {
    cls.name: cls
    for cls in (
        EqualWeighting,
        StaticWeighting,
        DWAWeighting,
        UncertaintyWeighting,
        RandomLossWeighting,
        FAMOWeighting,
    )
}

WEIGHTINGS: tuple[str, ...] = tuple(_STRATEGIES)
"""Names accepted by `build_weighting`."""


def weighting_options(name: str) -> dict[str, Any]:
    """The keyword options of strategy `name` with their defaults (`inspect.Parameter.empty`
    when required)."""
    params = list(inspect.signature(_lookup(name)).parameters.values())[1:]  # objectives
    return {p.name: p.default for p in params}


def build_weighting(name: str, objectives: Sequence[str], **kwargs: Any) -> Weighting:
    """Build the weighting strategy `name` for `objectives`.

    Raises ValueError for an unknown name (listing `WEIGHTINGS`), for unknown or missing options
    (listing the accepted ones) and for invalid option values.
    """
    cls = _lookup(name)
    options = weighting_options(name)
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        raise ValueError(
            f"weighting {name!r} got unknown option(s) {unknown}; accepted: {sorted(options)}"
        )
    missing = [k for k, v in options.items() if v is inspect.Parameter.empty and k not in kwargs]
    if missing:
        raise ValueError(f"weighting {name!r} needs option(s) {missing}")
    return cls(objectives, **kwargs)


def _lookup(name: str) -> Callable[..., Weighting]:
    try:
        return _STRATEGIES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown weighting {name!r}; known: {', '.join(WEIGHTINGS)}") from None
