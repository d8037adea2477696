"""Per-epoch metrics of a Lightning run, kept in its checkpoints and written as a CSV plot.

The history is callback state, so a run resumed from a checkpoint keeps the epochs it had
already logged. Seconds are left out: the file is a DVC plot and must not change on reruns.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import lightning as L

PLOT_DIGITS = 5  # losses and accuracies in the CSV plots


class EpochHistory(L.Callback):
    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self.rows: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        values = trainer.callback_metrics
        row = {"epoch": trainer.current_epoch + 1}
        row |= {name: float(values[name]) for name in self.names if name in values}
        self.rows.append(row)

    def state_dict(self) -> dict:
        return {"rows": self.rows}

    def load_state_dict(self, state_dict: dict) -> None:
        self.rows = list(state_dict["rows"])

    def write_csv(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=["epoch", *self.names])
            writer.writeheader()
            for row in self.rows:
                writer.writerow(
                    {
                        key: round(value, PLOT_DIGITS) if isinstance(value, float) else value
                        for key, value in row.items()
                    }
                )
