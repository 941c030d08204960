"""A study's statistics (``study.json``) and its report (``report.md``, ``report.html``, PNGs).

:func:`collect` reads the evaluations and training logs of a finished study folder
(:mod:`recap.studies.runner`) and returns ``study.json``'s content (format ``recap-study/1``)::

    name, base, seeds, reference, eval, budget, targets, generated
    metrics:  ["count/accuracy", ...]                 task/metric keys with per-record scores
    base:     {metric: {mean, ci_low, ci_high, se, n_seeds: 1, n_records, per_seed}}
    arms:     {arm: {label, metrics: {metric: {mean, ci_low, ci_high, se, n_seeds, n_records,
                                               per_seed}},
                     exposure: {...}, train_s: [...]}}
    comparisons: {"<arm> vs base" | "<arm> vs <reference>":
                  {metric: {diff, ci_low, ci_high, se, p, n_seeds, n_records, per_seed}}}
    reading:  plain-language lines

Intervals and tests are those of :mod:`recap.studies.stats`. Metrics without per-record scores
(POPE's F1, a ratio of sums) are left out of the statistics.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from recap.config import COMBINED_OBJECTIVE
from recap.evaluation.report import load_run_metrics
from recap.reporting.markdown import html_page, html_table, md_table
from recap.studies.runner import eval_path, run_dir
from recap.studies.spec import StudySpec
from recap.studies.stats import estimate, paired_difference

__all__ = ["collect", "exposure", "reading", "write_report"]

STUDY_FORMAT = "recap-study/1"
ALPHA = 0.05


def _load(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except OSError:
        raise FileNotFoundError(f"missing evaluation {path}: run the study (it resumes)") from None


def _bounds(key: str) -> tuple[float, float] | None:
    return (0.0, 1.0) if _is_rate(key) else None


def _metric_keys(res: Mapping[str, Any]) -> list[str]:
    keys = []
    for task, entry in res["tasks"].items():
        per = entry.get("per_record", {})
        for m in [*entry["headline"], "format"]:
            if m in per and f"{task}/{m}" not in keys:
                keys.append(f"{task}/{m}")
    return keys


def _scores(res: Mapping[str, Any], key: str, ids: Mapping[str, list[str]]) -> list[float]:
    task, metric = key.split("/", 1)
    per = res["tasks"][task]["per_record"]
    if per["ids"] != ids[task]:
        raise ValueError(f"{res.get('checkpoint')}: task {task} was scored on other records than "
                         f"the base; every model of a study must see the same held-out set")
    return per[metric]


def _recipe(out: Path, arm: str, seed: int) -> dict[str, Any]:
    return yaml.safe_load((run_dir(out, arm, seed) / "config.yaml").read_text())


def exposure(rows: Sequence[Mapping[str, Any]], domains: Sequence[Mapping[str, Any]],
             apply: str = "loss", combined: bool = False) -> dict[str, Any]:
    """What one run trained on: prompts per domain and role, and per objective its mean weight
    (with its range over steps) and its mean share of the loss coefficients.

    With loss = (1/K) sum_k lambda_k L_k (``apply="loss"``) the coefficient of objective k is
    lambda_k / K, so its share is ``lambda_k / sum_j lambda_j`` over the objectives present that
    step (carried by a sampled domain; an absent one has share 0). An RL objective shared by
    several domains (``accuracy``) averages them, so a domain's share of the loss is the sum,
    over the objectives it carries, of the objective's share divided by the number of domains
    carrying it that step (``domain_loss_share``). With the weights on the rewards
    (``apply="rewards"``) an RL domain's surrogate has coefficient 1 / (RL domains present) and
    an SFT domain's its lambda; the domain shares are those coefficients normalised, and an
    objective's share is its lambda over the present objectives' sum (a share of weight).
    ``combined`` (``rl.advantage: combined``): an RL domain's rewards form one objective,
    ``COMBINED_OBJECTIVE``.
    """
    roles = {d["name"]: d["role"] for d in domains}
    modes = {d["name"]: d["mode"] for d in domains}
    def objectives(d: Mapping[str, Any]) -> list[str]:
        if d["mode"] != "rl":
            return [f"sft:{d['name']}"]
        if apply == "rewards":
            return [f"{d['name']}/{r}" for r in d.get("rewards") or []]
        return [COMBINED_OBJECTIVE] if combined else list(d.get("rewards") or [])

    carries = {d["name"]: objectives(d) for d in domains}
    prompts = {n: 0.0 for n in roles}
    lam: dict[str, list[float]] = {}
    share: dict[str, list[float]] = {}
    dom_share = {n: 0.0 for n in roles}
    for row in rows:
        present = [n for n in roles if row.get(f"prompts/{n}", 0) > 0]
        for n in present:
            prompts[n] += row[f"prompts/{n}"]
        weights = {k.removeprefix("lambda/"): v for k, v in row.items()
                   if k.startswith("lambda/")}
        carried = {k: v for k, v in weights.items() if any(k in carries[n] for n in present)}
        total = sum(carried.values()) or 1.0
        for k, v in weights.items():
            lam.setdefault(k, []).append(v)
            share.setdefault(k, []).append(carried.get(k, 0.0) / total)
        if apply == "rewards":
            rl = [n for n in present if modes[n] == "rl"]
            coef = {n: 1.0 / len(rl) if modes[n] == "rl" else weights.get(f"sft:{n}", 1.0)
                    for n in present}
            for n in present:
                dom_share[n] += coef[n] / (sum(coef.values()) or 1.0)
            continue
        for n in present:
            for k in carries[n]:
                if k in carried:
                    n_dom = sum(k in carries[m] for m in present)
                    dom_share[n] += carried[k] / total / n_dom
    steps = max(1, len(rows))
    by_role = {r: sum(p for n, p in prompts.items() if roles[n] == r)
               for r in ("reasoning", "general")}
    return {
        "steps": len(rows),
        "prompts": {n: round(p) for n, p in prompts.items()},
        "reasoning_prompts": round(by_role["reasoning"]),
        "replay_prompts": round(by_role["general"]),
        "objectives": {k: {"mean_weight": float(np.mean(v)), "min_weight": float(np.min(v)),
                           "max_weight": float(np.max(v)), "loss_share": float(np.mean(share[k]))}
                       for k, v in lam.items()},
        "domain_loss_share": {n: v / steps for n, v in dom_share.items()},
    }


def _mean_exposure(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Seed-average of :func:`exposure` (counts rounded; min and max weights are seed means of
    each seed's extremes)."""
    first = parts[0]

    def avg(*path: str) -> float:
        values = []
        for p in parts:
            for key in path:
                p = p[key]
            values.append(p)
        return float(np.mean(values))

    return {
        "steps": first["steps"],
        "prompts": {n: round(avg("prompts", n)) for n in first["prompts"]},
        "reasoning_prompts": round(avg("reasoning_prompts")),
        "replay_prompts": round(avg("replay_prompts")),
        "objectives": {k: {s: avg("objectives", k, s) for s in first["objectives"][k]}
                       for k in first["objectives"]},
        "domain_loss_share": {n: avg("domain_loss_share", n) for n in first["domain_loss_share"]},
    }


