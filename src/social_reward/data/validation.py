"""The export's contract, checked with Great Expectations, as a gate (stage `validate`, and
the retrain flow's intake of a fresh export).

File-level problems (unreadable parquet, missing column, wrong type, wrong manifest) stop
the stage with a message naming the file, the column, the rule and sample values.
Row-level rules live as expectation suites in `expectations/` (one per table, plus the
cross-table rules, which run on lookup columns this stage adds). They run through the
checkpoints of the committed GX project `expectations/gx` (one per table, see gx_project),
which keep their validation results and build GX's Data Docs beside the report. Rows that
break a rule go to `artifacts/quarantine/<table>.parquet` with the rules they broke; rows
that depend on a quarantined row follow it. Kept + quarantined = rows in, per table. The
stage fails when a table's quarantined share exceeds `validate.max_quarantine_share`, after
writing everything a person needs to see why.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from PIL import Image
from tqdm import tqdm

from social_reward.artifacts import write_metrics
from social_reward.config.validate import ValidateConfig
from social_reward.data.export import (
    MANIFEST_FILE,
    TABLE_FILES,
    TABLE_SCHEMAS,
    ExportError,
    Manifest,
    format_utc,
    is_safe_relative_path,
    read_manifest,
)
from social_reward.data.gates import write_verdict
from social_reward.data.gx_project import (
    expectation_id,
    get_checkpoint,
    open_context,
    put_suites,
    suite_id,
)
from social_reward.data.validation_report import render_report
from social_reward.errors import GateFailed, SocialRewardError

CROSS_TABLE_SUITE = "cross_table"
DECODABLE_FORMATS = ("PNG", "JPEG", "WEBP")
# Rules of rows that depend on a quarantined row.
CREATOR_QUARANTINED = "creator quarantined (users.parquet)"
SOURCE_QUARANTINED = "source image quarantined (images.parquet)"
REMIXER_QUARANTINED = "remixer quarantined (users.parquet)"
DEPENDANT_RULES = (CREATOR_QUARANTINED, SOURCE_QUARANTINED, REMIXER_QUARANTINED)
SOURCE_ROW = "source_row"  # row number in the export's file, for people looking it up
RULE = "rule"  # the rules a quarantined row broke, "; "-separated
PATH = "path"  # validated images: the file's path from the project root, usable as it is
SHARE_DIGITS = 6  # quarantined shares: one row in a million still shows


class SuiteError(SocialRewardError, ValueError):
    """An expectation suite in expectations/ that cannot be loaded."""


@dataclass
class RuleOutcome:
    """One expectation's result on one table."""

    table: str
    rule: str
    expectation: str
    columns: list[str]
    failed_rows: list[int]
    samples: list[dict] = field(default_factory=list)


@dataclass
class TableOutcome:
    name: str
    rows_in: int
    kept: pa.Table
    quarantined: pa.Table
    rule_counts: dict[str, int]

    @property
    def quarantined_share(self) -> float:
        return self.quarantined.num_rows / self.rows_in if self.rows_in else 0.0


# ---- file level ---------------------------------------------------------------------------


def _type_matches(actual: pa.DataType, expected: pa.DataType) -> bool:
    if pa.types.is_dictionary(actual):  # pandas categoricals and many writers: the values count
        actual = actual.value_type
    if pa.types.is_timestamp(expected):
        return pa.types.is_timestamp(actual) and actual.tz in ("UTC", "+00:00", "Etc/UTC", "Z")
    if pa.types.is_integer(expected):
        return pa.types.is_integer(actual)
    if pa.types.is_string(expected):
        return pa.types.is_string(actual) or pa.types.is_large_string(actual)
    return actual.equals(expected)


def _describe(expected: pa.DataType) -> str:
    if pa.types.is_timestamp(expected):
        return "timestamp with time zone UTC"
    if pa.types.is_integer(expected):
        return "integer"
    return str(expected)


