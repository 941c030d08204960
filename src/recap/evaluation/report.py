"""The forgetting report: base vs trained checkpoints, per capability, plus training curves.

Inputs are the JSON files written by :func:`recap.evaluation.evaluator.evaluate` (one for the
base model, one per trained checkpoint) and, optionally, each run's ``metrics.jsonl``. Output is
``report.md`` (tables + PNGs next to it) and ``report.html`` (the same, PNGs embedded):

- the forgetting table: each capability's headline metrics for the base and every run, with
  the change vs base as an arrow, like jigsaw-RFT table 1; a drop is bold when it exceeds twice the
  standard error of the difference (``2 * sqrt(se_base^2 + se_run^2)``, the error bars of the
  per-sample means), or 5 points where no standard error exists (precision / recall / F1). The
  seed bolds "large" drops without a stated rule; tying it to the error bars keeps a 1-point wobble
  on 100 examples from reading as forgetting.
- capability bars and radar (the RECAP paper figure 1);
- training curves found by key prefix in metrics.jsonl: ``reward/.../mean`` (per-step value +
  moving average, figures 6 and 13), ``signal/`` (what the weighting sees, figure 4),
  ``lambda/`` (objective weights, figure 12), ``length/`` and ``thinking/`` (response and
  thinking length, figures 7 and 8), and ``loss``, ``loss/...``, ``kl``, ``beta``, ``clip_frac``,
  ``grad_norm``, ``lr``. Missing keys just leave a figure out.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recap.evaluation.evaluator import RESULTS_FORMAT
from recap.reporting import plots
from recap.reporting.markdown import format_delta, format_value, html_page, html_table, md_table

# Metrics shown raw (not as a percentage) and with no "better" direction.
RAW_METRICS = frozenset({"response_length", "thinking_length"})
# Metrics whose increase is not an improvement: no bold, whatever the change.
NEUTRAL_METRICS = frozenset({"yes_ratio", "response_length", "thinking_length"})
LOWER_IS_BETTER = frozenset({"invalid", "truncated"})
FALLBACK_DROP = 0.05  # bold threshold (in [0, 1] units) where no standard error is available
SIGMAS = 2.0
# Scalar training-log keys drawn in training.png (with every "loss/..." key).
TRAINING_KEYS = ("loss", "kl", "beta", "clip_frac", "grad_norm", "lr")


@dataclass(frozen=True)
class ReportRow:
    """One metric of one task across models. Values are in the JSON's units ([0, 1] rates)."""

    task: str
    capability: str
    metric: str
    base: float | None
    base_se: float | None
    values: dict[str, float | None] = field(default_factory=dict)
    stderrs: dict[str, float | None] = field(default_factory=dict)

    @property
    def leaf(self) -> str:
        """The metric name without a sub-group prefix (``"random/f1"`` -> ``"f1"``)."""
        return self.metric.rsplit("/", 1)[-1]

    @property
    def scale(self) -> float:
        return 1.0 if self.leaf in RAW_METRICS else 100.0

    def significant_drop(self, run: str) -> bool:
        """True when ``run`` is worse than base by more than the noise (module docstring)."""
        value = self.values.get(run)
        if value is None or self.base is None or self.leaf in NEUTRAL_METRICS:
            return False
        harm = (value - self.base) if self.leaf in LOWER_IS_BETTER else (self.base - value)
        se_run = self.stderrs.get(run)
        if self.base_se is not None and se_run is not None and (self.base_se or se_run):
            return harm > SIGMAS * math.hypot(self.base_se, se_run)
        return harm >= FALLBACK_DROP - 1e-12


def load_results(path: Path) -> dict[str, Any]:
    """An evaluation JSON, checked for the evaluator's format marker."""
    data = json.loads(Path(path).read_text())
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        raise ValueError(f"{path}: not a recap evaluation file (expected format {RESULTS_FORMAT})")
    return data


