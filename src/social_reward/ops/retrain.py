"""Retraining on fresh engagement data: take an export from the drop folder, check it, and put
it in place. `registry` then decides whether the model trained on it replaces the champion.

The drop folder (`retrain.inbox`) holds one folder per fresh export:

    inbox/<name>/data/                  the export, as the contract describes it
    inbox/<name>/truth/appeal.parquet   its ground truth (simulated exports only)
    inbox/<name>/READY                  written by the producer last, once the rest is there

A folder without `READY` is still being written: it is passed over and not touched. The
newest ready export later than the one in `data/` is taken; older ones are left alone. It is
validated and compared with the champion's drift reference by the same code as the
`validate` and `drift` stages, into `retrain.intake_dir`, before anything in the project
changes. An export a gate stops is moved to `retrain.rejected_dir` with the reason and
recorded in the registry; `data/`, the champion and its files stay as they were. An export
that passes replaces `data/` (only a `data/` that its data.dvc can restore, or an absent or
empty one) and is versioned with `dvc add`. Anything else in its folder is kept in
`<inbox>/taken/<name>/`.

Taking an export survives a crash at any point: intake writes its intent
(`<inbox>/.intake.json`) first and moves each part with one rename, and the next intake
finishes what the intent names before anything else.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout

from social_reward.artifacts import write_text_atomic
from social_reward.config.params import Params
from social_reward.data.drift_detection import FEATURES_REPORT, TOPICS_REPORT, check_drift
from social_reward.data.export import (
    ExportError,
    Manifest,
    format_utc,
    read_manifest,
)
from social_reward.data.validation import validate_export
from social_reward.errors import GateFailed, SocialRewardError
from social_reward.evidently_snapshots import snapshot_path
from social_reward.ops.dvc_command import checked_dvc
from social_reward.ops.evidently_history import add_snapshots
from social_reward.ops.provenance import provenance
from social_reward.ops.registry import export_in_place, read_champion, record_decision

INBOX_DATA = "data"  # inside an inbox folder: the export
INBOX_TRUTH = Path("truth") / "appeal.parquet"  # inside an inbox folder: its ground truth
READY_FILE = "READY"  # inside an inbox folder: the producer's "export complete" marker
REASON_FILE = "REJECTED.txt"  # written beside a rejected export
TAKEN_DIR = "taken"  # inside the inbox: what a taken export's folder held besides the export
INTAKE_INTENT = ".intake.json"  # inside the inbox: an export being put in place
# The steps of putting an export in place, in order; `put_in_place(after_step=...)` calls it
# after each (a test hook: the fault-injection tests kill the process there).
INTAKE_STEPS = ("intent", "data_replaced", "truth_replaced", "rest_kept", "versioned", "cleaned")
StepHook = Callable[[str], None]


class IntakeError(SocialRewardError, RuntimeError):
    """The fresh export could not be put in place; nothing was changed."""


class ExportRejected(GateFailed):
    """A gate stopped the fresh export: the message says which, why and where it now is."""


class _Broken(Exception):
    """An inbox folder whose manifest breaks the contract."""

    def __init__(self, folder: Path, error: ExportError) -> None:
        super().__init__(str(error))
        self.folder = folder
        self.error = error


class RetrainBusy(SocialRewardError, RuntimeError):
    """Another retrain run holds the lock."""


@dataclass(frozen=True)
class FreshExport:
    folder: Path  # inbox/<name>
    manifest: Manifest

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def data_dir(self) -> Path:
        return self.folder / INBOX_DATA

    @property
    def truth(self) -> Path | None:
        path = self.folder / INBOX_TRUTH
        return path if path.is_file() else None

    def describe(self) -> dict:
        return {
            "name": self.name,
            "exported_at": format_utc(self.manifest.exported_at),
            "source": self.manifest.source,
        }


@contextmanager
def retrain_lock(params: Params, project: Path = Path(".")) -> Iterator[Path]:
    """Hold the retrain lock of `project`; RetrainBusy after `retrain.lock_timeout_s`."""
    path = project / params.retrain.lock
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=params.retrain.lock_timeout_s)
    try:
        lock.acquire()
    except Timeout as error:
        raise RetrainBusy(
            f"{path}: another retrain run holds this lock (waited "
            f"{params.retrain.lock_timeout_s:g} s, retrain.lock_timeout_s); two runs at once "
            "would replace each other's export and models. Let it finish and run again."
        ) from error
    try:
        yield path
    finally:
        lock.release()


def find_fresh_export(params: Params) -> tuple[FreshExport | None, list[str]]:
    """The newest inbox export later than the one in place, and why other folders were passed.

    A folder whose manifest is unreadable is an export that breaks the contract: it raises
    (`_Broken`), so that `intake` rejects and records it rather than passing over it.
    """
    inbox = params.retrain.inbox
    if not inbox.is_dir():
        return None, [f"{inbox}: no such folder (retrain.inbox)"]
    in_place = export_in_place(params)
    candidates: list[FreshExport] = []
    passed_over: list[str] = []
    for folder in sorted(inbox.iterdir()):
        if (
            not folder.is_dir()
            or folder.name.startswith(".")
            or folder in (params.retrain.rejected_dir, inbox / TAKEN_DIR)
        ):
            continue
        if folder.is_symlink():  # intake moves and writes into what it takes: real folders only
            passed_over.append(f"{folder}: a symlink, not a folder; intake leaves it alone")
            continue
        if not (folder / READY_FILE).exists():
            passed_over.append(
                f"{folder}: waiting for {READY_FILE} (the producer writes it last, once the "
                "export is complete)"
            )
            continue
        try:  # READY and no manifest: a broken export, rejected like one
            manifest = read_manifest(folder / INBOX_DATA)
        except ExportError as error:
            raise _Broken(folder, error) from error
        if in_place is not None and manifest.exported_at <= in_place.exported_at:
            passed_over.append(
                f"{folder}: exported_at {format_utc(manifest.exported_at)} is not later than the "
                f"export in place ({format_utc(in_place.exported_at)})"
            )
            continue
        candidates.append(FreshExport(folder, manifest))
    if not candidates:
        return None, passed_over
    newest = max(candidates, key=lambda fresh: (fresh.manifest.exported_at, fresh.name))
    passed_over += [
        f"{fresh.folder}: an older fresh export than {newest.name}; left for the record"
        for fresh in candidates
        if fresh is not newest
    ]
    return newest, passed_over


def check_fresh_export(params: Params, fresh: FreshExport) -> dict:
    """Validate the fresh export and compare it with the champion's drift reference.

    Runs the `validate` and `drift` stages' code with their params.yaml sections, writing into
    `retrain.intake_dir` and `retrain.intake_report_dir`; a gate raises GateFailed.
    """
    intake = params.retrain.intake_dir
    reports = params.retrain.intake_report_dir
    for folder in (intake, reports):
        shutil.rmtree(folder, ignore_errors=True)
    validate_config = params.validate_.model_copy(
        update={
            "export_dir": fresh.data_dir,
            "validated_dir": intake / "validated",
            "quarantine_dir": intake / "quarantine",
            "report": reports / "validate" / "index.html",
            "metrics": intake / "validate.json",
            "verdict": intake / "gates" / "validate.json",
        }
    )
    validated = validate_export(validate_config)
    drift_config = params.drift.model_copy(
        update={
            "validated_dir": validate_config.validated_dir,
            "features": intake / "drift" / "features.parquet",
            "report_dir": reports / "drift",
            "metrics": intake / "drift.json",
            "verdict": intake / "gates" / "drift.json",
            "gate_verdicts": (validate_config.verdict,),
        }
    )
    try:
        drift = check_drift(drift_config)
    finally:  # a drifted export's snapshots are the ones reviewers most want in the history
        add_intake_history(params, fresh, drift_config.report_dir)
    return {
        "validate": {"passed": validated["passed"], "report": str(validate_config.report)},
        "drift": {
            "passed": drift["passed"],
            "override": drift.get("override", False),
            "summary": drift["summary"],
            "report": str(drift_config.report_dir / "index.html"),
        },
    }


def add_intake_history(params: Params, fresh: FreshExport, report_dir: Path) -> list[str]:
    """Add the intake's drift snapshots to the Evidently workspace the `report` stage keeps."""
    snapshots = {
        f"intake {name}": snapshot_path(report_dir / report)
        for name, report in (("drift features", FEATURES_REPORT), ("drift topics", TOPICS_REPORT))
    }
    return add_snapshots(
        params.report.workspace,
        params.report.project,
        snapshots,
        metadata={"run": f"intake {fresh.name}", "export": fresh.name},
        tags=("intake",),
    )


