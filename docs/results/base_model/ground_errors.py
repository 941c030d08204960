"""Where a base model's grounding boxes go wrong (see README.md here).

    python docs/results/base_model/ground_errors.py [MODEL]   # default: builtin:base; ~20 s

Greedy answers to the card's 200 held-out grounding records (test split, seed 999). Each
predicted box (16x16 frame) is compared with every object of the scene, scaled to the same frame:
is its best match the target (right object) or another object (wrong object), and how well does
it overlap the object it matches best.
"""

import sys

import numpy as np
import torch

from recap.evaluation.evaluator import generate_texts
from recap.models import load_policy
from recap.parsing import extract_answer, parse_box
from recap.rewards.boxes import box_iou
from recap.tasks import render_prompt
from recap.tasks.registry import make_task

torch.set_num_threads(1)
policy = load_policy(sys.argv[1] if len(sys.argv) > 1 else "builtin:base")
records = make_task("ground", "test", 200, seed=999)
texts, _ = generate_texts(policy, records, [render_prompt(r, "answer") for r in records], 32, 32)
right = wrong = missed = unparsed = 0
best_ious, target_ious = [], []
for text, record in zip(texts, records, strict=True):
    box = parse_box(extract_answer(text) or "")
    if box is None:
        unparsed += 1
        continue
    scale = record.meta["coord_scale"] / record.meta["image_size"][0]
    ious = [box_iou(box, [c * scale for c in o["box"]]) for o in record.meta["objects"]]
    if max(ious) == 0:  # overlaps no object
        missed += 1
    else:
        right += int(np.argmax(ious)) == record.meta["target"]
        wrong += int(np.argmax(ious)) != record.meta["target"]
    best_ious.append(max(ious))
    target_ious.append(ious[record.meta["target"]])
print(f"best match is the target {right}, another object {wrong}; overlaps none {missed}, "
      f"unparsed {unparsed}")
hits = np.mean(np.array(best_ious) >= 0.5)
print(f"mean IoU with the best-matching object {np.mean(best_ious):.3f}, with the target "
      f"{np.mean(target_ious):.3f}; best-match IoU >= 0.5: {hits:.3f}")
