"""Test-wide settings: one torch thread (deterministic, and much faster than two on a shared
2-core machine where oversubscription stalls every op) and offline hubs."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch

torch.set_num_threads(1)

# Property tests draw the same examples on every run: the suite must be deterministic, and a
# counterexample found while developing is pinned with @example rather than left to chance.
from hypothesis import settings  # noqa: E402

settings.register_profile("recap", derandomize=True, database=None)
settings.load_profile("recap")
