"""The drift report's summary page: the verdict per column, links to Evidently's reports."""

from __future__ import annotations

import html

import pandas as pd

from social_reward.config.drift import DriftConfig

INDEX_PAGE = "index.html"


def write_first_page(
    config: DriftConfig,
    metrics: dict,
    current: pd.DataFrame,
    numeric_columns: tuple[str, ...],
    categorical_columns: tuple[str, ...],
) -> None:
    """Without a reference: what this export's features look like (the future reference)."""
    summary = current[list(numeric_columns)].astype(float).describe().T
    shares = {
        column: current[column].astype(str).value_counts(normalize=True).round(3).to_dict()
        for column in categorical_columns
    }
    rows = "".join(
        f"<tr><td>{name}</td>" + "".join(f"<td>{value:.4g}</td>" for value in row) + "</tr>"
        for name, row in summary.iterrows()
    )
    categories = "".join(
        f"<li>{column}: {', '.join(f'{key} {value:.1%}' for key, value in values.items())}</li>"
        for column, values in shares.items()
    )
    (config.report_dir / INDEX_PAGE).write_text(
        f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Drift: no reference yet</title>
<style>body {{ font-family: system-ui, sans-serif; margin: 2rem; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .3rem .6rem; }}
</style></head><body>
<h1>Drift: no reference yet</h1>
<p id="summary">{html.escape(metrics["summary"])}</p>
<h2>This export's features</h2>
<table id="features"><tr><th>column</th>{"".join(f"<th>{c}</th>" for c in summary.columns)}</tr>
{rows}</table>
<ul>{categories}</ul>
</body></html>
""",
        encoding="utf-8",
    )


def write_index(
    config: DriftConfig, metrics: dict, features_report: str, topics_report: str
) -> None:
    """The verdict per column, with links to the Evidently reports of features and words."""
    rows = "".join(
        f"<tr class='{'bad' if result['drifted'] else 'ok'}'><td>{name}</td>"
        f"<td>{result['method']}</td><td>{result['score']:.4f}</td><td>{result['threshold']}</td>"
        f"<td>{'drifted' if result['drifted'] else 'ok'}</td></tr>"
        for name, result in metrics["columns"].items()
    )
    (config.report_dir / INDEX_PAGE).write_text(
        f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Drift against the reference</title>
<style>body {{ font-family: system-ui, sans-serif; margin: 2rem; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: .3rem .6rem; }}
tr.bad td {{ background: #fdecea; }}</style></head><body>
<h1>Drift of this export against the reference</h1>
<p id="summary">{html.escape(metrics["summary"])}</p>
<p>Reference: <code>{config.reference}</code>. Evidently reports:
<a href="{features_report}">image features</a>, <a href="{topics_report}">prompt words</a>.</p>
<table id="columns"><tr><th>column</th><th>method</th><th>score</th><th>threshold</th>
<th>status</th></tr>{rows}</table>
</body></html>
""",
        encoding="utf-8",
    )
