"""The validate stage's Great Expectations project (expectations/gx) and its Data Docs.

The committed project is what `social-reward gx-project` generates; a run goes through its
checkpoints, writes nothing under expectations/ and builds Data Docs beside the report,
which a browser shows offline with no error and no failed request.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from social_reward.data.export import TABLE_FILES
from social_reward.data.gx_project import (
    GX_DIR,
    GXProjectError,
    checkpoint_name,
    project_files,
    suite_id,
    write_gx_project,
)
from social_reward.data.validation import validate_export
from tests.browser import SCREENSHOTS, check_page, chromium, local_target
from tests.conftest import REPO_ROOT, stage_config, validate_into

EXPECTATIONS = REPO_ROOT / "expectations"


def snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under `folder`, ignored by git or not, with its mtime and bytes."""
    return {
        path.relative_to(folder).as_posix(): (path.stat().st_mtime_ns, path.read_bytes())
        for path in sorted(folder.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def contents(folder: Path) -> dict[str, bytes]:
    return {name: data for name, (_, data) in snapshot(folder).items()}


@pytest.fixture(scope="module")
def validated(small_export, tmp_path_factory) -> Path:
    """validate on the small export with the repository's expectations/, twice into the same
    folder: the second run's outputs (each run replaces the last one's)."""
    out = tmp_path_factory.mktemp("validated-with-data-docs")
    before = snapshot(EXPECTATIONS)
    runs = []
    for _ in range(2):
        assert validate_into(small_export.export_dir, out)["passed"]
        runs.append({folder: contents(out / folder) for folder in ("gx", "data_docs")})
    assert snapshot(EXPECTATIONS) == before, "a run wrote under expectations/"
    assert runs[0] == runs[1], "GX's results or Data Docs differ between two runs"
    return out


def test_the_committed_gx_project_is_what_the_generator_writes(tmp_path):
    generated = write_gx_project(tmp_path / "expectations")
    assert generated == tmp_path / "expectations" / GX_DIR
    assert project_files(generated) == project_files(EXPECTATIONS / GX_DIR), (
        "expectations/gx is out of date: run `social-reward gx-project` and commit it"
    )
    assert sorted(project_files(generated)) == sorted(
        [".gitignore", "great_expectations.yml"]
        + [f"checkpoints/{checkpoint_name(table)}.json" for table in TABLE_FILES]
        + [f"validation_definitions/{table}.json" for table in TABLE_FILES]
    )
    for table in TABLE_FILES:
        checkpoint = json.loads(
            (generated / "checkpoints" / f"{checkpoint_name(table)}.json").read_text()
        )
        assert checkpoint["result_format"] == "COMPLETE"
        assert [action["type"] for action in checkpoint["actions"]] == ["update_data_docs"]
        definition = json.loads(
            (generated / "validation_definitions" / f"{table}.json").read_text()
        )
        assert definition["suite"] == {"name": table, "id": suite_id(table)}
        assert definition["data"]["asset"]["name"] == table


def test_a_missing_or_outdated_gx_project_is_an_error_naming_the_command(small_export, tmp_path):
    rules = tmp_path / "expectations"
    rules.mkdir()
    for file in EXPECTATIONS.glob("*.json"):
        (rules / file.name).write_bytes(file.read_bytes())
    config = stage_config(
        "validate",
        export_dir=small_export.export_dir,
        expectations_dir=rules,
        validated_dir=tmp_path / "validated",
        quarantine_dir=tmp_path / "quarantine",
        report=tmp_path / "report" / "index.html",
        metrics=tmp_path / "validate.json",
        verdict=tmp_path / "gates" / "validate.json",
    )
    with pytest.raises(GXProjectError) as error:
        validate_export(config)
    assert str(error.value) == (
        f"{rules}/gx/great_expectations.yml: the Great Expectations project is missing; "
        "`social-reward gx-project` writes it"
    )
    assert sorted(rules.iterdir()) == sorted(
        rules / file.name for file in EXPECTATIONS.glob("*.json")
    )

    write_gx_project(rules, tables=["users", "images"])  # a project from before a new table
    with pytest.raises(
        GXProjectError,
        match="no checkpoint 'validate_remixes' for table 'remixes'; `social-reward gx-project`",
    ):
        validate_export(config)


def test_a_run_keeps_gx_results_and_suites_beside_the_report_with_stable_ids(validated):
    suites = validated / "gx" / "expectations"
    for table in TABLE_FILES:
        suite = json.loads((suites / f"{table}.json").read_text())
        assert suite["id"] == suite_id(table)
        rules = json.loads((EXPECTATIONS / f"{table}.json").read_text())["expectations"]
        assert [item["meta"]["rule"] for item in suite["expectations"]][: len(rules)] == [
            item["meta"]["rule"] for item in rules
        ]
        (result,) = (validated / "gx" / "validations" / table).rglob("*.json")
        assert result.parent.parent.name == checkpoint_name(table)  # the run's name
        assert json.loads(result.read_text())["success"] is True
    # The second run replaced the first one's results and pages.
    assert len(list((validated / "data_docs" / "validations").rglob("*.html"))) == len(TABLE_FILES)


def test_the_report_links_to_the_data_docs(validated):
    page = (validated / "validate.html").read_text()
    assert '<a href="data_docs/index.html">Data Docs</a>' in page
    for table in TABLE_FILES:
        assert f"<code>{checkpoint_name(table)}</code>" in page
    assert not re.search(r"https?://|<link|<script|src=", page)


def test_the_data_docs_render_offline_with_every_checkpoint_and_suite(validated):
    index = validated / "data_docs" / "index.html"
    with chromium() as browser:
        check = check_page(browser, index, SCREENSHOTS / "validate-data-docs.png")
        assert check.problems == [], check.problems
        for table in TABLE_FILES:
            assert checkpoint_name(table) in check.text  # the run of each table's checkpoint
        pages = {
            target
            for link in check.links
            if (target := local_target(link)) is not None and target != index
        }
        # Each table's suite and the result of its checkpoint's run.
        assert {page.relative_to(index.parent).parts[:3] for page in pages} == {
            *(("expectations", f"{table}.html") for table in TABLE_FILES),
            *(("validations", table, checkpoint_name(table)) for table in TABLE_FILES),
        }
        for page in sorted(pages):
            linked = check_page(browser, page)
            assert linked.problems == [], (page, linked.problems)
            assert linked.text.strip(), page
