"""The validate stage's Great Expectations project, committed as `expectations/gx/`.

GX's own file layout: `great_expectations.yml` (a pandas data source `export` with one
dataframe asset and batch definition per table), `validation_definitions/` and
`checkpoints/` (one checkpoint per table, result format COMPLETE, updating Data Docs). The
rules stay in `expectations/*.json`: the stage loads them (`validation.load_suites`) into an
expectations store among its outputs. Every store a run writes to (the suites as run, the
validation results, Data Docs) lies under the stage's outputs, through GX config variables
given as `runtime_environment`, so a run writes nothing under `expectations/`.

The project is generated from the contract's tables (`write_gx_project`, the command
`social-reward gx-project`), never edited by hand; its ids are derived from names
(`stable_id`), so a second generation, a second run and a fresh clone agree.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from social_reward.data.export import TABLE_FILES
from social_reward.errors import SocialRewardError

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuite
    from great_expectations.data_context import FileDataContext

GX_DIR = "gx"  # the project, below the expectations folder (GX's own name for it)
GX_YML = "great_expectations.yml"
GITIGNORE = ".gitignore"
CHECKPOINTS = "checkpoints"
VALIDATION_DEFINITIONS = "validation_definitions"
DATA_SOURCE = "export"
BATCH_DEFINITION = "all rows"
SITE = "local_site"
# GX config variables of great_expectations.yml, given at run time: absolute folders.
RUNTIME_VARIABLE = "validate_gx_runtime"  # the suites as run and the validation results
DATA_DOCS_VARIABLE = "validate_data_docs"  # the Data Docs site
SUITES_STORE = "expectations"  # folders below the runtime folder
RESULTS_STORE = "validations"
# uuid5 namespace of the project's ids: a name always gives the same id.
ID_NAMESPACE = uuid.UUID("6f1b0c9e-3d0a-5b7e-9c52-7a3c2f0d5e41")

HEADER = """\
# The validate stage's Great Expectations project. Generated from the export contract's
# tables by `social-reward gx-project` (social_reward.data.gx_project): do not edit by hand.
# The rules are ../*.json; the stage puts them in the expectations store when it runs.
# ${validate_gx_runtime} and ${validate_data_docs} are folders among the stage's outputs
# (next to params.yaml validate.report, and validate.data_docs), given to
# gx.get_context(..., runtime_environment=...): running writes nothing in this folder.
# social_reward.data.gx_plugins: Data Docs that work offline, results the same bytes per export.
"""


class GXProjectError(SocialRewardError, ValueError):
    """The committed GX project is missing or does not know a table: regenerate it."""


def stable_id(*names: str) -> str:
    """The id of a project's object, from its names: the same in every run and clone."""
    return str(uuid.uuid5(ID_NAMESPACE, "/".join(names)))


def checkpoint_name(table: str) -> str:
    return f"validate_{table}"


def suite_id(table: str) -> str:
    return stable_id("suite", table)


def expectation_id(table: str, index: int) -> str:
    return stable_id("suite", table, "expectation", str(index))


def _store(base_directory: str, **options) -> dict:
    """A store in files; no random `.ge_store_backend_id` file (GX's usage statistics)."""
    backend = {
        "class_name": "TupleFilesystemStoreBackend",
        "base_directory": base_directory,
        "suppress_store_backend_id": True,
    }
    return {**options, "store_backend": backend}


def _plugin(name: str) -> dict:
    """A class of gx_plugins, which GX imports by its name in great_expectations.yml."""
    from social_reward.data import gx_plugins

    return {"module_name": gx_plugins.__name__, "class_name": getattr(gx_plugins, name).__name__}


def project_config(tables: list[str]) -> dict:
    """great_expectations.yml as a mapping."""
    runtime = f"${{{RUNTIME_VARIABLE}}}"
    return {
        "config_version": 4.0,
        "analytics_enabled": False,
        "data_context_id": stable_id("data_context"),
        "progress_bars": {"globally": False, "metric_calculations": False},
        "stores": {
            "expectations_store": _store(
                f"{runtime}/{SUITES_STORE}/", class_name="ExpectationsStore"
            ),
            "validation_results_store": _store(
                f"{runtime}/{RESULTS_STORE}/", **_plugin("ValidationResultsStore")
            ),
            "checkpoint_store": _store(f"{CHECKPOINTS}/", class_name="CheckpointStore"),
            "validation_definition_store": _store(
                f"{VALIDATION_DEFINITIONS}/", class_name="ValidationDefinitionStore"
            ),
        },
        "expectations_store_name": "expectations_store",
        "validation_results_store_name": "validation_results_store",
        "checkpoint_store_name": "checkpoint_store",
        "data_docs_sites": {
            SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": f"${{{DATA_DOCS_VARIABLE}}}/",
                },
                "site_index_builder": {
                    "class_name": "DefaultSiteIndexBuilder",
                    "view": _plugin("OfflineIndexPageView"),
                },
                # GX's pages with views that need nothing from the network (gx_plugins)
                "site_section_builders": {
                    "expectations": {
                        "class_name": "DefaultSiteSectionBuilder",
                        "view": _plugin("OfflinePageView"),
                        "source_store_name": "expectations_store",
                        "renderer": {"class_name": "ExpectationSuitePageRenderer"},
                    },
                    "validations": {
                        "class_name": "DefaultSiteSectionBuilder",
                        "view": _plugin("OfflinePageView"),
                        "source_store_name": "validation_results_store",
                        "renderer": {"class_name": "ValidationResultsPageRenderer"},
                    },
                },
            }
        },
        "fluent_datasources": {
            DATA_SOURCE: {
                "type": "pandas",
                "id": stable_id("data_source", DATA_SOURCE),
                "assets": {
                    table: {
                        "type": "dataframe",
                        "id": stable_id("asset", DATA_SOURCE, table),
                        "batch_metadata": {},
                        "batch_definitions": {
                            BATCH_DEFINITION: {
                                "id": stable_id("batch_definition", DATA_SOURCE, table),
                                "partitioner": None,
                            }
                        },
                    }
                    for table in tables
                },
            }
        },
    }