def reject(params: Params, folder: Path, reason: str) -> Path:
    """Move an inbox folder to `retrain.rejected_dir`, with the reason beside it."""
    rejected = _free_name(params.retrain.rejected_dir / folder.name)  # the same name: keep both
    rejected.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(folder), str(rejected))
    # A new file renamed over the name: a symlink left there is replaced, never written through.
    write_text_atomic(rejected / REASON_FILE, reason + "\n")
    return rejected


def put_in_place(
    params: Params, fresh: FreshExport, after_step: StepHook | None = None
) -> str | None:
    """Replace the export in place with the fresh one and version it with `dvc add`.

    Only an export that `data.dvc` can restore (or an absent or empty `data/`) is replaced;
    otherwise IntakeError and nothing is touched. Crash-safe: the intent is written first,
    each part moves with one rename, and `recover_intake` finishes it. `after_step` is a test
    hook called with each INTAKE_STEPS name.
    """
    _check_replaceable(params, fresh)
    intent = {"export": fresh.name, "folder": str(fresh.folder), "truth": fresh.truth is not None}
    write_text_atomic(params.retrain.inbox / INTAKE_INTENT, json.dumps(intent, indent=2) + "\n")
    _step(after_step, "intent")
    _finish_intake(params, intent, after_step)
    return provenance(params)["data_dvc_md5"]