def load_run_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Rows of ``run_dir/metrics.jsonl`` (or of the file itself); unreadable lines are skipped
    (a run still being written, or killed mid-line, must not break its report)."""
    path = Path(run_dir)
    path = path / "metrics.jsonl" if path.is_dir() else path
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def forgetting_rows(
    base: Mapping[str, Any], runs: Mapping[str, Mapping[str, Any]], headline_only: bool = True
) -> list[ReportRow]:
    """Rows of the forgetting table: every task of ``base``, its headline metrics (or all of
    them), with each run's value (``None`` where a run lacks the task or metric)."""
    rows = []
    for task, entry in base.get("tasks", {}).items():
        metrics = entry.get("metrics", {})
        names = (entry.get("headline") or list(metrics)) if headline_only else list(metrics)
        for metric in names:
            values, stderrs = {}, {}
            for run, res in runs.items():
                other = res.get("tasks", {}).get(task, {})
                values[run] = other.get("metrics", {}).get(metric)
                stderrs[run] = other.get("stderr", {}).get(metric)
            rows.append(ReportRow(
                task=task, capability=entry.get("capability", task), metric=metric,
                base=metrics.get(metric), base_se=entry.get("stderr", {}).get(metric),
                values=values, stderrs=stderrs,
            ))
    return rows


def _table_cells(rows: Sequence[ReportRow], runs: Sequence[str]) -> list[list[str]]:
    cells, last = [], None
    for row in rows:
        label = row.capability if row.capability != last else ""
        last = row.capability
        unit = "" if row.scale == 100.0 else " (words)"
        cells.append([
            label, row.metric + unit, format_value(row.base, row.scale),
            *(format_delta(row.values.get(r), row.base, row.scale, bold=row.significant_drop(r))
              for r in runs),
        ])
    return cells


def headline_table(
    base: Mapping[str, Any], runs: Mapping[str, Mapping[str, Any]], width: int = 120
) -> str:
    """The headline forgetting table as plain text (rich box drawing), for the terminal.

    Same rows and cells as report.md's first table; significant drops are marked with ``!``.
    """
    from rich.console import Console
    from rich.table import Table

    names = list(runs)
    table = Table(title="Forgetting vs base (percent; change vs base in parentheses)")
    for col in ("capability", "metric", "base", *names):
        table.add_column(col, justify="left" if col in ("capability", "metric") else "right")
    for cells in _table_cells(forgetting_rows(base, runs), names):
        table.add_row(*(c.replace("**", "!") for c in cells))
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, force_terminal=False).print(table)
    return buf.getvalue()


