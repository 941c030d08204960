"""Cross-field rules of a recipe: each returns readable lines naming the offending fields.

Registries of other packages (rewards, tasks, loaders) are looked up when they can be imported,
so the schema stays importable on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recap.config.schema import DomainSpec, RunConfig


def recipe_errors(cfg: RunConfig, extra_rewards: frozenset[str] = frozenset()) -> list[str]:
    """Every cross-field problem of ``cfg`` (empty when the recipe can run); ``extra_rewards``
    are reward names known besides the registry (callables passed to the run)."""
    return (_check_domains(cfg, extra_rewards) + _check_sampling(cfg) + _check_weighting(cfg)
            + _check_rl_kl(cfg))


def _check_domains(cfg: RunConfig, extra_rewards: frozenset[str]) -> list[str]:
    errs: list[str] = []
    names = [d.name for d in cfg.domains]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        errs.append(f"domains: names must be unique, repeated: {dup}")
    known_rewards = _known("recap.rewards", "REWARDS")
    if known_rewards is not None:
        known_rewards |= extra_rewards
    known_tasks = _known("recap.tasks.registry", "TASKS")
    for i, d in enumerate(cfg.domains):
        where = f"domains[{i}] ({d.name})"
        if d.mode == "rl" and not d.rewards:
            errs.append(f"{where}.rewards: an rl domain needs at least one reward")
        if d.mode == "sft" and d.rewards:
            errs.append(f"{where}.rewards: must be empty for an sft domain (mode: sft), got "
                        f"{d.rewards}")
        if known_rewards is not None:
            bad = [r for r in d.rewards if r not in known_rewards]
            if bad:
                errs.append(f"{where}.rewards: unknown {bad}; known: {sorted(known_rewards)} (or "
                        "pass functions: recap.train(..., rewards={name: fn}))")
        if len(set(d.rewards)) != len(d.rewards):
            errs.append(f"{where}.rewards: repeated names {d.rewards}")
        if d.builtin and known_tasks is not None and d.source not in known_tasks:
            errs.append(f"{where}.source: unknown built-in task {d.source!r}; known: "
                        f"{sorted(known_tasks)} (or use {{path, format}})")
        if d.builtin and d.n is None:
            errs.append(f"{where}.n: a built-in source needs the number of records to generate")
        if not d.builtin and d.split != "train":
            errs.append(f"{where}.split: only built-in sources have splits; a saved "
                        f"DatasetDict's split goes in source.split")
        if not d.builtin and d.knobs:
            errs.append(f"{where}.knobs: only built-in sources take generator knobs")
        errs += _check_source(d, where)
    bad = [t for t in cfg.eval.probe_tasks if known_tasks is not None and t not in known_tasks]
    if bad:
        errs.append(f"eval.probe_tasks: unknown built-in tasks {bad}; known: "
                    f"{sorted(known_tasks or [])}")
    return errs


def _check_source(d: DomainSpec, where: str) -> list[str]:
    """Generator knobs and file formats checked against the task registry and the loaders."""
    import importlib

    if isinstance(d.source, str):
        try:
            registry = importlib.import_module("recap.tasks.registry")
            accepted = registry.task_knobs(d.source)
        except (ImportError, ValueError):
            return []  # unknown task names are reported above
        bad = sorted(set(d.knobs) - set(accepted))
        return [f"{where}.knobs: unknown {bad}; accepted for {d.source}: {accepted}"] if bad else []
    try:
        loaders = importlib.import_module("recap.tasks.loaders")
    except ImportError:
        return []
    known = sorted(loaders.FORMATS) + sorted(loaders.ALIASES)
    if d.source.format not in known:
        return [f"{where}.source.format: unknown {d.source.format!r}; known: {known}"]
    return []


def _check_sampling(cfg: RunConfig) -> list[str]:
    errs: list[str] = []
    strategy = cfg.sampling.strategy
    roles = {d.role for d in cfg.domains}
    if strategy in ("reasoning_only", "coreset") and "reasoning" not in roles:
        errs.append(f"sampling.strategy={strategy} needs a domain with role: reasoning")
    if strategy == "coreset" and "general" not in roles:
        errs.append("sampling.strategy=coreset needs a domain with role: general")
    weighted = [d.name for d in cfg.domains if d.weight is not None]
    if strategy == "fixed":
        missing = [d.name for d in cfg.active_domains if d.weight is None]
        if missing:
            errs.append(f"sampling.strategy=fixed needs domains[*].weight; missing for {missing}")
    elif weighted:
        errs.append(f"domains[*].weight is only read by sampling.strategy=fixed (set for "
                    f"{weighted}, strategy is {strategy})")
    if strategy in ("default", "fixed") and cfg.train.batch_per == "domain":
        errs.append(f"sampling.strategy={strategy} draws domains in proportion, which needs "
                    f"train.batch_per=total or reasoning (got domain)")
    if cfg.train.batch_per == "reasoning" and "reasoning" not in roles:
        errs.append("train.batch_per=reasoning needs a domain with role: reasoning")
    return errs


def _check_weighting(cfg: RunConfig) -> list[str]:
    errs: list[str] = []
    w = cfg.weighting
    objectives = cfg.objective_names
    if w.name == "static":
        if set(w.weights) != set(objectives):
            errs.append(f"weighting.weights: static weighting needs exactly the objectives "
                        f"{objectives}, got {sorted(w.weights)}")
    elif w.weights:
        errs.append(f"weighting.weights is only read by weighting.name=static (name is {w.name})")
    if w.name != "recap":
        for opt, default in (("alpha", None), ("variant", "eq1")):
            if getattr(w, opt) != default:
                errs.append(f"weighting.{opt} is only read by weighting.name=recap "
                            f"(name is {w.name})")
    elif w.alpha is not None and w.variant != "official" and not 0 <= w.alpha <= 1:
        errs.append(f"weighting.alpha must be in [0, 1] for variant {w.variant} (got {w.alpha}; "
                    f"only the official variant schedules alpha outside it)")
    if w.apply == "rewards":
        if w.name not in ("recap", "equal", "static"):
            errs.append(f"weighting.apply=rewards needs weights known before the advantages: "
                        f"weighting.name in (recap, equal, static) (name is {w.name})")
        if cfg.rl.advantage != "decoupled" or cfg.rl.reward_weights:
            errs.append("weighting.apply=rewards sets the reward weights itself: needs "
                        "rl.advantage=decoupled and no rl.reward_weights")
        if cfg.train.grad_accum != 1:
            errs.append("weighting.apply=rewards needs train.grad_accum=1")
    if w.signal == "deficit" and (w.name, w.variant) not in (("recap", "eq1"),
                                                            ("recap", "paper")):
        errs.append("weighting.signal=deficit is an ablation of RECAP eq1/paper; other "
                    "weightings declare what they consume (recap.weighting)")
    for opt in ("window", "temperature"):
        if getattr(w, opt) is not None and w.name not in ("recap", "dwa"):
            errs.append(f"weighting.{opt} is only read by weighting.name in (recap, dwa) "
                        f"(name is {w.name})")
    if w.name == "famo" and (cfg.train.batch_per != "domain" or cfg.train.grad_accum != 1):
        errs.append("weighting.name=famo needs every objective in every micro-batch: "
                    "train.batch_per=domain and train.grad_accum=1")
    return errs


def _check_rl_kl(cfg: RunConfig) -> list[str]:
    errs: list[str] = []
    has_rl = any(d.mode == "rl" for d in cfg.active_domains)
    kl = cfg.kl
    if kl.schedule == "none" and kl.beta != 0:
        errs.append("kl.beta is set but kl.schedule=none; use schedule: constant, or kl=none "
                    "(--set kl=none) to turn the KL term off")
    if kl.schedule == "constant" and kl.beta <= 0:
        errs.append("kl.schedule=constant needs kl.beta > 0 (use schedule: none for no KL)")
    if kl.schedule == "grpo_d":
        if kl.beta_min > kl.beta_max:
            errs.append(f"kl.beta_min ({kl.beta_min}) must be <= kl.beta_max ({kl.beta_max}) "
                        f"for schedule grpo_d")
        if cfg.train.steps < 2:
            errs.append("kl.schedule=grpo_d needs train.steps >= 2")
    if kl.schedule != "none" and not has_rl:
        errs.append(f"kl.schedule={kl.schedule} needs an rl domain (the KL is taken on rollouts)")
    if cfg.rl.advantage == "decoupled" and cfg.rl.reward_weights:
        errs.append("rl.reward_weights is only read by rl.advantage=combined")
    used = {r for d in cfg.active_domains for r in d.rewards}
    unknown = sorted(set(cfg.rl.reward_weights) - used)
    if unknown:
        errs.append(f"rl.reward_weights: {unknown} are not rewards of any active domain "
                    f"({sorted(used)})")
    r = cfg.restart
    if r.every_steps is not None and r.every_epochs is not None:
        errs.append("restart: set every_steps or every_epochs, not both")
    return errs


def _known(module: str, attr: str) -> set[str] | None:
    """Names in a registry of another module, or None while that module does not exist."""
    import importlib

    try:
        return set(getattr(importlib.import_module(module), attr))
    except (ImportError, AttributeError):
        return None
