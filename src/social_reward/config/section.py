"""Reading sections of params.yaml into typed models; errors name the file, key and rule."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from social_reward.errors import SocialRewardError

DEFAULT_PARAMS = Path("params.yaml")


class ParamsError(SocialRewardError, ValueError):
    """params.yaml (or a run configuration) that does not fit the typed configuration."""


class Section(BaseModel):
    """A part of params.yaml. Top-level sections set `SECTION`, their key in the file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    SECTION: ClassVar[str] = ""


SectionT = TypeVar("SectionT", bound=BaseModel)


def read_yaml(path: Path) -> dict:
    """A YAML mapping from `path`; ParamsError when missing, unparsable or not a mapping."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as error:
        raise ParamsError(f"{path}: file missing") from error
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: must be a mapping of sections, got {type(raw).__name__}")
    return raw


def validated(path: Path, model: type[SectionT], raw: object, prefix: str = "") -> SectionT:
    """`raw` as `model`; ParamsError listing every problem as `<key>: <rule> (got <value>)`."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in (prefix, *item['loc']) if part != '')}: "
            f"{item['msg']} (got {item.get('input')!r})"
            for item in error.errors()
        )
        raise ParamsError(f"{path}: {problems}") from error


def load_sections(path: Path, *models: type[Section]) -> tuple:
    """The sections `models` name (their `SECTION`), read from one reading of `path`.

    A section missing from the file takes its defaults; the file's other sections are not
    looked at (a stage reads only its own)."""
    raw = read_yaml(path)
    return tuple(
        validated(path, model, raw.get(model.SECTION) or {}, model.SECTION) for model in models
    )


def load_section(path: Path, model: type[SectionT]) -> SectionT:
    """One section of params.yaml as `model` (see `load_sections`)."""
    (section,) = load_sections(path, model)
    return section