def read_export_table(path: Path, sample_rows: int) -> pa.Table:
    """Read one table and check it at file level; the result has the contract's columns."""
    schema = TABLE_SCHEMAS[path.name]
    if path.is_symlink():
        raise ExportError(
            f"{path}: a symbolic link (rule: an export's files are regular files inside it); "
            "copy the file into the export instead"
        )
    if not path.is_file():
        raise ExportError(f"{path}: file missing (rule: an export has {path.name})")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as error:
        raise ExportError(
            f"{path}: not a readable parquet file (rule: parquet) - {error}"
        ) from error
    for expected in schema:
        if expected.name not in table.column_names:
            raise ExportError(
                f"{path}: column '{expected.name}' missing (rule: required column, "
                f"{_describe(expected.type)}); columns present: {table.column_names}"
            )
        actual = table.schema.field(expected.name).type
        if not _type_matches(actual, expected.type):
            values = table.column(expected.name).drop_null().slice(0, sample_rows).to_pylist()
            raise ExportError(
                f"{path}: column '{expected.name}' has type {actual} "
                f"(rule: {_describe(expected.type)}); sample values: {_samples(values)}"
            )
    nullable = pa.schema([column.with_nullable(True) for column in schema])
    columns = []
    for column in nullable:
        # Sub-microsecond precision (pandas writes nanoseconds) is dropped, not refused.
        options = pc.CastOptions(column.type, allow_time_truncate=True)
        try:
            columns.append(pc.cast(table.column(column.name), options=options))
        except pa.ArrowInvalid as error:  # e.g. a uint64 value beyond int64
            raise ExportError(
                f"{path}: column '{column.name}' cannot be read as {column.type} "
                f"(rule: {_describe(column.type)}) - {error}"
            ) from error
    return pa.Table.from_arrays(columns, schema=nullable)


def _samples(values: list) -> list:
    """Sample values as people read them: '2026-01-01 01:32:17', not datetime.datetime(...)."""
    return [
        value if isinstance(value, str | int | float | bool) else str(value) for value in values
    ]


# ---- lookup columns for the cross-table rules ---------------------------------------------


def is_linked(export_dir: Path, file: str) -> bool:
    """Whether the file, or a folder on its way from the export's root, is a symbolic link:
    what it points to may lie outside the export, so it is never opened."""
    path = export_dir
    for part in PurePosixPath(file).parts:
        path = path / part
        if path.is_symlink():
            return True
    return False


def inspect_image_file(export_dir: Path, file: str | None, max_side: int) -> tuple:
    """(not linked, exists, decodes, width, height) of one image file; None where it cannot
    be said. A header claiming more than `max_side` pixels a side is not decoded."""
    if file is None or not is_safe_relative_path(file):
        return None, None, None, None, None
    if is_linked(export_dir, file):
        return False, None, None, None, None
    path = export_dir / file
    if not path.is_file():
        return True, False, None, None, None
    try:
        with Image.open(path) as image:
            if image.format not in DECODABLE_FORMATS:
                return True, True, False, None, None
            if max(image.width, image.height) > max_side:
                return True, True, None, image.width, image.height
            image.load()
            return True, True, True, image.width, image.height
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return True, True, False, None, None


def image_file_columns(
    export_dir: Path, files: list[str | None], workers: int, max_side: int
) -> pd.DataFrame:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(
            tqdm(
                pool.map(
                    lambda file: inspect_image_file(export_dir, file, max_side), files, chunksize=64
                ),
                total=len(files),
                desc="validate: image files",
                unit="file",
                disable=len(files) < 1000,
            )
        )
    frame = pd.DataFrame(
        results,
        columns=[
            "file_not_linked",
            "file_exists",
            "file_decodes",
            "decoded_width",
            "decoded_height",
        ],
    )
    return frame.astype(
        {
            "file_not_linked": "boolean",
            "file_exists": "boolean",
            "file_decodes": "boolean",
            "decoded_width": "Int64",
            "decoded_height": "Int64",
        }
    )


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    mapping = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
    return table.to_pandas(types_mapper=mapping.get)


def _found(values: pd.Series, known: pd.Series) -> pd.Series:
    """Whether each value is among the known ones; null where the value itself is null."""
    return values.isin(set(known.dropna())).astype("boolean").mask(values.isna())


