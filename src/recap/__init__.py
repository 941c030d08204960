"""recap: RL post-training of vision-language models that keeps what the model already knows.

Replay of general-capability data during RLVR, hybrid RL + supervised objectives in one step and
RECAP's dynamic objective reweighting (the RECAP paper), plus the study tools of the jigsaw RFT
paper and OThink-MR1 (docs/references.md).

The Python API next to the CLI (imported on first use, so ``import recap`` stays light)::

    import recap
    cfg = recap.load_config("configs/quickstart-recap.yaml", ["train.steps=10"])
    out = recap.train(cfg)                      # or recap.train(path, overrides=[...])
    results = recap.evaluate(out / "final", suites="general")
    policy = recap.load_policy("builtin:base")
    weighting = recap.build_weighting("recap", ["accuracy", "sft:ocr"], variant="paper")
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "train": "recap.training.trainer",
    "load_config": "recap.config",
    "evaluate": "recap.evaluation.evaluator",
    "load_policy": "recap.models.loading",
    "build_weighting": "recap.weighting",
    "run_study": "recap.studies",
}
__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'recap' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
