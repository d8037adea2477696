"""The Evidently history: every run's snapshots in one local Evidently workspace.

`evidently ui --workspace reports/evidently_workspace` then shows, in one project, how
drift and reward scores move across runs and retraining. A snapshot file is added once:
its SHA-256 is kept in the run's metadata, so a rerun that did not remake it adds nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from social_reward.errors import SocialRewardError

SOURCE_KEY = "source_sha256"  # snapshot metadata: which file it came from, by content
PROJECT_DESCRIPTION = (
    "Social Reward pipeline runs: export drift against the production model's reference, "
    "and the reward's score distributions on held-out images."
)


@dataclass(frozen=True)
class Panel:
    """A dashboard panel: one line per series, a series being one snapshot label's runs."""

    tab: str
    title: str
    metric: str
    labels: dict[str, str]  # the metric's labels, e.g. which column
    series: tuple[str, ...]  # snapshot labels (add_snapshots tags each run with its label)


# The dashboard, one point per run. Several snapshot kinds carry the same metric (the
# evaluate stage's report runs DataDriftPreset too), so every series is filtered by its tag.
PANELS: tuple[Panel, ...] = (
    Panel(
        "Drift",
        "Share of drifted columns",
        "DriftedColumnsCount",
        {"value_type": "share"},
        ("drift features", "drift topics"),
    ),
    Panel(
        "Reward scores",
        "Mean reward score (test images)",
        "MeanValue",
        {"column": "social_reward"},
        ("reward scores",),
    ),
    Panel(
        "Reward scores",
        "Mean CLIP score (test images)",
        "MeanValue",
        {"column": "clip_score"},
        ("reward scores",),
    ),
)


class HistoryError(SocialRewardError, RuntimeError):
    """A snapshot that cannot be added to the workspace."""


@dataclass(frozen=True)
class HistoryRun:
    name: str
    timestamp: str
    tags: tuple[str, ...]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _dashboard():
    """PANELS as an Evidently dashboard model: tabs in order of first use."""
    from evidently.sdk.models import (
        DashboardModel,
        DashboardPanelPlot,
        DashboardTabModel,
        PanelMetric,
    )

    panels, tabs = [], {}
    for panel in PANELS:
        plot = DashboardPanelPlot(
            title=panel.title,
            subtitle=None,
            size="half",
            values=[
                PanelMetric(
                    legend=label, tags=[label], metric=panel.metric, metric_labels=panel.labels
                )
                for label in panel.series
            ],
            plot_params={"plot_type": "line"},
        )
        panels.append(plot)
        tabs.setdefault(panel.tab, []).append(plot.id)
    return DashboardModel(
        tabs=[DashboardTabModel(title=tab, panels=ids) for tab, ids in tabs.items()],
        panels=panels,
    )


def _layout(dashboard) -> list:
    """What a dashboard shows, ids left out: per tab, its panels as configured."""
    panels = {panel.id: panel.dict(exclude={"id"}) for panel in dashboard.panels}
    return [
        (tab.title, [panels.get(panel_id) for panel_id in tab.panels]) for tab in dashboard.tabs
    ]


def _project(workspace_dir: Path, project_name: str):
    """The workspace and its project, whose dashboard is PANELS (a stale one is replaced)."""
    from evidently.ui.workspace import Workspace

    workspace = Workspace.create(str(workspace_dir))
    found = workspace.search_project(project_name)
    if found:
        project = found[0]
    else:
        project = workspace.create_project(project_name, description=PROJECT_DESCRIPTION)
    dashboard = _dashboard()
    if _layout(workspace.get_dashboard(project.id)) != _layout(dashboard):
        # Saved whole: Evidently 0.7.23's add_panel lists a panel twice in an existing tab.
        workspace.save_dashboard(project.id, dashboard)
    return workspace, project


def add_snapshots(
    workspace_dir: Path,
    project_name: str,
    snapshots: dict[str, Path],
    metadata: dict[str, str],
    tags: tuple[str, ...] = (),
) -> list[str]:
    """Add each existing snapshot file (label -> path) to the workspace's project, once.

    Returns the labels added. A missing file is skipped (the drift stage writes none while
    there is no production reference); an unreadable one raises HistoryError.
    """
    from evidently.core.report import Snapshot

    workspace, project = _project(workspace_dir, project_name)
    known = {
        run.metadata.get(SOURCE_KEY)
        for run in (
            workspace.get_run(project.id, run_id) for run_id in workspace.list_runs(project.id)
        )
        if run is not None
    }
    added = []
    for label, path in snapshots.items():
        if not path.is_file():
            continue
        digest = _sha256(path)
        if digest in known:
            continue
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
            saved["metadata"] = {**saved.get("metadata", {}), **metadata}
            saved["metadata"].update({SOURCE_KEY: digest, "label": label})
            saved["tags"] = sorted({*saved.get("tags", []), label, *tags})
            snapshot = Snapshot.load_dict(saved)
        except (ValueError, TypeError, AttributeError) as error:
            raise HistoryError(
                f"{path}: not an Evidently snapshot ({type(error).__name__}: "
                f"{str(error).splitlines()[0]}); rule: a full snapshot as the stages save it "
                "(its metric_results and widgets), e.g. reports/drift/features.snapshot.json"
            ) from error
        workspace.add_run(project.id, snapshot, name=f"{label} · {metadata.get('run', '')}")
        known.add(digest)
        added.append(label)
    return added


def read_runs(workspace_dir: Path, project_name: str) -> list[HistoryRun]:
    """The project's runs, oldest first; empty when there is no workspace yet."""
    from evidently.ui.workspace import Workspace

    if not workspace_dir.is_dir():
        return []
    workspace = Workspace(str(workspace_dir))
    found = workspace.search_project(project_name)
    if not found:
        return []
    project = found[0]
    runs = [workspace.get_run(project.id, run_id) for run_id in workspace.list_runs(project.id)]
    return sorted(
        (
            HistoryRun(run.name or "", str(run.timestamp), tuple(run.tags))
            for run in runs
            if run is not None
        ),
        key=lambda run: run.timestamp,
    )
