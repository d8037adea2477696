"""Run configurations (configs/<name>.yaml): a named size of the whole pipeline, i.e. the
options of the simulated export and overrides of params.yaml (`dvc exp run -S`)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import Field, ValidationError

from social_reward.config.section import ParamsError, Section


class SimulateOptions(Section):
    """Options of `social-reward simulate` that a run configuration may set."""

    seed: int | None = None
    users: int | None = Field(None, gt=0)
    images: int | None = Field(None, gt=0)
    days: int | None = Field(None, gt=0)
    image_size: int | None = Field(None, ge=16)


class RunConfig(Section):
    """A named size of the whole pipeline (configs/<name>.yaml): an export and params overrides."""

    simulate: SimulateOptions = SimulateOptions()
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)

    def dvc_set_params(self) -> list[str]:
        """The overrides as `dvc exp run` arguments."""
        arguments: list[str] = []
        for key, value in self.params.items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            arguments += ["-S", f"{key}={text}"]
        return arguments

    def apply_to(self, raw_params: dict) -> dict:
        """A copy of a parsed params.yaml with the overrides applied (what `-S` does)."""
        result = yaml.safe_load(yaml.safe_dump(raw_params))
        for key, value in self.params.items():
            *sections, leaf = key.split(".")
            node = result
            for section in sections:
                node = node.setdefault(section, {})
            node[leaf] = value
        return result


def load_run_config(path: Path) -> RunConfig:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return RunConfig.model_validate(raw)
    except FileNotFoundError as error:
        raise ParamsError(f"{path}: file missing") from error
    except (yaml.YAMLError, ValidationError) as error:
        raise ParamsError(f"{path}: {error}") from error
