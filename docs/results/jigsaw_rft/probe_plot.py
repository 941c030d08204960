"""Learning dynamics of the jigsaw study's arms: the probe's mean log-likelihood over training.

    python docs/results/jigsaw_rft/probe_plot.py studies/jigsaw-rft docs/results/jigsaw_rft

Reads ``runs/<arm>/seed<k>/probe.jsonl`` of a finished ``recap study`` (arms trained with
``eval.probe_every``; step 0 is the starting model) and plots, per general task probed in every
arm, the probe's mean log-likelihood against the step: the mean over seeds with a band of +-1
standard deviation. The jigsaw domain's own probe is left out (the arms probe it with different
templates, or not at all when they train from a file). Writes ``probe_loglik.png`` and
``probe_loglik.json`` (the per-step means and standard deviations).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def curves(study: Path) -> dict[str, dict[str, dict[int, list[float]]]]:
    """arm -> task -> step -> the seeds' log-likelihoods."""
    out: dict[str, dict[str, dict[int, list[float]]]] = {}
    for log in sorted(study.glob("runs/*/seed*/probe.jsonl")):
        arm = log.parent.parent.name
        for line in log.read_text().splitlines():
            row = json.loads(line)
            for task, values in row["loglik"].items():
                out.setdefault(arm, {}).setdefault(task, {}).setdefault(
                    row["step"], []).append(statistics.fmean(values))
    return out


def main(study: Path, out_dir: Path) -> None:
    data = curves(study)
    tasks = sorted(set.intersection(*(set(arm) for arm in data.values())) - {"jigsaw"})
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.2 * len(tasks), 3.0), squeeze=False)
    summary: dict[str, dict[str, list]] = {}
    for ax, task in zip(axes[0], tasks, strict=True):
        for arm, per_task in sorted(data.items()):
            steps = sorted(per_task.get(task, {}))
            if not steps:
                continue
            values = [per_task[task][s] for s in steps]
            mean = [statistics.fmean(v) for v in values]
            sd = [statistics.stdev(v) if len(v) > 1 else 0.0 for v in values]
            ax.plot(steps, mean, label=arm)
            ax.fill_between(steps, [m - s for m, s in zip(mean, sd, strict=True)],
                            [m + s for m, s in zip(mean, sd, strict=True)], alpha=0.2)
            summary.setdefault(arm, {})[task] = [[s, m, d] for s, m, d in
                                                 zip(steps, mean, sd, strict=True)]
        ax.set_title(task)
        ax.set_xlabel("step")
    axes[0][0].set_ylabel("mean log-likelihood of the probe answers")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / "probe_loglik.png", dpi=110)
    (out_dir / "probe_loglik.json").write_text(json.dumps(summary, indent=1))
    print(f"wrote {out_dir / 'probe_loglik.png'}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
