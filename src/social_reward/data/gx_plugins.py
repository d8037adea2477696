"""The GX classes the project's great_expectations.yml names (see gx_project): Data Docs
that need nothing from the network, and validation results that are the same bytes for the
same export.

Offline: GX's page templates load Bootstrap, jQuery, bootstrap-table, Vega and Font Awesome
from CDNs (and its logo from S3), and GX has no setting for local copies. Offline, every
page logs failed requests and script errors, and the index, which bootstrap-table fills,
stays empty. These views are GX's own with the few templates that load anything from
outside replaced by those in `gx_templates/`: the same pages, with the Bootstrap rules and
the scripts they use inlined, the index tables written as HTML, the logo from the site's
`static/`.

Reproducible: the stage's outputs are DVC outputs, which a rerun or a fresh clone must
reproduce byte for byte. The stage gives each run the export's time (`exported_at`, see
validation.run_suites); GX also stamps a batch with the moment it was loaded
(`batch_markers.ge_load_time`), which the results store replaces with the run's time, and
gives page elements random ids, which these views number instead.
"""

from __future__ import annotations

from itertools import count
from pathlib import Path

from great_expectations.data_context import store as gx_stores
from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import BytecodeCache, ChoiceLoader, FileSystemLoader
from jinja2.bccache import Bucket

TEMPLATES = Path(__file__).with_name("gx_templates")
LOAD_TIME = "ge_load_time"
LOAD_TIME_FORMAT = "%Y%m%dT%H%M%S.%fZ"  # GX's own


class ValidationResultsStore(gx_stores.ValidationResultsStore):
    """GX's validation results store; a batch's load time is written as the run's time.

    Named as GX's: GX replaces a configured store whose class name is not one of its own
    with an in-memory one of its own (DataContextConfig._init_stores)."""

    def serialize(self, value):
        markers = value.meta.get("batch_markers") or {}
        run_id = value.meta.get("run_id")
        if LOAD_TIME in markers and run_id is not None and run_id.run_time is not None:
            markers[LOAD_TIME] = run_id.run_time.strftime(LOAD_TIME_FORMAT)
        return super().serialize(value)


class _CompiledTemplates(BytecodeCache):
    """The templates compiled once per process: GX makes new views, each with its own Jinja
    environment, for every page section and every Data Docs build (a third of a run's time
    went to compiling the same templates again)."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        if bucket.key in self._code:
            bucket.bytecode_from_string(self._code[bucket.key])

    def dump_bytecode(self, bucket: Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _CompiledTemplates()


class _OfflineView:
    """Our templates before GX's, which stay in use for everything else; element ids
    numbered within each page."""

    def __init__(self, custom_styles_directory=None, custom_views_directory=None) -> None:
        super().__init__(custom_styles_directory, custom_views_directory)
        self.env.loader = ChoiceLoader([FileSystemLoader(TEMPLATES), self.env.loader])
        self.env.bytecode_cache = _COMPILED
        self._element_ids = count(1)

    def render(self, document, template=None, **kwargs):
        self._element_ids = count(1)
        return super().render(document, template, **kwargs)

    def generate_html_element_uuid(self, prefix=None) -> str:
        return f"{prefix or ''}{next(self._element_ids)}"


class OfflinePageView(_OfflineView, DefaultJinjaPageView):
    """GX's page view (expectation suites, validation results), offline."""


class OfflineIndexPageView(_OfflineView, DefaultJinjaIndexPageView):
    """GX's index page view, offline."""
