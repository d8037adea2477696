"""Bad exports at the validation gate: each breach of the contract has one exact outcome.

File-level breaches (a missing column, a wrong type, a wrong manifest, an unreadable or empty
table) stop `validate` with an ExportError naming the file, the column, the rule and sample
values. Row-level breaches are quarantined with their rule, the rows that depend on them
follow, and every other row is kept unchanged. Each corruption is made on a copy of the
shared small export (never on the export itself).
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import yaml

from social_reward.config.pairs import PairsConfig
from social_reward.config.validate import ValidateConfig
from social_reward.data.export import (
    IMAGES_FILE,
    MANIFEST_FILE,
    REMIXES_FILE,
    TABLE_FILES,
    TABLE_SCHEMAS,
    USERS_FILE,
    ExportError,
    read_manifest,
    write_table,
)
from social_reward.data.pairing import NoPairsError
from social_reward.data.validation import validate_export
from social_reward.errors import GateFailed
from social_reward.stages.pairs import run as run_pairs
from tests.conftest import REPO_ROOT, passed_gates, png_claiming, run

IDS = {"users": "user_id", "images": "image_id", "remixes": "remix_id"}
# The rules of rows that depend on a quarantined row, as the quarantine files spell them.
CREATOR_QUARANTINED = "creator quarantined (users.parquet)"
SOURCE_QUARANTINED = "source image quarantined (images.parquet)"
REMIXER_QUARANTINED = "remixer quarantined (users.parquet)"
UNKNOWN_USER = "usr-not-in-users"
UNKNOWN_IMAGE = "img-not-in-images"
PAIRS_PATH_KEYS = ("validated_dir", "out_dir", "metrics", "truth")


def validate_config(tmp_path: Path, export_dir: Path, **options) -> ValidateConfig:
    out = tmp_path / "out"
    return ValidateConfig(
        export_dir=export_dir,
        expectations_dir=REPO_ROOT / "expectations",
        validated_dir=out / "validated",
        quarantine_dir=out / "quarantine",
        report=out / "report" / "index.html",
        metrics=out / "metrics" / "validate.json",
        verdict=out / "gates" / "validate.json",
        **options,
    )


def copy_export(small_export, tmp_path: Path, images: bool = True) -> Path:
    """A copy of the shared export to corrupt; without its image files where a test stops
    before they are read (copying them is most of a copy's time)."""
    export_dir = tmp_path / "data"
    ignore = None if images else shutil.ignore_patterns("images")
    shutil.copytree(small_export.export_dir, export_dir, ignore=ignore)
    return export_dir


def nullable(schema: pa.Schema) -> pa.Schema:
    return pa.schema([column.with_nullable(True) for column in schema])


class BadExport:
    """A copy of the small export, its rows to corrupt, and the outcome each corruption expects.

    Corruptions touch disjoint rows: a row picked for one is never picked again, nor is a row
    that depends on it, so that several corruptions in one export keep their own outcomes.
    """

    def __init__(self, small_export, tmp_path: Path) -> None:
        self.dir = copy_export(small_export, tmp_path)
        self.exported_at = read_manifest(self.dir).exported_at
        self.rows = {
            name: pq.read_table(self.dir / file).to_pylist() for name, file in TABLE_FILES.items()
        }
        self.touched: set[str] = set()
        self.case = "(no corruption)"  # the corruption being made, named in the outcomes
        # Per corruption, the rows it quarantines: (table, id, rule).
        self.expected: dict[str, list[tuple[str, str, str]]] = {}
        self.case_of: dict[tuple[str, str], str] = {}  # (table, id) of every row it touched

    def corrupt(self, corruption) -> None:
        self.case = corruption.__name__
        self.expected[self.case] = []
        corruption(self)

    def _own(self, table: str, row: dict) -> dict:
        self.case_of[table, row[IDS[table]]] = self.case
        return row

    # -- looking rows up

    def images_by(self, user_id: str) -> list[dict]:
        return [row for row in self.rows["images"] if row["creator_id"] == user_id]

    def remixes_of(self, image_id: str) -> list[dict]:
        return [row for row in self.rows["remixes"] if row["source_image_id"] == image_id]

    def remixes_by(self, user_id: str) -> list[dict]:
        return [row for row in self.rows["remixes"] if row["remixer_id"] == user_id]

    def image(self, image_id: str) -> dict:
        return next(row for row in self.rows["images"] if row["image_id"] == image_id)

    # -- picking rows no other corruption touches

    def _free(self, *ids: str) -> bool:
        return not self.touched.intersection(ids)

    def pick_image(self, remixed: bool) -> dict:
        """An untouched image (with remixes, or none) whose creator and remixes are untouched."""
        for row in self.rows["images"]:
            remixes = self.remixes_of(row["image_id"])
            related = [row["image_id"], row["creator_id"]]
            related += [key for r in remixes for key in (r["remix_id"], r["remixer_id"])]
            if bool(remixes) == remixed and self._free(*related):
                self.touched.update([row["image_id"], *(r["remix_id"] for r in remixes)])
                return self._own("images", row)
        raise AssertionError(f"no free image with remixed={remixed} left in the export")

    def pick_remix(self) -> dict:
        """An untouched remix whose source image and remixer are untouched."""
        for row in self.rows["remixes"]:
            if self._free(row["remix_id"], row["source_image_id"], row["remixer_id"]):
                self.touched.add(row["remix_id"])
                return self._own("remixes", row)
        raise AssertionError("no free remix left in the export")

    def pick_user(self, creator: bool) -> dict:
        """The untouched user with the fewest dependants, all untouched.

        A creator must have an image remixed by another user, a remix of another user's
        image and a remix of their own image (so that every kind of dependant is there);
        otherwise the user only remixes.
        """
        candidates = []
        for user in self.rows["users"]:
            user_id = user["user_id"]
            images = self.images_by(user_id)
            image_ids = {image["image_id"] for image in images}
            remixes = [r for image in images for r in self.remixes_of(image["image_id"])]
            remixes += [
                r for r in self.remixes_by(user_id) if r["source_image_id"] not in image_ids
            ]
            if creator:
                kinds = {
                    (r["source_image_id"] in image_ids, r["remixer_id"] == user_id) for r in remixes
                }
                if kinds != {(True, False), (False, True), (True, True)}:
                    continue
            elif images or not remixes:
                continue
            related = {user_id, *image_ids}
            related.update(key for r in remixes for key in r.values() if isinstance(key, str))
            if self._free(*related):
                candidates.append((len(related), user, images, remixes))
        if not candidates:
            raise AssertionError(f"no free user with creator={creator} left in the export")
        _, user, images, remixes = min(candidates, key=lambda candidate: candidate[0])
        self.touched.update(
            [user["user_id"], *(i["image_id"] for i in images), *(r["remix_id"] for r in remixes)]
        )
        return self._own("users", user)

    # -- what the corruption should give

    def expect(self, table: str, row: dict, rule: str) -> None:
        self._own(table, row)
        self.expected[self.case].append((table, row[IDS[table]], rule))

    def expect_image(self, image: dict, rule: str) -> None:
        """The image is quarantined with `rule`, its remixes follow."""
        self.expect("images", image, rule)
        for remix in self.remixes_of(image["image_id"]):
            self.expect("remixes", remix, SOURCE_QUARANTINED)

    def expect_user(self, user: dict, rule: str) -> None:
        """The user is quarantined with `rule`; their images, remixes of those, and their
        own remixes follow."""
        user_id = user["user_id"]
        self.expect("users", user, rule)
        image_ids = {image["image_id"] for image in self.images_by(user_id)}
        for image in self.images_by(user_id):
            self.expect("images", image, CREATOR_QUARANTINED)
        for remix in self.rows["remixes"]:
            rules = [SOURCE_QUARANTINED] if remix["source_image_id"] in image_ids else []
            rules += [REMIXER_QUARANTINED] if remix["remixer_id"] == user_id else []
            if rules:
                self.expect("remixes", remix, "; ".join(rules))

    def write(self) -> None:
        for name, file in TABLE_FILES.items():
            table = pa.Table.from_pylist(self.rows[name], schema=nullable(TABLE_SCHEMAS[file]))
            pq.write_table(table, self.dir / file, compression="zstd")


# ---- row-level corruptions: each changes rows of a BadExport and says what it expects ----


def null_prompt(export: BadExport) -> None:
    image = export.pick_image(remixed=False)
    image["prompt"] = None
    export.expect_image(image, "prompt is not null")


def empty_and_whitespace_prompts(export: BadExport) -> None:
    for prompt in ("", " \t\n  "):
        image = export.pick_image(remixed=False)
        image["prompt"] = prompt
        export.expect_image(image, "prompt is not empty after stripping")


def prompt_over_2000_chars(export: BadExport) -> None:
    image = export.pick_image(remixed=False)
    image["prompt"] = "a red circle on a white background, " + "x" * 2000
    export.expect_image(image, "prompt has at most 2,000 characters")


def unknown_creator(export: BadExport) -> None:
    image = export.pick_image(remixed=True)
    image["creator_id"] = UNKNOWN_USER
    export.expect_image(image, "creator_id present in users.user_id")


def duplicate_image_id(export: BadExport) -> None:
    image = export.pick_image(remixed=True)
    twin = dict(image, prompt=image["prompt"] + " (copy)")
    export.rows["images"].append(twin)
    export.expect("images", twin, "image_id is unique")
    export.expect_image(image, "image_id is unique")


def published_after_export(export: BadExport) -> None:
    image = export.pick_image(remixed=False)
    image["published_at"] = export.exported_at + timedelta(seconds=1)
    export.expect_image(image, "published_at not after exported_at")


def absolute_path(export: BadExport) -> None:
    image = export.pick_image(remixed=False)
    image["file"] = (export.dir / image["file"]).as_posix()  # an existing, valid file
    export.expect_image(image, "file is relative to data/: no absolute path, no '..'")


def dotdot_path(export: BadExport) -> None:
    image = export.pick_image(remixed=False)
    image["file"] = "images/../" + image["file"]  # resolves to the existing, valid file
    export.expect_image(image, "file is relative to data/: no absolute path, no '..'")


def missing_file(export: BadExport) -> None:
    image = export.pick_image(remixed=False)
    (export.dir / image["file"]).unlink()
    export.expect_image(image, "file exists")


def empty_file(export: BadExport) -> None:
    image = export.pick_image(remixed=False)
    image["file"] = ""
    export.expect_image(image, "file is not empty")


def linked_file_and_folder(export: BadExport) -> None:
    """A file or a folder under images/ that links elsewhere is never opened, even when
    what it points to is a valid image of the right size."""
    outside = export.dir.parent / "outside"
    outside.mkdir(exist_ok=True)
    image = export.pick_image(remixed=False)
    shutil.copy(export.dir / image["file"], outside / "copy.png")
    (export.dir / image["file"]).unlink()
    (export.dir / image["file"]).symlink_to(outside / "copy.png")
    export.expect_image(image, "file is not a symbolic link, nor inside a linked folder")
    image = export.pick_image(remixed=False)
    shutil.copy(export.dir / image["file"], outside / "folder.png")
    (export.dir / "images" / "linked").symlink_to(outside)
    image["file"] = "images/linked/folder.png"
    export.expect_image(image, "file is not a symbolic link, nor inside a linked folder")


def header_claiming_huge_size(export: BadExport) -> None:
    """A small file whose header claims 12000 x 12000 pixels, as its row does: quarantined by
    the contract's bound, and never decoded (Pillow refuses it at more than twice the
    bound's pixels; tests/code/data checks a header just above the bound)."""
    image = export.pick_image(remixed=False)
    (export.dir / image["file"]).write_bytes(png_claiming(12000, 12000))
    image["width"] = image["height"] = 12000
    export.expect_image(
        image,
        "width at most validate.max_image_side; height at most validate.max_image_side; "
        "file decodes as PNG, JPEG or WebP",
    )


def undecodable_image(export: BadExport) -> None:
    image = export.pick_image(remixed=False)
    assert image["file"].endswith(".png")
    (export.dir / image["file"]).write_bytes(b"\x00garbage, not a PNG\xff" * 20)
    export.expect_image(image, "file decodes as PNG, JPEG or WebP")


def size_mismatch(export: BadExport) -> None:
    image = export.pick_image(remixed=False)
    image["width"] += 1
    export.expect_image(image, "width matches the decoded file")
    image = export.pick_image(remixed=False)
    image["height"] -= 1
    export.expect_image(image, "height matches the decoded file")


def unknown_source_image(export: BadExport) -> None:
    remix = export.pick_remix()
    remix["source_image_id"] = UNKNOWN_IMAGE
    export.expect("remixes", remix, "source_image_id present in images.image_id")


def unknown_remixer(export: BadExport) -> None:
    remix = export.pick_remix()
    remix["remixer_id"] = UNKNOWN_USER
    export.expect("remixes", remix, "remixer_id present in users.user_id")


def remix_before_publication(export: BadExport) -> None:
    remix = export.pick_remix()
    source = export.image(remix["source_image_id"])
    remix["remixed_at"] = source["published_at"] - timedelta(seconds=1)
    export.expect("remixes", remix, "remixed_at not before the source's published_at")


def remixed_after_export(export: BadExport) -> None:
    remix = export.pick_remix()
    remix["remixed_at"] = export.exported_at + timedelta(seconds=1)
    export.expect("remixes", remix, "remixed_at not after exported_at")


def negative_followers(export: BadExport) -> None:
    user = export.pick_user(creator=True)
    user["followers"] = -5
    export.expect_user(user, "followers >= 0")


def joined_after_export(export: BadExport) -> None:
    user = export.pick_user(creator=False)
    user["joined_at"] = export.exported_at + timedelta(seconds=1)
    export.expect_user(user, "joined_at not after exported_at")


def orphan_user(export: BadExport) -> None:
    """A user who appears in neither images nor remixes breaks users.parquet's row rule."""
    template = export.rows["users"][0]
    user = {**template, "user_id": "usr-orphan"}
    export.rows["users"].append(user)
    export.touched.add("usr-orphan")
    export.expect("users", user, "user appears in images.creator_id or remixes.remixer_id")


def valid_edge_values(export: BadExport) -> None:
    """Values at the contract's limits are valid: nothing is quarantined."""
    export.pick_image(remixed=False)["prompt"] = "p" * 2000
    export.pick_image(remixed=False)["published_at"] = export.exported_at
    remix = export.pick_remix()
    remix["remixed_at"] = export.image(remix["source_image_id"])["published_at"]
    export.pick_remix()["remixed_at"] = export.exported_at
    user = export.pick_user(creator=False)
    user["followers"] = 0
    user["joined_at"] = export.exported_at


ROW_CORRUPTIONS = [
    negative_followers,  # users first: their dependants are the largest sets to keep apart
    joined_after_export,
    null_prompt,
    empty_and_whitespace_prompts,
    prompt_over_2000_chars,
    unknown_creator,
    duplicate_image_id,
    published_after_export,
    absolute_path,
    dotdot_path,
    missing_file,
    empty_file,
    linked_file_and_folder,
    header_claiming_huge_size,
    undecodable_image,
    size_mismatch,
    unknown_source_image,
    unknown_remixer,
    remix_before_publication,
    remixed_after_export,
    orphan_user,
    valid_edge_values,
]


def assert_outcome(config: ValidateConfig, summary: dict, export: BadExport) -> None:
    """Exactly the expected rows are quarantined with their rules; every other row is kept.

    Quarantined rows are compared per corruption first, so that a failure names the one that
    went wrong; then the counts and the kept rows, per table.
    """
    metrics = json.loads(config.metrics.read_text())
    assert metrics == summary
    read = {
        name: (
            pq.read_table(config.validated_dir / file),
            pq.read_table(config.quarantine_dir / file),
        )
        for name, file in TABLE_FILES.items()
    }
    outcomes: dict[str, list[tuple[str, str, str]]] = {case: [] for case in export.expected}
    for name, (_, quarantined) in read.items():
        ids_and_rules = zip(
            quarantined[IDS[name]].to_pylist(), quarantined["rule"].to_pylist(), strict=True
        )
        for row_id, rule in ids_and_rules:
            case = export.case_of.get((name, row_id), "(no corruption)")
            outcomes.setdefault(case, []).append((name, row_id, rule))
    assert {case: sorted(rows) for case, rows in outcomes.items()} == {
        case: sorted(rows) for case, rows in export.expected.items()
    }

    for name, (kept, quarantined) in read.items():
        rows_in = export.rows[name]
        counts = metrics["tables"][name]
        assert counts["rows_in"] == len(rows_in), name
        assert (counts["rows_kept"], counts["rows_quarantined"]) == (
            kept.num_rows,
            quarantined.num_rows,
        ), name
        assert kept.num_rows + quarantined.num_rows == len(rows_in), name
        expected_rules = [
            rule
            for entries in export.expected.values()
            for table, _, rules in entries
            if table == name
            for rule in rules.split("; ")
        ]
        assert counts["quarantined_per_rule"] == dict(Counter(expected_rules)), name

        # Quarantined rows are the export's rows as they were, with their row number.
        source_rows = quarantined["source_row"].to_pylist()
        as_read = quarantined.drop_columns(["source_row", "rule"]).to_pylist()
        assert as_read == [rows_in[row] for row in source_rows], name
        # No valid row is lost or changed.
        dropped = set(source_rows)
        if name == "images":
            files = kept["file"].to_pylist()
            assert kept["path"].to_pylist() == [(export.dir / f).as_posix() for f in files]
            kept = kept.drop_columns(["path"])
        assert kept.schema.equals(TABLE_SCHEMAS[TABLE_FILES[name]]), name
        expected_kept = [row for number, row in enumerate(rows_in) if number not in dropped]
        assert kept.to_pylist() == expected_kept, name


def test_bad_rows_are_quarantined_with_their_rules_and_dependants_follow(small_export, tmp_path):
    """Every row-level corruption at once, on disjoint rows: each keeps its own outcome."""
    export = BadExport(small_export, tmp_path)
    for corruption in ROW_CORRUPTIONS:
        export.corrupt(corruption)
    export.write()
    # The limit is the largest share quarantined: a share at the limit passes the gate.
    shares = [
        sum(table == name for entries in export.expected.values() for table, _, _ in entries)
        / len(export.rows[name])
        for name in TABLE_FILES
    ]
    config = validate_config(tmp_path, export.dir, max_quarantine_share=max(shares))
    summary = validate_export(config)
    assert summary["passed"]
    assert_outcome(config, summary, export)

    # The dependants are there: a creator, a source image, a remixer, and both at once.
    dependant_rules = {rule for entries in export.expected.values() for *_, rule in entries}
    assert {
        CREATOR_QUARANTINED,
        SOURCE_QUARANTINED,
        REMIXER_QUARANTINED,
        f"{SOURCE_QUARANTINED}; {REMIXER_QUARANTINED}",
    } <= dependant_rules
    report = config.report.read_text()
    for rule in ("followers &gt;= 0", "file exists", CREATOR_QUARANTINED, SOURCE_QUARANTINED):
        assert rule in report


# ---- the quarantine gate --------------------------------------------------------------------


def quarantine_many_images(export: BadExport) -> None:
    for _ in range(40):
        image = export.pick_image(remixed=False)
        image["prompt"] = "   "
        export.expect_image(image, "prompt is not empty after stripping")
    for _ in range(6):
        image = export.pick_image(remixed=False)
        (export.dir / image["file"]).unlink()
        export.expect_image(image, "file exists")


def test_quarantine_above_the_limit_fails_the_gate_after_writing_everything(small_export, tmp_path):
    export = BadExport(small_export, tmp_path)
    export.corrupt(quarantine_many_images)
    export.write()
    config = validate_config(tmp_path, export.dir)  # the default limit, 5 %

    with pytest.raises(GateFailed) as failure:
        validate_export(config)
    assert str(failure.value) == (
        "validation gate: quarantined share above validate.max_quarantine_share=0.05: "
        f"{export.dir / IMAGES_FILE}: 46 of 900 rows quarantined (5.11%), rules: "
        "file exists (6), prompt is not empty after stripping (40); "
        f"see {config.report} and {config.quarantine_dir}/"
    )
    metrics = json.loads(config.metrics.read_text())
    assert not metrics["passed"] and metrics["tables_over_limit"] == ["images"]
    assert_outcome(config, metrics, export)
    assert "FAILED: quarantine above the limit in images" in config.report.read_text()


# ---- file-level breaches: the stage stops, naming file, column, rule and samples ----------


def rewrite(path: Path, change) -> pa.Table:
    """Rewrite one parquet file of an export with `change(table)`; returns the old table."""
    table = pq.read_table(path)
    pq.write_table(change(table), path)
    return table


def assert_stops(config: ValidateConfig, message: str) -> None:
    with pytest.raises(ExportError) as error:
        validate_export(config)
    assert str(error.value) == message
    assert not config.validated_dir.exists()
    assert not config.metrics.exists()


def test_missing_column_stops_with_file_column_and_rule(small_export, tmp_path):
    export_dir = copy_export(small_export, tmp_path, images=False)
    rewrite(export_dir / IMAGES_FILE, lambda table: table.drop_columns(["generator"]))
    present = [name for name in TABLE_SCHEMAS[IMAGES_FILE].names if name != "generator"]
    assert_stops(
        validate_config(tmp_path, export_dir),
        f"{export_dir / IMAGES_FILE}: column 'generator' missing (rule: required column, "
        f"string); columns present: {present}",
    )


def followers_as_string(table: pa.Table) -> pa.Table:
    index = table.schema.get_field_index("followers")
    return table.set_column(index, "followers", pc.cast(table["followers"], pa.string()))


def test_followers_as_string_stops_with_sample_values(small_export, tmp_path):
    export_dir = copy_export(small_export, tmp_path, images=False)
    old = rewrite(export_dir / USERS_FILE, followers_as_string)
    samples = [str(value) for value in old["followers"].to_pylist()[:5]]
    assert_stops(
        validate_config(tmp_path, export_dir),
        f"{export_dir / USERS_FILE}: column 'followers' has type string (rule: integer); "
        f"sample values: {samples}",
    )


@pytest.mark.parametrize(
    ("timestamp_type", "type_name"),
    [
        (pa.timestamp("us"), "timestamp[us]"),
        (pa.timestamp("us", tz="Europe/Paris"), "timestamp[us, tz=Europe/Paris]"),
    ],
    ids=["naive", "not-utc"],
)
def test_published_at_without_utc_stops_with_sample_values(
    small_export, tmp_path, timestamp_type, type_name
):
    export_dir = copy_export(small_export, tmp_path, images=False)

    def retype(table: pa.Table) -> pa.Table:
        index = table.schema.get_field_index("published_at")
        values = table["published_at"]
        if timestamp_type.tz is None:  # the wall-clock time in UTC, without its zone
            values = pc.local_timestamp(values)
        return table.set_column(index, "published_at", values.cast(timestamp_type))

    old = rewrite(export_dir / IMAGES_FILE, retype)["published_at"].to_pylist()[:5]
    if timestamp_type.tz is None:
        samples = [str(moment.replace(tzinfo=None)) for moment in old]  # '2026-01-01 01:32:17'
    else:
        samples = [str(moment.astimezone(ZoneInfo(timestamp_type.tz))) for moment in old]
    assert_stops(
        validate_config(tmp_path, export_dir),
        f"{export_dir / IMAGES_FILE}: column 'published_at' has type {type_name} "
        f"(rule: timestamp with time zone UTC); sample values: {samples}",
    )


def test_wrong_schema_version_stops(small_export, tmp_path):
    export_dir = copy_export(small_export, tmp_path, images=False)
    manifest = export_dir / MANIFEST_FILE
    manifest.write_text(json.dumps(dict(json.loads(manifest.read_text()), schema_version=2)))
    assert_stops(
        validate_config(tmp_path, export_dir),
        f"{manifest}: key 'schema_version' is 2; rule: must be 1",
    )


def test_unreadable_or_missing_parquet_stops(small_export, tmp_path):
    export_dir = copy_export(small_export, tmp_path, images=False)
    (export_dir / REMIXES_FILE).write_bytes(b"PAR1 this is not parquet at all \x00\x01" * 8)
    with pytest.raises(ExportError) as error:
        validate_export(validate_config(tmp_path, export_dir))
    assert str(error.value).startswith(
        f"{export_dir / REMIXES_FILE}: not a readable parquet file (rule: parquet) - "
    )
    (export_dir / USERS_FILE).unlink()  # read before remixes.parquet
    assert_stops(
        validate_config(tmp_path, export_dir),
        f"{export_dir / USERS_FILE}: file missing (rule: an export has {USERS_FILE})",
    )


def test_empty_images_table_stops(small_export, tmp_path):
    export_dir = copy_export(small_export, tmp_path, images=False)
    write_table(TABLE_SCHEMAS[IMAGES_FILE].empty_table(), export_dir / IMAGES_FILE)
    assert_stops(
        validate_config(tmp_path, export_dir),
        f"{export_dir / IMAGES_FILE}: the table has no rows "
        "(rule: an export has at least one image)",
    )


def test_cli_names_the_error_without_a_traceback(small_export, tmp_path):
    export_dir = copy_export(small_export, tmp_path, images=False)
    old = rewrite(export_dir / USERS_FILE, followers_as_string)
    samples = [str(value) for value in old["followers"].to_pylist()[:5]]
    config = validate_config(tmp_path, export_dir)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"validate": config.model_dump(mode="json")}))
    result = run(["social-reward", "validate", "--params", str(params)], check=False)
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"error: {export_dir / USERS_FILE}: column 'followers' has type string (rule: integer); "
        f"sample values: {samples}\n"
    )
    assert "Traceback" not in result.stderr
    assert not config.validated_dir.exists()


