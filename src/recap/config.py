"""The training recipe: typed, validated, loaded from YAML and overridable from the command line.

A recipe names the model, the domains (each with a data source, a mode ``rl`` or ``sft``, a prompt
template and its rewards), how domains are sampled (RECAP sec. 5.1 baselines), how objectives
are weighted (RECAP, RECAP paper sec. 4, or a baseline), the GRPO settings (RECAP sec. 3, jigsaw-RFT
eq. 1), the KL schedule (constant or GRPO-D, OThink-MR1 eq. 3), periodic restarts (jigsaw-RFT sec.
5.6), the optimiser (the RECAP paper A.1) and logging/checkpoint cadences.

Every model forbids unknown keys. Incompatible combinations are rejected when the recipe is loaded,
with a message naming the field and the allowed values (:class:`ConfigError`).

Resolution order of :func:`load_config`: preset (applied to the lab base recipe) <- YAML file <-
``--set key=value`` overrides. Keys are dotted paths; list items are addressed by index or, for
``domains``, by domain name (``--set domains.arith.n=32``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

Mode = Literal["rl", "sft"]
Role = Literal["reasoning", "general"]
TemplateName = Literal["think", "answer"]
Strategy = Literal["reasoning_only", "default", "uniform", "coreset", "fixed"]
WeightingName = Literal["recap", "equal", "static", "dwa", "uw", "rlw", "famo"]
KLKind = Literal["none", "constant", "grpo_d"]

# In combined-advantage mode all rewards of a domain form one RL objective with this name.
COMBINED_OBJECTIVE = "reward"


class ConfigError(ValueError):
    """A recipe that cannot run; the message names each offending field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoraSpec(_Model):
    """LoRA adapter settings (passed to peft by ``recap.models.load_policy``)."""

    r: int = Field(16, ge=1, description="adapter rank")
    alpha: int = Field(32, ge=1, description="scaling numerator (lora_alpha)")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout on the adapter input")
    target_modules: list[str] | str = Field(
        ["q_proj", "k_proj", "v_proj", "o_proj"],
        description="module names to adapt (default: the language model's attention), or "
        "'all-linear'",
    )


class ModelSpec(_Model):
    """Which policy to train."""

    path: str = Field(
        description="local directory or hub id of a HF vision-language model; 'builtin:base' is "
        "the tiny lab model shipped in recap/assets/base"
    )
    dtype: Literal["float32", "bfloat16", "float16"] | None = Field(
        None, description="parameter dtype; null keeps the checkpoint's"
    )
    lora: LoraSpec | None = Field(None, description="train a LoRA adapter instead of all weights")
    gradient_checkpointing: bool = Field(False, description="trade compute for activation memory")


class FileSource(_Model):
    """Records read from disk by ``recap.tasks.loaders.load_records``."""

    path: str = Field(description=".jsonl/.json file or a datasets save_to_disk folder")
    format: str = Field("record", description="row layout: a key of recap.tasks.loaders.FORMATS")
    split: str | None = Field(None, description="split of a saved DatasetDict")
    options: dict[str, Any] = Field(default_factory=dict, description="format options")


class DomainSpec(_Model):
    """One data source and the objectives it carries (the RECAP paper Table 3)."""

    name: str = Field(min_length=1, description="domain name; SFT objectives are 'sft:<name>'")
    source: str | FileSource = Field(description="built-in task name or {path, format}")
    role: Role = Field(description="reasoning (target) or general (replayed) data")
    mode: Mode = Field(description="rl: GRPO on the rewards; sft: next-token loss on the answer")
    template: TemplateName = Field(description="think (reasoning trace) or answer (bare answer)")
    rewards: list[str] = Field(default_factory=list, description="reward names (rl domains only)")
    n: int | None = Field(None, ge=1, description="records to generate (built-in) or keep (files)")
    split: Literal["train", "test"] = Field("train", description="built-in task split")
    knobs: dict[str, Any] = Field(default_factory=dict, description="built-in generator knobs")
    weight: float | None = Field(None, gt=0, description="mixture weight (strategy 'fixed')")

    @property
    def builtin(self) -> bool:
        return isinstance(self.source, str)


