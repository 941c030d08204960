"""Figures of the forgetting report (matplotlib, Agg backend: no display needed).

- :func:`capability_bars` and :func:`capability_radar`: base vs trained models on each capability
  (the RECAP paper figure 1 is the radar version).
- :func:`curve_grid`: one panel per logged key, each run a colour, the per-step values as a light
  trace under a trailing moving average (the RECAP paper figures 6, 7, 8 and 13).
- :func:`lambda_panels`: per-objective weights over steps, one panel per run (RECAP fig. 12).
- :func:`histograms`: overlaid distributions (the perplexity gaps of jigsaw-RFT figure 5, right).

Every function takes plain Python data, writes one PNG and returns its path, or ``None`` when
there is nothing to draw, so a report degrades gracefully on runs that log fewer keys.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: reports are written by CLI runs and tests, never shown
import matplotlib.pyplot as plt
import numpy as np

# Curves of one key: steps and values, same length.
Series = tuple[list[float], list[float]]
DPI = 110


def moving_average(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing mean over the last ``window`` values; the first points average what exists.

    ``out[t] = mean(values[max(0, t - window + 1) : t + 1])``, so the curve starts at the first
    value instead of being shifted or padded (same convention as a sliding-window history).
    """
    x = np.asarray(values, dtype=float)
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    csum = np.concatenate([[0.0], np.cumsum(x)])
    t = np.arange(1, len(x) + 1)
    start = np.maximum(0, t - window)
    return (csum[t] - csum[start]) / (t - start)


def series(rows: Sequence[Mapping[str, object]], key: str) -> Series:
    """Steps and values of ``key`` over metrics.jsonl rows that have it as a finite number.

    Rows without ``"step"`` use their index, so any JSONL of dicts can be plotted.
    """
    steps: list[float] = []
    values: list[float] = []
    for i, row in enumerate(rows):
        v = row.get(key)
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            continue
        step = row.get("step", i)
        steps.append(float(step) if isinstance(step, int | float) else float(i))
        values.append(float(v))
    return steps, values


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return path


def _colors(n: int) -> list:
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def capability_bars(
    labels: Sequence[str], values: Mapping[str, Sequence[float | None]], path: Path,
    ylabel: str = "score (%)", title: str = "Capabilities: base vs trained",
    intervals: Mapping[str, Sequence[tuple[float, float] | None]] | None = None,
) -> Path | None:
    """Grouped bars: one group per capability label, one bar per model (``None`` = missing).

    ``intervals`` (optional, same layout as ``values``): ``(low, high)`` per bar, drawn as error
    bars (a study's 95 % intervals over seeds and records).
    """
    if not labels or not values:
        return None
    models = list(values)
    width = 0.8 / len(models)
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(labels) * max(1, len(models)) / 2), 4.2))
    for j, (model, color) in enumerate(zip(models, _colors(len(models)), strict=True)):
        ys = [np.nan if v is None else v for v in values[model]]
        xs = x + (j - (len(models) - 1) / 2) * width
        bars = ax.bar(xs, ys, width, label=model, color=color)
        ivs = (intervals or {}).get(model)
        if ivs is not None:
            lo = [0.0 if iv is None or np.isnan(y) else y - iv[0] for y, iv in zip(ys, ivs,
                                                                                 strict=True)]
            hi = [0.0 if iv is None or np.isnan(y) else iv[1] - y for y, iv in zip(ys, ivs,
                                                                                 strict=True)]
            ax.errorbar(xs, ys, yerr=[lo, hi], fmt="none", ecolor="black", lw=0.9, capsize=2)
        ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
    ax.set_xticks(x, labels, rotation=20, ha="right")
    ax.margins(y=0.12)  # room for the legend above the tallest bar
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8, ncols=min(len(models), 4))
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return _save(fig, path)


def capability_radar(
    labels: Sequence[str], values: Mapping[str, Sequence[float | None]], path: Path,
    title: str = "Capabilities (higher is better)",
) -> Path | None:
    """Radar chart of capabilities, one polygon per model (RECAP figure 1); needs >= 3 axes.

    Missing values are drawn at 0 so the polygon stays closed; the bar chart shows them as gaps.
    """
    if len(labels) < 3 or not values:
        return None
    angles = np.linspace(0, 2 * np.pi, len(labels), endpoint=False)
    closed = np.concatenate([angles, angles[:1]])
    fig, ax = plt.subplots(figsize=(5.5, 5.5), subplot_kw={"projection": "polar"})
    top = max((v for vs in values.values() for v in vs if v is not None), default=1.0)
    for (model, vs), color in zip(values.items(), _colors(len(values)), strict=True):
        ys = np.array([0.0 if v is None else v for v in vs])
        ys = np.concatenate([ys, ys[:1]])
        ax.plot(closed, ys, color=color, lw=1.8, label=model)
        ax.fill(closed, ys, color=color, alpha=0.12)
    ax.set_xticks(angles, labels, fontsize=8)
    ax.set_ylim(0, max(top * 1.05, 1e-9))
    ax.set_title(title, pad=18)
    ax.legend(loc="upper right", bbox_to_anchor=(1.3, 1.1), fontsize=8)
    return _save(fig, path)


def _panels(n: int, ncols: int) -> tuple[plt.Figure, np.ndarray]:
    """A figure with ``n`` panels in rows of at most ``ncols`` (axes as a 2-D array)."""
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    return plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False)


