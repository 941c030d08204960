"""Recipe mappings: deep merges (presets, YAML) and dotted ``key=value`` overrides."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from recap.config.schema import ConfigError


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` merged into a copy of ``base``: mappings merge, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_override(data: dict[str, Any], item: str) -> dict[str, Any]:
    """Apply one ``dotted.key=value`` override (value parsed as YAML) to a copy of ``data``.

    List items are addressed by index (``domains.0.n=8``) or, in a list of named mappings, by
    name (``domains.arith.n=8``). Missing mapping keys are created (unknown ones are then rejected
    by validation with the field's name).
    """
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r}: expected key=value, e.g. rl.num_generations=4")
    value = yaml.safe_load(raw) if raw.strip() else None
    out = copy.deepcopy(data)
    parts = key.strip().split(".")
    node: Any = out
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        where = ".".join(parts[: depth + 1])
        if isinstance(node, list):
            idx = _list_index(node, part, where)
            if last:
                node[idx] = value
            else:
                node = node[idx]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise ConfigError(f"override {item!r}: {where} is a value, not a mapping or list")
    return out


def _list_index(node: list[Any], part: str, where: str) -> int:
    if part.lstrip("-").isdigit():
        idx = int(part)
        if not -len(node) <= idx < len(node):
            raise ConfigError(f"override {where}: index {idx} out of range (len {len(node)})")
        return idx
    names = [x.get("name") for x in node if isinstance(x, dict)]
    if part in names:
        return names.index(part)
    raise ConfigError(f"override {where}: no item named {part!r}; known: {names}")