def validation_frames(
    tables: dict[str, pa.Table], export_dir: Path, workers: int, max_side: int
) -> dict[str, pd.DataFrame]:
    """Each table as pandas, with the lookup columns the cross-table suite checks."""
    users = _to_pandas(tables["users"])
    images = _to_pandas(tables["images"])
    remixes = _to_pandas(tables["remixes"])
    images["creator_found"] = _found(images["creator_id"], users["user_id"])
    users["user_appears"] = _found(
        users["user_id"], pd.concat([images["creator_id"], remixes["remixer_id"]])
    )
    files = image_file_columns(export_dir, images["file"].tolist(), workers, max_side)
    images = pd.concat([images, files], axis=1)
    remixes["source_found"] = _found(remixes["source_image_id"], images["image_id"])
    remixes["remixer_found"] = _found(remixes["remixer_id"], users["user_id"])
    first_published = images.dropna(subset=["image_id"]).drop_duplicates("image_id")
    remixes["source_published_at"] = remixes["source_image_id"].map(
        first_published.set_index("image_id")["published_at"]
    )
    return {"users": users, "images": images, "remixes": remixes}


# ---- Great Expectations --------------------------------------------------------------------


def load_suites(expectations_dir: Path) -> dict:
    """One GX suite per table: its own expectations plus the cross-table ones naming it."""
    from great_expectations.core import ExpectationSuite
    from great_expectations.expectations.registry import get_expectation_impl

    def read(name: str) -> dict:
        path = expectations_dir / f"{name}.json"
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as error:
            raise SuiteError(f"{path}: expectation suite missing") from error
        except json.JSONDecodeError as error:
            raise SuiteError(f"{path}: not valid JSON ({error})") from error
        for expectation in raw.get("expectations", []):
            try:
                get_expectation_impl(expectation["type"])
            except Exception as error:  # GX would drop an unknown expectation silently
                raise SuiteError(
                    f"{path}: unknown expectation type {expectation.get('type')!r}"
                ) from error
            if "rule" not in expectation.get("meta", {}):
                raise SuiteError(f"{path}: expectation {expectation['type']} has no meta.rule")
        return raw

    cross_table = read(CROSS_TABLE_SUITE)
    for expectation in cross_table["expectations"]:  # a rule naming no table would never run
        if expectation["meta"].get("table") not in TABLE_FILES:
            raise SuiteError(
                f"{expectations_dir / CROSS_TABLE_SUITE}.json: expectation {expectation['type']} "
                f"({expectation['meta']['rule']}) has meta.table "
                f"{expectation['meta'].get('table')!r}, not one of {list(TABLE_FILES)}"
            )
    suites = {}
    for table in TABLE_FILES:
        raw = read(table)
        expectations = raw["expectations"] + [
            expectation
            for expectation in cross_table["expectations"]
            if expectation["meta"].get("table") == table
        ]
        # Ids as the committed GX project names them (its validation definitions), stable.
        expectations = [
            {**expectation, "id": expectation_id(table, index)}
            for index, expectation in enumerate(expectations)
        ]
        try:
            suites[table] = ExpectationSuite(
                name=table, expectations=expectations, id=suite_id(table)
            )
        except Exception as error:  # pydantic errors on misspelled kwargs
            raise SuiteError(
                f"{expectations_dir}: suite '{table}' does not load: {error}"
            ) from error
    return suites


def _quiet_gx_context(expectations_dir: Path, runtime_dir: Path, data_docs_dir: Path):
    """The committed GX project (expectations_dir/gx), its run's stores emptied first: they
    show this run. Its great_expectations.yml turns GX's progress bars off."""
    for folder in (runtime_dir, data_docs_dir):
        if folder.exists():
            shutil.rmtree(folder)
    return open_context(expectations_dir, runtime_dir, data_docs_dir)


def _columns_of(kwargs: dict) -> list[str]:
    return [kwargs[key] for key in ("column", "column_A", "column_B") if key in kwargs]


