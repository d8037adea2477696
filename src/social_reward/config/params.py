"""All of params.yaml at once, for what needs more than a stage's own sections: the CLI's
`overrides`, the report (it shows every stage), the retrain flow and its registry.

A stage reads only its own sections (`section.load_sections`), so that DVC's code
dependencies of a stage cover exactly the configuration it uses.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from social_reward.config.drift import DriftConfig
from social_reward.config.evaluate import EvaluateConfig
from social_reward.config.evaluate_generator import EvaluateGeneratorConfig
from social_reward.config.finetune import FinetuneConfig
from social_reward.config.generator import GeneratorModelConfig
from social_reward.config.generator_pretrain import GeneratorPretrainConfig
from social_reward.config.model import ModelConfig
from social_reward.config.pairs import PairsConfig
from social_reward.config.pretrain import PretrainConfig
from social_reward.config.profile import ProfileConfig
from social_reward.config.report import ReportConfig
from social_reward.config.retrain import RetrainConfig
from social_reward.config.section import DEFAULT_PARAMS, read_yaml, validated
from social_reward.config.train import TrainConfig
from social_reward.config.validate import ValidateConfig


class Params(BaseModel):
    """Every section of params.yaml; a section left out takes its defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    profile: ProfileConfig = ProfileConfig()
    # `validate` is a method of pydantic models: the field is `validate_`, the key `validate`.
    validate_: ValidateConfig = Field(ValidateConfig(), alias="validate")
    pairs: PairsConfig = PairsConfig()
    drift: DriftConfig = DriftConfig()
    model: ModelConfig = ModelConfig()
    pretrain: PretrainConfig = PretrainConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    generator: GeneratorModelConfig = GeneratorModelConfig()
    generator_pretrain: GeneratorPretrainConfig = GeneratorPretrainConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    evaluate_generator: EvaluateGeneratorConfig = EvaluateGeneratorConfig()
    report: ReportConfig = ReportConfig()
    retrain: RetrainConfig = RetrainConfig()

    def section(self, name: str):
        """A section by its key in params.yaml (`validate` included)."""
        return self.validate_ if name == "validate" else getattr(self, name)


def load_params(path: Path = DEFAULT_PARAMS) -> Params:
    """Read and check the whole of `params.yaml`; errors name the file, the key and the rule."""
    return validated(path, Params, read_yaml(path))