# ---- exports that pass the gate but hold no pair --------------------------------------------


def pairs_config(tmp_path: Path, validated_dir: Path) -> PairsConfig:
    return PairsConfig(
        validated_dir=validated_dir,
        out_dir=tmp_path / "pairs",
        metrics=tmp_path / "pairs.json",
        truth=tmp_path / "no-truth.parquet",
    )


def test_empty_remixes_table_passes_validate_then_pairs_finds_none(small_export, tmp_path):
    export_dir = copy_export(small_export, tmp_path)
    write_table(TABLE_SCHEMAS[REMIXES_FILE].empty_table(), export_dir / REMIXES_FILE)
    # Without remixes, users.parquet lists the creators only (the contract's users rule).
    users = pq.read_table(export_dir / USERS_FILE)
    creators = pq.read_table(export_dir / IMAGES_FILE)["creator_id"].unique()
    write_table(users.filter(pc.is_in(users["user_id"], creators)), export_dir / USERS_FILE)
    config = validate_config(tmp_path, export_dir)
    summary = validate_export(config)
    assert summary["passed"]
    assert summary["tables"]["remixes"] == {
        "rows_in": 0,
        "rows_kept": 0,
        "rows_quarantined": 0,
        "quarantined_share": 0.0,
        "quarantined_per_rule": {},
    }
    assert summary["tables"]["images"]["rows_kept"] == 900

    published = pq.read_table(export_dir / IMAGES_FILE)["published_at"].to_pylist()
    exported_at = read_manifest(export_dir).exported_at
    negatives = sum(exported_at - moment >= timedelta(days=7) for moment in published)
    assert 0 < negatives < 900
    with pytest.raises(NoPairsError) as error:
        run_pairs(pairs_config(tmp_path, config.validated_dir))
    assert str(error.value).startswith(
        f"{config.validated_dir}: no preference pair (mode debiased); 0 images have >= 2 "
        f"collective remixes (higher images), {negatives} have at most 4 after >= 7.0 days "
        "(lower images); a pair needs one of each sharing a prompt"
    )


