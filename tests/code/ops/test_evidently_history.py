"""The Evidently history: real snapshots into a real local workspace, read by `evidently ui`."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from social_reward.config.report import ReportConfig
from social_reward.evidently_snapshots import save_snapshot, snapshot_path
from social_reward.ops.evidently_history import PANELS, HistoryError, add_snapshots, read_runs

COLUMNS = ["social_reward", "clip_score"]


def score_snapshot(folder: Path, shift: float) -> Path:
    """An Evidently report on score distributions, saved as the evaluate stage saves it."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset, DataSummaryPreset

    rng = np.random.default_rng(0)
    reference = pd.DataFrame(rng.normal(size=(60, 2)), columns=COLUMNS)
    current = pd.DataFrame(rng.normal(shift, 1.0, size=(60, 2)), columns=COLUMNS)
    definition = DataDefinition(numerical_columns=COLUMNS)
    snapshot = Report([DataSummaryPreset(columns=COLUMNS), DataDriftPreset(columns=COLUMNS)]).run(
        Dataset.from_pandas(current, definition), Dataset.from_pandas(reference, definition)
    )
    save_snapshot(snapshot, folder / "scores.html")
    return snapshot_path(folder / "scores.html")


def test_each_snapshot_is_added_once_and_missing_ones_are_skipped(tmp_path):
    workspace = tmp_path / "workspace"
    first = score_snapshot(tmp_path / "run-1", 0.0)
    snapshots = {"reward scores": first, "drift features": tmp_path / "none.snapshot.json"}

    assert add_snapshots(workspace, "social-reward", snapshots, {"run": "one"}) == ["reward scores"]
    assert add_snapshots(workspace, "social-reward", snapshots, {"run": "one"}) == []  # a rerun
    second = score_snapshot(tmp_path / "run-2", 1.0)
    added = add_snapshots(
        workspace, "social-reward", {"reward scores": second}, {"run": "two"}, ("retrain",)
    )
    assert added == ["reward scores"]

    runs = read_runs(workspace, "social-reward")
    assert [run.name for run in runs] == ["reward scores · one", "reward scores · two"]
    assert runs[1].tags == ("retrain", "reward scores")
    assert read_runs(tmp_path / "no-workspace", "social-reward") == []


def _stored_dashboard(workspace: Path) -> list:
    """Per tab: its panels' ids, titles and series (legend, tags), as the workspace keeps them."""
    from evidently.ui.workspace import Workspace

    store = Workspace(str(workspace))
    dashboard = store.get_dashboard(store.search_project("social-reward")[0].id)
    panels = {panel.id: panel for panel in dashboard.panels}
    return [
        (
            tab.title,
            [
                (
                    panel_id,
                    panels[panel_id].title,
                    [(value.legend, value.tags) for value in panels[panel_id].values],
                )
                for panel_id in tab.panels
            ],
        )
        for tab in dashboard.tabs
    ]


def test_the_dashboard_is_panels_one_tagged_series_a_label_and_a_stale_one_is_replaced(
    tmp_path,
):
    from evidently.sdk.models import (
        DashboardModel,
        DashboardPanelPlot,
        DashboardTabModel,
        PanelMetric,
    )
    from evidently.ui.workspace import Workspace

    # Every series names a label the `report` stage adds snapshots under.
    assert {label for panel in PANELS for label in panel.series} <= set(ReportConfig().snapshots)
    workspace = tmp_path / "workspace"
    snapshot = score_snapshot(tmp_path / "run-1", 0.0)
    add_snapshots(workspace, "social-reward", {"reward scores": snapshot}, {"run": "one"})

    def shown(stored: list) -> list:
        return [(tab, [(title, series) for _id, title, series in panels]) for tab, panels in stored]

    expected: dict[str, list] = {}
    for panel in PANELS:
        series = [(label, [label]) for label in panel.series]
        expected.setdefault(panel.tab, []).append((panel.title, series))
    first = _stored_dashboard(workspace)
    assert shown(first) == list(expected.items())
    ids = [panel_id for _tab, panels in first for panel_id, _title, _series in panels]
    assert len(ids) == len(set(ids)) == len(PANELS)  # each panel listed once

    # A workspace kept from before (one untagged series mixing every snapshot kind) gets
    # PANELS on the next add; an up-to-date one is left as it is.
    store = Workspace(str(workspace))
    project_id = store.search_project("social-reward")[0].id
    old = DashboardPanelPlot(
        title="Share of drifted columns",
        subtitle=None,
        size="half",
        values=[PanelMetric(legend="Share of drifted columns", metric="DriftedColumnsCount")],
        plot_params={"plot_type": "line"},
    )
    tab = DashboardTabModel(title="Drift", panels=[old.id, old.id])
    store.save_dashboard(project_id, DashboardModel(tabs=[tab], panels=[old]))
    add_snapshots(workspace, "social-reward", {"reward scores": snapshot}, {"run": "one"})
    replaced = _stored_dashboard(workspace)
    assert shown(replaced) == list(expected.items())
    add_snapshots(workspace, "social-reward", {"reward scores": snapshot}, {"run": "one"})
    assert _stored_dashboard(workspace) == replaced  # same panel ids: not rewritten


def test_a_file_that_is_not_a_snapshot_is_refused_and_nothing_is_added(tmp_path):
    workspace = tmp_path / "workspace"
    results_only = tmp_path / "scores.json"  # the results JSON, not the full snapshot
    results_only.write_text(json.dumps({"metrics": [], "tests": []}))
    with pytest.raises(HistoryError, match=r"scores.json: not an Evidently snapshot .*rule: "):
        add_snapshots(workspace, "social-reward", {"reward scores": results_only}, {"run": "x"})
    assert read_runs(workspace, "social-reward") == []
