"""The base-model recipe of ``recap pretrain``: :class:`PretrainConfig` and its curriculum stages.

Pydantic models like the training recipe's (:mod:`recap.config.schema`): unknown keys are
rejected and the models are frozen; :func:`pretrain_config` lays ``--set key=value`` overrides
over the defaults. The defaults are the shipped recipe: the packaged base's ``card.json`` holds
the recipe it was built with, and a test compares the two (:func:`changed_fields`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, model_validator

from recap.config.loading import format_errors
from recap.config.overrides import apply_override
from recap.config.schema import ConfigError, TemplateName, _Model


class Stage(_Model):
    """One stage of the curriculum: knob and mixture-weight overrides up to a point of the build.

    Stages are read in order; the last stage should end at 1.0, steps past every stage use the
    plain recipe.
    """

    until: float = Field(ge=0.0, le=1.0, description="fraction of `steps` at which the stage ends")
    knobs: dict[str, dict] = Field(
        default_factory=dict,
        description="task -> generator knobs merged over PretrainConfig.task_knobs")
    weights: dict[str, float] = Field(
        default_factory=dict, description="task -> mixture weight in this stage (0 leaves it out)")


SCENE_TASKS = ("count", "exists", "ground", "describe")


def _scene_stage(until: float, scene: dict, n_digits: tuple[int, int]) -> Stage:
    return Stage(until=until, knobs={t: dict(scene) for t in SCENE_TASKS}
                 | {"digits": {"n_digits": n_digits}})


def default_curriculum() -> list[Stage]:
    """Single large one-shape objects and one digit, then single objects of every shape and up
    to two digits, then up to three objects and digits; the last 60 % of the build is the
    generators' defaults (1-6 objects of 9-15 px, 2-4 digits), the distribution evaluated.

    Every counting question kind is asked throughout: a build that asked only "how many objects"
    from 20 % to 50 % lost 28 points on colour counts and gained nothing on the others
    (docs/results/base_model, build A of the fourth session).
    """
    return [
        _scene_stage(0.08, {"n_objects": (1, 1), "obj_size": (16, 24), "n_shapes": 1}, (1, 1)),
        _scene_stage(0.2, {"n_objects": (1, 1), "obj_size": (12, 20)}, (1, 2)),
        _scene_stage(0.4, {"n_objects": (1, 3), "obj_size": (10, 16)}, (1, 3)),
    ]


def _default_mixture() -> dict[str, tuple[TemplateName, float]]:
    return {
        "count": ("answer", 1.0),
        "exists": ("answer", 1.0),
        "ground": ("answer", 1.5),
        "digits": ("answer", 1.5),
        "arith": ("think", 0.5),
        # Pretraining only: every object's colour, shape and box in one answer.
        "describe": ("answer", 1.0),
    }


class PretrainConfig(_Model):
    """The base-model recipe (defaults are the shipped recipe; see the training card).

    The field ``model_config`` (``TinyConfig`` fields of the model built) is ``tiny_config`` in
    Python, since pydantic reserves ``model_config``; the keyword and the JSON key stay
    ``model_config``.
    """

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True,
                              serialize_by_alias=True)

    steps: int = Field(12000, ge=1, description="optimiser steps of the main phase")
    batch_size: int = Field(16, ge=1, description="records per step")
    lr: float = Field(1e-3, gt=0, description="peak learning rate of the main phase")
    # The vision tower and merger get a smaller step: at 3e-3 for all weights the merger's
    # output norm grew to ~700 per token (text embeddings ~0.7) and the language model learned
    # to ignore the image (constant grounding answers, counting at the prior).
    vision_lr_ratio: float = Field(
        0.5, ge=0, description="learning rate of the vision tower and merger, times lr")
    min_lr_ratio: float = Field(
        0.05, ge=0, le=1, description="floor of both decays, as a fraction of lr")
    warmup_steps: int = Field(150, ge=0, description="linear warm-up steps")
    weight_decay: float = Field(0.05, ge=0, description="AdamW weight decay")
    grad_clip: float = Field(1.0, gt=0, description="gradient norm clip")
    # "token": mean over every answer token of the batch; "record": mean of each record's
    # token-mean loss (see recap.pretraining.batch_loss).
    loss_average: Literal["token", "record"] = Field(
        "token", description="token (mean over the batch's answer tokens) or record")
    seed: int = Field(0, description="seed of initialisation and data")
    threads: int = Field(1, ge=1, description="torch threads while building")
    # task -> (template, mixture weight); arith carries worked solutions in think format.
    mixture: dict[str, tuple[TemplateName, float]] = Field(
        default_factory=_default_mixture, description="task -> (template, mixture weight)")
    # Knobs passed to the generators (must match what evaluation and training use).
    task_knobs: dict[str, dict] = Field(
        default_factory=dict, description="task -> generator knobs of every stage")
    eval_every: int = Field(1000, ge=1, description="steps between held-out greedy evaluations")
    eval_n: int = Field(64, ge=1, description="records per task of a periodic evaluation")
    save_every: int = Field(250, ge=1, description="steps between checkpoints")
    final_eval_n: int = Field(200, ge=1, description="records per task of the card's evaluation")
    tiny_config: dict = Field(default_factory=dict, alias="model_config",
                              description="TinyConfig fields of the model built")
    # Weight of the auxiliary object head's loss (0 turns it off): a linear classifier of each
    # object's shape and colour from the visual token at its centre, trained with the model and
    # dropped after the build. Trained on the answers alone, the tower hardly encoded shape
    # (linear probe 51 %, colour 98 %), yet every scene task names shapes; with the head the probe
    # reads 100 % (docs/results/base_model, fifth session).
    object_head_weight: float = Field(
        1.0, ge=0, description="weight of the object head's loss (0: no head)")
    # Weight of the head's box term (0 turns it off): the same head also classifies each of the
    # object's box coordinates in the grounding frame (0..GROUND_FRAME) from that token. With the
    # shape head alone the tower learned *what* but lost *where*: grounding fell from 34 % to 12 %
    # (fifth session); the box term asks the token for its object's extent as well.
    object_head_box_weight: float = Field(
        1.0, ge=0, description="weight of the head's box term (0: shape and colour only)")
    # Easy scenes first: from scratch, existence stayed at chance for 800 steps on the full
    # scenes but reached 63-77 % when the same steps started on single large objects (see
    # docs/results/base_model). Later stages fall back to the generators' default knobs.
    curriculum: list[Stage] = Field(
        default_factory=default_curriculum, description="stages of the main phase, in order")
    # Annealing phase after `steps` (the "decay on a re-weighted mixture" of warmup-stable-decay
    # schedules): `anneal_steps` more steps whose lr falls linearly from `anneal_lr` to
    # `min_lr_ratio * lr`, on the mixture with `anneal_weights` laid over `mixture`'s weights.
    # Steps before `steps` do not depend on these fields, so a build can be resumed into an
    # annealing phase and still equal an uninterrupted build. The shipped recipe anneals for
    # 8,000 steps on counting (x6) and existence (x1.5): counting rose from 63 % at step 12,000
    # to 89.6 % (82.0 % after 4,000 steps), the other tasks held or rose
    # (docs/results/base_model, seventh and eighth sessions).
    anneal_steps: int = Field(8000, ge=0, description="steps of the annealing phase (0: none)")
    anneal_lr: float = Field(5e-4, gt=0, description="learning rate the annealing starts from")
    anneal_weights: dict[str, float] = Field(
        default_factory=lambda: {"count": 6.0, "exists": 1.5},
        description="task -> mixture weight of the annealing phase")

    @model_validator(mode="after")
    def _anneal_tasks_in_mixture(self) -> PretrainConfig:
        unknown = sorted(set(self.anneal_weights) - set(self.mixture))
        if unknown:
            raise ValueError(f"anneal_weights names tasks outside the mixture: {unknown}; "
                             f"mixture: {sorted(self.mixture)}")
        return self

    @property
    def total_steps(self) -> int:
        """Main phase plus annealing phase."""
        return self.steps + self.anneal_steps

    def annealing(self, step: int) -> bool:
        """Whether ``step`` (0-based) belongs to the annealing phase."""
        return self.anneal_steps > 0 and step >= self.steps


ANNEAL_FIELDS = ("anneal_steps", "anneal_lr", "anneal_weights")


def changed_fields(cfg: PretrainConfig, recipe: dict) -> list[str]:
    """Fields of ``cfg`` that differ from a saved recipe (a checkpoint's or a card's, as JSON)."""
    return sorted(k for k, v in cfg.model_dump(mode="json").items() if recipe.get(k) != v)


def pretrain_config(overrides: Iterable[str] = (), **fields: Any) -> PretrainConfig:
    """The default recipe with ``fields`` and then ``key=value`` overrides laid over it (as
    ``recap pretrain --set``; keys as in :func:`recap.config.apply_override`, e.g.
    ``mixture.arith=[think,1.0]``). Raises :class:`ConfigError` naming every offending field."""
    data = PretrainConfig().model_dump() | fields
    for item in overrides:
        data = apply_override(data, item)
    try:
        return PretrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("invalid pretraining recipe\n" + format_errors(exc)) from None
