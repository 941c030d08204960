"""Does grounding come back when the object head is switched off late? (see README.md here)

    cp -r BUILD/base.ckpt /tmp/cont/base.ckpt    # the fifth-session build's final checkpoint
    python docs/results/base_model/continue_without_head.py /tmp/cont/base

Continues a finished 12,000-step build for 2,000 more steps (the schedule stretched to 14,000
steps: lr ~1e-4 falling to 5e-5, the full evaluated distribution) with the head's weight at 1e-9,
i.e. off (when it ran, a weight of 0 dropped the head's parameter group and the optimiser state
did not load; `pretrain` accepts 0 since the sixth session). The fifth-session build's head had no
box term, hence ``object_head_box_weight=0``. Evaluates 64 records per task every 500 steps and
200 at the end.
"""

import sys
import warnings

from recap.pretraining import PretrainConfig, pretrain

warnings.simplefilter("ignore")  # the resume warns that the recipe changed: that is the point
pretrain(sys.argv[1], PretrainConfig(steps=14000, object_head_weight=1e-9, object_head_box_weight=0,
                                    eval_every=500),
         resume=True)
