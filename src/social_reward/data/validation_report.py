"""The validation report: a self-contained HTML page (no external assets) for people."""

from __future__ import annotations

import html
import os
from typing import TYPE_CHECKING

from social_reward.config.validate import ValidateConfig
from social_reward.data.export import TABLE_FILES, Manifest, format_utc
from social_reward.data.gx_project import checkpoint_name

if TYPE_CHECKING:
    from social_reward.data.validation import RuleOutcome


def _cell(value: object) -> str:
    return html.escape(str(value))


def data_docs_link(config: ValidateConfig) -> str:
    """GX's Data Docs index, relative to the report's folder (both are stage outputs)."""
    index = config.data_docs_dir / "index.html"
    return os.path.relpath(index, config.report.parent).replace(os.sep, "/")


def render_report(
    summary: dict,
    rules: list[RuleOutcome],
    manifest: Manifest,
    config: ValidateConfig,
    dependant_rules: tuple[str, ...],
) -> str:
    """A self-contained HTML page (no external assets) of the validation results;
    `dependant_rules` are the reasons of rows quarantined because a row they need was."""
    verdict = (
        "passed"
        if summary["passed"]
        else "FAILED: quarantine above the limit in " + ", ".join(summary["tables_over_limit"])
    )
    table_rows = "".join(
        f"<tr><td>{_cell(name)}</td><td>{t['rows_in']}</td><td>{t['rows_kept']}</td>"
        f"<td>{t['rows_quarantined']}</td><td>{t['quarantined_share']:.2%}</td>"
        f"<td><code>{_cell(config.quarantine_dir / TABLE_FILES[name])}</code></td></tr>"
        for name, t in summary["tables"].items()
    )
    rule_rows = "".join(
        f"<tr class='{'bad' if rule.failed_rows else 'ok'}'><td>{_cell(rule.table)}</td>"
        f"<td>{_cell(rule.rule)}</td><td><code>{_cell(rule.expectation)}</code></td>"
        f"<td>{'ok' if not rule.failed_rows else len(rule.failed_rows)}</td>"
        f"<td>{_cell(rule.samples) if rule.samples else ''}</td></tr>"
        for rule in rules
    )
    cascade_rows = "".join(
        f"<tr class='bad'><td>{_cell(name)}</td><td>{_cell(rule)}</td><td>{count}</td></tr>"
        for name, t in summary["tables"].items()
        for rule, count in t["quarantined_per_rule"].items()
        if rule in dependant_rules
    )
    checkpoints = ", ".join(f"<code>{_cell(checkpoint_name(name))}</code>" for name in TABLE_FILES)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Validation of {_cell(config.export_dir)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 2rem; }}
td, th {{ border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; vertical-align: top; }}
th {{ background: #f0f0f0; }} tr.bad td {{ background: #fdecea; }}
tr.ok td:nth-child(4) {{ color: #2a7; }}
.verdict {{ font-size: 1.2rem; font-weight: bold; }}
</style></head><body>
<h1>Validation of the export <code>{_cell(config.export_dir)}</code></h1>
<p>Exported at {_cell(format_utc(manifest.exported_at))}; source: {_cell(manifest.source)}.
Rules: the expectation suites in <code>{_cell(config.expectations_dir)}</code>, run with Great
Expectations. Quarantine limit per table: {config.max_quarantine_share:.2%}.</p>
<p id="data-docs">Every rule's full result, as Great Expectations shows it:
<a href="{_cell(data_docs_link(config))}">Data Docs</a> (checkpoints {checkpoints}).</p>
<p class="verdict" id="verdict">{_cell(verdict)}</p>
<h2>Tables</h2>
<table id="tables"><tr><th>table</th><th>rows in</th><th>kept</th><th>quarantined</th>
<th>share</th><th>quarantine file</th></tr>{table_rows}</table>
<h2>Rules</h2>
<table id="rules"><tr><th>table</th><th>rule</th><th>expectation</th><th>failed rows</th>
<th>sample of failing values</th></tr>{rule_rows}</table>
<h2>Rows that depend on quarantined rows</h2>
<table id="dependants"><tr><th>table</th><th>reason</th><th>rows</th></tr>{cascade_rows}</table>
</body></html>
"""
