"""Loading a recipe: preset <- YAML file <- ``--set`` overrides, validated into a RunConfig."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from recap.config.overrides import apply_override, deep_merge
from recap.config.presets import preset_recipe
from recap.config.schema import ConfigError, RunConfig


def load_config(
    path: str | Path | None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    preset: str | None = None,
    rewards: Iterable[str] = (),
) -> RunConfig:
    """Build a :class:`RunConfig` from a YAML file, a preset and ``key=value`` overrides.

    ``preset`` (or a ``preset:`` key in the YAML) starts from the lab base recipe with that
    preset's changes applied (:mod:`recap.config.presets`); the YAML file then overrides it and
    ``overrides`` come last. ``rewards`` names reward functions the run will be given besides the
    registered ones (``recap.train(..., rewards={name: fn})``). Raises :class:`ConfigError`
    naming every offending field.
    """
    data: dict[str, Any] = {}
    if path is not None:
        text = Path(path).read_text()
        loaded = yaml.safe_load(text) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: a recipe is a mapping at top level, got {type(loaded)}")
        data = loaded
    name = preset or data.get("preset")
    if name is not None:
        try:
            base = preset_recipe(name)
        except ValueError as exc:
            raise ConfigError(f"preset: {exc}") from None
        data = deep_merge(base, {k: v for k, v in data.items() if k != "preset"})
        data["preset"] = name
    for item in overrides:
        data = apply_override(data, item)
    return validate_config(data, source=str(path) if path else f"preset {name}",
                           rewards=rewards)


def validate_config(data: dict[str, Any], source: str = "recipe",
                    rewards: Iterable[str] = ()) -> RunConfig:
    """Validate a plain mapping into a :class:`RunConfig`, with readable errors (``rewards``: as
    in :func:`load_config`)."""
    try:
        return RunConfig.model_validate(data, context={"rewards": frozenset(rewards)})
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid recipe\n" + format_errors(exc)) from None


def format_errors(exc: ValidationError) -> str:
    """A pydantic error as one indented line per field (``loc: message (got value)``)."""
    lines = []
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        if not err["loc"]:  # cross-field checks: each line already names its fields
            lines += [f"  {m}" for m in msg.splitlines()]
            continue
        loc = ".".join(str(p) for p in err["loc"])
        got = "" if err["type"] in ("missing", "value_error") else f" (got {err.get('input')!r})"
        lines.append(f"  {loc}: {msg}{got}")
    return "\n".join(lines)