def run_suites(
    frames: dict[str, pd.DataFrame],
    suites: dict,
    parameters: dict,
    sample_rows: int,
    *,
    expectations_dir: Path,
    runtime_dir: Path,
    data_docs_dir: Path,
    run_time: datetime,
) -> list[RuleOutcome]:
    """Each table's checkpoint of the GX project in `expectations_dir`, on `suites`;
    `parameters` fill the suites' `$PARAMETER`s (exported_at, ...). GX keeps the suites and
    validation results in `runtime_dir` and builds its Data Docs in `data_docs_dir`. The
    runs are named by their checkpoint and dated `run_time` (the stage: the export's
    exported_at), so that the same export gives the same results and pages."""
    from great_expectations.core.run_identifier import RunIdentifier

    context = _quiet_gx_context(expectations_dir, runtime_dir, data_docs_dir)
    put_suites(context, suites)
    outcomes: list[RuleOutcome] = []
    for table, frame in frames.items():
        checkpoint = get_checkpoint(context, table)
        run = checkpoint.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=parameters,
            run_id=RunIdentifier(run_name=checkpoint.name, run_time=run_time),
        )
        (result,) = run.run_results.values()
        for item in result.results:
            config = item.expectation_config
            errors = _gx_errors(item.exception_info)
            if errors:
                raise SuiteError(
                    f"{table}: expectation {config.type} ({config.meta['rule']}) could not run: "
                    f"{errors[0]}"
                )
            rows = [] if item.success else list(item.result.get("unexpected_index_list") or [])
            columns = _columns_of(config.kwargs)
            samples = frame.loc[rows[:sample_rows], columns].astype(object).to_dict("records")
            outcomes.append(
                RuleOutcome(table, config.meta["rule"], config.type, columns, rows, samples)
            )
    return outcomes


def _gx_errors(info: dict) -> list[str]:
    if "raised_exception" in info:
        return [info.get("exception_message") or "error"] if info["raised_exception"] else []
    return [
        value.get("exception_message") or "error"
        for value in info.values()
        if isinstance(value, dict) and value.get("raised_exception")
    ]


# ---- quarantine ----------------------------------------------------------------------------


def _rules_per_row(outcomes: list[RuleOutcome], table: str, rows: int) -> list[list[str]]:
    broken: list[list[str]] = [[] for _ in range(rows)]
    for outcome in outcomes:
        if outcome.table == table:
            for row in outcome.failed_rows:
                broken[row].append(outcome.rule)
    return broken


def _add_dependants(
    broken: list[list[str]], column: pa.ChunkedArray, quarantined_ids: pa.Array, rule: str
) -> None:
    depends = pc.fill_null(pc.is_in(column, value_set=quarantined_ids), False)
    for row in pc.indices_nonzero(depends).to_pylist():
        broken[row].append(rule)


def _bad_rows(broken: list[list[str]]) -> pa.Array:
    return pa.array([bool(rules) for rules in broken], pa.bool_())


def quarantine(tables: dict[str, pa.Table], outcomes: list[RuleOutcome]) -> dict[str, TableOutcome]:
    """Split each table into kept and quarantined rows; dependants follow their rows."""
    broken = {
        name: _rules_per_row(outcomes, name, table.num_rows) for name, table in tables.items()
    }

    def quarantined_ids(name: str, id_column: str) -> pa.Array:
        mask = _bad_rows(broken[name])
        ids = tables[name].column(id_column).combine_chunks().filter(mask).drop_null()
        return pc.unique(ids)

    bad_users = quarantined_ids("users", "user_id")
    _add_dependants(
        broken["images"], tables["images"].column("creator_id"), bad_users, CREATOR_QUARANTINED
    )
    bad_images = quarantined_ids("images", "image_id")
    _add_dependants(
        broken["remixes"],
        tables["remixes"].column("source_image_id"),
        bad_images,
        SOURCE_QUARANTINED,
    )
    _add_dependants(
        broken["remixes"], tables["remixes"].column("remixer_id"), bad_users, REMIXER_QUARANTINED
    )

    results = {}
    for name, table in tables.items():
        rules = broken[name]
        is_bad = _bad_rows(rules)
        numbered = table.append_column(SOURCE_ROW, pa.array(range(table.num_rows), pa.int64()))
        quarantined = numbered.filter(is_bad).append_column(
            RULE, pa.array(["; ".join(row_rules) for row_rules in rules if row_rules], pa.string())
        )
        counts = Counter(rule for row_rules in rules for rule in row_rules)
        results[name] = TableOutcome(
            name, table.num_rows, table.filter(pc.invert(is_bad)), quarantined, dict(counts)
        )
    return results


# ---- outputs -------------------------------------------------------------------------------


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")


