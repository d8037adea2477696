"""Pair rules on a hand-made export: each confounder control keeps or drops a known pair."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from social_reward.config.pairs import PairsConfig, SplitShares
from social_reward.data.duck import open_export
from social_reward.data.export import (
    IMAGES_FILE,
    IMAGES_SCHEMA,
    REMIXES_FILE,
    USERS_FILE,
    Manifest,
    write_table,
)
from social_reward.data.pairing import NoPairsError, build_pairs
from social_reward.stages.pairs import run as run_pairs

START = datetime(2026, 1, 1, tzinfo=UTC)
EXPORTED_AT = START + timedelta(days=60)
PROMPT = "a red star on a navy background"


def day(number: float) -> datetime:
    return START + timedelta(days=number)


def image(
    image_id, creator="alice", prompt=PROMPT, published=10.0, generator="g1", impressions=500
):
    return {
        "image_id": image_id,
        "creator_id": creator,
        "prompt": prompt,
        "generator": generator,
        "published_at": day(published),
        "file": f"images/{image_id}.png",
        "width": 8,
        "height": 8,
        "impressions": impressions,
    }


def remixed_by(image_id: str, *remixers: str, at: float = 20.0) -> list[dict]:
    return [
        {
            "remix_id": f"{image_id}-{n}",
            "source_image_id": image_id,
            "remixer_id": who,
            "remixed_at": day(at),
        }
        for n, who in enumerate(remixers)
    ]


# Reach is log2(1 + followers); the default caliper is 0.75 (buckets 1.5 wide on two grids).
USERS = [
    ("alice", 40, False),  # reach 5.36
    ("bob", 45, False),  # 5.52: within the caliper of alice
    ("carol", 5000, False),  # 12.29: far beyond it
    ("dave", 40, True),  # alice's reach, but an influencer
    ("erin", 65, False),  # 6.04: within the caliper of alice, in another bucket of one grid
    ("frank", 70, False),  # 6.15: just beyond the caliper, in alice's bucket of one grid
    *((f"r{n}", 3, False) for n in range(1, 11)),
]


def write_validated_export(folder: Path, images: list[dict], remixes: list[dict]) -> Path:
    """A validated export as the `validate` stage writes it (images carry `path`)."""
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(Manifest(1, EXPORTED_AT, "hand-made").to_json())
    write_table(
        pa.table(
            {
                "user_id": [u[0] for u in USERS],
                "followers": [u[1] for u in USERS],
                "is_influencer": [u[2] for u in USERS],
                "joined_at": [START] * len(USERS),
            }
        ),
        folder / USERS_FILE,
    )
    table = pa.Table.from_pylist(images, schema=IMAGES_SCHEMA)
    paths = pa.array([f"data/{row['file']}" for row in images], pa.string())
    write_table(table, folder / IMAGES_FILE)
    pq.write_table(
        pq.read_table(folder / IMAGES_FILE).append_column("path", paths), folder / IMAGES_FILE
    )
    remix_schema = pa.schema(
        [
            ("remix_id", pa.string()),
            ("source_image_id", pa.string()),
            ("remixer_id", pa.string()),
            ("remixed_at", pa.timestamp("us", tz="UTC")),
        ]
    )
    write_table(pa.Table.from_pylist(remixes, schema=remix_schema), folder / REMIXES_FILE)
    return folder


def pairs_of(tmp_path: Path, images: list[dict], remixes: list[dict], **options) -> set:
    folder = write_validated_export(tmp_path / "validated", images, remixes)
    connection, _ = open_export(folder)
    config = PairsConfig(validated_dir=folder, **options)
    build_pairs(connection, config, options.get("mode", "debiased"))
    return set(connection.execute("SELECT pos_image_id, neg_image_id FROM pairs").fetchall())


POSITIVE = remixed_by("pos", "r1", "r2")  # two distinct remixers: collective evidence


def test_a_matched_pair_is_built_with_usable_paths(tmp_path):
    folder = write_validated_export(
        tmp_path / "validated", [image("pos"), image("neg", creator="bob")], POSITIVE
    )
    connection, _ = open_export(folder)
    build_pairs(connection, PairsConfig(validated_dir=folder), "debiased")
    rows = connection.execute("SELECT prompt, pos_path, neg_path FROM pairs").fetchall()
    assert rows == [(PROMPT, "data/images/pos.png", "data/images/neg.png")]


@pytest.mark.parametrize(
    "negative, why",
    [
        (image("neg", creator="carol"), "creator's reach far beyond the caliper"),
        (image("neg", creator="frank"), "reach beyond the caliper, no pair the other way"),
        (image("neg", creator="dave"), "an influencer's image, no pair the other way"),
        (image("neg", generator="g2"), "another generator, no pair the other way"),
        (image("neg", published=41.0), "published 31 days apart (window 30)"),
        (image("neg", published=55.0), "exposed 5 days only (minimum 7)"),
        (image("neg", impressions=20), "shown 20 times only (minimum 100)"),
        (image("neg", prompt="a blue moon on a sky background"), "another prompt"),
    ],
)
def test_each_confounder_control_drops_an_unmatched_pair(tmp_path, negative, why):
    assert pairs_of(tmp_path, [image("pos"), negative], POSITIVE) == set(), why


def test_unknown_impressions_do_not_exclude_a_negative(tmp_path):
    pairs = pairs_of(tmp_path, [image("pos"), image("neg", impressions=None)], POSITIVE)
    assert pairs == {("pos", "neg")}


def prompt_pair(name: str, higher: dict, lower: dict) -> list[dict]:
    """A higher and a lower image alone on a prompt of their own, with the given options."""
    prompt = f"a {name} star on a navy background"
    return [
        image(f"pos-{name}", prompt=prompt, **higher),
        image(f"neg-{name}", prompt=prompt, **lower),
    ]


TWO_REMIXERS = [row for name in "abc" for row in remixed_by(f"pos-{name}", "r1", "r2")]


@pytest.mark.parametrize(
    "one, other, never_across",
    [
        ({"generator": "g1"}, {"generator": "g2"}, {"match_generator": True}),
        ({"creator": "alice"}, {"creator": "dave"}, {"match_influencer": True}),  # dave: influencer
        # Frank's reach is 0.79 above alice's: beyond the caliper (0.75), within max_reach_gap.
        ({"creator": "alice"}, {"creator": "frank"}, {"max_reach_gap": 0.75}),
    ],
)
def test_pairs_across_a_confounder_are_kept_as_many_won_by_each_side(
    tmp_path, one, other, never_across
):
    one_each_way = prompt_pair("a", one, other) + prompt_pair("b", other, one)
    expected = {("pos-a", "neg-a"), ("pos-b", "neg-b")}
    assert pairs_of(tmp_path / "two", one_each_way, TWO_REMIXERS) == expected
    # A second pair won by the same side has no counterpart: one of the two goes.
    images = one_each_way + prompt_pair("c", one, other)
    pairs = pairs_of(tmp_path / "three", images, TWO_REMIXERS)
    assert ("pos-b", "neg-b") in pairs and len(pairs) == 2
    # Matched (or beyond the reach gap) instead: never across.
    assert pairs_of(tmp_path / "never", one_each_way, TWO_REMIXERS, **never_across) == set()


def test_each_pair_says_on_which_side_of_each_confounder_its_positive_sits(tmp_path):
    # g2's first image comes later than g1's: g2 is the newer generator. Dave is flagged.
    images = (
        prompt_pair("a", {"generator": "g2", "published": 12.0}, {"generator": "g1"})
        + prompt_pair("b", {"generator": "g1"}, {"generator": "g2", "published": 12.0})
        + prompt_pair("c", {"creator": "dave"}, {"creator": "alice"})
        + prompt_pair("d", {"creator": "alice"}, {"creator": "dave"})
    )
    remixes = [row for name in "abcd" for row in remixed_by(f"pos-{name}", "r1", "r2")]
    folder = write_validated_export(tmp_path / "validated", images, remixes)
    connection, _ = open_export(folder)
    build_pairs(connection, PairsConfig(validated_dir=folder), "debiased")
    sides = connection.execute(
        "SELECT pos_image_id, generator_side, influencer_side FROM pairs ORDER BY 1"
    ).fetchall()
    assert sides == [("pos-a", 1, 0), ("pos-b", -1, 0), ("pos-c", 0, 1), ("pos-d", 0, -1)]


def test_captions_that_differ_in_case_space_and_full_stop_are_one_prompt(tmp_path):
    images = [image("pos", prompt="A Red star on a  navy background."), image("neg")]
    assert pairs_of(tmp_path, images, POSITIVE) == {("pos", "neg")}


def test_self_remixes_and_one_users_burst_are_not_collective_evidence(tmp_path):
    burst = remixed_by("pos", "alice", "alice", "r1", "r1", "r1", "r1")
    images = [image("pos"), image("neg", creator="bob")]
    assert pairs_of(tmp_path, images, burst) == set()
    # Raw counts see six remixes: the naive ablation takes the burst as a preference.
    assert pairs_of(tmp_path / "naive", images, burst, mode="naive") == {("pos", "neg")}


def test_the_reach_gap_must_cover_the_caliper():
    with pytest.raises(ValueError, match=r"max_reach_gap .* must be at least reach_caliper"):
        PairsConfig(reach_caliper=1.0, max_reach_gap=0.5)


def test_reach_within_the_caliper_pairs_across_a_bucket_boundary(tmp_path):
    pairs = pairs_of(tmp_path, [image("pos"), image("neg", creator="erin")], POSITIVE)
    assert pairs == {("pos", "neg")}


def test_a_lower_image_with_one_outside_remixer_needs_a_higher_one_with_four(tmp_path):
    # higher >= count_ratio (2) x lower (1) + min_collective_remixes (2)
    images = [image("pos"), image("neg")]
    lower = remixed_by("neg", "r9")
    assert pairs_of(tmp_path, images, POSITIVE + lower) == set()
    three = remixed_by("pos", "r1", "r2", "r3")
    assert pairs_of(tmp_path / "three", images, three + lower) == set()
    four = remixed_by("pos", "r1", "r2", "r3", "r4")
    assert pairs_of(tmp_path / "four", images, four + lower) == {("pos", "neg")}
    # Only never-remixed lower images when max_lower_remixes is 0.
    only_zero = pairs_of(tmp_path / "zero", images, four + lower, max_lower_remixes=0)
    assert only_zero == set()


def test_an_image_can_be_the_higher_of_one_pair_and_the_lower_of_another(tmp_path):
    images = [image("top"), image("mid"), image("low")]
    remixes = (
        remixed_by("top", *(f"r{n}" for n in range(1, 9)))  # 8 >= 2 x 3 + 2
        + remixed_by("mid", "r1", "r2", "r3")  # 3 >= 2 x 0 + 2
    )
    assert pairs_of(tmp_path, images, remixes) == {
        ("top", "mid"),
        ("top", "low"),
        ("mid", "low"),
    }


def test_each_positive_meets_its_nearest_negatives_in_time_up_to_the_cap(tmp_path):
    negatives = [
        image(f"neg{n}", published=10.0 + offset)
        for n, offset in enumerate([-6.5, -3.0, -1.0, 0.5, 2.0, 4.0, 6.9])
    ]
    pairs = pairs_of(tmp_path, [image("pos"), *negatives], POSITIVE, max_pairs_per_image=3)
    assert pairs == {("pos", "neg2"), ("pos", "neg3"), ("pos", "neg4")}


def test_a_prompt_is_capped(tmp_path):
    images = [image(f"pos{n}", published=10.0 + n / 10) for n in range(6)]
    images += [image(f"neg{n}", published=10.0 + n / 10) for n in range(6)]
    remixes = [row for n in range(6) for row in remixed_by(f"pos{n}", "r1", "r2")]
    pairs = pairs_of(tmp_path, images, remixes, max_pairs_per_prompt=7)
    assert len(pairs) == 7


def test_a_popular_prompt_matches_only_as_many_higher_images_as_its_cap(tmp_path):
    # Pairs beyond the prompt's cap would be drawn away: their higher images are not matched.
    images = [image(f"pos{n}", published=10.0 + n / 10) for n in range(6)]
    images += [image(f"neg{n}", published=10.0 + n / 10) for n in range(6)]
    remixes = [row for n in range(6) for row in remixed_by(f"pos{n}", "r1", "r2")]
    folder = write_validated_export(tmp_path / "validated", images, remixes)
    connection, _ = open_export(folder)
    matched = []
    for cap in (3, 3, 100):
        build_pairs(
            connection, PairsConfig(validated_dir=folder, max_pairs_per_prompt=cap), "debiased"
        )
        matched.append(
            connection.execute("SELECT DISTINCT pos_key FROM candidates ORDER BY 1").fetchall()
        )
    assert len(matched[0]) == 3 and matched[1] == matched[0]  # a hash draw: the same again
    assert len(matched[2]) == 6


def test_no_possible_pair_is_a_clear_error(tmp_path):
    folder = write_validated_export(tmp_path / "validated", [image("pos"), image("neg")], [])
    config = PairsConfig(
        validated_dir=folder,
        out_dir=tmp_path / "pairs",
        metrics=tmp_path / "pairs.json",
        truth=tmp_path / "no-truth.parquet",
    )
    with pytest.raises(NoPairsError) as error:
        run_pairs(config)
    message = str(error.value)
    assert str(folder) in message and "no preference pair" in message
    assert "0 images have >= 2 collective remixes" in message
    assert "2 have at most 4 after >= 7.0 days" in message


def test_split_shares_must_leave_a_test_split():
    with pytest.raises(ValueError, match="must leave a test split"):
        SplitShares(train=0.8, val=0.2)
    assert SplitShares(train=0.7, val=0.15).hand_size == 7


def test_negatives_published_at_the_same_moment_are_taken_lowest_id_first(tmp_path):
    tied = [image(f"neg{n:02d}", published=9.0) for n in range(15)]
    pairs = pairs_of(tmp_path, [image("pos"), *tied], POSITIVE, max_pairs_per_image=10)
    assert pairs == {("pos", f"neg{n:02d}") for n in range(10)}


def test_ties_before_a_positive_do_not_hide_nearer_negatives_after_it(tmp_path):
    tied = [image(f"neg{n:02d}", published=8.0) for n in range(3)]
    later = [image(f"neg{n:02d}", published=10.5 + n / 100) for n in range(3, 13)]
    pairs = pairs_of(tmp_path, [image("pos"), *tied, *later], POSITIVE, max_pairs_per_image=10)
    assert pairs == {("pos", f"neg{n:02d}") for n in range(3, 13)}
