"""The study file: arms, training seeds, the base model and one fixed held-out evaluation.

A study file is YAML (``recap study FILE``)::

    name: quickstart
    base: builtin:base                      # evaluated once; every arm starts from its recipe
    recipe: ../../configs/quickstart.yaml   # shared recipe (relative to this file); optional
    arms:                                   # name -> recipe or preset + overrides
      reasoning-only: {set: [sampling.strategy=reasoning_only]}
      uniform: {set: [sampling.strategy=uniform]}
      recap: {preset: recap, set: [...]}
    seeds: [0, 1, 2, 3, 4]                  # training seeds (train.seed of every arm)
    reference: uniform                      # comparisons "arm vs reference" (and vs base)
    # An arm may train on another arm's correct rollouts (jigsaw RFT paper sec. 5.3): after the
    # source arm's run of the same seed finishes, its model samples the questions and the kept
    # completions become the named SFT domain's data (see RolloutPlan).
    eval: {suite: quickstart, n: 500, seed: 12345}

The held-out records depend only on ``eval`` (suite, ``n`` per task, ``seed``), never on a
training seed, so every run and the base are scored on the same records and comparisons can be
paired by record (:mod:`recap.studies.stats`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from recap.config import (
    ConfigError,
    RunConfig,
    apply_override,
    deep_merge,
    load_config,
    validate_config,
)

__all__ = ["ArmSpec", "EvalPlan", "RolloutPlan", "StudySpec", "load_study", "rollouts_path"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RolloutPlan(_Model):
    """SFT data from another arm's model: its correct rollouts (jigsaw RFT paper sec. 5.3).

    The source arm's trained model of the same training seed samples ``samples`` completions for
    each of ``n`` questions of built-in ``task`` (train split, question seed ``question_seed``);
    those scoring at least ``threshold`` on ``reward`` replace the data of the recipe's domain
    ``domain`` (see :func:`recap.evaluation.rollouts.correct_rollouts`).
    """

    arm: str = Field(description="arm whose trained model samples the rollouts")
    domain: str = Field(description="the recipe's SFT domain that trains on them")
    task: str = Field("jigsaw", description="built-in task of the questions")
    n: int = Field(200, ge=1, description="questions")
    question_seed: int = Field(0, ge=0, description="seed of the questions (train split)")
    template: str = Field("think", description="prompt template of the rollouts")
    reward: str = Field("accuracy", description="reward a rollout is kept by")
    threshold: float = Field(1.0, ge=0.0, le=1.0, description="keep rollouts scoring >= this")
    samples: int = Field(8, ge=1, description="rollouts per question")
    max_new_tokens: int = Field(128, ge=1, description="completion budget")
    temperature: float = Field(1.0, gt=0.0, description="sampling temperature")


class ArmSpec(_Model):
    """One arm: a recipe (a YAML path or an inline mapping) and/or a preset, then overrides."""

    recipe: str | dict[str, Any] | None = Field(
        None, description="recipe YAML path (relative to the study file) or an inline mapping; "
        "default: the study's recipe")
    preset: str | None = Field(None, description="a preset of recap.config.presets")
    set: list[str] = Field(default_factory=list, description="dotted key=value overrides")
    label: str | None = Field(None, description="display name (default: the arm's name)")
    rollouts: RolloutPlan | None = Field(
        None, description="train on another arm's correct rollouts (run after that arm)")


class EvalPlan(_Model):
    """The one held-out evaluation every model of the study gets (greedy decoding)."""

    suite: str = Field("quickstart", description="suite names (comma list) or a .jsonl path")
    n: int = Field(500, ge=1, description="records per task")
    seed: int = Field(12345, ge=0, description="seed of the held-out records (not a training seed)")
    batch_size: int = Field(32, ge=1, description="prompts per generate call")
    max_new_tokens: int = Field(112, ge=1, description="completion budget")


class StudySpec(_Model):
    """A study: arms x training seeds, the base, and one evaluation plan."""

    name: str = Field("study", min_length=1, description="shown in the report")
    base: str = Field("builtin:base", description="the base model every arm is compared with")
    recipe: str | dict[str, Any] | None = Field(
        None, description="shared recipe of the arms (YAML path or mapping)")
    arms: dict[str, ArmSpec] = Field(min_length=1, description="arm name -> arm")
    seeds: list[int] = Field([0, 1, 2], min_length=1, description="training seeds")
    reference: str | None = Field(None, description="arm every other arm is compared with")
    eval: EvalPlan = Field(default_factory=EvalPlan)
    budget: str | None = Field(None, description="how the arms' budget was set (shown in the "
                               "report), e.g. 'total prompts per step'")
    root: str = Field(".", description="folder relative paths are read from (the study file's)")

    @model_validator(mode="after")
    def _check(self) -> StudySpec:
        if self.reference is not None and self.reference not in self.arms:
            raise ValueError(f"reference {self.reference!r} is not an arm; arms: "
                             f"{list(self.arms)}")
        if len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError(f"seeds must be distinct and >= 0, got {self.seeds}")
        bad = [a for a in self.arms if not a or "/" in a or a == "base"]
        if bad:
            raise ValueError(f"arm names must be non-empty, without '/', not 'base': {bad}")
        for name, arm in self.arms.items():
            source = arm.rollouts and self.arms.get(arm.rollouts.arm)
            if arm.rollouts and (source is None or source.rollouts is not None):
                raise ValueError(f"arm {name!r}: rollouts.arm {arm.rollouts.arm!r} must be an arm "
                                 "that does not itself train on rollouts")
        return self

    def arm_config(self, arm: str, seed: int, output_dir: Path,
                   extra: tuple[str, ...] = ()) -> RunConfig:
        """The validated recipe of ``arm`` trained with ``seed`` into ``output_dir``."""
        spec = self.arms[arm]
        recipe = spec.recipe if spec.recipe is not None else self.recipe
        overrides = [*spec.set, f"train.seed={seed}", f"output_dir={output_dir}", *extra]
        if spec.rollouts is not None:
            path = rollouts_path(output_dir).resolve()
            overrides.append(f"domains.{spec.rollouts.domain}.source={{path: '{path}'}}")
        where = f"study {self.name!r}, arm {arm!r}"
        if isinstance(recipe, dict):
            from recap.config import apply_override
            from recap.config.presets import preset_recipe

            data = deep_merge(preset_recipe(spec.preset), recipe) if spec.preset else recipe
            for item in overrides:
                data = apply_override(data, item)
            return validate_config(data, source=where)
        path = None if recipe is None else Path(self.root) / recipe
        if path is None and spec.preset is None:
            raise ConfigError(f"{where}: needs a recipe (its own or the study's) or a preset")
        try:
            return load_config(path, overrides, preset=spec.preset)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None


def rollouts_path(output_dir: Path) -> Path:
    """Where a rollouts arm's run keeps the rollouts it trains on."""
    return Path(output_dir) / "rollouts" / "rollouts.jsonl"


def load_study(path: str | Path, sets: Sequence[str] = ()) -> StudySpec:
    """Read and validate a study file, then apply each ``key=value`` of ``sets`` (``recap study
    --set eval.n=200``, as ``recap train --set``; ``--seeds 0,1`` is ``seeds=[0,1]``)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read study file {path}: {exc.strerror}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a study file is a mapping at top level")
    for item in sets:
        data = apply_override(data, item)
    data.setdefault("root", str(path.parent))
    try:
        return StudySpec.model_validate(data)
    except ValidationError as exc:
        lines = [f"  {'.'.join(map(str, e['loc'])) or 'study'}: "
                 f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors()]
        raise ConfigError(f"{path}: invalid study\n" + "\n".join(lines)) from None
