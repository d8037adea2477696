import json
import shutil

import pyarrow.parquet as pq
import pytest
from PIL import Image

from social_reward.config.profile import ProfileConfig
from social_reward.data.truth import TruthMismatchError
from social_reward.stages.profile import run as run_profile


def config_for(export_dir, truth, tmp_path) -> ProfileConfig:
    return ProfileConfig(
        validated_dir=export_dir,
        truth=truth,
        metrics=tmp_path / "metrics" / "profile.json",
        plot=tmp_path / "plots" / "profile.png",
        plot_sample=300,
    )


def test_profile_counts_match_the_tables_and_report_truth(small_export, tmp_path):
    config = config_for(small_export.export_dir, small_export.truth, tmp_path)
    metrics = run_profile(config)
    assert json.loads(config.metrics.read_text()) == metrics
    for table, key in (("images", "images"), ("remixes", "remixes"), ("users", "users")):
        rows = pq.read_metadata(small_export.export_dir / f"{table}.parquet").num_rows
        assert metrics["counts"][key] == rows
    assert 0 < metrics["images_never_remixed_share"] < 1
    follow = metrics["raw_remixes_follow"]
    assert follow["followers"] > 0.1 and follow["influencer"] > 0.05
    assert metrics["truth"]["images_with_truth"] == metrics["counts"]["images"]
    assert 0 < metrics["truth"]["raw_remixes_follow_appeal"] < 1
    with Image.open(config.plot) as plot:
        assert plot.format == "PNG" and plot.width > 800


def test_profile_is_reproducible(small_export, tmp_path):
    first = config_for(small_export.export_dir, small_export.truth, tmp_path / "a")
    second = config_for(small_export.export_dir, small_export.truth, tmp_path / "b")
    run_profile(first)
    run_profile(second)
    assert first.metrics.read_bytes() == second.metrics.read_bytes()
    assert first.plot.read_bytes() == second.plot.read_bytes()


def test_profile_without_truth_has_no_truth_section(small_export, tmp_path):
    metrics = run_profile(config_for(small_export.export_dir, tmp_path / "none.parquet", tmp_path))
    assert "truth" not in metrics


def test_profile_refuses_truth_of_another_export(small_export, metadata_export, tmp_path):
    with pytest.raises(TruthMismatchError, match="written for another export"):
        run_profile(config_for(small_export.export_dir, metadata_export.truth, tmp_path))


def test_profile_of_an_export_without_manifest_names_the_file(small_export, tmp_path):
    broken = tmp_path / "data"
    shutil.copytree(small_export.export_dir, broken)
    (broken / "manifest.json").unlink()
    with pytest.raises(ValueError, match=r"manifest.json: file missing"):
        run_profile(config_for(broken, small_export.truth, tmp_path))
