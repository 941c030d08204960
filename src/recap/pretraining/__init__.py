"""Build the tiny lab's base model: supervised pretraining on the built-in general suite.

`recap pretrain` trains the tiny Qwen2.5-VL (``recap.models.tiny``) from scratch on freshly
generated records of the general-capability tasks (counting, existence, grounding, digits OCR)
plus worked solutions of the reasoning task (so the base can follow the think/answer template and
GRPO has a non-zero success rate to start from). Every step draws new records from the generators
(seeded by the step), so there is no fixed dataset to overfit and resuming needs only the step.

The recipe (:class:`recap.config.PretrainConfig`) is a curriculum (:func:`default_curriculum`):
single large objects and single digits first, then gradually the full scenes and digit strings
that evaluation uses; and besides the benchmark tasks, a dense ``describe`` task (every object's
colour, shape and box) that supervises the vision path on every object of every image, and an
auxiliary linear head that classifies each object's shape, colour and box from its visual token
(:func:`object_head_loss`; dropped after the build). The loop uses the trainer's checkpoints,
run log and a ``LambdaLR`` schedule; progress is checkpointed atomically every ``save_every``
steps in the run folder beside the output (:func:`run_folder`), and ``resume=True`` continues
from the newest checkpoint with identical data and RNG state, so a resumed build equals an
uninterrupted one. The result (weights + tokenizer + processor + ``card.json``) is what ships in
``recap/assets/base``.

Modules: :mod:`~recap.pretraining.data` (stages, batches, the SFT loss),
:mod:`~recap.pretraining.object_head` (the auxiliary head) and :mod:`~recap.pretraining.loop`
(the build, its evaluation and plot).
"""

from recap.config.pretrain import PretrainConfig, Stage, changed_fields, default_curriculum
from recap.pretraining.data import batch_loss, sample_batch, stage_at
from recap.pretraining.loop import plot_pretraining, pretrain, quick_eval, run_folder
from recap.pretraining.object_head import (
    object_head_loss,
    object_head_outputs,
    object_token,
    vision_feature_norm,
    visual_tokens,
)

__all__ = [
    "PretrainConfig", "Stage", "batch_loss", "changed_fields", "default_curriculum",
    "object_head_loss", "object_head_outputs", "object_token", "plot_pretraining", "pretrain",
    "quick_eval", "run_folder", "sample_batch", "stage_at", "vision_feature_norm",
    "visual_tokens",
]