def recover_intake(params: Params) -> str | None:
    """Finish putting in place an export a crash interrupted; its name, or None."""
    intent_file = params.retrain.inbox / INTAKE_INTENT
    if not intent_file.is_file():
        return None
    intent = json.loads(intent_file.read_text(encoding="utf-8"))
    _finish_intake(params, intent)
    return intent["export"]


def _check_replaceable(params: Params, fresh: FreshExport) -> None:
    export_dir, truth = params.validate_.export_dir, params.pairs.truth
    dvc_file = Path(f"{export_dir}.dvc")
    if dvc_file.is_file():
        status = json.loads(checked_dvc(["status", "--json", str(dvc_file)]) or "{}")
        if status:
            raise IntakeError(
                f"{export_dir}/: differs from {dvc_file} ({json.dumps(status)}); replacing it "
                f"would lose it. Version it with `dvc add {export_dir}` or restore it with "
                f"`dvc checkout {dvc_file}`, then run again; {fresh.folder} is still in the inbox"
            )
    elif export_dir.is_symlink() or (
        export_dir.exists() and (not export_dir.is_dir() or any(export_dir.iterdir()))
    ):
        raise IntakeError(
            f"{export_dir}: not versioned ({dvc_file} missing); rule: intake replaces only an "
            "export DVC can restore, or an absent or empty folder. Version it with "
            f"`dvc add {export_dir}` or move it away, then run again; {fresh.folder} is still "
            "in the inbox"
        )
    for destination in [export_dir] + ([truth] if fresh.truth is not None else []):
        parent = destination.parent.resolve()
        parent.mkdir(parents=True, exist_ok=True)
        if os.stat(parent).st_dev != os.stat(fresh.folder).st_dev:
            raise IntakeError(
                f"{fresh.folder}: on another filesystem than {parent}; rule: intake moves an "
                "export with one rename, so that a crash cannot leave half of it. Put "
                "retrain.inbox on the project's filesystem; the export is still in the inbox"
            )


