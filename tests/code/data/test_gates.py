"""Gate verdicts: a stage that reads the export refuses a missing, failed, broken or stale
verdict, each with the file, the rule and what to run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from social_reward.data.gates import require_passed, validated_digest, write_verdict
from social_reward.errors import GateFailed


@pytest.fixture
def validated(tmp_path) -> Path:
    folder = tmp_path / "validated"
    folder.mkdir()
    for name in ("users", "images", "remixes"):
        (folder / f"{name}.parquet").write_bytes(name.encode())
    return folder


def test_passed_verdicts_about_this_export_let_the_stage_read_it(validated, tmp_path):
    verdicts = [tmp_path / "gates" / f"{gate}.json" for gate in ("validate", "drift")]
    for path in verdicts:
        write_verdict(path, path.stem, True, validated, summary="ignored when passed")
    require_passed(verdicts, validated)
    written = json.loads(verdicts[1].read_text())
    assert written == {"gate": "drift", "passed": True, "export": validated_digest(validated)}


def test_a_missing_verdict_says_which_gate_to_run(validated, tmp_path):
    missing = tmp_path / "gates" / "drift.json"
    with pytest.raises(GateFailed) as error:
        require_passed([missing], validated)
    assert str(error.value) == (
        f"{missing}: file missing (rule: the drift gate passes the export before any stage "
        "reads it); run the gate first: `dvc repro drift`"
    )


def test_a_failed_verdict_stops_the_stage_with_the_gates_summary(validated, tmp_path):
    verdict = tmp_path / "gates" / "drift.json"
    write_verdict(verdict, "drift", False, validated, summary="5 of 12 columns drifted")
    with pytest.raises(GateFailed) as error:
        require_passed([verdict], validated)
    assert str(error.value) == (
        f"{verdict}: the drift gate did not pass this export (5 of 12 columns drifted); no "
        "stage reads the export until it does (see the drift report)"
    )


def test_a_verdict_about_another_export_does_not_pass_this_one(validated, tmp_path):
    verdict = tmp_path / "gates" / "validate.json"
    write_verdict(verdict, "validate", True, validated)
    (validated / "images.parquet").write_bytes(b"a new export")
    with pytest.raises(GateFailed) as error:
        require_passed([verdict], validated)
    assert "the verdict is about another export than" in str(error.value)
    assert "run the gate first: `dvc repro validate`" in str(error.value)


@pytest.mark.parametrize("text", ["not json", "[]", '{"passed": true}'])
def test_a_broken_verdict_is_refused(validated, tmp_path, text):
    verdict = tmp_path / "validate.json"
    verdict.write_text(text)
    with pytest.raises(GateFailed) as error:
        require_passed([verdict], validated)
    assert f"{verdict}: not a gate verdict (rule: JSON with 'passed' and 'export'" in str(
        error.value
    )


def test_a_verdict_is_written_atomically_and_never_through_a_symlink(validated, tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    verdict = tmp_path / "validate.json"
    verdict.symlink_to(target)
    write_verdict(verdict, "validate", True, validated)
    assert target.read_text() == "keep me"
    assert not verdict.is_symlink() and json.loads(verdict.read_text())["passed"] is True
