"""The run's site: one page per run, `reports/index.html`, for its reviewers (stage `report`).

It links every report of the run, shows the gates and key figures, the image grids and the
DVC plots (the Vega-Lite specs `dvc plots show --json` fills, drawn to SVG), the reward's
model card, the export's `data.dvc` hash, the git commit and the parameters. It also adds
the run's Evidently snapshots to the local Evidently workspace (`history`).

Paths are relative to the DVC project's root, where DVC runs the stage.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path

import yaml

from social_reward.config.params import Params
from social_reward.config.report import ReportConfig
from social_reward.data.export import format_utc
from social_reward.errors import SocialRewardError
from social_reward.ops.dvc_command import DvcError, checked_dvc
from social_reward.ops.evidently_history import add_snapshots, read_runs
from social_reward.ops.model_card import model_card, write_model_card
from social_reward.ops.provenance import provenance
from social_reward.ops.summary import GATES, KEY_METRICS, metrics_file, report_files, stage_metrics

TEMPLATES = "social_reward.ops.templates"
SITE_TEMPLATE = "report.html.j2"
MARKDOWN_EXTENSIONS = ("tables", "fenced_code")


class ReportError(SocialRewardError, RuntimeError):
    """A file the site needs is missing or unreadable."""


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ReportError(
            f"{path}: file missing; rule: the report stage runs after the stage that writes "
            "it (run `dvc repro`, e.g. `dvc repro evaluate`)"
        ) from error
    except json.JSONDecodeError as error:
        raise ReportError(f"{path}: not valid JSON ({error})") from error


def dvc_plots(project: Path = Path(".")) -> dict[str, list[dict]]:
    """`dvc plots show --json`: per plot, its filled Vega-Lite spec or its image path."""
    # DVC copies image plots into the output folder; the site links the originals instead.
    with tempfile.TemporaryDirectory(prefix="dvc-plots-") as copies:
        try:
            shown = json.loads(checked_dvc(["plots", "show", "--json", "-o", copies], project))
        except DvcError as error:
            raise ReportError(f"dvc plots show: {error}") from error
    if shown.get("errors"):
        raise ReportError(f"dvc plots show: {json.dumps(shown['errors'])}")
    return shown.get("data", {})


def draw_plots(
    plots: dict[str, list[dict]], site_dir: Path, width: int, project: Path = Path(".")
) -> tuple[list, list]:
    """(Vega-Lite plots drawn as SVG, image plots as paths relative to the site).

    An image plot's name is its path in the project (the site links the file itself)."""
    import vl_convert

    drawn, images = [], []
    for name, entries in plots.items():
        for entry in entries:
            if entry.get("type") == "vega":
                spec = {**entry["content"], "width": width}
                drawn.append({"name": name, "svg": vl_convert.vegalite_to_svg(spec)})
            elif entry.get("type") == "image":
                images.append({"name": name, "src": _relative(project / name, site_dir)})
    return drawn, images


def _relative(path: Path, site_dir: Path) -> str:
    return Path(os.path.relpath(path.resolve(), site_dir.resolve())).as_posix()


def _key_figures(params: Params, project: Path) -> list[dict]:
    # The gates' summaries are sentences: the gates table shows them.
    rows = [
        row
        for row in stage_metrics(params, project, tuple(KEY_METRICS))
        if row["metric"] != "summary"
    ]
    for row in rows:
        value = row["value"]
        row["shown"] = f"{value:.4g}" if isinstance(value, float) else str(value)
    return rows


def _gates(params: Params) -> list[dict]:
    gates = []
    for stage in GATES:
        metrics = _read_json(metrics_file(params, stage))
        gates.append(
            {
                "stage": stage,
                "passed": bool(metrics.get("passed")),
                "summary": metrics.get("summary", ""),
            }
        )
    return gates


def build_model_card(params: Params, run: dict) -> str:
    """The model card's Markdown, from the run's metrics and the reward's config."""
    config = params.report
    return model_card(
        params,
        pairs_metrics=_read_json(params.pairs.metrics),
        evaluation=_read_json(params.evaluate.metrics),
        reward_config=_read_json(config.reward_dir / "config.json"),
        provenance=run,
    )


def render_site(context: dict) -> str:
    from jinja2 import Environment, StrictUndefined

    environment = Environment(
        autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True
    )
    template = files(TEMPLATES).joinpath(SITE_TEMPLATE).read_text(encoding="utf-8")
    return environment.from_string(template).render(**context)


def build_site(params: Params, project: Path = Path(".")) -> dict:
    """Write the model card, add the run's snapshots to the workspace, write the site."""
    import markdown

    config: ReportConfig = params.report
    site_dir = config.site.parent
    run = provenance(params)
    built = format_utc(datetime.now(UTC))
    run_name = f"{built} data {str(run['data_dvc_md5'])[:8]} commit {str(run['git_commit'])[:8]}"

    card = build_model_card(params, run)
    write_model_card(config.model_card, card)
    card_body = card.split("---\n", 2)[-1]  # the front matter is for model hubs, not the page

    added = add_snapshots(
        config.workspace,
        config.project,
        config.snapshots,
        metadata={
            "run": run_name,
            "data_dvc_md5": str(run["data_dvc_md5"]),
            "git_commit": str(run["git_commit"]),
        },
    )
    history = read_runs(config.workspace, config.project)

    drawn, images = draw_plots(dvc_plots(project), site_dir, config.plot_width, project)
    reports = [
        {"name": path.relative_to(project.resolve()).as_posix(), "href": _relative(path, site_dir)}
        for path in report_files(params, project)
        if path.suffix == ".html" and path.resolve() != config.site.resolve()
    ]
    context = {
        "built": built,
        "run": run,
        "gates": _gates(params),
        "figures": _key_figures(params, project),
        "reports": reports,
        "images": images,
        "plots": drawn,
        "model_card_html": markdown.markdown(card_body, extensions=list(MARKDOWN_EXTENSIONS)),
        "model_card_href": _relative(config.model_card, site_dir),
        "model_card": config.model_card.as_posix(),
        "history": history,
        "history_added": added,
        "workspace": config.workspace.as_posix(),
        "params_yaml": yaml.safe_dump(
            yaml.safe_load(config.params_file.read_text(encoding="utf-8")), sort_keys=False
        ),
    }
    config.site.parent.mkdir(parents=True, exist_ok=True)
    config.site.write_text(render_site(context), encoding="utf-8")
    return {
        "site": str(config.site),
        "model_card": str(config.model_card),
        "reports": len(reports),
        "plots": len(drawn),
        "images": len(images),
        "snapshots_added": added,
        "history_runs": len(history),
    }
