"""The files passed between stages: names, readers, and the one metrics writer."""

import json
import math
import os

import pandas as pd
import pytest

from social_reward.artifacts import (
    IMAGE_SPLITS_FILE,
    PairDataError,
    read_image_splits,
    read_modes,
    read_training_images,
    rounded,
    split_file,
    write_metrics,
    write_modes,
    write_text_atomic,
)


def test_metrics_are_rounded_nan_free_and_indented(tmp_path):
    path = tmp_path / "metrics" / "stage.json"
    written = write_metrics(
        path, {"a": 0.123456, "b": {"c": [1.98766, math.nan]}, "d": 3, "e": "x"}
    )
    assert written == {"a": 0.1235, "b": {"c": [1.9877, None]}, "d": 3, "e": "x"}
    assert path.read_text() == json.dumps(written, indent=2) + "\n"
    assert json.loads(path.read_text()) == written
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_metrics_a_stage_rounded_itself_are_written_as_they_are(tmp_path):
    path = tmp_path / "stage.json"
    assert write_metrics(path, {"limit": 0.018867924528301886}, digits=None) == {
        "limit": 0.018867924528301886
    }
    assert rounded(0.123456, 6) == 0.123456


def test_a_write_that_fails_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "stage.json"
    write_text_atomic(path, "before\n")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(path, "after\n")
    assert path.read_text() == "before\n"
    assert [file.name for file in tmp_path.iterdir()] == ["stage.json"]


def test_image_splits_and_modes(tmp_path):
    with pytest.raises(PairDataError, match=rf"{IMAGE_SPLITS_FILE}: file missing; run the `pairs`"):
        read_image_splits(tmp_path)
    images = pd.DataFrame({"image_id": ["a", "b", "c"], "split": ["train", "test", "unpaired"]})
    images.to_parquet(tmp_path / IMAGE_SPLITS_FILE)
    assert read_training_images(tmp_path)["image_id"].tolist() == ["a", "c"]
    assert split_file(tmp_path, "val") == tmp_path / "val.parquet"
    assert read_modes(tmp_path) == {"main": "?", "ablation": "?"}
    write_modes(tmp_path, main="debiased", ablation="naive")
    assert read_modes(tmp_path) == {"main": "debiased", "ablation": "naive"}
