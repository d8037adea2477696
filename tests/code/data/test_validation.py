"""Helpers of the `validate` stage: image files, expectation suites, quarantine and report."""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from social_reward.config.validate import ValidateConfig
from social_reward.data.export import TABLE_FILES, USERS_FILE, ExportError, Manifest
from social_reward.data.validation import (
    CREATOR_QUARANTINED,
    DEPENDANT_RULES,
    REMIXER_QUARANTINED,
    SOURCE_QUARANTINED,
    RuleOutcome,
    SuiteError,
    inspect_image_file,
    load_suites,
    quarantine,
    read_export_table,
    summarise,
)
from social_reward.data.validation_report import render_report
from tests.conftest import REPO_ROOT, png_claiming

# ---- image files ----------------------------------------------------------------------------


@pytest.fixture
def image_dir(tmp_path) -> Path:
    folder = tmp_path / "data"
    (folder / "images" / "a").mkdir(parents=True)
    for name, format in (("ok.png", "PNG"), ("ok.jpg", "JPEG"), ("ok.webp", "WEBP")):
        Image.new("RGB", (24, 16), "teal").save(folder / "images" / "a" / name, format=format)
    Image.new("P", (24, 16)).save(folder / "images" / "a" / "other.gif", format="GIF")
    png = (folder / "images" / "a" / "ok.png").read_bytes()
    (folder / "images" / "a" / "truncated.png").write_bytes(png[: len(png) // 2])
    (folder / "images" / "a" / "garbage.png").write_bytes(b"\x00not an image\xff" * 16)
    return folder


MAX_SIDE = 8192


def inspect(export_dir: Path, file: str | None) -> tuple:
    return inspect_image_file(export_dir, file, MAX_SIDE)


@pytest.mark.parametrize("name", ["ok.png", "ok.jpg", "ok.webp"])
def test_a_good_image_gives_its_decoded_size(image_dir, name):
    assert inspect(image_dir, f"images/a/{name}") == (True, True, True, 24, 16)


@pytest.mark.parametrize("name", ["garbage.png", "truncated.png", "other.gif"])
def test_a_file_that_is_no_png_jpeg_or_webp_exists_but_does_not_decode(image_dir, name):
    assert inspect(image_dir, f"images/a/{name}") == (True, True, False, None, None)


def test_a_missing_file_or_a_folder_does_not_exist(image_dir):
    assert inspect(image_dir, "images/a/gone.png") == (True, False, None, None, None)
    assert inspect(image_dir, "images/a") == (True, False, None, None, None)


def test_an_unsafe_or_null_path_is_not_opened(image_dir):
    absolute = (image_dir / "images" / "a" / "ok.png").as_posix()  # exists, and decodes
    for file in (absolute, "images/../images/a/ok.png", "images\\a\\ok.png", "", None):
        assert inspect(image_dir, file) == (None, None, None, None, None), file


def test_a_linked_file_or_folder_is_never_opened(image_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    Image.new("RGB", (24, 16), "red").save(outside / "secret.png")
    (image_dir / "images" / "a" / "link.png").symlink_to(outside / "secret.png")
    (image_dir / "images" / "linked").symlink_to(outside)
    (image_dir / "images" / "inside.png").symlink_to(image_dir / "images" / "a" / "ok.png")
    for file in ("images/a/link.png", "images/linked/secret.png", "images/inside.png"):
        assert inspect(image_dir, file) == (False, None, None, None, None), file


def test_a_header_claiming_more_than_the_bound_is_not_decoded(image_dir):
    (image_dir / "images" / "huge.png").write_bytes(png_claiming(9000, 9000))
    assert inspect(image_dir, "images/huge.png") == (True, True, None, 9000, 9000)


# ---- file-level reading ---------------------------------------------------------------------


def users_table(**columns) -> pa.Table:
    values = {
        "user_id": pa.array(["u1", "u2"]),
        "followers": pa.array([3, 0], pa.int64()),
        "is_influencer": pa.array([False, True]),
        "joined_at": pa.array(
            [datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)],
            pa.timestamp("us", tz="UTC"),
        ),
    }
    values.update(columns)
    return pa.table(values)


def test_compatible_types_are_read_as_the_contract_types(tmp_path):
    joined = [1_767_225_600_000_000_001, 1_767_312_000_123_456_789]  # with nanoseconds
    path = tmp_path / USERS_FILE
    table = users_table(
        user_id=pa.array(["u1", "u2"], pa.large_string()),
        followers=pa.array([3, 0], pa.int32()),
        joined_at=pa.array(joined, pa.timestamp("ns", tz="+00:00")),
    )
    pq.write_table(table, path)
    read = read_export_table(path, sample_rows=5)
    assert read.schema.types == [pa.string(), pa.int64(), pa.bool_(), pa.timestamp("us", "UTC")]
    assert read["joined_at"].to_pylist() == [
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 2, 0, 0, 0, 123456, tzinfo=UTC),
    ]


def test_a_value_that_does_not_fit_the_contract_type_stops_with_the_column(tmp_path):
    path = tmp_path / USERS_FILE
    pq.write_table(users_table(followers=pa.array([3, 2**64 - 1], pa.uint64())), path)
    with pytest.raises(ExportError) as error:
        read_export_table(path, sample_rows=5)
    assert str(error.value).startswith(
        f"{path}: column 'followers' cannot be read as int64 (rule: integer) - "
    )
    assert str(2**64 - 1) in str(error.value)


def test_a_wrong_type_quotes_sample_values_as_people_read_them(tmp_path):
    path = tmp_path / USERS_FILE
    naive = pa.array([datetime(2026, 1, 1, 12, 30), None, datetime(2026, 1, 2)], pa.timestamp("s"))
    pq.write_table(users_table(joined_at=naive[::2], followers=pa.array([3.0, 1.5])), path)
    with pytest.raises(ExportError) as error:
        read_export_table(path, sample_rows=5)
    assert str(error.value) == (
        f"{path}: column 'followers' has type double (rule: integer); sample values: [3.0, 1.5]"
    )
    pq.write_table(users_table(joined_at=naive[::2]), path)
    with pytest.raises(ExportError) as error:
        read_export_table(path, sample_rows=1)
    assert str(error.value) == (
        f"{path}: column 'joined_at' has type timestamp[ms] (rule: timestamp with time zone "
        "UTC); sample values: ['2026-01-01 12:30:00']"
    )


# ---- expectation suites ---------------------------------------------------------------------


@pytest.fixture
def suites_dir(tmp_path) -> Path:
    folder = tmp_path / "expectations"
    shutil.copytree(REPO_ROOT / "expectations", folder)
    return folder


def edit_suite(folder: Path, name: str, change) -> Path:
    path = folder / f"{name}.json"
    raw = json.loads(path.read_text())
    change(raw["expectations"])
    path.write_text(json.dumps(raw))
    return path


def test_the_suites_load_with_the_cross_table_rules_of_each_table(suites_dir):
    suites = load_suites(suites_dir)
    cross = json.loads((suites_dir / "cross_table.json").read_text())["expectations"]
    for table, suite in suites.items():
        own = json.loads((suites_dir / f"{table}.json").read_text())["expectations"]
        mine = [item for item in cross if item["meta"]["table"] == table]
        rules = [expectation.meta["rule"] for expectation in suite.expectations]
        assert rules == [item["meta"]["rule"] for item in own + mine], table


def test_an_unknown_expectation_type_is_a_suite_error(suites_dir):
    path = edit_suite(
        suites_dir, "users", lambda items: items[0].update(type="expect_users_to_be_nice")
    )
    with pytest.raises(SuiteError, match=re.escape(f"{path}: unknown expectation type")) as error:
        load_suites(suites_dir)
    assert "'expect_users_to_be_nice'" in str(error.value)


def test_an_expectation_without_meta_rule_is_a_suite_error(suites_dir):
    path = edit_suite(suites_dir, "images", lambda items: items[3]["meta"].pop("rule"))
    with pytest.raises(SuiteError) as error:
        load_suites(suites_dir)
    assert str(error.value) == (
        f"{path}: expectation expect_column_values_to_not_be_null has no meta.rule"
    )


def test_a_cross_table_rule_naming_no_table_is_a_suite_error(suites_dir):
    path = edit_suite(suites_dir, "cross_table", lambda items: items[0]["meta"].update(table="img"))
    with pytest.raises(SuiteError) as error:
        load_suites(suites_dir)
    assert str(error.value) == (
        f"{path}: expectation expect_column_values_to_be_in_set (user appears in "
        "images.creator_id or remixes.remixer_id) has meta.table 'img', not one of "
        "['users', 'images', 'remixes']"
    )


def test_misspelled_arguments_missing_or_broken_suites_are_suite_errors(suites_dir):
    edit_suite(suites_dir, "remixes", lambda items: items[0]["kwargs"].update(colum="x"))
    with pytest.raises(SuiteError, match="suite 'remixes' does not load"):
        load_suites(suites_dir)
    (suites_dir / "remixes.json").write_text("{not json")
    with pytest.raises(SuiteError, match=r"remixes\.json: not valid JSON"):
        load_suites(suites_dir)
    (suites_dir / "remixes.json").unlink()
    with pytest.raises(SuiteError, match=r"remixes\.json: expectation suite missing"):
        load_suites(suites_dir)


# ---- quarantine and report ------------------------------------------------------------------


def tiny_export() -> dict[str, pa.Table]:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    return {
        "users": pa.table({"user_id": ["u1", "u2"], "followers": [5, -1]}),
        "images": pa.table({"image_id": ["i1", "i2", "i3"], "creator_id": ["u1", "u2", "u1"]}),
        "remixes": pa.table(
            {
                "remix_id": ["r1", "r2", "r3", "r4"],
                "source_image_id": ["i1", "i2", "i2", "i3"],
                "remixer_id": ["u2", "u1", "u2", "u1"],
                "remixed_at": [moment] * 4,
            }
        ),
    }


def tiny_rules() -> list[RuleOutcome]:
    return [
        RuleOutcome(
            "users",
            "followers >= 0",
            "expect_column_values_to_be_between",
            ["followers"],
            [1],
            [{"followers": -1}],
        ),
        RuleOutcome(
            "images",
            "file exists <ok>",
            "expect_column_values_to_be_in_set",
            ["file_exists"],
            [],
            [],
        ),
        RuleOutcome(
            "remixes",
            "remixed_at not after exported_at",
            "expect_column_values_to_be_between",
            ["remixed_at"],
            [3],
            [{"remixed_at": "<script>alert(1)</script>"}],
        ),
    ]


def test_quarantine_moves_bad_rows_and_their_dependants_with_their_rules():
    outcomes = quarantine(tiny_export(), tiny_rules())
    quarantined = {name: outcome.quarantined.to_pylist() for name, outcome in outcomes.items()}
    assert [(row["user_id"], row["source_row"], row["rule"]) for row in quarantined["users"]] == [
        ("u2", 1, "followers >= 0")
    ]
    assert [(r["image_id"], r["source_row"], r["rule"]) for r in quarantined["images"]] == [
        ("i2", 1, CREATOR_QUARANTINED)
    ]
    assert [(r["remix_id"], r["source_row"], r["rule"]) for r in quarantined["remixes"]] == [
        ("r1", 0, REMIXER_QUARANTINED),
        ("r2", 1, SOURCE_QUARANTINED),
        ("r3", 2, f"{SOURCE_QUARANTINED}; {REMIXER_QUARANTINED}"),
        ("r4", 3, "remixed_at not after exported_at"),
    ]
    assert outcomes["users"].kept["user_id"].to_pylist() == ["u1"]
    assert outcomes["images"].kept["image_id"].to_pylist() == ["i1", "i3"]
    assert outcomes["remixes"].kept.num_rows == 0
    assert outcomes["remixes"].rule_counts == {
        REMIXER_QUARANTINED: 2,
        SOURCE_QUARANTINED: 2,
        "remixed_at not after exported_at": 1,
    }


def test_the_report_shows_tables_rules_and_dependants_without_outside_resources(tmp_path):
    config = ValidateConfig(
        export_dir=tmp_path / "data",
        quarantine_dir=tmp_path / "quarantine",
        max_quarantine_share=0.5,
    )
    rules = tiny_rules()
    summary = summarise(quarantine(tiny_export(), rules), config)
    manifest = Manifest(1, datetime(2026, 2, 10, tzinfo=UTC), "tests <&>")
    page = render_report(summary, rules, manifest, config, DEPENDANT_RULES)

    assert summary["tables_over_limit"] == ["remixes"]
    assert "FAILED: quarantine above the limit in remixes" in page
    for name, file in TABLE_FILES.items():
        assert f"<tr><td>{name}</td>" in page
        assert str(config.quarantine_dir / file) in page
    for rule in ("followers &gt;= 0", "file exists &lt;ok&gt;", "remixed_at not after"):
        assert rule in page
    for dependant in (CREATOR_QUARANTINED, SOURCE_QUARANTINED, REMIXER_QUARANTINED):
        assert f"<td>{dependant}</td>" in page
    assert "2026-02-10T00:00:00Z" in page and "tests &lt;&amp;&gt;" in page
    assert "<script>" not in page  # sample values are escaped
    assert not re.search(r"https?://|//cdn|<link|<script|src=|@import|url\(", page, re.I)
