"""The `recap` command. Thin: each command parses its options and calls one library function.

Imports of heavy modules (torch, transformers) happen inside the commands so `recap --help`
stays fast.
"""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    help="recap: RL post-training of vision-language models that keeps what the model knows.",
    no_args_is_help=True,
    add_completion=False,
)
bench_app = typer.Typer(help="Benchmarks and studies.", no_args_is_help=True)
data_app = typer.Typer(help="Inspect the built-in tasks.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(data_app, name="data")


@bench_app.command("toy")
def bench_toy(
    out: Path = typer.Option(Path("docs/results/toy_mtl"), help="Output directory."),
    quick: bool = typer.Option(False, "--quick", help="Smoke run: few steps, one seed."),
    seeds: int = typer.Option(3, help="Number of noise seeds."),
    steps: int = typer.Option(10_000, help="Adam steps per run."),
    methods: list[str] = typer.Option(
        None, "--methods", help="Methods to run (default: all but the solver-bound cagrad, "
        "nashmtl)."),
    ablations: list[str] = typer.Option(
        None, "--ablations", help="alpha, temperature, window, shift (default: the first three)."),
    no_ablations: bool = typer.Option(False, "--no-ablations", help="Skip the ablations."),
) -> None:
    """Toy two-task study of the RECAP paper appendix A.6 (figures 5, 14, 16-18)."""
    from recap.toy.study import run_toy_study

    run_toy_study(out, quick=quick, seeds=seeds, steps=steps, methods=methods or None,
                  ablations=False if no_ablations else (ablations or True))


@data_app.command("preview")
def data_preview(
    task: str = typer.Argument(..., help="Built-in task name (see recap.tasks.TASKS)."),
    out: Path = typer.Option(None, help="PNG path (default <task>.png)."),
    n: int = typer.Option(12, help="Number of samples."),
    seed: int = typer.Option(0, help="Generator seed."),
    split: str = typer.Option("train", help="train or test."),
) -> None:
    """Contact sheet of a built-in task's samples (question, answer, boxes / solved jigsaw)."""
    from recap.tasks.preview import preview_task

    typer.echo(preview_task(task, out or Path(f"{task}.png"), n=n, seed=seed, split=split))


def _set_threads(threads: int | None) -> None:
    # On a shared CPU torch's default (one thread per core) oversubscribes: next to another
    # job on 2 cores a train step ran 10-15x slower than with 1 thread.
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


@app.command("train")
def train_cmd(
    config: Path | None = typer.Argument(None, help="Recipe YAML (optional with --preset)."),
    preset: str | None = typer.Option(
        None, "--preset", help="reasoning-only, default, uniform, coreset, lwf, recap, grpo, "
        "grpo-d, sft-gt, grpo-restart"),
    set_: list[str] = typer.Option([], "--set", help="Override a field, e.g. rl.num_generations=4"),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint."),
    out: Path | None = typer.Option(None, "--out", help="Output directory (output_dir)."),
    threads: int | None = typer.Option(
        None, "--threads", min=1,
        help="CPU threads for torch (default: torch's own; 1 when another job shares the cores)."),
) -> None:
    """Train a recipe: GRPO + SFT with replay and objective reweighting."""
    _set_threads(threads)
    from recap.config import ConfigError, load_config
    from recap.training.trainer import train

    overrides = [*set_, *([f"output_dir={out}"] if out else [])]
    try:
        cfg = load_config(config, overrides, preset=preset)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from None
    try:
        typer.echo(f"run written to {train(cfg, resume=resume)}")
    except (FileNotFoundError, FileExistsError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from None


@app.command()
def pretrain(
    out: Path = typer.Option(None, help="Output folder (default: the packaged base, "
                             "recap/assets/base)."),
    steps: int = typer.Option(None, help="Optimiser steps of the main phase (default: the "
                              "shipped recipe's; its annealing phase follows them)."),
    seed: int = typer.Option(0, help="Seed of initialisation and data."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint."),
    threads: int = typer.Option(1, "--threads", min=1, help="CPU threads for torch (2 ran "
                                "1.3x faster than 1 on a free 2-core VM; not bit-identical)."),
    set_: list[str] = typer.Option([], "--set", help="Override a recipe field "
                                   "(recap.config.PretrainConfig), e.g. anneal_steps=0"),
) -> None:
    """Build the tiny lab base model (supervised, on the built-in general suite)."""
    import time

    from recap.config import ConfigError, pretrain_config
    from recap.models import BASE_CHECKPOINT
    from recap.pretraining import pretrain as run_pretrain

    fields = {"seed": seed, "threads": threads} | ({} if steps is None else {"steps": steps})
    try:
        cfg = pretrain_config(set_, **fields)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from None
    start = time.time()
    path = run_pretrain(out or BASE_CHECKPOINT, cfg, resume=resume)
    typer.echo(f"base model written to {path} in {time.time() - start:.0f} s")


@app.command("eval")
def eval_(
    checkpoint: str = typer.Argument(..., help="Checkpoint directory or hub id."),
    suite: str = typer.Option("general", help="general | target | all | PATH.jsonl (comma list)."),
    out: Path = typer.Option(Path("results.json"), help="Where the JSON results go."),
    n: int = typer.Option(None, "--n", help="Records per task (default 120)."),
    batch_size: int = typer.Option(16, help="Prompts per generate call."),
    seed: int = typer.Option(0, help="Seed of the held-out test split."),
    max_new_tokens: int = typer.Option(128, help="Generation budget per completion."),
    template: list[str] = typer.Option([], "--template", help="TASK=think|answer override."),
    threads: int | None = typer.Option(
        None, "--threads", min=1,
        help="CPU threads for torch (default: torch's own; 1 when another job shares the cores)."),
) -> None:
    """Greedy evaluation of a checkpoint on capability suites (per-capability metrics)."""
    _set_threads(threads)
    from recap.evaluation.evaluator import eval_command, summary_lines

    try:
        results = eval_command(checkpoint, suite, out, n_per_task=n, batch_size=batch_size,
                               seed=seed, max_new_tokens=max_new_tokens, templates=template)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from None
    for line in summary_lines(results):
        typer.echo(line)
    typer.echo(f"wrote {out} ({results['wall_s']:.1f} s)")


@app.command()
def report(
    base: Path = typer.Argument(..., help="The base model's results.json."),
    runs: list[Path] = typer.Argument(..., help="Trained checkpoints' results.json files."),
    run_dirs: list[Path] = typer.Option([], "--runs", help="Run directories (metrics.jsonl)."),
    out: Path = typer.Option(Path("report"), help="Output directory."),
    window: int = typer.Option(10, help="Moving-average window of the training curves."),
) -> None:
    """Forgetting report: base vs trained checkpoints, training curves (report.md + HTML)."""
    from recap.evaluation.report import headline_table, load_results, report_from_files, run_name

    path = report_from_files(base, runs, run_dirs, out, window=window)
    typer.echo(headline_table(load_results(base), {run_name(p): load_results(p) for p in runs}))
    typer.echo(f"wrote {path} and {path.with_suffix('.html')}")


@app.command()
def rollouts(
    checkpoint: str = typer.Argument(..., help="Model whose rollouts are kept (e.g. a GRPO run's "
                                     "final/)."),
    task: str = typer.Option("jigsaw", help="Built-in task of the questions."),
    split: str = typer.Option("train", help="Split of the questions."),
    n: int = typer.Option(100, "--n", help="Number of questions."),
    template: str = typer.Option("think", help="Prompt template (think | answer)."),
    reward: str = typer.Option("accuracy", help="Reward a rollout is judged by (e.g. "
                               "jigsaw_acc)."),
    threshold: float = typer.Option(1.0, help="Keep rollouts scoring at least this."),
    samples: int = typer.Option(8, help="Rollouts per question (G)."),
    max_new_tokens: int = typer.Option(128, help="Generation budget per rollout."),
    seed: int = typer.Option(0, help="Seed of the questions and of sampling."),
    out: Path = typer.Option(Path("rollouts.jsonl"), help="JSONL of the kept rollouts."),
) -> None:
    """SFT records from a model's own correct rollouts (jigsaw RFT paper sec. 5.3)."""
    from recap.evaluation.rollouts import checkpoint_rollouts, write_rollouts

    typer.echo(f"rollouts: {n} {task} questions x {samples} samples of <= {max_new_tokens} "
               f"tokens, kept when {reward} >= {threshold}")
    records, counts = checkpoint_rollouts(
        checkpoint, task, split, n, question_seed=seed, sampling_seed=seed, template=template,
        reward=reward, threshold=threshold, num_samples=samples, max_new_tokens=max_new_tokens,
        progress=True)
    path = write_rollouts(records, out)
    typer.echo(f"kept {counts['kept']} of {counts['sampled']} rollouts "
               f"({counts['questions_with_one']} of {n} questions have one) -> {path}; train on "
               f"them with a domain {{source: {{path: {path}}}, mode: sft, template: {template}}}")


@app.command("perplexity-gap")
def perplexity_gap(
    base: str = typer.Argument(..., help="Base checkpoint (all perplexities are under it)."),
    trained: str = typer.Option(None, help="Trained checkpoint whose rollouts are compared."),
    task: str = typer.Option("jigsaw", help="Built-in task of the questions."),
    split: str = typer.Option("train", help="Split of the questions."),
    n: int = typer.Option(50, "--n", help="Number of questions (the paper: 200)."),
    samples: int = typer.Option(8, help="Rollouts per question and model (the paper: 16)."),
    max_new_tokens: int = typer.Option(128, help="Generation budget per rollout (the paper: "
                                       "256)."),
    seed: int = typer.Option(0, help="Seed of the questions and of sampling."),
    out: Path = typer.Option(Path("perplexity_gap"), help="Output directory."),
) -> None:
    """Perplexity gap of ground truth vs trained rollouts under the base model (jigsaw-RFT)."""
    from recap.evaluation.perplexity import perplexity_gap_command

    result = perplexity_gap_command(base, trained, task, split, n, samples, max_new_tokens,
                                    seed=seed, out_dir=out)
    for name, s in result["summary"].items():
        typer.echo(f"{name}: {s}")


@app.command()
def quickstart(
    out: Path = typer.Option(Path("recap-quickstart"), "--out", help="Where the report goes."),
    steps: int = typer.Option(None, "--steps", help="Optimiser steps of each post-training "
                              "(default 60; every arm gets the same)."),
    budget: str = typer.Option("total", "--budget", help="total: the same prompts per step in "
                               "every arm (replay takes slots from the target); equal: the same "
                               "target prompts per step, replay on top."),
    eval_n: int = typer.Option(None, "--eval-n", help="Held-out records per evaluated task "
                               "(default 200)."),
    jobs: int = typer.Option(2, "--jobs", min=1, help="Worker processes (one torch thread "
                             "each)."),
    from_scratch: bool = typer.Option(False, "--from-scratch", help="Rebuild the base model "
                                      "first with `recap pretrain` (about 3 h on 2 CPU cores)."),
    seed: int = typer.Option(0, "--seed", help="Training seed of every arm."),
    model: str = typer.Option("builtin:base", "--model", help="Base model to start from "
                              "(ignored with --from-scratch)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a previous quickstart "
                                   "in --out."),
) -> None:
    """Base -> reasoning-only GRPO vs uniform replay vs RECAP on the embedded default -> report."""
    from dataclasses import replace

    from rich.console import Console

    from recap.quickstart import BUDGETS, QuickstartSettings, run_quickstart

    if budget not in BUDGETS:
        typer.echo(f"--budget must be one of {', '.join(BUDGETS)}, got {budget!r}", err=True)
        raise typer.Exit(code=2)
    settings = QuickstartSettings(out=out, model=model, seed=seed, from_scratch=from_scratch,
                                  overwrite=overwrite, budget=budget, jobs=jobs)  # type: ignore[arg-type]
    if steps is not None:
        settings = replace(settings, steps=steps)
    if eval_n is not None:
        settings = replace(settings, eval_n=eval_n)
    console = Console(highlight=False)
    try:
        # soft_wrap: the headline table is pre-rendered; never re-wrap it at the console width
        run_quickstart(settings, echo=lambda line: console.print(line, markup=False,
                                                                   soft_wrap=True))
    except (FileExistsError, FileNotFoundError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from None


@app.command()
def study(
    file: Path = typer.Argument(..., help="Study YAML: arms, seeds, base, eval plan."),
    out: Path = typer.Option(None, "--out", help="Output folder (default: ./studies/<file "
                             "name without .yaml>)."),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Worker processes, each with --threads "
                             "torch threads."),
    threads: int = typer.Option(1, "--threads", min=1, help="Torch threads per worker."),
    seeds: str = typer.Option(None, "--seeds", help="Override the training seeds, e.g. 0,1,2."),
    set_: list[str] = typer.Option([], "--set", help="Override a study-file field, e.g. "
                                   "eval.n=200 (a changed eval plan re-evaluates every model)."),
    report_only: bool = typer.Option(False, "--report-only", help="Only recompute study.json "
                                     "and the report from finished runs."),
) -> None:
    """Arms x training seeds on one fixed held-out set: statistics and a report (resumable)."""
    from recap.config import ConfigError
    from recap.studies import load_study, run_study
    from recap.studies.runner import finish_study

    try:
        seed_set = [f"seeds={[int(x) for x in seeds.split(',')]}"] if seeds else []
        spec = load_study(file, [*set_, *seed_set])
    except (ConfigError, ValueError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=2) from None
    out = out or Path("studies") / file.stem
    if report_only:
        result = finish_study(spec, out)
    else:
        _set_threads(threads if jobs == 1 else None)
        try:
            result = run_study(spec, out, jobs=jobs, threads=threads, echo=typer.echo)
        except (ConfigError, FileNotFoundError) as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(code=2) from None
    for line in result["reading"]:
        typer.echo(line)
    typer.echo(f"report: {out / 'report.md'} (+ report.html, study.json)")


if __name__ == "__main__":
    app()
