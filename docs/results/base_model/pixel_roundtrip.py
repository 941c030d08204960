"""Is what the vision tower sees the image? (see README.md here)

    python docs/results/base_model/pixel_roundtrip.py [MODEL]   # default: builtin:base

Encodes one single-object test scene, reassembles the processor's ``pixel_values`` (patches in
the Qwen2-VL order: merge blocks, then the 2x2 patches inside a block, each patch channels x
time x P x P) into an image, undoes the normalisation, and prints the largest difference from
the original image in 0-255 units.
"""

import sys

import numpy as np
import torch

from recap.models import load_policy
from recap.tasks.registry import make_task

policy = load_policy(sys.argv[1] if len(sys.argv) > 1 else "builtin:base")
record = make_task("describe", "test", 1, seed=7, n_objects=(1, 1), coord_scale=None)[0]
vision = policy.encode([record], [record.question]).vision.tensors
processor = policy.encoder.image_processor
t, gh, gw = vision["image_grid_thw"][0].tolist()
p, m, frames = processor.patch_size, processor.merge_size, processor.temporal_patch_size
patches = vision["pixel_values"].reshape(t, gh // m, gw // m, m, m, 3, frames, p, p)
# (block row, block col, row in block, col in block, channel, y, x) of frame 0 -> (channel, Y, X)
image = patches[0, :, :, :, :, :, 0].permute(4, 0, 2, 5, 1, 3, 6).reshape(3, gh * p, gw * p)
mean = torch.tensor(processor.image_mean).view(3, 1, 1)
std = torch.tensor(processor.image_std).view(3, 1, 1)
seen = ((image * std + mean) * 255).permute(1, 2, 0).numpy()
original = np.asarray(record.images[0], dtype=np.float32)
print(f"image {original.shape}, reassembled {seen.shape}, "
      f"max |difference| {np.abs(seen - original).max():.2g} (0-255 scale)")
