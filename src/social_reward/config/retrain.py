"""Section `retrain` of params.yaml: the retrain flow (not a DVC stage: it runs them)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field, model_validator

from social_reward.config.section import Section


class RetrainSchedule(Section):
    """When the served `retrain` flow runs: a cron expression in a time zone."""

    cron: str = "0 3 * * *"  # daily at 03:00
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _cron_parses(self) -> RetrainSchedule:
        from cronsim import CronSim, CronSimError

        try:
            CronSim(self.cron, datetime.now(UTC))
        except CronSimError as error:
            raise ValueError(
                f"cron {self.cron!r} is not a cron expression; rule: five fields "
                "(minute hour day-of-month month day-of-week), e.g. '0 3 * * *'"
            ) from error
        return self


class RunVersioning(Section):
    """What a retrain run leaves in git and on the DVC remote, so that its champion can be
    rebuilt elsewhere: `git checkout <commit> && dvc pull`."""

    commit: bool = True  # commit `paths` on the checked-out branch after the pipeline
    # The files a run changes that git versions: the export's .dvc file, dvc.lock, and the
    # uncached metrics and plots (DVC's cache holds the rest; dvc.lock names it).
    paths: tuple[str, ...] = ("data.dvc", "dvc.lock", "metrics", "plots")
    tag_prefix: str = "retrain/"  # each run's commit is tagged <prefix><UTC time>
    author: str = "Social Reward retrain <retrain@social-reward.invalid>"
    push_dvc: bool = True  # `dvc push` to the default remote, when one is configured
    git_remote: str | None = None  # also push the branch and the tag there (none: local only)


class RetrainConfig(Section):
    """Flow `retrain`: a fresh export from the drop folder, and champion/challenger promotion."""

    SECTION = "retrain"

    # One folder per fresh export: <name>/data/ (the export) and, for a simulated export,
    # <name>/truth/appeal.parquet. The newest one later than the export in place is taken.
    inbox: Path = Path("inbox")  # <name>/data/ (+ truth), taken once <name>/READY exists
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
    versioning: RunVersioning = RunVersioning()
