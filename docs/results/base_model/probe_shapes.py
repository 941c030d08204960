"""Does the base's vision tower encode an object's shape? A linear probe (see README.md here).

    python docs/results/base_model/probe_shapes.py [MODEL]   # default: builtin:base; ~1 min

Single-object scenes at the evaluated sizes (9-15 px, 64x64, shaded floor): the visual token
(after the merger, what the language model reads) that holds the object's centre is probed for
the object's shape and, as a control, its colour, with a logistic regression trained on 2,000
scenes (train split) and scored on 1,000 others (test split). Also scored: the same probe on the
concatenation of all visual tokens (16 at 8-px patches), and as a reference the raw pixels of
the centre token's cell (16x16 px at 8-px patches: what the token is computed from).
"""

import sys

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from recap.models import load_policy
from recap.pretraining import object_token, visual_tokens
from recap.tasks.registry import make_task

torch.set_num_threads(1)
policy = load_policy(sys.argv[1] if len(sys.argv) > 1 else "builtin:base")


@torch.no_grad()
def features(split: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
    records = make_task("count", split, n, seed=7, n_objects=(1, 1), queries=("all",))
    centre, whole, pixels, objects = [], [], [], []
    for start in range(0, n, 100):
        batch = records[start:start + 100]
        feats = visual_tokens(policy, batch)
        side = int(feats.shape[1] ** 0.5)
        for r, f in zip(batch, feats, strict=True):
            index = object_token(r, side)
            centre.append(f[index].float().numpy())
            whole.append(f.flatten().float().numpy())
            image = np.asarray(r.images[0], dtype=np.float32) / 255.0
            c = r.meta["image_size"][0] // side
            row, col = divmod(index, side)
            pixels.append(image[row * c:(row + 1) * c, col * c:(col + 1) * c].flatten())
            objects.append(r.meta["objects"][0])
    return np.stack(centre), np.stack(whole), np.stack(pixels), objects


train_c, train_w, train_p, train_o = features("train", 2000)
test_c, test_w, test_p, test_o = features("test", 1000)
for attr in ("shape", "color"):
    y_train = [o[attr] for o in train_o]
    y_test = [o[attr] for o in test_o]
    chance = max(y_test.count(v) for v in set(y_test)) / len(y_test)
    scores = []
    for name, xtr, xte in (("centre token", train_c, test_c), ("all tokens", train_w, test_w),
                           ("centre cell pixels", train_p, test_p)):
        probe = LogisticRegression(max_iter=3000).fit(xtr, y_train)
        scores.append(f"{name} {100 * probe.score(xte, y_test):.1f} %")
    print(f"{attr:6s} " + ", ".join(scores) + f" (majority class {100 * chance:.1f} %)")
