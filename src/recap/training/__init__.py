"""Training: recipe presets, replay sampler, GRPO/SFT objectives, KL schedules, the trainer loop
and checkpoints. Entry points: :func:`recap.config.load_config` and
:func:`recap.training.trainer.train` (imported from their modules; this package stays light)."""
