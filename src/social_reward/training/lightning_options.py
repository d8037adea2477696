"""What both trainers pass straight to Lightning's Trainer: scale-out is Lightning's job."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LightningOptions(BaseModel):
    """Passed unchanged to `lightning.Trainer` (DDP, FSDP, bf16-mixed on a GPU, several nodes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    accelerator: str = "cpu"  # or "gpu", "auto"
    devices: int | str = 1
    num_nodes: int = Field(1, gt=0)
    strategy: str = "auto"  # "ddp", "fsdp", ...
    precision: str = "32-true"  # "bf16-mixed" on a GPU

    def trainer_arguments(self) -> dict:
        return {
            "accelerator": self.accelerator,
            "devices": self.devices,
            "num_nodes": self.num_nodes,
            "strategy": self.strategy,
            "precision": self.precision,
        }