def quiet_gx() -> None:
    logging.getLogger("great_expectations").setLevel(logging.ERROR)


def open_context(expectations_dir: Path, runtime_dir: Path, data_docs_dir: Path) -> FileDataContext:
    """The committed project, its run-time stores in `runtime_dir` and `data_docs_dir`."""
    import great_expectations as gx

    config = expectations_dir / GX_DIR / GX_YML
    if not config.is_file():  # GX would make a new project there: a write into the rules
        raise GXProjectError(
            f"{config}: the Great Expectations project is missing; `social-reward gx-project` "
            "writes it"
        )
    quiet_gx()
    return gx.get_context(
        mode="file",
        project_root_dir=expectations_dir,
        runtime_environment={
            RUNTIME_VARIABLE: runtime_dir.resolve().as_posix(),
            DATA_DOCS_VARIABLE: data_docs_dir.resolve().as_posix(),
        },
    )


def get_checkpoint(context: FileDataContext, table: str):
    """The table's checkpoint; GXProjectError when the project has none (a new table)."""
    from great_expectations.exceptions import DataContextError

    name = checkpoint_name(table)
    try:
        return context.checkpoints.get(name)
    except DataContextError as error:
        raise GXProjectError(
            f"{context.root_directory}: no checkpoint {name!r} for table {table!r}; "
            "`social-reward gx-project` regenerates the project for the contract's tables"
        ) from error


def put_suites(context: FileDataContext, suites: dict[str, ExpectationSuite]) -> None:
    """The suites into the context's expectations store, with their stable ids (GX's own
    `suites.add` would draw new ones)."""
    store = context.expectations_store
    for suite in suites.values():
        store.set(store.get_key(name=suite.name, id=suite.id), suite)


def _write_project(gx_dir: Path, tables: list[str]) -> None:
    """The project's files, written into an empty `gx_dir` (by GX where GX writes them)."""
    import great_expectations as gx
    from great_expectations.core import ExpectationSuite

    gx_dir.mkdir(parents=True)
    text = yaml.safe_dump(project_config(tables), sort_keys=False, allow_unicode=True)
    (gx_dir / GX_YML).write_text(HEADER + text, encoding="utf-8")
    (gx_dir / GITIGNORE).write_text("uncommitted/\n", encoding="utf-8")
    for folder in (CHECKPOINTS, VALIDATION_DEFINITIONS):
        (gx_dir / folder).mkdir()
    with tempfile.TemporaryDirectory(prefix="gx-project-") as scratch:
        context = open_context(gx_dir.parent, Path(scratch), Path(scratch) / "data_docs")
        source = context.data_sources.get(DATA_SOURCE)
        definitions = context.validation_definition_store
        checkpoints = context.checkpoint_store
        for table in tables:
            suite = ExpectationSuite(name=table, id=suite_id(table))
            put_suites(context, {table: suite})
            batch = source.get_asset(table).get_batch_definition(BATCH_DEFINITION)
            definition = gx.ValidationDefinition(
                name=table, data=batch, suite=suite, id=stable_id("validation_definition", table)
            )
            definitions.set(definitions.get_key(name=table, id=definition.id), definition)
            checkpoint = gx.Checkpoint(
                name=checkpoint_name(table),
                id=stable_id("checkpoint", table),
                validation_definitions=[definition],
                result_format="COMPLETE",
                actions=[
                    gx.checkpoint.UpdateDataDocsAction(name="update_data_docs", site_names=[SITE])
                ],
            )
            checkpoints.set(checkpoints.get_key(name=checkpoint.name, id=None), checkpoint)


def write_gx_project(expectations_dir: Path, tables: list[str] | None = None) -> Path:
    """(Re)generate `expectations_dir/gx` for the contract's tables; returns the folder."""
    gx_dir = expectations_dir / GX_DIR
    with tempfile.TemporaryDirectory(prefix="gx-project-") as scratch:
        fresh = Path(scratch) / GX_DIR
        _write_project(fresh, list(tables or TABLE_FILES))
        if gx_dir.exists():
            shutil.rmtree(gx_dir)
        shutil.copytree(fresh, gx_dir)
    return gx_dir


def project_files(gx_dir: Path) -> dict[str, str]:
    """The project's files and their text, by path relative to `gx_dir`."""
    return {
        path.relative_to(gx_dir).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(gx_dir.rglob("*"))
        if path.is_file()
    }
