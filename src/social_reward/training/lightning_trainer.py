"""The Lightning Trainer every training run here uses: seeded and deterministic, no logger
(the epoch history is the log), no model summary; the run's own limits and callbacks on top,
and the device options of params.yaml passed through unchanged."""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L

from social_reward.training.lightning_options import LightningOptions


def build_trainer(
    options: LightningOptions, callbacks: Sequence[L.Callback], progress: bool, **run: object
) -> L.Trainer:
    """A Trainer with `callbacks` and the run's own arguments (`max_epochs`, `max_steps`,
    `enable_checkpointing`, ...)."""
    return L.Trainer(
        logger=False,
        deterministic=True,
        enable_progress_bar=progress,
        enable_model_summary=False,
        callbacks=list(callbacks),
        **run,
        **options.trainer_arguments(),
    )
