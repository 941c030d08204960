"""Markdown tables of the toy study (results.md)."""

from __future__ import annotations

import math
from typing import Any


def _pm(summary: dict[str, float], key: str, fmt: str = "{:.3f}") -> str:
    mean, std = summary[f"{key}_mean"], summary[f"{key}_std"]
    if math.isnan(mean):
        return "-"
    return f"{fmt.format(mean)} ± {fmt.format(std)}"


def _method_rows(results: dict[str, Any], keys: list[str], label: dict[str, str]) -> list[str]:
    timing = results["timing"]
    rows = []
    for key in keys:
        run = results["runs"][key]
        s = run["summary"]
        t = timing.get(key)
        cost = f"{t['us_per_step_run_cpu']:,.0f}" if t else "-"
        ratio = (
            f"{t['ratio_to_equal_cpu']:.2f}"
            if t and not math.isnan(t["ratio_to_equal_cpu"])
            else "-"
        )
        # Cost-adjusted speed: steps to the front times the per-step cost of the timing pass.
        to_front = (
            f"{s['first_step_mean'] * t['us_per_step_run_cpu'] / 1e3:,.0f}"
            if t and not math.isnan(s["first_step_mean"])
            else "-"
        )
        note = "seed-free, run once" if run["replicated_over_seeds"] else ""
        if s["diverged_mean"] > 0:
            note = f"{s['diverged_mean']:.1f} runs / seed stopped or diverged. {note}"
        if run["error"]:
            note += f" Error: {run['error'][:90]}"
        failed = [e for e in run.get("run_errors") or [] if e]
        if failed:
            note += f" {len(failed)} run(s) stopped, first: {failed[0][:90]}"
        note = " ".join(note.replace("|", "/").split())
        rows.append(
            f"| {label.get(key, key)} | {run['kind']} | {_pm(s, 'reached', '{:.2f}')} | "
            f"{_pm(s, 'final_distance', '{:.4f}')} | {_pm(s, 'first_step', '{:.0f}')} | "
            f"{_pm(s, 'tail_std', '{:.4f}')} | {cost} | {ratio} | {to_front} | {note} |"
        )
    return rows


_HEADER = (
    "| method | family | starts on front (of 5) | final distance | first step on front "
    "| tail std of distance | CPU µs / step / run | time ratio to equal "
    "| CPU ms to front | note |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def render_markdown(results: dict[str, Any]) -> str:
    """Render results.json as markdown tables (mean ± std over noise seeds)."""
    cfg = results["config"]
    lines = [
        "# Toy two-task study (the RECAP paper appendix A.6)",
        "",
        f"Steps {cfg['steps']}, Adam lr {cfg['learning_rate']}, noise {cfg['noise']}, seeds "
        f"{cfg['seeds']}, loss shift +{cfg['loss_shift']:g} for loss-magnitude methods. "
        f"On the front = distance <= {cfg['front_tolerance']:g} in loss space; tail = last "
        f"{cfg['tail_steps']} steps. Values are mean ± std over seeds of the per-seed mean "
        "over the five starts (starts on front: per-seed count). Cost: timing pass, median of "
        f"repeats of {cfg['timing_steps']} steps on a batch of 5 runs, one thread; CPU ms to "
        "front = mean first step on front x CPU µs per step.",
        "",
        f"Pareto front: x1 in [-7, 7], x2 in [{results['front']['x2_range'][0]:.4f}, "
        f"{results['front']['x2_range'][1]:.4f}] (x2 = {results['front']['x2_at_w_half']:.4f} "
        "at x1 = 0).",
        "",
        "## Methods",
        "",
        _HEADER,
        *_method_rows(results, results["main"], {}),
        "",
        "## Per start (final distance, mean over seeds; runs on front / seeds)",
        "",
    ]
    starts = [tuple(p) for p in cfg["start_points"]]
    lines.append("| method | " + " | ".join(f"({a:g}, {b:g})" for a, b in starts) + " |")
    lines.append("|---|" + "---|" * len(starts))
    for key in results["main"]:
        per = results["runs"][key]["per_start"]
        n = len(results["runs"][key]["per_seed"])
        cells = [f"{p['final_distance_mean']:.3f} ({p['reached']}/{n})" for p in per]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    for info in results["ablations"].values():
        lines += ["", f"## Ablation: {info['title']}", "", _HEADER]
        label = {e["key"]: e["label"] for e in info["entries"]}
        lines += _method_rows(results, [e["key"] for e in info["entries"]], label)
    lines += ["", "## Cost micro-benchmarks", ""]
    mb = results["microbench"]
    upd = mb["recap_update_K8_W10"]
    lines.append(
        f"RECAP `update` alone, K = {upd['K']}, W = {upd['W']}: "
        f"{upd['recap_us_per_call']:.1f} µs per call (equal weighting's update: "
        f"{upd['equal_us_per_call']:.1f} µs)."
    )
    lines += ["", "| K | params | variant | ms / step | ratio to RECAP |", "|---|---|---|---|---|"]
    for entry in mb["step_cost"]:
        for variant, ms in entry["ms_per_step"].items():
            lines.append(
                f"| {entry['K']} | {entry['params']:,} | {variant} | {ms:.1f} | "
                f"{entry['ratio_to_recap'][variant]:.2f} |"
            )
    errors = {k: r["error"] for k, r in results["runs"].items() if r["error"]}
    nonpos = {
        k: r["nonpositive_values"] for k, r in results["runs"].items() if r["nonpositive_values"]
    }
    lines += [
        "",
        f"Errors: {errors or 'none'}. Non-positive shifted values seen: {nonpos or 'none'}.",
        "",
    ]
    if "wall_time_s" in results:
        lines.append(f"Study wall time: {results['wall_time_s']:.0f} s.")
    return "\n".join(lines) + "\n"


def render_summary(results: dict[str, Any]) -> str:
    """A short plain-text summary for the terminal (main methods and the cost benchmarks)."""
    lines = [
        f"{'method':<10} {'on front':>9} {'final dist':>11} {'first step':>11} "
        f"{'tail std':>9} {'us/step/run':>12} {'x equal':>8}"
    ]
    for key in results["main"]:
        s = results["runs"][key]["summary"]
        t = results["timing"].get(key, {})
        lines.append(
            f"{key:<10} {s['reached_mean']:>9.2f} {s['final_distance_mean']:>11.4f} "
            f"{s['first_step_mean']:>11.0f} {s['tail_std_mean']:>9.4f} "
            f"{t.get('us_per_step_run_cpu', math.nan):>12.0f} "
            f"{t.get('ratio_to_equal_cpu', math.nan):>8.2f}"
        )
    upd = results["microbench"]["recap_update_K8_W10"]
    lines.append(
        f"RECAP update alone (K={upd['K']}, W={upd['W']}): "
        f"{upd['recap_us_per_call']:.1f} us per call"
    )
    for entry in results["microbench"]["step_cost"]:
        parts = ", ".join(f"{k} {v:.1f} ms" for k, v in entry["ms_per_step"].items())
        lines.append(f"MLP step, K={entry['K']}: {parts}")
    return "\n".join(lines)
