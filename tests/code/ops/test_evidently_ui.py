"""The Evidently UI checked in a real browser: a workspace filled as the `report` stage fills
it, served by the real `evidently ui`, its project dashboard opened in Chromium."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from social_reward.config.report import ReportConfig
from social_reward.ops.evidently_history import PANELS, add_snapshots
from tests.browser import SCREENSHOTS, chromium
from tests.code.ops.test_evidently_history import score_snapshot
from tests.evidently_ui import HOST, evidently_ui

PROJECT = ReportConfig().project
# Two snapshots per run, as the `report` stage adds them: the reward scores and the feature
# drift (score_snapshot's report runs DataDriftPreset, so it serves as both), shifted apart:
# the scores' own drift share rises (0, then 1) while the features' falls (1, then 0). No
# "drift topics" snapshot: its series has no data. Pipeline runs are hours or days apart;
# snapshots made here are not, and the dashboard's time axis is to the second: the points
# of both runs would share one x. Each run gets its own day.
RUNS = {
    "one": ({"reward scores": 0.0, "drift features": 1.3}, "2025-01-01T12:00:00"),
    "two": ({"reward scores": 1.0, "drift features": 0.3}, "2025-01-02T12:00:00"),
}
FILLED = ("reward scores", "drift features")  # the labels that have data
RENDER_TIMEOUT_MS = 20_000


@pytest.fixture
def workspace(tmp_path) -> Path:
    folder = tmp_path / "evidently_workspace"
    for run, (shifts, timestamp) in RUNS.items():
        snapshots = {}
        for label, shift in shifts.items():
            snapshot = score_snapshot(tmp_path / run / label.replace(" ", "-"), shift)
            saved = json.loads(snapshot.read_text(encoding="utf-8"))
            saved["timestamp"] = timestamp
            snapshot.write_text(json.dumps(saved), encoding="utf-8")
            snapshots[label] = snapshot
        added = add_snapshots(folder, PROJECT, snapshots, {"run": run})
        assert added == list(FILLED)
    return folder


@pytest.fixture
def ui(workspace, tmp_path) -> Iterator[str]:
    with evidently_ui(workspace, tmp_path / "evidently-ui.log") as base:
        yield base


def _panel(page, title: str):
    """The dashboard card whose heading is exactly `title`."""
    return page.locator(".MuiCard-root").filter(
        has=page.get_by_role("heading", name=title, exact=True)
    )


@pytest.mark.slow
def test_the_project_dashboard_draws_every_series_with_a_point_per_run(ui):
    from playwright.sync_api import expect

    projects = httpx.get(f"{ui}/api/projects", timeout=10).json()
    assert [project["name"] for project in projects] == [PROJECT]
    project_id = projects[0]["id"]
    snapshots = httpx.get(f"{ui}/api/projects/{project_id}/snapshots", timeout=10).json()
    assert len(snapshots) == 2 * len(RUNS)  # reward scores and drift features, per run
    # The dashboard as stored: each tab lists its PANELS once each, and every panel has a
    # series per snapshot label, filtered by that label's tag and named by it.
    dashboard = httpx.get(f"{ui}/api/v2/dashboards/{project_id}", timeout=10).json()
    panels = {panel["id"]: panel for panel in dashboard["panels"]}
    stored = {
        tab["title"]: [
            (
                panels[panel_id]["title"],
                [(value["legend"], value["tags"]) for value in panels[panel_id]["values"]],
            )
            for panel_id in tab["panels"]
        ]
        for tab in dashboard["tabs"]
    }
    expected: dict[str, list] = {}
    for panel in PANELS:
        series = [(label, [label]) for label in panel.series]
        expected.setdefault(panel.tab, []).append((panel.title, series))
    assert stored == expected

    console_errors: list[str] = []
    failed_local: list[str] = []
    external: list[str] = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on(
            "console",
            lambda message: (
                console_errors.append(message.text) if message.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: console_errors.append(str(error)))

        def request(request) -> None:
            if urlparse(request.url).hostname != HOST and not request.url.startswith("data:"):
                external.append(request.url)

        def failed(request) -> None:
            if urlparse(request.url).hostname == HOST:
                failed_local.append(f"{request.url}: {request.failure}")

        def response(response) -> None:
            if urlparse(response.url).hostname == HOST and response.status >= 400:
                failed_local.append(f"{response.url}: HTTP {response.status}")

        page.on("request", request)
        page.on("requestfailed", failed)
        page.on("response", response)

        # The UI's own route for a project's dashboard (its index.html serves /projects/*).
        page.goto(f"{ui}/projects/{project_id}", wait_until="load")
        expect(page.get_by_text(f"project id: {project_id}")).to_be_visible(
            timeout=RENDER_TIMEOUT_MS
        )
        for spec in PANELS:
            # Evidently 0.7.23's UI draws every panel on one page and shows no tabs; should a
            # later one show them, open the panel's tab first.
            tab_button = page.get_by_role("tab", name=spec.tab, exact=True)
            if tab_button.count():
                tab_button.click()
            panel = _panel(page, spec.title)
            expect(panel).to_have_count(1, timeout=RENDER_TIMEOUT_MS)
            expect(panel).to_be_visible()
            # A line through one mark per run for each series that has data, the legend
            # naming those series; one without data ("drift topics") is not drawn at all.
            drawn = [label for label in spec.series if label in FILLED]
            expect(panel.locator(".MuiChartsLegend-label")).to_have_text(drawn)
            expect(panel.locator("svg path.MuiLineElement-root")).to_have_count(len(drawn))
            marks = panel.locator("svg circle.MuiMarkElement-root")
            expect(marks).to_have_count(len(RUNS) * len(drawn))
            # The two runs' marks sit at two different times.
            points = sorted(
                (float(x), float(y))
                for x, y in marks.evaluate_all(
                    "marks => marks.map(mark => [mark.getAttribute('cx'), mark.getAttribute('cy')])"
                )
            )
            assert len({x for x, _y in points}) == len(RUNS), f"{spec.title}: marks at {points}"
            if "drift features" in spec.series:
                # The features' drift share, falling (y grows downwards), not the scores'.
                assert points[0][1] < points[1][1], f"{spec.title}: marks at {points}"
        page.wait_for_load_state("networkidle")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "evidently-ui-dashboard.png"), full_page=True)
        page.close()

    assert console_errors == []
    assert failed_local == []
    # The UI asks for nothing outside the local server (no fonts, no CDN, no telemetry):
    # on this offline machine any such request would fail, so none is allowed.
    assert external == []
