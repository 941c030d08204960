"""Where a base-build step spends its time (see README.md here).

    python docs/results/base_model/step_profile.py THREADS   # ~30 s

On the shipped base in train mode, for the batches of steps 3,000, 3,001, 8,000 and 8,001 of
`PretrainConfig()`: seconds to draw the batch, the language-model loss forward and backward
(`batch_loss`), and the object head's extra forward and backward (`object_head_loss`, a fresh
head). The weights are not updated, so each line is one step's cost.
"""

import sys
import time

import torch

from recap.models import load_policy
from recap.pretraining import PretrainConfig, batch_loss, object_head_loss, sample_batch
from recap.tasks.shapes import COLORS, SHAPES

torch.set_num_threads(int(sys.argv[1]))
policy = load_policy("builtin:base")
policy.model.train()
cfg = PretrainConfig()
head = torch.nn.Linear(policy.model.config.text_config.hidden_size, len(SHAPES) + len(COLORS))
for step in (3000, 3001, 8000, 8001):
    sample_batch(cfg, step)  # warm the generators' caches
    t = time.time()
    records, templates = sample_batch(cfg, step)
    t_sample = time.time() - t
    t = time.time()
    loss, _ = batch_loss(policy, records, templates)
    t_forward = time.time() - t
    t = time.time()
    loss.backward()
    t_backward = time.time() - t
    t = time.time()
    object_loss, _ = object_head_loss(policy, head, records)
    t_head_forward = time.time() - t
    t = time.time()
    object_loss.backward()
    t_head_backward = time.time() - t
    print(f"step {step}: sample {t_sample:.3f} s, LM forward {t_forward:.3f} backward "
          f"{t_backward:.3f}, head forward {t_head_forward:.3f} backward {t_head_backward:.3f}")
