import pytest

from social_reward.data.export import read_manifest
from social_reward.data.truth import TruthMismatchError, read_truth


def test_truth_reads_for_its_own_export(small_export):
    truth = read_truth(small_export.truth, read_manifest(small_export.export_dir))
    assert {"image_id", "appeal"} <= set(truth.columns)
    assert truth["image_id"].is_unique


def test_no_truth_file_means_no_truth(small_export, tmp_path):
    assert read_truth(tmp_path / "absent.parquet", read_manifest(small_export.export_dir)) is None


def test_truth_of_another_export_is_refused(small_export, metadata_export):
    other_manifest = read_manifest(metadata_export.export_dir)
    with pytest.raises(TruthMismatchError, match="written for another export"):
        read_truth(small_export.truth, other_manifest)


def test_truth_without_required_columns_is_refused(small_export, tmp_path):
    import pandas as pd

    path = tmp_path / "appeal.parquet"
    pd.DataFrame({"image_id": ["a"]}).to_parquet(path)
    with pytest.raises(TruthMismatchError, match=r"\['appeal'\] missing"):
        read_truth(path, read_manifest(small_export.export_dir))
