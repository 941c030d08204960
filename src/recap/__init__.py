"""recap: RL post-training of vision-language models that keeps what the model already knows.

Replay of general-capability data during RLVR, hybrid RL + supervised objectives in one step and
RECAP's dynamic objective reweighting (the RECAP paper), plus the study tools of the jigsaw RFT paper and OThink-MR1.
"""

__version__ = "0.1.0"