def _step_axes(ax: plt.Axes, title: str, unit_interval: bool, ylabel: str | None = None) -> None:
    """A curve panel's title, step axis, optional y label, [0, 1] limits for rewards, grid."""
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("step", fontsize=8)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=8)
    if unit_interval:
        ax.set_ylim(-0.05, 1.05)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def _finish_grid(fig: plt.Figure, axes: np.ndarray, used: int, path: Path, title: str) -> Path:
    """Hide the unused panels, one legend for all panels on top, the title; save."""
    for ax in list(axes.flat)[used:]:
        ax.set_visible(False)
    handles, names = [], []
    for ax in axes.flat:
        for h, n in zip(*ax.get_legend_handles_labels(), strict=True):
            if n not in names:
                handles.append(h)
                names.append(n)
    fig.legend(handles, names, loc="upper center", ncols=min(len(names), 5), fontsize=8,
               bbox_to_anchor=(0.5, 1.0))
    fig.suptitle(title, y=1.05, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def curve_grid(
    curves: Mapping[str, Mapping[str, Series]], keys: Sequence[str], path: Path,
    title: str, window: int = 10, ncols: int = 3, ylabel: str | None = None,
    unit_interval: bool = False,
) -> Path | None:
    """One panel per key; each run a colour: light per-step trace + dark moving average.

    Args:
        curves: ``{run: {key: (steps, values)}}``; a run missing a key is left out of that panel.
        keys: panel keys in display order (titles are the keys themselves).
        window: moving-average window in logged points (RECAP uses W = 10 for its windows).
        unit_interval: fix the y axis to [0, 1] (rewards), so a flat 1.0 reads as saturated.
    """
    keys = [k for k in keys if any(len(c.get(k, ([], []))[1]) for c in curves.values())]
    if not keys:
        return None
    fig, axes = _panels(len(keys), ncols)
    colors = dict(zip(curves, _colors(len(curves)), strict=True))
    for ax, key in zip(axes.flat, keys, strict=False):
        for run, by_key in curves.items():
            steps, vals = by_key.get(key, ([], []))
            if not vals:
                continue
            ax.plot(steps, vals, color=colors[run], alpha=0.25, lw=0.8)
            ax.plot(steps, moving_average(vals, window), color=colors[run], lw=1.8, label=run)
        _step_axes(ax, key, unit_interval, ylabel)
    return _finish_grid(fig, axes, len(keys), path,
                        f"{title} (light: per step, dark: moving average over {window})")


# Curves of one key over seeds: steps, mean, band low, band high (same length).
Band = tuple[list[float], list[float], list[float], list[float]]


def band_grid(
    curves: Mapping[str, Mapping[str, Band]], keys: Sequence[str], path: Path, title: str,
    ncols: int = 3, unit_interval: Sequence[str] = (), note: str = "",
) -> Path | None:
    """One panel per key; each arm a colour: its mean over seeds as a line, a shaded band.

    ``curves`` is ``{arm: {key: (steps, mean, low, high)}}``; ``unit_interval`` lists the keys
    whose y axis is fixed to [0, 1] (rewards), so a flat 1.0 reads as saturated. ``note`` says
    what the band is (added to the title).
    """
    keys = [k for k in keys if any(len(c.get(k, ([],) * 4)[1]) for c in curves.values())]
    if not keys:
        return None
    fig, axes = _panels(len(keys), ncols)
    colors = dict(zip(curves, _colors(len(curves)), strict=True))
    for ax, key in zip(axes.flat, keys, strict=False):
        for arm, by_key in curves.items():
            steps, mean, lo, hi = by_key.get(key, ([],) * 4)
            if not mean:
                continue
            ax.fill_between(steps, lo, hi, color=colors[arm], alpha=0.2, lw=0)
            ax.plot(steps, mean, color=colors[arm], lw=1.6, label=arm)
        _step_axes(ax, key, key in unit_interval)
    return _finish_grid(fig, axes, len(keys), path, title + (f" ({note})" if note else ""))


def lambda_panels(
    curves: Mapping[str, Mapping[str, Series]], path: Path, ncols: int = 2,
    title: str = "Objective weights lambda_k",
) -> Path | None:
    """Per-objective weights over steps, one panel per run (the RECAP paper figure 12).

    ``curves`` is ``{run: {objective: (steps, lambdas)}}``; runs with no weights are skipped.
    The dashed line at 1 is uniform weighting (weights have mean 1 over objectives).
    """
    runs = {r: c for r, c in curves.items() if any(v[1] for v in c.values())}
    if not runs:
        return None
    ncols = min(ncols, len(runs))
    nrows = math.ceil(len(runs) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 3.4 * nrows), squeeze=False)
    for ax, (run, by_obj) in zip(axes.flat, runs.items(), strict=False):
        for (obj, (steps, vals)), color in zip(by_obj.items(), _colors(len(by_obj)), strict=True):
            if vals:
                ax.plot(steps, vals, color=color, lw=1.5, label=obj)
        ax.axhline(1.0, color="gray", ls="--", lw=0.8)
        ax.set_title(run, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.set_ylabel("lambda", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(runs):]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def histograms(
    samples: Mapping[str, Sequence[float]], path: Path, title: str, xlabel: str, bins: int = 30,
) -> Path | None:
    """Overlaid density histograms with a dashed line at each median (jigsaw-RFT figure 5)."""
    samples = {k: [v for v in vs if math.isfinite(v)] for k, vs in samples.items()}
    samples = {k: vs for k, vs in samples.items() if vs}
    if not samples:
        return None
    lo = min(min(vs) for vs in samples.values())
    hi = max(max(vs) for vs in samples.values())
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    for (name, vs), color in zip(samples.items(), _colors(len(samples)), strict=True):
        ax.hist(vs, bins=edges, density=True, alpha=0.45, color=color,
                label=f"{name} (median {np.median(vs):.3g}, n={len(vs)})")
        ax.axvline(float(np.median(vs)), color=color, ls="--", lw=1.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)
