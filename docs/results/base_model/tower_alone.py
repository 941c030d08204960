"""Can the tiny vision tower learn shape at all? Train it alone (see README.md here).

    python docs/results/base_model/tower_alone.py LR STEPS [TINY_CONFIG_JSON]
    # e.g. 1e-3 600: ~2 min, 1 core; 1e-3 600 '{"patch_size": 4}': another vision layout

A freshly initialised tiny Qwen2.5-VL vision tower + merger (`TinyConfig()` defaults) and a
linear head on the visual token holding the object's centre, trained with AdamW on the shape
(circle / square / triangle) of single-object scenes (9-15 px, 32 per step, train split); test
accuracy on 300 test-split scenes every 100 steps.
"""
import json
import sys

import torch

from recap.models import TinyConfig, build_tiny_model, load_policy
from recap.pretraining import object_token, visual_tokens
from recap.tasks.registry import make_task
from recap.tasks.shapes import SHAPES

torch.set_num_threads(1)
torch.manual_seed(0)
sizes = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
path = build_tiny_model(f"/tmp/recap-tower-alone-{'-'.join(sys.argv[1:])}", TinyConfig(**sizes))
policy = load_policy(str(path))
visual = policy.model.model.visual
head = torch.nn.Linear(policy.model.config.text_config.hidden_size, len(SHAPES))
opt = torch.optim.AdamW(list(visual.parameters()) + list(head.parameters()), lr=float(sys.argv[1]))


def batch(split: str, i: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Shape logits of the object's visual token and the true shapes, for ``n`` scenes."""
    recs = make_task("describe", split, n, seed=100 + i, n_objects=(1, 1), coord_scale=None)
    feats = visual_tokens(policy, recs)
    side = int(feats.shape[1] ** 0.5)
    tokens = feats[torch.arange(n), torch.tensor([object_token(r, side) for r in recs])]
    y = torch.tensor([SHAPES.index(r.meta["objects"][0]["shape"]) for r in recs])
    return head(tokens), y


for step in range(int(sys.argv[2])):
    logits, y = batch("train", step, 32)
    loss = torch.nn.functional.cross_entropy(logits, y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 100 == 99:
        with torch.no_grad():
            lt, yt = batch("test", 10**6, 300)
        acc = (lt.argmax(-1) == yt).float().mean()
        print(step + 1, f"loss {loss.item():.3f} test acc {acc:.3f}", flush=True)