def test_every_image_with_its_own_prompt_gives_no_pair(small_export, tmp_path):
    export_dir = copy_export(small_export, tmp_path)

    def own_prompts(table: pa.Table) -> pa.Table:
        prompts = [
            f"{prompt} (variant {n})" for n, prompt in enumerate(table["prompt"].to_pylist())
        ]
        index = table.schema.get_field_index("prompt")
        return table.set_column(index, "prompt", pa.array(prompts, pa.string()))

    rewrite(export_dir / IMAGES_FILE, own_prompts)
    config = validate_config(tmp_path, export_dir)
    assert validate_export(config)["passed"]
    params = tmp_path / "params.yaml"
    pairs = pairs_config(tmp_path, config.validated_dir)
    params.write_text(
        yaml.safe_dump({"pairs": {key: str(getattr(pairs, key)) for key in PAIRS_PATH_KEYS}})
        + passed_gates(tmp_path, config.validated_dir)
    )
    result = run(["social-reward", "pairs", "--params", str(params)], check=False)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    found = re.fullmatch(
        rf"error: {re.escape(str(config.validated_dir))}: no preference pair \(mode debiased\); "
        r"(\d+) images have >= 2 collective remixes \(higher images\), (\d+) have at most 4 "
        r"after >= 7\.0 days \(lower images\); a pair needs one of each sharing a prompt, .*\n",
        result.stderr,
    )
    assert found, result.stderr
    assert int(found[1]) > 0 and int(found[2]) > 0  # higher and lower images, never together
    assert not (tmp_path / "pairs").exists()