class SamplingSpec(_Model):
    """How the prompts of a step are drawn from the domains (the RECAP paper sec. 5.1)."""

    strategy: Strategy = Field(
        "uniform",
        description="reasoning_only | default (by size) | uniform | coreset | fixed (weights)",
    )
    coreset_ratio: float = Field(
        0.5, gt=0, description="coreset: general records kept, as a fraction of reasoning records"
    )


class WeightingSpec(_Model):
    """Objective weighting (RECAP, RECAP paper eq. 1, or a baseline)."""

    name: WeightingName = Field("equal", description="weighting strategy")
    window: int | None = Field(
        None, ge=1, description="recap/dwa window (RECAP: history of 2W values; default W=10)"
    )
    temperature: float | None = Field(
        None, gt=0, description="recap/dwa softmax temperature (RECAP default T=5)"
    )
    variant: Literal["eq1", "paper", "official"] = Field(
        "eq1", description="recap: eq1 (the paper's eq. 1), paper (its runs: alpha 0.5) or "
        "official (the authors' code); see recap.weighting.recap")
    alpha: float | None = Field(
        None, description="recap: eq1/paper s = alpha*c + (1-alpha)*i in [0, 1] (null: eq1 "
        "c + i, paper 0.5); official: weight of softmax(c/T), outside [0, 1] = 1 - step/steps"
    )
    apply: Literal["loss", "rewards"] = Field(
        "loss", description="where lambda acts: loss = (1/K) sum lambda_k L_k (eq. 1); rewards = "
        "on each domain's rewards before group normalisation, one objective per (domain, "
        "reward), SFT losses times lambda, no 1/K (the authors' code; TRL's reward_weights)")
    weights: dict[str, float] = Field(
        default_factory=dict, description="static: weight per objective name"
    )
    signal: Literal["reward", "deficit"] = Field(
        "reward",
        description="recap eq1/paper ablation: feed the reward-like signal in [0,1] or the "
        "deficit 1 - signal (other weightings declare what they consume: Weighting.consumes)",
    )


class RLSpec(_Model):
    """GRPO settings (the RECAP paper sec. 3; jigsaw RFT paper sec. 4; OThink-MR1 eq. 1-2)."""

    num_generations: int = Field(4, ge=2, description="G completions per prompt")
    temperature: float = Field(1.0, gt=0, description="sampling temperature")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling mass")
    max_new_tokens: int = Field(64, ge=1, description="completion length cap")
    clip_eps: float = Field(0.2, gt=0, lt=1, description="ratio clip epsilon")
    advantage: Literal["decoupled", "combined"] = Field(
        "decoupled",
        description="decoupled: one advantage and objective per reward; combined: one advantage "
        "on sum_k c_k R_k (OThink-MR1 eq. 1)",
    )
    reward_weights: dict[str, float] = Field(
        default_factory=dict, description="combined: c_k per reward name (default 1)"
    )
    std_eps: float = Field(1e-4, gt=0, description="eps in (R - mean) / (std + eps)")
    reward_workers: int = Field(
        0, ge=0, description="processes scoring rewards while the loop goes on (0: score in "
        "the training process); built-in rewards only, others stay in-process")
    reward_timeout_s: float = Field(
        10.0, gt=0, description="CPU seconds a reward call may take in a worker before it "
        "scores 0 (counted in the metric rewards/timeouts)")
    loss_aggregation: Literal["sequence", "token", "constant"] = Field(
        "sequence", description="per-token loss reduction: sequence (GRPO: mean per sequence, "
        "then over sequences), token (DAPO; the RECAP authors' code), constant (Dr. GRPO: "
        "divided by rows x max_new_tokens)")
    updates: int = Field(
        1, ge=1, description="mu: optimiser updates per batch of rollouts, pi_old fixed to the "
        "sampling policy (GRPO paper, Alg. 1); > 1 lets the ratio clip act")


