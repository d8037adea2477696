"""The issue's targets for pairs, on the embedded default export: debiasing beats raw counts."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from social_reward.artifacts import SPLITS
from social_reward.config.pairs import PairsConfig
from social_reward.stages.pairs import run as run_pairs
from tests.conftest import stage_config, validate_into

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def validated(default_export, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("validated-default")
    summary = validate_into(default_export.export_dir, root)
    assert all(table["rows_quarantined"] == 0 for table in summary["tables"].values())
    return root / "validated"


def pairs_config(validated: Path, truth: Path, out: Path, **changes) -> PairsConfig:
    return stage_config(
        "pairs",
        validated_dir=validated,
        truth=truth,
        out_dir=out / "pairs",
        metrics=out / "pairs.json",
        **changes,
    )


@pytest.fixture(scope="module")
def debiased(validated, default_export, tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("pairs-default")
    metrics = run_pairs(pairs_config(validated, default_export.truth, out))
    return metrics, out


def test_debiased_pairs_carry_taste_not_confounders(debiased):
    metrics, _ = debiased
    agreement = metrics["truth_agreement"]
    assert agreement["debiased"] >= 0.90
    assert agreement["debiased"] >= agreement["naive"] + 0.10
    for confounder in (
        "positive_more_followers",
        "positive_influencer",
        "positive_published_earlier",
    ):
        assert 0.45 <= metrics["balance"][confounder] <= 0.55, confounder
    # A test split large enough that a 5-point difference stands out of the intervals.
    assert metrics["splits"]["test"]["prompts"] >= 50
    # Raw counts are not balanced: the controls are what makes the difference.
    assert metrics["modes"]["naive"]["balance"]["positive_more_followers"] > 0.55


def test_splits_share_no_prompt_and_no_image_and_paths_resolve(debiased, default_export):
    metrics, out = debiased
    frames = {split: pd.read_parquet(out / "pairs" / f"{split}.parquet") for split in SPLITS}
    for split, frame in frames.items():
        assert len(frame) == metrics["pairs"][split] > 0
        assert {"prompt", "pos_image_id", "neg_image_id", "pos_path", "neg_path"} <= set(frame)
    for first, second in (("train", "val"), ("train", "test"), ("val", "test")):
        a, b = frames[first], frames[second]
        assert not set(a["prompt"]) & set(b["prompt"])
        images_a = set(a["pos_image_id"]) | set(a["neg_image_id"])
        images_b = set(b["pos_image_id"]) | set(b["neg_image_id"])
        assert not images_a & images_b
    sample = frames["test"].head(5)
    export_parent = default_export.export_dir.parent
    for path in list(sample["pos_path"]) + list(sample["neg_path"]):
        # Paths are relative to the project root, where data/ is the export.
        assert (export_parent / path).is_file(), path


def test_pairs_are_deterministic_and_follow_the_seed(validated, default_export, debiased, tmp_path):
    metrics, out = debiased
    again = run_pairs(pairs_config(validated, default_export.truth, tmp_path / "again"))
    assert again == metrics
    for split in SPLITS:
        first = (out / "pairs" / f"{split}.parquet").read_bytes()
        assert (tmp_path / "again" / "pairs" / f"{split}.parquet").read_bytes() == first
    reseeded = run_pairs(pairs_config(validated, default_export.truth, tmp_path / "s1", seed=1))
    assert reseeded["pairs"] != metrics["pairs"]


def test_naive_mode_writes_its_own_pairs_and_reports_both(
    validated, default_export, debiased, tmp_path
):
    metrics, _ = debiased
    naive = run_pairs(pairs_config(validated, default_export.truth, tmp_path, mode="naive"))
    assert naive["mode"] == "naive"
    assert naive["truth_agreement"] == metrics["truth_agreement"]
    assert sum(naive["pairs"].values()) == naive["modes"]["naive"]["pairs"]
    written = json.loads((tmp_path / "pairs.json").read_text())
    assert written == naive
