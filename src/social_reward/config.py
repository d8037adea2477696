"""Typed configuration: one model per section of `params.yaml`, read once per command.

Each DVC stage reads its own section; `dvc.yaml` names the same section under `params`,
so a change to it reruns exactly that stage.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from social_reward.generator.diffusion_config import DiffusionConfig
from social_reward.generator.finetune_config import FinetuneTrainerConfig
from social_reward.reward.contrastive_config import ContrastiveConfig
from social_reward.reward.trainer_config import RewardTrainerConfig

DEFAULT_PARAMS = Path("params.yaml")


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ProfileConfig(Section):
    """Stage `profile`: what the export looks like and how biased its raw counts are."""

    validated_dir: Path = Path("artifacts/validated")  # the export, as `validate` passed it
    truth: Path = Path("truth/appeal.parquet")  # used only when the file exists
    metrics: Path = Path("metrics/profile.json")
    plot: Path = Path("plots/profile.png")
    plot_sample: int = Field(4000, gt=0)  # images drawn in the scatter panels
    exposure_bin_days: float = Field(2.0, gt=0)
    seed: int = 0  # which images the scatter panels sample


class ValidateConfig(Section):
    """Stage `validate`: the contract's rules (expectations/*.json) run with Great Expectations."""

    export_dir: Path = Path("data")
    expectations_dir: Path = Path("expectations")
    validated_dir: Path = Path("artifacts/validated")
    quarantine_dir: Path = Path("artifacts/quarantine")
    report: Path = Path("reports/validate/index.html")
    metrics: Path = Path("metrics/validate.json")
    # The gate: a table with a larger share of quarantined rows stops the pipeline.
    max_quarantine_share: float = Field(0.05, ge=0.0, le=1.0)
    decode_workers: int = Field(2, gt=0)  # threads that open and decode the image files
    sample_rows: int = Field(5, gt=0)  # offending rows quoted per rule in errors and the report


class SplitShares(Section):
    """Shares of prompt groups per split; the test split takes what is left."""

    train: float = Field(0.7, gt=0.0, lt=1.0)
    val: float = Field(0.15, ge=0.0, lt=1.0)

    @property
    def hand_size(self) -> int:
        """Prompts dealt out together, so that the smallest split gets one of each hand."""
        smallest = min(
            share for share in (self.train, self.val, 1 - self.train - self.val) if share
        )
        return math.ceil(1 / smallest - 1e-9)

    @model_validator(mode="after")
    def _leave_a_test_split(self) -> SplitShares:
        if self.train + self.val >= 1.0:
            raise ValueError(f"train + val must leave a test split, got {self.train + self.val}")
        return self


class PairsConfig(Section):
    """Stage `pairs`: preference pairs (prompt, positive image, negative image) in DuckDB."""

    validated_dir: Path = Path("artifacts/validated")
    out_dir: Path = Path("artifacts/pairs")
    metrics: Path = Path("metrics/pairs.json")
    truth: Path = Path("truth/appeal.parquet")  # agreement with it is reported when it exists
    mode: Literal["debiased", "naive"] = "debiased"
    min_collective_remixes: int = Field(2, ge=1)  # distinct remixers other than the creator
    min_exposure_days: float = Field(7.0, ge=0.0)  # a negative had this long to be remixed ...
    min_impressions: int = Field(100, ge=0)  # ... and was shown this often, where logged
    max_publication_gap_days: float = Field(7.0, gt=0.0)
    reach_bucket_width: float = Field(1.0, gt=0.0)  # in log2(1 + followers): 1.0 = doubling
    match_generator: bool = True
    max_pairs_per_image: int = Field(10, gt=0)
    max_pairs_per_prompt: int = Field(200, gt=0)
    splits: SplitShares = SplitShares()
    seed: int = 0  # hash-based draws: sampling and splits
    threads: int | None = Field(None, gt=0)  # DuckDB threads (default: all cores)
    memory_limit: str = "3GB"  # DuckDB spills to disk beyond this


