"""The recipe's schema: one pydantic model per block, :class:`RunConfig` for the whole recipe.

Every model forbids unknown keys and is frozen; cross-field rules live in
:mod:`recap.config.checks` and run when a :class:`RunConfig` is built.
"""

from __future__ import annotations

from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from recap.config.checks import recipe_errors

Mode = Literal["rl", "sft"]
Role = Literal["reasoning", "general"]
TemplateName = Literal["think", "answer"]
Strategy = Literal["reasoning_only", "default", "uniform", "coreset", "fixed"]
BatchPer = Literal["domain", "total", "reasoning"]
WeightingName = Literal["recap", "equal", "static", "dwa", "uw", "rlw", "famo"]
KLKind = Literal["none", "constant", "grpo_d"]

# In combined-advantage mode all rewards of a domain form one RL objective with this name.
COMBINED_OBJECTIVE = "reward"


class ConfigError(ValueError):
    """A recipe that cannot run; the message names each offending field."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoraSpec(_Model):
    """LoRA adapter settings (passed to peft's ``LoraConfig`` by ``recap.models.load_policy``).

    The default targets the attention projections ``q_proj k_proj v_proj o_proj``: in
    Qwen2(.5)-VL these names exist only in the language model (the vision tower uses ``qkv`` and
    ``proj``), so the vision tower stays frozen. ``target_modules="all-linear"`` is peft's shortcut.
    """

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
    batch_per: BatchPer = Field(
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
    def _check(self, info: ValidationInfo) -> RunConfig:
        # reward names known besides the registry: callables passed to recap.train(rewards=...)
        extra = (info.context or {}).get("rewards", ())
        errors = recipe_errors(self, extra_rewards=frozenset(extra))
        if errors:
            raise ValueError("\n".join(errors))
        return self

    def to_yaml(self) -> str:
        """The resolved recipe as YAML (written next to the run's metrics)."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)
