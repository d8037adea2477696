"""Typed configuration: one model per section of `params.yaml`, read once per command.

Each DVC stage reads its own section; `dvc.yaml` names the same section under `params`,
so a change to it reruns exactly that stage.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

DEFAULT_PARAMS = Path("params.yaml")


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProfileConfig(Section):
    """Stage `profile`: what the export looks like and how biased its raw counts are."""

    export_dir: Path = Path("data")
    truth: Path = Path("truth/appeal.parquet")  # used only when the file exists
    metrics: Path = Path("metrics/profile.json")
    plot: Path = Path("plots/profile.png")
    plot_sample: int = Field(4000, gt=0)  # images drawn in the scatter panels
    exposure_bin_days: float = Field(2.0, gt=0)
    seed: int = 0  # which images the scatter panels sample


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    profile: ProfileConfig = ProfileConfig()


class ParamsError(ValueError):
    """params.yaml that does not fit the typed configuration."""


def load_params(path: Path = DEFAULT_PARAMS) -> Params:
    """Read and check `params.yaml`; errors name the file, the key and the rule."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as error:
        raise ParamsError(f"{path}: file missing") from error
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: must be a mapping of sections, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']} "
            f"(got {item.get('input')!r})"
            for item in error.errors()
        )
        raise ParamsError(f"{path}: {problems}") from error


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
    params: dict[str, str | int | float | bool] = {}

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