def _config_notes(base: Mapping[str, Any], runs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Warnings when the runs were not evaluated like the base (the comparison is then unfair)."""
    notes = []
    keys = ("suites", "n_per_task", "seed", "max_new_tokens")
    ref = base.get("config", {})
    for run, res in runs.items():
        cfg = res.get("config", {})
        diff = [k for k in keys if k in ref and k in cfg and ref[k] != cfg[k]]
        if diff:
            notes.append(f"{run} was evaluated with a different {', '.join(diff)} than the base.")
    return notes


def _curves(
    run_metrics: Mapping[str, Sequence[Mapping[str, Any]]], select: Callable[[str], bool],
    rename: Callable[[str], str],
) -> tuple[dict[str, dict[str, plots.Series]], list[str]]:
    """``{run: {label: series}}`` for the keys ``select`` accepts, labels by ``rename``."""
    curves: dict[str, dict[str, plots.Series]] = {}
    order: list[str] = []
    for run, rows in run_metrics.items():
        keys = sorted({k for row in rows for k in row if select(k)})
        curves[run] = {rename(k): plots.series(rows, k) for k in keys}
        order += [rename(k) for k in keys if rename(k) not in order]
    return curves, order


def _strip(prefix: str, suffix: str = "") -> Callable[[str], str]:
    def rename(key: str) -> str:
        key = key.removeprefix(prefix)
        return key.removesuffix(suffix) if suffix else key
    return rename


def training_figures(
    run_metrics: Mapping[str, Sequence[Mapping[str, Any]]], out_dir: Path, window: int = 10
) -> list[Path]:
    """The training-curve PNGs of every run, found by key prefix; only those with data."""
    has_means = any(k.startswith("reward/") and k.endswith("/mean")
                    for rows in run_metrics.values() for row in rows for k in row)
    if has_means:
        rewards = _curves(run_metrics, lambda k: k.startswith("reward/") and k.endswith("/mean"),
                          _strip("reward/", "/mean"))
    else:
        rewards = _curves(run_metrics, lambda k: k.startswith("reward/")
                          and not k.endswith("/std"), _strip("reward/"))
    signals = _curves(run_metrics, lambda k: k.startswith("signal/"), _strip("signal/"))
    lambdas = _curves(run_metrics, lambda k: k.startswith("lambda/"), _strip("lambda/"))
    # RECAP's convergence c_k and instability i_k per objective (the paper's figs. 4 and 12)
    recap_ci = _curves(run_metrics, lambda k: k.startswith("weighting/") and k.endswith(
        ("/c", "/i")), _strip("weighting/"))
    lengths = _curves(run_metrics, lambda k: k.startswith(("length/", "thinking/")), _strip(""))
    training = _curves(run_metrics, lambda k: k in TRAINING_KEYS or k.startswith("loss/"),
                       _strip(""))
    # learning dynamics: mean change of the probe's log-likelihoods (jigsaw RFT paper sec. 5.5)
    probe = _curves(run_metrics, lambda k: k.startswith("probe/") and k.endswith("/delta"),
                    _strip("probe/", "/delta"))
    figs = [
        plots.curve_grid(rewards[0], rewards[1], out_dir / "rewards.png",
                         "Training rewards", window=window, unit_interval=True),
        plots.curve_grid(signals[0], signals[1], out_dir / "signals.png",
                         "Objective signals seen by the weighting", window=window),
        plots.lambda_panels(lambdas[0], out_dir / "lambdas.png"),
        plots.curve_grid(recap_ci[0], recap_ci[1], out_dir / "recap_signals.png",
                         "RECAP convergence c_k and instability i_k", window=window),
        plots.curve_grid(lengths[0], lengths[1], out_dir / "lengths.png",
                         "Response and thinking length", window=window),
        plots.curve_grid(training[0], training[1], out_dir / "training.png",
                         "Losses, KL, beta and optimisation", window=window),
        plots.curve_grid(probe[0], probe[1], out_dir / "probe.png",
                         "Change of the probe's log-likelihood per update (mean per example)",
                         window=window),
    ]
    return [f for f in figs if f is not None]


def write_report(
    base: Mapping[str, Any],
    runs: Mapping[str, Mapping[str, Any]],
    run_dirs: Mapping[str, Path] | None = None,
    out_dir: Path = Path("report"),
    window: int = 10,
    base_name: str = "base",
) -> Path:
    """Write ``report.md``, its PNGs and ``report.html`` into ``out_dir``; return report.md.

    Args:
        base: the base model's evaluation (``evaluate`` output).
        runs: ``{name: evaluation}`` of the trained checkpoints, in column order.
        run_dirs: ``{name: run directory (or metrics.jsonl)}`` for training curves; may name
            runs that have no evaluation, and may be empty.
        window: moving-average window of the training curves, in logged steps.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(runs)
    header = ["capability", "metric", base_name, *names]
    head_cells = _table_cells(forgetting_rows(base, runs), names)
    all_cells = _table_cells(forgetting_rows(base, runs, headline_only=False), names)

    # Charts show the "higher is better" rates only (no lengths, no yes-ratio).
    percent_rows = [r for r in forgetting_rows(base, runs)
                    if r.scale == 100.0 and r.leaf not in NEUTRAL_METRICS]
    labels = [f"{r.capability}\n{r.metric}" for r in percent_rows]
    series = {base_name: [None if r.base is None else 100 * r.base for r in percent_rows]}
    for run in names:
        series[run] = [None if (v := r.values.get(run)) is None else 100 * v for r in percent_rows]
    cap_figs = [
        plots.capability_bars(labels, series, out_dir / "capabilities.png"),
        plots.capability_radar([lab.replace("\n", " ") for lab in labels], series,
                               out_dir / "capabilities_radar.png"),
    ]
    run_metrics = {n: load_run_metrics(d) for n, d in (run_dirs or {}).items()}
    curve_figs = training_figures(run_metrics, out_dir, window=window)

    intro = (
        f"Base: `{base.get('checkpoint', base_name)}`. Runs: "
        + (", ".join(f"{n} (`{runs[n].get('checkpoint', n)}`)" for n in names) or "none")
        + ". Rates in percent; change vs base in parentheses; **bold** = a drop larger than "
        f"{SIGMAS:g} standard errors of the difference (or {100 * FALLBACK_DROP:g} points where no "
        "standard error exists). Lengths in words."
    )
    cfg = base.get("config", {})
    if cfg:
        intro += (
            f" Evaluation: suites {', '.join(cfg.get('suites', [])) or '?'}, greedy decoding, "
            f"seed {cfg.get('seed', '?')}, at most {cfg.get('max_new_tokens', '?')} new tokens."
        )
    notes = _config_notes(base, runs)
    sizes = ", ".join(f"{t}: n={e.get('n', '?')}" for t, e in base.get("tasks", {}).items())
    md = ["# Forgetting report", "", intro, ""]
    md += [f"> Note: {n}" for n in notes] + ([""] if notes else [])
    md += ["## Capabilities", "", md_table(header, head_cells), "", f"Test sizes: {sizes}.", ""]
    md += [f"![{f.stem}]({f.name})\n" for f in cap_figs if f]
    if curve_figs:
        md += ["## Training curves", ""] + [f"![{f.stem}]({f.name})\n" for f in curve_figs]
    md += ["## All metrics", "", md_table(header, all_cells), ""]
    report = out_dir / "report.md"
    report.write_text("\n".join(md))

    blocks: list[tuple[str, str | Path]] = [("p", intro)] + [("p", f"Note: {n}") for n in notes]
    blocks += [("h2", "Capabilities"), ("html", html_table(header, head_cells)),
               ("p", f"Test sizes: {sizes}.")]
    blocks += [("img", f) for f in cap_figs if f]
    if curve_figs:
        blocks += [("h2", "Training curves")] + [("img", f) for f in curve_figs]
    blocks += [("h2", "All metrics"), ("html", html_table(header, all_cells))]
    (out_dir / "report.html").write_text(html_page("Forgetting report", blocks))
    return report


def run_name(results_path: Path) -> str:
    """A column name for an evaluation file: its stem, or its folder's name when the stem is
    generic (``runs/recap/eval.json`` -> ``recap``)."""
    path = Path(results_path)
    generic = {"results", "eval", "evaluation", "metrics"}
    return path.parent.name if path.stem in generic and path.parent.name else path.stem


def report_from_files(
    base_path: Path, run_paths: Sequence[Path], run_dirs: Sequence[Path] = (),
    out_dir: Path = Path("report"), window: int = 10,
) -> Path:
    """``recap report``: load the evaluation files and write the report (see write_report).

    Run directories are paired with the evaluation files by position when there are as many of
    them (so a run's curves and its table column share a name), else named by their folder.
    """
    runs: dict[str, dict[str, Any]] = {}
    for p in run_paths:
        name = run_name(p)
        while name in runs:  # two runs named alike: keep both columns
            name += "'"
        runs[name] = load_results(p)
    if len(run_dirs) == len(run_paths):
        dirs = dict(zip(runs, run_dirs, strict=True))
    else:
        dirs = {Path(d).name or str(d): Path(d) for d in run_dirs}
    return write_report(load_results(base_path), runs, dirs, out_dir, window=window)