def _finish_intake(params: Params, intent: dict, after_step: StepHook | None = None) -> None:
    """Every step of putting an export in place; each one can be repeated after a crash."""
    export_dir, truth = params.validate_.export_dir, params.pairs.truth
    inbox = params.retrain.inbox
    folder = Path(intent["folder"])
    if (folder / INBOX_DATA).is_dir():  # not moved yet: data/ is the export DVC can restore
        shutil.rmtree(export_dir, ignore_errors=True)
        _rename(folder / INBOX_DATA, export_dir)
    _step(after_step, "data_replaced")
    if (folder / INBOX_TRUTH).is_file():
        truth.unlink(missing_ok=True)
        _rename(folder / INBOX_TRUTH, truth)
    elif not intent["truth"]:
        # The truth of the previous export would be refused beside this one (truth.py).
        truth.unlink(missing_ok=True)
    _step(after_step, "truth_replaced")
    if folder.is_dir():
        (folder / READY_FILE).unlink(missing_ok=True)
        if (folder / INBOX_TRUTH.parent).is_dir() and not any(
            (folder / INBOX_TRUTH.parent).iterdir()
        ):
            (folder / INBOX_TRUTH.parent).rmdir()
        if any(folder.iterdir()):  # files the user left beside the export: kept, not deleted
            kept = _free_name(inbox / TAKEN_DIR / folder.name)
            kept.parent.mkdir(parents=True, exist_ok=True)
            folder.rename(kept)
        else:
            folder.rmdir()
    _step(after_step, "rest_kept")
    checked_dvc(["add", "--quiet", str(export_dir)])
    _step(after_step, "versioned")
    (inbox / INTAKE_INTENT).unlink()
    _step(after_step, "cleaned")


def _rename(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        source.rename(destination)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise
        raise IntakeError(
            f"{source}: on another filesystem than {destination}; rule: intake moves an export "
            "with one rename. Put retrain.inbox on the project's filesystem"
        ) from error


def _free_name(path: Path) -> Path:
    """`path`, or `path.1`, `path.2`...: the first that does not exist yet."""
    candidate, stamp = path, 0
    while candidate.exists() or candidate.is_symlink():
        stamp += 1
        candidate = path.with_name(f"{path.name}.{stamp}")
    return candidate


def _step(after_step: StepHook | None, name: str) -> None:
    if after_step is not None:
        after_step(name)


def intake(params: Params) -> dict:
    """Take the fresh export: find, check, put in place. Rejections are recorded, then raised.

    Returns what was taken (`export` is None when the inbox holds nothing newer).
    """
    read_champion(params)  # finishes a half-done promotion; refuses a lost champion
    finished = recover_intake(params)
    if finished is not None:  # taken (checks passed) by a run a crash stopped: this run's export
        manifest = read_manifest(params.validate_.export_dir)
        return {
            "export": FreshExport(Path(finished), manifest).describe(),
            "data_dvc_md5": provenance(params)["data_dvc_md5"],
            "checks": None,
            "recovered": f"{finished}: put in place by finishing an interrupted intake",
            "passed_over": [],
        }
    try:
        fresh, passed_over = find_fresh_export(params)
    except _Broken as broken:
        _reject_and_record(params, broken.folder, None, "validate", str(broken.error))
    if fresh is None:
        return {
            "export": None,
            "reason": "no fresh export in the inbox",
            "passed_over": passed_over,
        }
    gate = "validate"
    try:
        checks = check_fresh_export(params, fresh)
    except (GateFailed, ExportError) as error:
        if isinstance(error, GateFailed) and str(error).startswith("drift gate"):
            gate = "drift"
        _reject_and_record(params, fresh.folder, fresh, gate, str(error))
    md5 = put_in_place(params, fresh)
    return {
        "export": fresh.describe(),
        "data_dvc_md5": md5,
        "checks": checks,
        "passed_over": passed_over,
    }


def _reject_and_record(
    params: Params, folder: Path, fresh: FreshExport | None, gate: str, message: str
) -> None:
    rejected = reject(params, folder, message)
    export = fresh.describe() if fresh else {"name": folder.name}
    record_decision(
        params,
        outcome=f"rejected_at_{gate}",
        promoted=False,
        reason=message,
        export=export,
    )
    raise ExportRejected(
        f"fresh export {folder} stopped at the {gate} gate; the champion and data/ are "
        f"unchanged, the export is kept in {rejected}: {message}"
    )