class KLSpec(_Model):
    """KL penalty to the reference policy, k3 estimator (the jigsaw RFT paper app. A eq. 7)."""

    schedule: KLKind = Field("none", description="none | constant | grpo_d (OThink-MR1 eq. 3)")
    beta: float = Field(0.0, ge=0, description="constant: the KL coefficient")
    beta_min: float = Field(0.04, ge=0, description="grpo_d: lowest beta (reached at step w)")
    beta_max: float = Field(0.1, ge=0, description="grpo_d: beta at the last step")
    warm_fraction: float = Field(0.3, gt=0, lt=1, description="grpo_d: w / t")


class RestartSpec(_Model):
    """Periodic restart: reset the optimiser state, reference := current policy (jigsaw-RFT)."""

    every_steps: int | None = Field(None, ge=1, description="restart every N optimiser steps")
    every_epochs: float | None = Field(
        None, gt=0, description="restart every N passes over the largest active domain"
    )


class OptimSpec(_Model):
    """AdamW with linear warm-up then linear decay to 0 (the RECAP paper A.1)."""

    lr: float = Field(1e-6, gt=0, description="peak learning rate")
    weight_decay: float = Field(0.0, ge=0, description="decoupled weight decay")
    betas: tuple[float, float] = Field((0.9, 0.999), description="Adam betas")
    eps: float = Field(1e-8, gt=0, description="Adam epsilon")
    warmup_fraction: float = Field(0.1, ge=0, lt=1, description="share of steps warming up")
    max_grad_norm: float | None = Field(1.0, gt=0, description="global grad-norm clip; null: off")


class TrainSpec(_Model):
    """Length, batch shape and seed of the run."""

    steps: int = Field(100, ge=1, description="optimiser steps")
    batch_size: int = Field(
        2, ge=1, description="prompts per micro-batch and process (see batch_per)"
    )
    batch_per: Literal["domain", "total", "reasoning"] = Field(
        "domain",
        description="domain: batch_size prompts from every active domain; total: batch_size "
        "prompts split across domains by the sampling strategy; reasoning: batch_size "
        "reasoning prompts, plus batch_size replayed general prompts when the strategy replays "
        "(equal reasoning exposure, replay on top)",
    )
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimiser step")
    backward_prompts: int | None = Field(
        None, ge=1, description="back-propagate the RL rows of this many prompts at a time "
        "(with their G completions): memory bounded by the chunk, not by B x G, for one extra "
        "no-grad forward; null: all rows at once")
    seed: int = Field(0, ge=0, description="seed of data sampling, generation and init")


class LoggingSpec(_Model):
    every: int = Field(1, ge=1, description="write metrics every N steps")
    tensorboard: bool = Field(True, description="also write TensorBoard events")
    progress: bool = Field(True, description="show a rich progress bar")


class EvalSpec(_Model):
    every: int = Field(
        0, ge=0, description="greedy eval on held-out test records every N steps (built-in "
        "domains); 0: off"
    )
    n: int = Field(8, ge=1, description="held-out records per domain")
    probe_every: int = Field(
        0, ge=0, description="log-likelihood of a fixed probe (held-out answers of every "
        "built-in domain) before training and every N steps: probe.jsonl and probe/* metrics "
        "(learning dynamics, jigsaw RFT paper sec. 5.5); 0: off")
    probe_n: int = Field(16, ge=1, description="probe examples per domain")
    probe_tasks: list[str] = Field(
        default_factory=list, description="built-in tasks probed besides the domains, with the "
        "answer template (e.g. the general capabilities a single-domain run does not train)")


class CheckpointSpec(_Model):
    every: int = Field(0, ge=0, description="checkpoint every N steps; 0: only at the end")
    keep_last: int = Field(2, ge=1, description="checkpoints kept on disk")
    export_model: bool = Field(
        True, description="also write a standalone HF model (save_pretrained) in each checkpoint"
    )