class DriftConfig(Section):
    """Stage `drift`: the export against the production model's reference, with Evidently."""

    validated_dir: Path = Path("artifacts/validated")
    features: Path = Path("artifacts/drift/features.parquet")  # this export's feature table
    # Stored with the production model; until one exists, the stage passes.
    reference: Path = Path("models/production/champion/drift_reference.parquet")
    report_dir: Path = Path("reports/drift")
    metrics: Path = Path("metrics/drift.json")
    # Distances, not p-values: their meaning does not change with sample size.
    numeric_method: Literal["wasserstein", "psi", "kl_div", "ed"] = "wasserstein"
    categorical_method: Literal["jensenshannon", "psi", "kl_div", "hellinger"] = "jensenshannon"
    threshold: float = Field(0.1, gt=0.0)
    max_drift_share: float = Field(0.3, ge=0.0, le=1.0)  # the gate
    allow_drift: bool = False  # a recorded, deliberate override of the gate
    topic_words: int = Field(30, gt=0)  # most frequent prompt words compared; others pooled
    decode_workers: int = Field(2, gt=0)


class ModelConfig(Section):
    """The backbone shared by the reward stages: an open_clip architecture and its weights."""

    backbone: str = "social-reward-tiny"  # an open_clip name, or a config in reward/model_configs
    # Local weights file or folder (or an open_clip tag where the network allows); empty:
    # the `pretrain` stage trains the backbone contrastively on the export.
    pretrained: str | None = None


class PretrainConfig(ContrastiveConfig):
    """Stage `pretrain`: CLIP training of the backbone on the export (test prompts excluded)."""

    pairs_dir: Path = Path("artifacts/pairs")  # images.parquet: every image with its split
    out_dir: Path = Path("models/backbone")
    metrics: Path = Path("metrics/pretrain.json")
    log: Path = Path("plots/pretrain.csv")


class TrainVariant(Section):
    """One trained reward: its pairs and where it is written."""

    pairs_dir: Path
    out_dir: Path


class TrainConfig(RewardTrainerConfig):
    """Stage `train`: the reward fine-tuned on pairs; `variants` are the DVC stage's foreach."""

    backbone_dir: Path = Path("models/backbone")
    variants: dict[str, TrainVariant] = Field(
        default_factory=lambda: {
            "reward": TrainVariant(
                pairs_dir=Path("artifacts/pairs"), out_dir=Path("models/reward")
            ),
            "ablation": TrainVariant(
                pairs_dir=Path("artifacts/pairs/ablation"), out_dir=Path("models/reward_ablation")
            ),
        }
    )
    metrics_dir: Path = Path("metrics/train")  # <variant>.json
    log_dir: Path = Path("plots/train")  # <variant>.csv: loss and validation accuracy per epoch
    checkpoint_dir: Path = Path("artifacts/checkpoints")  # resumable runs; removed when done


class ExternalWeights(Section):
    """Local weights of the external scorers; an empty entry leaves that scorer out."""

    pickscore: Path | None = None  # a transformers CLIPModel folder (PickScore_v1)
    hpsv2: Path | None = None  # HPS_v2(.1)_compressed.pt (an open_clip ViT-H-14 state dict)
    aesthetic: Path | None = None  # the LAION aesthetic MLP's state dict ...
    aesthetic_clip: Path | None = None  # ... and the ViT-L-14 CLIP weights it runs on
    imagereward: Path | None = None  # ImageReward.pt


