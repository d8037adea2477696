"""The simulated export: it follows the contract, is reproducible, and carries the confounders."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from social_reward.data.duck import connect, open_export, register_export
from social_reward.data.export import (
    IMAGES_FILE,
    MAX_PROMPT_CHARS,
    REMIXES_FILE,
    TABLE_SCHEMAS,
    USERS_FILE,
    is_safe_relative_path,
    read_manifest,
)
from social_reward.data.profiling import image_features
from social_reward.simulate.config import WorldConfig
from social_reward.simulate.render import SIGNATURE_COLOUR, signature_box
from tests.conftest import simulate

TINY = ("--users", "60", "--images", "150", "--days", "12", "--image-size", "16")

# Each rule of the contract as a query counting the rows that break it.
ROW_RULES = {
    "images.image_id unique": "SELECT count(*) - count(DISTINCT image_id) FROM images",
    "remixes.remix_id unique": "SELECT count(*) - count(DISTINCT remix_id) FROM remixes",
    "users.user_id unique": "SELECT count(*) - count(DISTINCT user_id) FROM users",
    "users appear in images or remixes": (
        "SELECT count(*) FROM users WHERE user_id NOT IN "
        "(SELECT creator_id FROM images UNION SELECT remixer_id FROM remixes)"
    ),
    "images.creator_id in users": (
        "SELECT count(*) FROM images WHERE creator_id NOT IN (SELECT user_id FROM users)"
    ),
    "remixes.source_image_id in images": (
        "SELECT count(*) FROM remixes WHERE source_image_id NOT IN (SELECT image_id FROM images)"
    ),
    "remixes.remixer_id in users": (
        "SELECT count(*) FROM remixes WHERE remixer_id NOT IN (SELECT user_id FROM users)"
    ),
    "images.prompt not empty, at most 2000 chars": (
        "SELECT count(*) FROM images WHERE prompt IS NULL OR trim(prompt) = '' "
        f"OR length(prompt) > {MAX_PROMPT_CHARS}"
    ),
    "images.published_at not after exported_at": (
        "SELECT count(*) FROM images "
        "WHERE published_at IS NULL OR published_at > $exported_at::TIMESTAMPTZ"
    ),
    "remixes.remixed_at within source and export": (
        "SELECT count(*) FROM remixes r JOIN images i ON i.image_id = r.source_image_id "
        "WHERE r.remixed_at < i.published_at OR r.remixed_at > $exported_at::TIMESTAMPTZ"
    ),
    "users.joined_at not after exported_at": (
        "SELECT count(*) FROM users WHERE joined_at > $exported_at::TIMESTAMPTZ"
    ),
    "users.followers >= 0": "SELECT count(*) FROM users WHERE followers < 0",
    "images.width, height > 0": "SELECT count(*) FROM images WHERE width <= 0 OR height <= 0",
    "images.impressions >= 0": "SELECT count(*) FROM images WHERE impressions < 0",
}


def contract_violations(export_dir: Path, check_files: bool = True) -> dict[str, int]:
    manifest = read_manifest(export_dir)
    violations: dict[str, int] = {}
    for file, schema in TABLE_SCHEMAS.items():
        found = pq.read_schema(export_dir / file)
        for field in schema:
            ok = field.name in found.names and found.field(field.name).type == field.type
            violations[f"{file}: column {field.name} of type {field.type}"] = 0 if ok else 1
    connection = connect()
    register_export(connection, export_dir)
    for rule, query in ROW_RULES.items():
        parameters = {"exported_at": manifest.exported_at} if "$exported_at" in query else {}
        violations[rule] = connection.execute(query, parameters).fetchall()[0][0]
    if check_files:
        images = pd.read_parquet(export_dir / IMAGES_FILE, columns=["file", "width", "height"])
        bad = 0
        for file, width, height in images.itertuples(index=False):
            if not is_safe_relative_path(file) or not (export_dir / file).is_file():
                bad += 1
                continue
            with Image.open(export_dir / file) as image:
                image.load()
                bad += image.size != (width, height)
        violations["images.file safe, exists, decodes, size matches"] = bad
    return violations


def test_small_export_follows_the_contract(small_export):
    violations = contract_violations(small_export.export_dir)
    assert {rule: n for rule, n in violations.items() if n} == {}
    manifest = json.loads((small_export.export_dir / "manifest.json").read_text())
    assert manifest["schema_version"] == 1
    assert manifest["exported_at"].endswith("Z")


def test_contract_check_catches_a_broken_copy(small_export, tmp_path):
    """The check above can fail: break three rules in a copy and see each one counted."""
    broken = tmp_path / "data"
    shutil.copytree(small_export.export_dir, broken)
    images = pd.read_parquet(broken / IMAGES_FILE)
    images.loc[0, "creator_id"] = "nobody"
    images.loc[1, "width"] = 999
    (broken / images.loc[2, "file"]).unlink()
    images.to_parquet(broken / IMAGES_FILE)
    violations = contract_violations(broken)
    assert violations["images.creator_id in users"] == 1
    assert violations["images.file safe, exists, decodes, size matches"] == 2


def file_digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_same_seed_same_bytes_other_seed_other_export(tmp_path):
    runs = {}
    for name, seed in (("first", "0"), ("again", "0"), ("other", "1")):
        simulate(tmp_path / name / "data", tmp_path / name / "truth.parquet", *TINY, "--seed", seed)
        runs[name] = file_digests(tmp_path / name)
    assert runs["first"] == runs["again"]
    assert len(runs["first"]) > 150
    shared = set(runs["first"]) & set(runs["other"])
    assert all(
        runs["first"][key] != runs["other"][key] for key in shared if key.endswith(".parquet")
    )


def test_a_later_export_extends_the_same_community(tmp_path):
    simulate(tmp_path / "early", None, *TINY, "--metadata-only")
    simulate(tmp_path / "late", None, *TINY, "--metadata-only")  # same world, cut later below
    from social_reward.simulate import write_export
    from social_reward.simulate.config import PAPER_SCALE_PROMPTS, WorldConfig

    # A metadata-only export spreads prompts as the paper's data does.
    world = WorldConfig(
        users=60, images=150, days=12, image_size=16, snapshot_day=18, **PAPER_SCALE_PROMPTS
    )
    write_export(world, tmp_path / "late", None, metadata_only=True, overwrite=True, progress=False)
    cut = read_manifest(tmp_path / "early").exported_at
    for file, column in ((IMAGES_FILE, "published_at"), (REMIXES_FILE, "remixed_at")):
        early = pd.read_parquet(tmp_path / "early" / file).drop(
            columns="impressions", errors="ignore"
        )
        late = pd.read_parquet(tmp_path / "late" / file).drop(
            columns="impressions", errors="ignore"
        )
        assert len(late) > len(early), file
        prefix = late[late[column] < pd.Timestamp(cut)].reset_index(drop=True)
        pd.testing.assert_frame_equal(prefix, early)
    early_users = pd.read_parquet(tmp_path / "early" / USERS_FILE)
    late_users = pd.read_parquet(tmp_path / "late" / USERS_FILE)
    assert len(late_users) > len(early_users)
    kept = late_users[late_users["user_id"].isin(early_users["user_id"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(kept, early_users)


@pytest.fixture(scope="module")
def features(metadata_export) -> pd.DataFrame:
    connection, _ = open_export(metadata_export.export_dir)
    table, _, _ = image_features(connection)
    truth = pd.read_parquet(metadata_export.truth)
    return table.merge(truth, on="image_id")


def spearman(features: pd.DataFrame, column: str) -> float:
    return features["raw_remixes"].corr(features[column], method="spearman")


def test_raw_counts_follow_creator_reach(features):
    assert spearman(features, "followers") > 0.2
    influencer = features["is_influencer"]
    assert (
        features.loc[influencer, "raw_remixes"].mean()
        > 3 * features.loc[~influencer, "raw_remixes"].mean()
    )


def test_raw_counts_follow_exposure_and_the_old_generator(features):
    assert spearman(features, "exposure_days") > 0.05
    old = features["old_generator"]
    assert 0.2 < old.mean() < 0.8
    assert features.loc[old, "raw_remixes"].mean() > 1.2 * features.loc[~old, "raw_remixes"].mean()


def test_raw_counts_follow_caption_popularity(features):
    assert spearman(features, "prompt_images") > 0.1


def test_raw_counts_follow_true_appeal_only_partly(features):
    assert 0.2 < spearman(features, "appeal") < 0.8


def test_self_remixes_and_bursts_are_in_the_counts(features):
    assert features["self_remixes"].sum() > 0
    repeats = features["raw_remixes"] - features["self_remixes"] - features["collective_remixes"]
    assert (repeats >= 4).sum() > 0.01 * len(features), "single-user bursts"
    assert (features["raw_remixes"] == 0).mean() > 0.2, "many images are never remixed"


def test_paper_like_scale_ratios(metadata_export):
    remixes = pq.read_metadata(metadata_export.export_dir / REMIXES_FILE).num_rows
    images = pq.read_metadata(metadata_export.export_dir / IMAGES_FILE).num_rows
    assert images == 20_000
    assert remixes / images > 8_000_000 / 1_700_000, (
        "paper scale needs >= 8M remixes at 1.7M images"
    )


def test_confounder_traces_are_in_the_pixels(small_export):
    images = pd.read_parquet(small_export.export_dir / IMAGES_FILE)
    truth = pd.read_parquet(small_export.truth)
    rows = images.merge(truth, on="image_id")
    box = signature_box(int(rows["width"].iloc[0]), WorldConfig())

    def corner_is_signature(file: str) -> bool:
        corner = np.asarray(Image.open(small_export.export_dir / file))[box]
        return bool((corner == SIGNATURE_COLOUR).all(axis=-1).any())

    signed = rows["file"].map(corner_is_signature)
    assert rows["influencer"].any() and (~rows["influencer"]).any()
    assert signed[rows["influencer"]].all()
    assert not signed[~rows["influencer"]].any()
    assert set(rows.loc[rows["old_generator"], "generator"]) == {"sim-diffusion-1.5"}
    assert set(rows.loc[~rows["old_generator"], "generator"]) == {"sim-diffusion-2.0"}
