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

Modules: :mod:`~recap.config.schema` (the pydantic models), :mod:`~recap.config.checks` (cross-field
rules), :mod:`~recap.config.presets` (the lab base recipe and the papers' named variants),
:mod:`~recap.config.overrides` (merges and ``key=value``), :mod:`~recap.config.loading` and
:mod:`~recap.config.pretrain` (the base-model recipe of ``recap pretrain``).
"""

from recap.config.loading import load_config, validate_config
from recap.config.overrides import apply_override, deep_merge
from recap.config.pretrain import (
    ANNEAL_FIELDS,
    PretrainConfig,
    Stage,
    changed_fields,
    default_curriculum,
    pretrain_config,
)
from recap.config.schema import (
    COMBINED_OBJECTIVE,
    BatchPer,
    CheckpointSpec,
    ConfigError,
    DomainSpec,
    EvalSpec,
    FileSource,
    KLKind,
    KLSpec,
    LoggingSpec,
    LoraSpec,
    Mode,
    ModelSpec,
    OptimSpec,
    RestartSpec,
    RLSpec,
    Role,
    RunConfig,
    SamplingSpec,
    Strategy,
    TemplateName,
    TrainSpec,
    WeightingName,
    WeightingSpec,
)

__all__ = [
    "ANNEAL_FIELDS", "COMBINED_OBJECTIVE", "BatchPer", "CheckpointSpec", "ConfigError",
    "DomainSpec", "EvalSpec", "FileSource", "KLKind", "KLSpec", "LoggingSpec", "LoraSpec", "Mode",
    "ModelSpec", "OptimSpec", "PretrainConfig", "RLSpec", "RestartSpec", "Role", "RunConfig",
    "SamplingSpec", "Stage", "Strategy", "TemplateName", "TrainSpec", "WeightingName",
    "WeightingSpec", "apply_override", "changed_fields", "deep_merge", "default_curriculum",
    "load_config", "pretrain_config", "validate_config",
]
