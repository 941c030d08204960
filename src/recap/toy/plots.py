"""Figures of the toy study: loss-space trajectories over the Pareto front (RECAP figs 5, 14,
17, 18), distance-to-front curves and per-step cost (fig. 16)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display on the benchmark machines
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection

from recap.toy.front import ParetoFront

#: Points drawn per trajectory (the 10 001 steps are subsampled evenly).
_POINTS = 1500


def _trajectory_panel(ax: Any, losses: np.ndarray, front: ParetoFront, title: str) -> None:
    """One panel: front in bold grey, each start's path coloured yellow (early) to red (late)."""
    ax.plot(
        front.losses[:, 0], front.losses[:, 1], color="0.6", lw=6, zorder=0, solid_capstyle="round"
    )
    steps = losses.shape[0]
    idx = np.unique(np.linspace(0, steps - 1, min(_POINTS, steps)).astype(int))
    for r in range(losses.shape[1]):
        path = losses[idx, r]  # [n, 2]
        if not np.isfinite(path).all():
            path = path[np.isfinite(path).all(axis=1)]
        if len(path) < 2:
            continue
        segments = np.stack([path[:-1], path[1:]], axis=1)  # [n-1, 2, 2]
        lc = LineCollection(segments, cmap="autumn_r", lw=2, zorder=2)
        lc.set_array(np.linspace(0.0, 1.0, len(segments)))
        ax.add_collection(lc)
        ax.plot(*path[0], "o", color="k", ms=5, zorder=3)
        ax.plot(*path[-1], "X", color="darkred", ms=6, mec="w", mew=0.5, zorder=4)
    ax.set_xlim(-22, 12)
    ax.set_ylim(-22, 12)
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=10)
    ax.tick_params(labelsize=7)


def plot_trajectory_grid(
    panels: dict[str, np.ndarray], front: ParetoFront, path: Path, title: str, ncols: int = 4
) -> None:
    """Grid of loss-space trajectories, one panel per method (``panels[title] = [T, 5, 2]``)."""
    n = len(panels)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.4 * nrows + 0.3), squeeze=False)
    for ax, (label, losses) in zip(axes.flat, panels.items(), strict=False):
        _trajectory_panel(ax, losses, front, label)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("L1 (noise-free)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("L2", fontsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_distance_curves(
    curves: dict[str, np.ndarray],
    kinds: dict[str, str],
    path: Path,
    tolerance: float,
    block: int = 50,
) -> None:
    """Median distance to the front (over starts and seeds) against the step, log scale.

    Each curve is the median over runs, then averaged over blocks of ``block`` steps so that
    Adam's step-to-step jitter near the front (~1e-3) does not hide the lines. Gradient methods
    are dashed.
    """
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for label, dist in curves.items():
        med = np.nanmedian(dist, axis=1)  # [T+1]
        n = len(med) // block * block
        smooth = med[:n].reshape(-1, block).mean(axis=1) if n else med
        steps = np.arange(len(smooth)) * (block if n else 1)
        ax.plot(
            steps,
            np.maximum(smooth, 1e-4),
            label=label,
            lw=1.6,
            ls="--" if kinds.get(label) == "grad" else "-",
        )
    ax.axhline(tolerance, color="k", ls=":", lw=1, label=f"tolerance {tolerance:g}")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(f"distance to front (median over runs, {block}-step mean)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_runtime(timing: dict[str, dict[str, float]], kinds: dict[str, str], path: Path) -> None:
    """Per-step cost per run (CPU microseconds) by method, coloured by family (cf. fig. 16)."""
    keys = sorted(timing, key=lambda k: timing[k]["us_per_step_run_cpu"])
    vals = [timing[k]["us_per_step_run_cpu"] for k in keys]
    colors = ["tab:orange" if kinds[k] == "loss" else "tab:blue" for k in keys]
    fig, ax = plt.subplots(figsize=(7.5, 0.35 * len(keys) + 1.2))
    ax.barh(keys, vals, color=colors)
    ref = timing.get("equal", {}).get("us_per_step_run_cpu")
    for y, v in enumerate(vals):
        text = f" {v:,.0f}" + (f" ({v / ref:.1f}x equal)" if ref else "")
        ax.text(v, y, text, va="center", fontsize=7)
    ax.set_xlim(0, max(vals) * 1.3)
    ax.set_xlabel("CPU microseconds per step and run (orange: loss-magnitude, blue: gradient)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(
    results: dict[str, Any], raw: dict[str, dict[str, Any]], front: ParetoFront, out_dir: Path
) -> list[str]:
    """Write every PNG of the study into ``out_dir``; returns the file names."""
    written = []
    main = [k for k in results["main"] if k in raw]
    if main:
        plot_trajectory_grid(
            {k: raw[k]["losses_seed0"] for k in main},
            front,
            out_dir / "trajectories.png",
            "Loss space, noise seed 0: start (dot) yellow -> red, end (X); grey = Pareto front",
        )
        written.append("trajectories.png")
        kinds = {k: results["runs"][k]["kind"] for k in main}
        plot_distance_curves(
            {k: raw[k]["distance"] for k in main},
            kinds,
            out_dir / "distance.png",
            results["config"]["front_tolerance"],
        )
        written.append("distance.png")
    for group, info in results["ablations"].items():
        panels = {e["label"]: raw[e["key"]]["losses_seed0"] for e in info["entries"]}
        name = f"ablation_{group}.png"
        plot_trajectory_grid(
            panels, front, out_dir / name, f"{info['title']} (noise seed 0)", ncols=len(panels)
        )
        written.append(name)
    if results["timing"]:
        kinds = {k: results["runs"][k]["kind"] for k in results["timing"]}
        plot_runtime(results["timing"], kinds, out_dir / "runtime.png")
        written.append("runtime.png")
    results["plots"] = written
    return written