class RunConfig(_Model):
    """A complete, validated recipe."""

    preset: str | None = Field(None, description="name of the preset this recipe starts from")
    model: ModelSpec
    domains: list[DomainSpec] = Field(min_length=1)
    sampling: SamplingSpec = SamplingSpec()
    weighting: WeightingSpec = WeightingSpec()
    rl: RLSpec = RLSpec()
    kl: KLSpec = KLSpec()  # ``kl: none`` (``--set kl=none``) is shorthand for no KL term
    restart: RestartSpec = RestartSpec()
    optim: OptimSpec = OptimSpec()
    train: TrainSpec = TrainSpec()
    logging: LoggingSpec = LoggingSpec()
    eval: EvalSpec = EvalSpec()
    checkpoint: CheckpointSpec = CheckpointSpec()
    output_dir: str = Field("runs/recap", description="where metrics and checkpoints go")

    @field_validator("kl", mode="before")
    @classmethod
    def _kl_off(cls, value: Any) -> Any:
        """``kl: none`` turns the KL term off in one override, whatever a preset had set."""
        return {"schedule": "none"} if value in ("none", "off", False) else value

    # ---- derived views -------------------------------------------------------------------
    @property
    def active_domains(self) -> list[DomainSpec]:
        """Domains that are sampled at all (reasoning_only drops the general ones)."""
        if self.sampling.strategy == "reasoning_only":
            return [d for d in self.domains if d.role == "reasoning"]
        return list(self.domains)

    @property
    def objective_names(self) -> list[str]:
        """Objective names in a fixed order: RL rewards (first use) then ``sft:<domain>``.

        With ``weighting.apply: rewards`` an RL objective is a (domain, reward) pair named
        ``<domain>/<reward>`` (the authors' RECAP code weighs rewards per data source).
        """
        names: list[str] = []
        for d in self.active_domains:
            if d.mode == "rl" and self.weighting.apply == "rewards":
                names += [f"{d.name}/{r}" for r in d.rewards]
            elif d.mode == "rl":
                keys = [COMBINED_OBJECTIVE] if self.rl.advantage == "combined" else d.rewards
                names += [k for k in keys if k not in names]
        names += [f"sft:{d.name}" for d in self.active_domains if d.mode == "sft"]
        return names

    @property
    def uses_reference(self) -> bool:
        """True when some step has beta > 0, so a frozen reference policy is needed."""
        if self.kl.schedule == "constant":
            return self.kl.beta > 0
        return self.kl.schedule == "grpo_d" and self.kl.beta_max > 0

    # ---- cross-field checks --------------------------------------------------------------
    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        errors: list[str] = []
        errors += _check_domains(self)
        errors += _check_sampling(self)
        errors += _check_weighting(self)
        errors += _check_rl_kl(self)
        if errors:
            raise ValueError("\n".join(errors))
        return self

    def to_yaml(self) -> str:
        """The resolved recipe as YAML (written next to the run's metrics)."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _check_domains(cfg: RunConfig) -> list[str]:
    errs: list[str] = []
    names = [d.name for d in cfg.domains]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        errs.append(f"domains: names must be unique, repeated: {dup}")
    known_rewards = _known("recap.rewards", "REWARDS")
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
                errs.append(f"{where}.rewards: unknown {bad}; known: {sorted(known_rewards)}")
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


# ---- loading ----------------------------------------------------------------------------------


def load_config(
    path: str | Path | None,
    overrides: list[str] | tuple[str, ...] = (),
    *,
    preset: str | None = None,
) -> RunConfig:
    """Build a :class:`RunConfig` from a YAML file, a preset and ``key=value`` overrides.

    ``preset`` (or a ``preset:`` key in the YAML) starts from the lab base recipe with that
    preset's changes applied (:mod:`recap.training.presets`); the YAML file then overrides it and
    ``overrides`` come last. Raises :class:`ConfigError` naming every offending field.
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
        from recap.training.presets import preset_recipe

        try:
            base = preset_recipe(name)
        except ValueError as exc:
            raise ConfigError(f"preset: {exc}") from None
        data = deep_merge(base, {k: v for k, v in data.items() if k != "preset"})
        data["preset"] = name
    for item in overrides:
        data = apply_override(data, item)
    return validate_config(data, source=str(path) if path else f"preset {name}")


def validate_config(data: dict[str, Any], source: str = "recipe") -> RunConfig:
    """Validate a plain mapping into a :class:`RunConfig`, with readable errors."""
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: invalid recipe\n" + _format_errors(exc)) from None


def _format_errors(exc: ValidationError) -> str:
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