def write_validated(
    outcomes: dict[str, TableOutcome], manifest: Manifest, config: ValidateConfig
) -> None:
    for directory in (config.validated_dir, config.quarantine_dir):
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
    for name, outcome in outcomes.items():
        kept = outcome.kept.cast(TABLE_SCHEMAS[TABLE_FILES[name]])
        if name == "images":
            paths = [
                (config.export_dir / file).as_posix() for file in kept.column("file").to_pylist()
            ]
            kept = kept.append_column(
                pa.field(PATH, pa.string(), nullable=False), pa.array(paths, pa.string())
            )
        _write(kept, config.validated_dir / TABLE_FILES[name])
        _write(outcome.quarantined, config.quarantine_dir / TABLE_FILES[name])
    (config.validated_dir / MANIFEST_FILE).write_text(manifest.to_json() + "\n", encoding="utf-8")


def summarise(outcomes: dict[str, TableOutcome], config: ValidateConfig) -> dict:
    tables = {
        name: {
            "rows_in": outcome.rows_in,
            "rows_kept": outcome.kept.num_rows,
            "rows_quarantined": outcome.quarantined.num_rows,
            "quarantined_share": round(outcome.quarantined_share, SHARE_DIGITS),
            "quarantined_per_rule": dict(sorted(outcome.rule_counts.items())),
        }
        for name, outcome in outcomes.items()
    }
    over = sorted(
        name
        for name, outcome in outcomes.items()
        if outcome.quarantined_share > config.max_quarantine_share
    )
    return {
        "passed": not over,
        "max_quarantine_share": config.max_quarantine_share,
        "tables_over_limit": over,
        "tables": tables,
    }


def _over_limit_line(path: Path, counts: dict) -> str:
    rules = ", ".join(f"{rule} ({n})" for rule, n in counts["quarantined_per_rule"].items())
    return (
        f"{path}: {counts['rows_quarantined']} of {counts['rows_in']} rows quarantined "
        f"({counts['quarantined_share']:.2%}), rules: {rules}"
    )


def validate_export(config: ValidateConfig) -> dict:
    """Check the export in `config.export_dir`; write the kept and quarantined rows, the
    report and the metrics; GateFailed when a table's quarantined share is over the limit."""
    manifest = read_manifest(config.export_dir)
    tables = {
        name: read_export_table(config.export_dir / file, config.sample_rows)
        for name, file in TABLE_FILES.items()
    }
    for name in ("users", "images"):
        if tables[name].num_rows == 0:
            raise ExportError(
                f"{config.export_dir / TABLE_FILES[name]}: the table has no rows "
                f"(rule: an export has at least one {name[:-1]})"
            )
    suites = load_suites(config.expectations_dir)
    # Pillow refuses larger images outright (its own default is far above the contract's).
    Image.MAX_IMAGE_PIXELS = config.max_image_side**2
    frames = validation_frames(
        tables, config.export_dir, config.decode_workers, config.max_image_side
    )
    parameters = {
        "exported_at": format_utc(manifest.exported_at),
        "max_image_side": config.max_image_side,
    }
    rules = run_suites(
        frames,
        suites,
        parameters,
        config.sample_rows,
        expectations_dir=config.expectations_dir,
        runtime_dir=config.gx_runtime_dir,
        data_docs_dir=config.data_docs_dir,
        run_time=manifest.exported_at,
    )
    outcomes = quarantine(tables, rules)
    write_validated(outcomes, manifest, config)
    summary = summarise(outcomes, config)
    # Shares are rounded above; the limit is shown as configured.
    write_metrics(config.metrics, summary, digits=None)
    config.report.parent.mkdir(parents=True, exist_ok=True)
    config.report.write_text(
        render_report(summary, rules, manifest, config, DEPENDANT_RULES), encoding="utf-8"
    )
    failure = None
    if not summary["passed"]:
        details = "; ".join(
            _over_limit_line(config.export_dir / TABLE_FILES[name], summary["tables"][name])
            for name in summary["tables_over_limit"]
        )
        failure = (
            f"validation gate: quarantined share above validate.max_quarantine_share="
            f"{config.max_quarantine_share}: {details}; see {config.report} and "
            f"{config.quarantine_dir}/"
        )
    write_verdict(config.verdict, "validate", summary["passed"], config.validated_dir, failure)
    if failure:
        raise GateFailed(failure)
    return summary
