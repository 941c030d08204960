"""recap: RL post-training of vision-language models that keeps what the model already knows.

Replay of general-capability data during RLVR, hybrid RL + supervised objectives in one step and
RECAP's dynamic objective reweighting (seed 000), plus the study tools of seeds 002 and 003.
"""

__version__ = "0.1.0"