class EvaluateConfig(Section):
    """Stage `evaluate`: every scorer side by side on the test split."""

    validated_dir: Path = Path("artifacts/validated")
    pairs_dir: Path = Path("artifacts/pairs")
    backbone_dir: Path = Path("models/backbone")  # its cosine is the CLIP-score baseline
    reward_dir: Path = Path("models/reward")
    ablation_dir: Path = Path("models/reward_ablation")  # the same training, other pairs mode
    truth: Path = Path("truth/appeal.parquet")  # simulated exports only; skipped when missing
    metrics: Path = Path("metrics/evaluate.json")
    report_dir: Path = Path("reports/evaluate")
    plots_dir: Path = Path("plots/evaluate")
    external: ExternalWeights = ExternalWeights()
    batch_size: int = Field(64, gt=0)  # images scored at a time
    bootstrap_resamples: int = Field(1000, gt=0)
    level: float = Field(0.95, gt=0.0, lt=1.0)  # of the intervals
    best_of_n: int = Field(20, gt=1)  # the paper's "best of 20 generations"
    best_of_n_draws: int = Field(200, gt=0)  # subsets drawn per prompt
    audit_pairs: int = Field(300, gt=0)  # rendered image pairs per confounder trace
    grid_prompts: int = Field(4, gt=0)  # rows of the best-of-N picture
    seed: int = 0


class GeneratorModelConfig(Section):
    """Section `generator`: which text-to-image model the generator stages tune."""

    # A local Stable Diffusion folder (diffusers' save_pretrained layout) or single checkpoint
    # file; empty: the small default of this repository, trained by `generator_pretrain`.
    pretrained: Path | None = None


class GeneratorPretrainConfig(DiffusionConfig):
    """Section `generator_pretrain`: the small default generator, trained on the export."""

    pairs_dir: Path = Path("artifacts/pairs")  # images.parquet: images and their prompts
    backbone_dir: Path = Path("models/backbone")  # its frozen text tower encodes prompts
    out_dir: Path = Path("models/generator_base")
    metrics: Path = Path("metrics/generator_pretrain.json")
    log: Path = Path("plots/generator_pretrain.csv")
    samples: Path = Path("reports/generator_pretrain/samples.png")
    sample_prompts: int = Field(8, gt=0)  # rows of the sample grid (training prompts)
    sample_seeds: int = Field(6, gt=0)
    sampling_steps: int = Field(20, gt=0)
    guidance: float = Field(3.0, ge=1)


class FinetuneConfig(FinetuneTrainerConfig):
    """Section `finetune`: LoRA adapters that raise the Social Reward of the generator."""

    pairs_dir: Path = Path("artifacts/pairs")  # training prompts: the pairs' train split
    base_dir: Path = Path("models/generator_base")
    reward_dir: Path = Path("models/reward")
    out_dir: Path = Path("models/generator")
    metrics: Path = Path("metrics/finetune.json")
    log: Path = Path("plots/finetune.csv")
    # CPU threads while training. DRaFT's backward through sampling gave different adapter
    # bytes from run to run with 2 threads and the same bytes with 1 (measured on the CI
    # profile), so 1 keeps `dvc repro --force` byte-identical; empty: torch's default.
    cpu_threads: int | None = Field(1, gt=0)


class JudgeConfig(Section):
    """The truth judge of simulated exports (an independent stand-in for a user study)."""

    image_size: int = Field(32, ge=8)
    width: int = Field(32, gt=0)
    epochs: int = Field(8, gt=0)
    batch_size: int = Field(64, gt=1)
    learning_rate: float = Field(2e-3, gt=0)


