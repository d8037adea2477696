"""Gate verdicts: what each gate stage (validate, drift) decided, and about which export.

A gate stage writes its verdict, passed or not, before it fails. Every stage that reads the
export's content requires the verdicts first (`require_passed`), so a gate cannot be
skipped: `dvc repro <stage>` runs the gates first (the verdicts are the stage's deps in
dvc.yaml), and a stage run on its own (`dvc repro -s`, or its command by hand) refuses a
failed verdict or one about another export. A verdict names the export by a digest of the
validated tables it judged, so a verdict left from an earlier export never passes a new one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from social_reward.artifacts import write_text_atomic
from social_reward.data.export import TABLE_FILES
from social_reward.errors import GateFailed

DIGEST_CHUNK_BYTES = 1 << 20


def validated_digest(validated_dir: Path) -> str:
    """A digest of the validated tables (their bytes, in the contract's order)."""
    digest = hashlib.sha256()
    for file in TABLE_FILES.values():
        path = validated_dir / file
        digest.update(file.encode())
        if path.is_file():
            with path.open("rb") as handle:
                while chunk := handle.read(DIGEST_CHUNK_BYTES):
                    digest.update(chunk)
    return digest.hexdigest()


def write_verdict(
    path: Path, gate: str, passed: bool, validated_dir: Path, summary: str | None = None
) -> dict:
    """Record a gate's verdict on the export in `validated_dir`.

    A passed verdict holds no figures, so that it changes only with the export: a new
    reference for the drift gate does not rerun what follows it when the export still passes.
    """
    verdict = {"gate": gate, "passed": passed, "export": validated_digest(validated_dir)}
    if not passed and summary:
        verdict["summary"] = summary
    write_text_atomic(path, json.dumps(verdict, indent=2) + "\n")
    return verdict


def require_passed(verdicts: Iterable[Path], validated_dir: Path) -> None:
    """GateFailed unless every verdict exists, passed, and is about this validated export."""
    export = None
    for path in verdicts:
        gate = path.stem
        rerun = f"run the gate first: `dvc repro {gate}`"
        if not path.is_file():
            raise GateFailed(
                f"{path}: file missing (rule: the {gate} gate passes the export before any "
                f"stage reads it); {rerun}"
            )
        try:
            verdict = json.loads(path.read_text(encoding="utf-8"))
            passed, judged = verdict["passed"], verdict["export"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
            raise GateFailed(
                f"{path}: not a gate verdict (rule: JSON with 'passed' and 'export', as the "
                f"{gate} stage writes it; error: {error!r}); {rerun}"
            ) from error
        if passed is not True:
            raise GateFailed(
                f"{path}: the {gate} gate did not pass this export"
                + (f" ({verdict['summary']})" if verdict.get("summary") else "")
                + f"; no stage reads the export until it does (see the {gate} report)"
            )
        export = export or validated_digest(validated_dir)
        if judged != export:
            raise GateFailed(
                f"{path}: the verdict is about another export than {validated_dir} (rule: a "
                f"gate's verdict holds for the export it judged); {rerun}"
            )
