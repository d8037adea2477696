"""Section `report` of params.yaml: the run's site, model card and Evidently history."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from social_reward.config.section import Section


class ReportConfig(Section):
    """Stage `report`: the run's site, the reward's model card and the Evidently history."""

    SECTION = "report"

    site: Path = Path("reports/index.html")  # one page: every report, figure and plot
    model_card: Path = Path("reports/model_card.md")  # the champion carries it as README.md
    reward_dir: Path = Path("models/reward")
    params_file: Path = Path("params.yaml")  # shown on the site as it produced the run
    # `evidently ui --workspace reports/evidently_workspace`: every run adds its snapshots.
    workspace: Path = Path("reports/evidently_workspace")
    project: str = "social-reward"
    # Evidently snapshots (full JSON, as the stages save them) added per run, by label.
    snapshots: dict[str, Path] = Field(
        default_factory=lambda: {
            "drift features": Path("reports/drift/features.snapshot.json"),
            "drift topics": Path("reports/drift/topics.snapshot.json"),
            "reward scores": Path("reports/evaluate/scores.snapshot.json"),
        }
    )
    plot_width: int = Field(520, gt=0)  # pixels of each DVC plot drawn into the site