def collect(spec: StudySpec, out: str | Path) -> dict[str, Any]:
    """``study.json``'s content from a finished study folder (module docstring)."""
    out = Path(out)
    base = _load(eval_path(out, None))
    keys = _metric_keys(base)
    ids = {t: e["per_record"]["ids"] for t, e in base["tasks"].items()}
    base_m = {k: np.asarray([_scores(base, k, ids)]) for k in keys}
    arms: dict[str, Any] = {}
    mats: dict[str, dict[str, np.ndarray]] = {}
    targets: set[str] = set()
    for arm, arm_spec in spec.arms.items():
        evals = [_load(eval_path(out, arm, s)) for s in spec.seeds]
        mats[arm] = {k: np.asarray([_scores(e, k, ids) for e in evals]) for k in keys}
        parts, train_s, own = [], [], set()
        for s in spec.seeds:
            recipe = _recipe(out, arm, s)
            domains = recipe["domains"]
            own |= {d["name"] for d in domains if d["role"] == "reasoning"}
            apply = recipe.get("weighting", {}).get("apply", "loss")
            combined = recipe.get("rl", {}).get("advantage") == "combined"
            parts.append(exposure(load_run_metrics(run_dir(out, arm, s)), domains, apply,
                                  combined))
            done = run_dir(out, arm, s) / "study_run.json"
            train_s.append(json.loads(done.read_text()).get("train_s"))
        targets |= own
        arms[arm] = {
            "label": arm_spec.label or arm,
            "targets": sorted(t for t in ids if t in own),  # its own reasoning domains
            "metrics": {k: estimate(m, _bounds(k)).as_dict() for k, m in mats[arm].items()},
            "exposure": _mean_exposure(parts),
            "train_s": train_s,
        }
    comparisons: dict[str, Any] = {}
    for arm in spec.arms:
        comparisons[f"{arm} vs base"] = {
            k: paired_difference(mats[arm][k], base_m[k]).as_dict("diff") for k in keys}
        if spec.reference and arm != spec.reference:
            comparisons[f"{arm} vs {spec.reference}"] = {
                k: paired_difference(mats[arm][k], mats[spec.reference][k]).as_dict("diff")
                for k in keys}
    result = {
        "format": STUDY_FORMAT,
        "name": spec.name,
        "base": spec.base,
        "seeds": list(spec.seeds),
        "reference": spec.reference,
        "eval": spec.eval.model_dump(),
        "budget": spec.budget,
        "targets": sorted(t for t in ids if t in targets),
        "metrics": keys,
        "base_metrics": {k: estimate(m, _bounds(k)).as_dict() for k, m in base_m.items()},
        "arms": arms,
        "comparisons": comparisons,
        "generated": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    result["reading"] = reading(result)
    return result


# ---- reading ----------------------------------------------------------------------------------


def _pts(x: float) -> str:
    return f"{100 * x:+.1f}"


def _ci(c: Mapping[str, Any]) -> str:
    return f"{_pts(c['diff'])} [{_pts(c['ci_low'])}, {_pts(c['ci_high'])}]"


def _is_rate(key: str) -> bool:
    return not key.endswith("length")


def reading(result: Mapping[str, Any]) -> list[str]:
    """Plain-language lines: per arm the change of its own targets (the reasoning domains it
    trained; another arm's target counts as a general metric), the general metrics whose
    interval lies below 0 (forgetting), and the comparison with the reference arm."""
    keys = [k for k in result["metrics"] if _is_rate(k) and not k.endswith("/format")]
    n_seeds = len(result["seeds"])
    lines = []
    if n_seeds == 1:
        lines.append("One training seed: the intervals hold the test records' variance only, "
                     "not the seeds'; a claim about a method needs several seeds.")
    for arm, summary in result["arms"].items():
        targets = set(summary.get("targets", result["targets"]))  # older study.json: the union
        cmp = result["comparisons"][f"{arm} vs base"]
        tgt = [f"{k} {_ci(cmp[k])}" for k in keys if k.split("/")[0] in targets]
        lost = [f"{k} {_ci(cmp[k])}" for k in keys
                if k.split("/")[0] not in targets and cmp[k]["ci_high"] < 0]
        gained = [k for k in keys if k.split("/")[0] in targets and cmp[k]["ci_low"] > 0]
        line = f"{arm} vs base (points, 95 % interval): target {'; '.join(tgt) or 'n/a'}"
        line += " — the interval clears 0" if gained else " — not distinguishable from 0"
        line += (f". Forgot (interval below 0): {'; '.join(lost)}." if lost else
                 ". No general metric fell by a margin its interval clears.")
        lines.append(line)
    ref = result.get("reference")
    for arm in result["arms"]:
        if not ref or arm == ref:
            continue
        cmp = result["comparisons"][f"{arm} vs {ref}"]
        better = [f"{k} {_ci(cmp[k])}" for k in keys if cmp[k]["ci_low"] > 0]
        worse = [f"{k} {_ci(cmp[k])}" for k in keys if cmp[k]["ci_high"] < 0]
        lines.append(f"{arm} vs {ref} (paired by seed and record): higher on "
                     f"{'; '.join(better) or 'nothing'}; lower on {'; '.join(worse) or 'nothing'}"
                     f"; every other metric within noise.")
    return lines


# ---- report -----------------------------------------------------------------------------------


def _cell(e: Mapping[str, Any]) -> str:
    return f"{100 * e['mean']:.1f} [{100 * e['ci_low']:.1f}, {100 * e['ci_high']:.1f}]"


def _value_cell(key: str, e: Mapping[str, Any]) -> str:
    if _is_rate(key):
        return _cell(e)
    return f"{e['mean']:.1f} [{e['ci_low']:.1f}, {e['ci_high']:.1f}]"


def _tables(result: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    arms = list(result["arms"])
    keys = result["metrics"]
    header = ["metric", "base", *arms]
    rows = [[k, _value_cell(k, result["base_metrics"][k]),
             *(_value_cell(k, result["arms"][a]["metrics"][k]) for a in arms)] for k in keys]
    out = [("Scores (percent; mean over seeds [95 % interval over seeds and records])",
            header, rows)]
    for name, cmp in result["comparisons"].items():
        crows = []
        for k in keys:
            c = cmp[k]
            scale = 100 if _is_rate(k) else 1
            crows.append([k, f"{scale * c['diff']:+.1f}",
                          f"[{scale * c['ci_low']:+.1f}, {scale * c['ci_high']:+.1f}]",
                          f"{c['p']:.3g}", ", ".join(f"{scale * v:+.1f}" for v in c["per_seed"])])
        out.append((f"{name} (paired difference)", ["metric", "diff", "95 % interval", "p",
                                                    "per seed"], crows))
    erows = []
    for arm, a in result["arms"].items():
        ex = a["exposure"]
        objs = ", ".join(f"{k} {v['mean_weight']:.2f} [{v['min_weight']:.2f}, "
                         f"{v['max_weight']:.2f}] ({100 * v['loss_share']:.0f} %)"
                         for k, v in ex["objectives"].items())
        shares = ", ".join(f"{n} {100 * v:.0f} %" for n, v in ex["domain_loss_share"].items()
                           if v > 0)
        erows.append([arm, str(ex["steps"]), str(ex["reasoning_prompts"]),
                      str(ex["replay_prompts"]), objs, shares])
    out.append(("What each arm saw (mean over seeds)",
                ["arm", "steps", "reasoning prompts", "replay prompts",
                 "objective: mean lambda [min, max over steps] (share of the loss)",
                 "domain share of the loss"],
                erows))
    return out


def _band(runs: Sequence[Sequence[Mapping[str, Any]]], key: str, window: int = 5
          ) -> tuple[list[float], list[float], list[float], list[float]]:
    """Mean over seeds of a logged key (moving average of ``window`` steps), band = +-1 sd."""
    from recap.reporting.plots import moving_average

    series = []
    for rows in runs:
        vals = {r["step"]: r[key] for r in rows if key in r}
        series.append(vals)
    steps = sorted(set.intersection(*(set(v) for v in series))) if series else []
    if not steps:
        return [], [], [], []
    mat = np.asarray([moving_average([v[s] for s in steps], window) for v in series])
    mean, sd = mat.mean(0), mat.std(0, ddof=1) if len(series) > 1 else np.zeros(len(steps))
    return ([float(s) for s in steps], mean.tolist(), (mean - sd).tolist(),
            (mean + sd).tolist())


def _figures(result: Mapping[str, Any], out: Path) -> list[Path]:
    from recap.reporting.plots import band_grid, capability_bars

    figs: list[Path] = []
    keys = [k for k in result["metrics"] if _is_rate(k) and not k.endswith("/format")]
    models = {"base": result["base_metrics"]} | {a: v["metrics"]
                                                 for a, v in result["arms"].items()}
    values = {m: [100 * ms[k]["mean"] for k in keys] for m, ms in models.items()}
    ivs = {m: [(100 * ms[k]["ci_low"], 100 * ms[k]["ci_high"]) for k in keys]
           for m, ms in models.items()}
    n = len(result["seeds"])
    p = capability_bars(keys, values, out / "capabilities.png", intervals=ivs,
                        title=f"Capabilities: base vs arms ({n} seed{'s' * (n > 1)}; "
                              f"95 % intervals over seeds and records)")
    figs += [p] if p else []
    runs = {a: [load_run_metrics(run_dir(out, a, s)) for s in result["seeds"]]
            for a in result["arms"]}
    all_keys = sorted({k for rs in runs.values() for rows in rs for r in rows for k in r})
    rewards = [k for k in all_keys if k.startswith("reward/") and k.endswith("/mean")]
    lambdas = [k for k in all_keys if k.startswith("lambda/")]
    thinking = [k for k in all_keys if k.startswith("thinking/")  # think-template domains
                and any(r.get(k) for rs in runs.values() for rows in rs for r in rows)]
    # RECAP's convergence and instability signals per objective (its figs. 4 and 12)
    signals = [k for k in all_keys if k.startswith("weighting/") and k.endswith(("/c", "/i"))]
    note = "mean over seeds, band +-1 sd; moving average over 5 steps"
    for name, ks, unit, title in (
            ("training.png", rewards + thinking, rewards, "Training curves per arm"),
            ("lambdas.png", lambdas, (), "Objective weights lambda_k"),
            ("signals.png", signals, (), "RECAP signals c_k (convergence), i_k (instability)")):
        curves = {a: {k: _band(rs, k) for k in ks} for a, rs in runs.items()}
        p = band_grid(curves, ks, out / name, title, unit_interval=unit, note=note)
        figs += [p] if p else []
    return figs


def write_report(result: Mapping[str, Any], out: str | Path) -> Path:
    """``report.md`` and ``report.html`` (figures embedded) of a collected study; returns the
    markdown path."""
    out = Path(out)
    figs = _figures(result, out)
    n = len(result["seeds"])
    intro = (f"Study **{result['name']}**: base `{result['base']}`, {len(result['arms'])} arms x "
             f"{n} training seed{'s' * (n > 1)} ({', '.join(map(str, result['seeds']))}); every "
             f"model evaluated greedily on the same {result['eval']['n']} held-out records per "
             f"task (suite `{result['eval']['suite']}`, eval seed {result['eval']['seed']}). "
             f"Targets: {', '.join(result['targets']) or 'none'}.")
    if result.get("budget"):
        intro += f" Budget: {result['budget']}."
    md = [f"# {result['name']}", "", intro, "", "## Reading", ""]
    md += [f"- {line}" for line in result["reading"]] + [""]
    blocks: list[tuple[str, Any]] = [("p", intro), ("h2", "Reading")]
    blocks += [("p", line) for line in result["reading"]]
    for title, header, rows in _tables(result):
        md += [f"## {title}", "", md_table(header, rows), ""]
        blocks += [("h2", title), ("html", html_table(header, rows))]
    md += ["## Figures", ""] + [f"![{p.stem}]({p.name})" for p in figs] + [""]
    blocks += [("h2", "Figures")] + [("img", p) for p in figs]
    md += ["Intervals: mean +- t(0.975, S-1) x sqrt(var over seeds / S + var over records / N) "
           "(recap.studies.stats); p: two-sided t test of the paired difference.", ""]
    path = out / "report.md"
    path.write_text("\n".join(md))
    (out / "report.html").write_text(html_page(f"recap study: {result['name']}", blocks))
    return path