def test_dictionary_encoded_strings_are_read_as_strings(small_export, tmp_path):
    """pandas categoricals and many writers store strings dictionary-encoded: same values."""
    export_dir = copy_export(small_export, tmp_path)

    def encode(table: pa.Table) -> pa.Table:
        for name in ("prompt", "generator", "creator_id"):
            index = table.schema.get_field_index(name)
            table = table.set_column(index, name, pc.dictionary_encode(table[name]))
        return table

    original = rewrite(export_dir / IMAGES_FILE, encode)
    config = validate_config(tmp_path, export_dir)
    assert validate_export(config)["passed"]
    kept = pq.read_table(config.validated_dir / IMAGES_FILE)
    assert kept["prompt"].type == pa.string()
    assert kept["prompt"].to_pylist() == original["prompt"].to_pylist()


@pytest.mark.parametrize("file", [USERS_FILE, "manifest.json"])
def test_a_linked_table_or_manifest_stops_with_the_rule(small_export, tmp_path, file):
    export_dir = copy_export(small_export, tmp_path, images=False)
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.move(export_dir / file, outside / file)
    (export_dir / file).symlink_to(outside / file)
    assert_stops(
        validate_config(tmp_path, export_dir),
        f"{export_dir / file}: a symbolic link (rule: an export's files are regular files "
        "inside it); copy the file into the export instead",
    )


def test_an_export_without_any_image_file_stops_at_the_gate_without_a_traceback(
    small_export, tmp_path
):
    export_dir = copy_export(small_export, tmp_path, images=False)
    config = validate_config(tmp_path, export_dir)
    with pytest.raises(GateFailed) as failure:
        validate_export(config)
    assert f"{export_dir / IMAGES_FILE}: 900 of 900 rows quarantined (100.00%)" in str(
        failure.value
    )
    assert "file exists (900)" in str(failure.value)
    verdict = json.loads(config.verdict.read_text())
    assert verdict["passed"] is False and "validation gate" in verdict["summary"]
    # A limit that lets every row through still writes valid, empty tables.
    lenient = validate_config(tmp_path / "lenient", export_dir, max_quarantine_share=1.0)
    assert validate_export(lenient)["passed"]
    assert pq.read_table(lenient.validated_dir / IMAGES_FILE).num_rows == 0
