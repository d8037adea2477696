"""The report stage's error paths (the site itself is built and opened in a browser by
tests/pipeline/test_dvc_pipeline.py, on a real pipeline run)."""

import json

import pytest

from social_reward.ops.site import ReportError, draw_plots, dvc_plots
from tests.conftest import run


def test_the_stage_names_the_missing_metrics_file_and_what_writes_it(tmp_path):
    (tmp_path / "params.yaml").write_text("{}\n")
    result = run(["social-reward", "report"], cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert "error: metrics/pairs.json: file missing; rule: the report stage runs after" in (
        result.stderr
    )
    assert not (tmp_path / "reports" / "index.html").exists()


def test_a_plot_dvc_cannot_load_is_an_error_that_names_it(tmp_path):
    run(["git", "init", "-q"], cwd=tmp_path)
    run(["dvc", "init", "-q"], cwd=tmp_path)
    (tmp_path / "dvc.yaml").write_text("plots:\n  - plots/train.csv:\n      x: epoch\n")
    with pytest.raises(ReportError, match=r"dvc plots show: .*plots/train.csv.*No such file"):
        dvc_plots(tmp_path)


def test_a_vega_lite_plot_is_drawn_as_svg_and_an_image_linked_relative_to_the_site(tmp_path):
    spec = {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"values": [{"epoch": 0, "loss": 1.0}, {"epoch": 1, "loss": 0.5}]},
        "mark": "line",
        "encoding": {
            "x": {"field": "epoch", "type": "quantitative"},
            "y": {"field": "loss", "type": "quantitative"},
        },
    }
    copy = tmp_path / "dvc_plots" / "workspace_plots_profile.png"  # where DVC copied it
    plots = {
        "plots/train.csv": [{"type": "vega", "revisions": ["workspace"], "content": spec}],
        "plots/profile.png": [{"type": "image", "revisions": ["workspace"], "url": str(copy)}],
    }
    drawn, images = draw_plots(plots, tmp_path / "reports", width=300, project=tmp_path)
    assert drawn[0]["name"] == "plots/train.csv" and drawn[0]["svg"].startswith("<svg")
    assert 'width="3' in drawn[0]["svg"]  # about 300 pixels plus axes
    assert images == [{"name": "plots/profile.png", "src": "../plots/profile.png"}]
    assert json.dumps(spec)  # the spec itself is not changed
    assert "width" not in spec