class EvaluateGeneratorConfig(Section):
    """Section `evaluate_generator`: base vs fine-tuned on held-out prompts and seeds."""

    pairs_dir: Path = Path("artifacts/pairs")  # held-out prompts: the pairs' test split
    validated_dir: Path = Path("artifacts/validated")  # the export the truth belongs to
    base_dir: Path = Path("models/generator_base")
    tuned_dir: Path = Path("models/generator")
    reward_dir: Path = Path("models/reward")
    backbone_dir: Path = Path("models/backbone")  # its cosine is the alignment judge
    truth: Path = Path("truth/appeal.parquet")  # simulated exports: the truth judge
    external: ExternalWeights = ExternalWeights()
    metrics: Path = Path("metrics/generator.json")
    plots_dir: Path = Path("plots/generator")
    report_dir: Path = Path("reports/generator")
    seeds_per_prompt: int = Field(40, gt=1)  # images per held-out prompt and model
    best_of_n: int = Field(20, gt=1)  # best-of-N at inference: groups of this many samples
    sampling_steps: int = Field(20, gt=0)
    guidance: float = Field(3.0, ge=1)
    batch_size: int = Field(64, gt=0)
    device: str = "cpu"  # where images are drawn and scored: "cuda" on a GPU machine
    bootstrap_resamples: int = Field(1000, gt=0)
    level: float = Field(0.95, gt=0.0, lt=1.0)
    grid_prompts: int = Field(6, gt=0)
    grid_seeds: int = Field(4, gt=0)
    judge: JudgeConfig = JudgeConfig()
    seed: int = 0

    @model_validator(mode="after")
    def _groups_fit(self) -> EvaluateGeneratorConfig:
        if self.best_of_n > self.seeds_per_prompt:
            raise ValueError(
                f"best_of_n ({self.best_of_n}) must not exceed seeds_per_prompt "
                f"({self.seeds_per_prompt}): the groups are drawn from those images"
            )
        return self


class ReportConfig(Section):
    """Stage `report`: the run's site, the reward's model card and the Evidently history."""

    site: Path = Path("reports/index.html")  # one page: every report, figure and plot
    model_card: Path = Path("models/reward/README.md")  # travels with the reward's weights
    reward_dir: Path = Path("models/reward")
    params_file: Path = Path("params.yaml")  # shown on the site as it produced the run
    # `evidently ui --workspace reports/evidently_workspace`: every run adds its snapshots.
    workspace: Path = Path("reports/evidently_workspace")
    project: str = "social-reward"
    # Evidently snapshots (full JSON, as the stages save them) added per run, by label.
    snapshots: dict[str, Path] = {
        "drift features": Path("reports/drift/features.snapshot.json"),
        "drift topics": Path("reports/drift/topics.snapshot.json"),
        "reward scores": Path("reports/evaluate/scores.snapshot.json"),
    }
    plot_width: int = Field(520, gt=0)  # pixels of each DVC plot drawn into the site


class RetrainSchedule(Section):
    """When the served `retrain` flow runs: a cron expression in a time zone."""

    cron: str = "0 3 * * *"  # daily at 03:00
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _cron_parses(self) -> RetrainSchedule:
        from datetime import UTC, datetime

        from cronsim import CronSim, CronSimError

        try:
            CronSim(self.cron, datetime.now(UTC))
        except CronSimError as error:
            raise ValueError(
                f"cron {self.cron!r} is not a cron expression; rule: five fields "
                "(minute hour day-of-month month day-of-week), e.g. '0 3 * * *'"
            ) from error
        return self


class RetrainConfig(Section):
    """Flow `retrain`: a fresh export from the drop folder, and champion/challenger promotion."""

    # One folder per fresh export: <name>/data/ (the export) and, for a simulated export,
    # <name>/truth/appeal.parquet. The newest one later than the export in place is taken.
    inbox: Path = Path("inbox")
    rejected_dir: Path = Path("inbox/rejected")  # exports a gate stopped, with the reason
    intake_dir: Path = Path("artifacts/intake")  # the fresh export's check, before it is used
    intake_report_dir: Path = Path("reports/intake")
    production_dir: Path = Path("models/production")  # champion/: the production model
    registry: Path = Path("models/registry.jsonl")  # one line per decision
    lock: Path = Path("models/retrain.lock")  # one retrain run at a time
    lock_timeout_s: float = Field(60.0, ge=0.0)
    # Promotion: the challenger's pairwise accuracy minus the champion's, on the same fresh
    # test pairs (prompts the champion trained on are left out), must reach this.
    min_improvement: float = Field(0.01, ge=-1.0, le=1.0)
    batch_size: int = Field(64, gt=0)
    bootstrap_resamples: int = Field(1000, gt=0)
    level: float = Field(0.95, gt=0.0, lt=1.0)
    seed: int = 0
    schedule: RetrainSchedule = RetrainSchedule()


class Params(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    profile: ProfileConfig = ProfileConfig()
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
