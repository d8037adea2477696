"""Champion/challenger with real saved rewards, scored on real images.

The test pairs are built from one model's own ranking, so that model is right on every pair
and the other (a different random initialisation) is at chance: a better and a worse
challenger whose difference is known in sign and far from the margin.
"""

from __future__ import annotations

import itertools
import json
import signal
from pathlib import Path

import pandas as pd
import pytest
import torch

from social_reward.config.params import Params
from social_reward.ops.registry import (
    CHAMPION_DIR,
    CHAMPION_FILE,
    PROMOTION_STEPS,
    REFERENCE_FILE,
    REWARD_DIR,
    TRAIN_PROMPTS_FILE,
    VERSION_KEY,
    VERSIONS_DIR,
    RegistryError,
    challenge,
    decide,
    promote,
    provenance,
    read_champion,
    read_registry,
    recover_promotion,
)
from social_reward.reward.backbone import build_backbone
from social_reward.reward.model import MODEL_FILE, SocialReward
from tests.conftest import killed_after, run

BACKBONE = "social-reward-tiny"
PROMPTS = 30
IMAGES_PER_PROMPT = 4
OVERLAP_PROMPT = 0  # index of a test prompt the champion is told it trained on


def _reward(seed: int) -> SocialReward:
    torch.manual_seed(seed)
    return SocialReward(build_backbone(BACKBONE), BACKBONE, batch_size=32)


@pytest.fixture(scope="module")
def rewards() -> dict[str, SocialReward]:
    return {"right": _reward(1), "chance": _reward(2)}


@pytest.fixture(scope="module")
def images(small_export) -> pd.DataFrame:
    table = pd.read_parquet(small_export.export_dir / "images.parquet")
    table["prompt_key"] = table["prompt"].str.lower().str.strip()
    table = table.groupby("prompt_key").filter(lambda group: len(group) >= IMAGES_PER_PROMPT)
    keys = sorted(table["prompt_key"].unique())[:PROMPTS]
    table = table[table["prompt_key"].isin(keys)].groupby("prompt_key").head(IMAGES_PER_PROMPT)
    table["path"] = [str(small_export.export_dir / file) for file in table["file"]]
    return table.reset_index(drop=True)


@pytest.fixture(scope="module")
def test_pairs(images, rewards) -> pd.DataFrame:
    """Every same-prompt image pair, the `right` model's preferred image first."""
    scores = rewards["right"].score_pairs(images["prompt"].tolist(), images["path"].tolist())
    scored = images.assign(score=scores)
    rows = []
    for key, group in scored.groupby("prompt_key", sort=True):
        for a, b in itertools.combinations(group.itertuples(), 2):
            pos, neg = (a, b) if a.score > b.score else (b, a)
            rows.append(
                {
                    "split": "test",
                    "prompt_key": key,
                    "prompt": pos.prompt,
                    "pos_image_id": pos.image_id,
                    "neg_image_id": neg.image_id,
                    "pos_path": pos.path,
                    "neg_path": neg.path,
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture
def project(tmp_path, monkeypatch, images, test_pairs) -> Path:
    """A DVC project with a finished pipeline's files: pairs, features, passed gates."""
    monkeypatch.chdir(tmp_path)
    run(["dvc", "init", "--no-scm", "-q"], cwd=tmp_path)
    params = Params()
    pairs_dir = params.pairs.out_dir
    pairs_dir.mkdir(parents=True)
    test_pairs.drop(columns="prompt_key").to_parquet(pairs_dir / "test.parquet")
    trained = pd.DataFrame(
        {"image_id": ["img-train"], "prompt_key": ["a prompt only in train"], "split": ["train"]}
    )
    pd.concat([trained, images[["image_id", "prompt_key"]].assign(split="test")]).to_parquet(
        pairs_dir / "images.parquet"
    )
    params.drift.features.parent.mkdir(parents=True)
    pd.DataFrame({"brightness": [0.5]}).to_parquet(params.drift.features)
    _gates(params, validate=True, drift=True)
    return tmp_path


def _gates(params: Params, **passed: bool) -> None:
    for name, path in (("validate", params.validate_.metrics), ("drift", params.drift.metrics)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"passed": passed[name]}))


def _challenger(params: Params, reward: SocialReward) -> None:
    reward.save_pretrained(params.train.variants["reward"].out_dir)


def _champion_weights(params: Params) -> bytes:
    champion = params.retrain.production_dir / CHAMPION_DIR / REWARD_DIR / MODEL_FILE
    return champion.read_bytes()


def test_the_first_model_to_pass_every_gate_is_promoted(project, rewards):
    params = Params()
    _challenger(params, rewards["chance"])

    decision = challenge(params)

    assert decision["promoted"] and decision["outcome"] == "promoted"
    assert "no champion yet" in decision["reason"]
    assert decision["champion"] is None and 0.0 <= decision["challenger"]["accuracy"] <= 1.0
    champion = params.retrain.production_dir / CHAMPION_DIR
    for name in (REFERENCE_FILE, TRAIN_PROMPTS_FILE, CHAMPION_FILE, f"{REWARD_DIR}/{MODEL_FILE}"):
        assert (champion / name).is_file(), name
    assert pd.read_parquet(champion / TRAIN_PROMPTS_FILE)["prompt_key"].tolist() == [
        "a prompt only in train"
    ]
    assert read_champion(params)["challenger"] == decision["challenger"]
    assert read_registry(params) == [decision]
    assert not list(params.retrain.production_dir.glob(".*"))  # no staging folder left


def test_a_better_challenger_is_promoted(project, rewards):
    params = Params()
    _challenger(params, rewards["chance"])
    challenge(params)
    _challenger(params, rewards["right"])

    decision = challenge(params)

    assert decision["promoted"], decision["reason"]
    assert decision["challenger"]["accuracy"] == 1.0
    assert decision["difference"]["difference"] >= params.retrain.min_improvement
    assert decision["difference"]["low"] > 0.0  # right on every pair, against chance
    assert ">= retrain.min_improvement" in decision["reason"]
    assert (
        _champion_weights(params)
        == (params.train.variants["reward"].out_dir / MODEL_FILE).read_bytes()
    )
    assert [entry["outcome"] for entry in read_registry(params)] == ["promoted", "promoted"]


def test_a_worse_challenger_leaves_the_champion_untouched(project, rewards):
    params = Params()
    _challenger(params, rewards["right"])
    challenge(params)
    champion = _champion_weights(params)
    record = read_champion(params)
    _challenger(params, rewards["chance"])

    decision = challenge(params)

    assert not decision["promoted"] and decision["outcome"] == "kept_champion"
    assert decision["champion"]["accuracy"] == 1.0
    assert decision["difference"]["difference"] < 0.0
    assert "< retrain.min_improvement 0.01; champion kept" in decision["reason"]
    assert _champion_weights(params) == champion and read_champion(params) == record
    assert decision["test_pairs"]["fresh"] == decision["challenger"]["pairs"]


def test_test_prompts_the_champion_trained_on_are_left_out(project, rewards, test_pairs):
    params = Params()
    _challenger(params, rewards["right"])
    challenge(params)
    overlap = sorted(test_pairs["prompt_key"].unique())[OVERLAP_PROMPT]
    trained = params.retrain.production_dir / CHAMPION_DIR / TRAIN_PROMPTS_FILE
    pd.DataFrame({"prompt_key": [overlap]}).to_parquet(trained)

    decision = challenge(params)

    left_out = int((test_pairs["prompt_key"] == overlap).sum())
    assert decision["test_pairs"] == {
        "fresh": len(test_pairs),
        "unseen_by_champion": len(test_pairs) - left_out,
    }
    assert decision["challenger"]["pairs"] == len(test_pairs) - left_out


@pytest.mark.parametrize("failed", ["validate", "drift"])
def test_a_failed_gate_promotes_nothing(project, rewards, failed):
    params = Params()
    _gates(params, **{"validate": True, "drift": True, failed: False})
    _challenger(params, rewards["right"])

    decision = challenge(params)

    assert not decision["promoted"] and decision["outcome"] == "gate_failed"
    assert f"gate(s) {failed} failed" in decision["reason"]
    assert read_champion(params) is None


def test_an_incomplete_pipeline_promotes_nothing(project, rewards):
    params = Params()
    _challenger(params, rewards["right"])

    decision = challenge(params, incomplete_reason="stage 'train' failed: out of memory")

    assert decision["outcome"] == "pipeline_incomplete" and not decision["promoted"]
    assert "out of memory" in decision["reason"]
    assert read_champion(params) is None


def _scores(difference: float) -> dict:
    return {
        "champion": {"accuracy": 0.6, "pairs": 100},
        "challenger": {"accuracy": 0.6 + difference, "pairs": 100},
        "difference": {"difference": difference, "low": -0.1, "high": 0.1, "level": 0.95},
    }


@pytest.mark.parametrize(
    ("difference", "promoted"), [(0.02, True), (0.01, True), (0.0, False), (-0.05, False)]
)
def test_decide_promotes_at_the_margin_and_above(difference, promoted):
    decision = decide(_scores(difference), min_improvement=0.01)
    assert decision["promoted"] is promoted
    assert f"{difference:+.4f}" in decision["reason"]


def test_provenance_counts_only_changes_the_run_did_not_write(tmp_path, monkeypatch):
    """A run rewrites dvc.lock and its committed outputs: that alone is no "uncommitted
    changes"; an edited params.yaml is."""
    monkeypatch.chdir(tmp_path)
    run(["git", "init", "-q"])
    Path("data.dvc").write_text("outs:\n- md5: 0123abcd.dir\n  path: data\n")
    Path("params.yaml").write_text("seed: 0\n")
    Path("dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  evaluate:\n    cmd: x\n    outs:\n"
        "    - path: metrics/evaluate.json\n      md5: aa\n"
    )
    Path("metrics").mkdir()
    Path("metrics/evaluate.json").write_text("{}")
    run(["git", "add", "."])
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "run"])
    commit = run(["git", "rev-parse", "HEAD"]).stdout.strip()

    assert provenance(Params()) == {
        "data_dvc_md5": "0123abcd.dir",
        "git_commit": commit,
        "git_dirty": False,
    }
    Path("metrics/evaluate.json").write_text('{"accuracy": 0.6}')
    Path("dvc.lock").write_text(Path("dvc.lock").read_text() + "# rerun\n")
    assert provenance(Params())["git_dirty"] is False
    Path("params.yaml").write_text("seed: 1\n")
    assert provenance(Params())["git_dirty"] is True


# ---- promotion under faults: a crash at any step leaves one whole champion, recorded -----

# Runs one promotion in a child process and kills it (SIGKILL, no clean-up of any kind)
# right after the step named by argv[1], through promote's `after_step` test hook.


def _promotion_decision(reason: str) -> dict:
    return {
        "time": "2026-03-02T00:00:00Z",
        "outcome": "promoted",
        "promoted": True,
        "reason": reason,
    }


@pytest.fixture
def promotion_project(tmp_path, monkeypatch) -> Path:
    """The pipeline outputs promotion copies (pairs' image splits, drift features)."""
    monkeypatch.chdir(tmp_path)
    params = Params()
    params.pairs.out_dir.mkdir(parents=True)
    pd.DataFrame(
        {"image_id": ["a", "b"], "prompt_key": ["seen", "unseen"], "split": ["train", "test"]}
    ).to_parquet(params.pairs.out_dir / "images.parquet")
    params.drift.features.parent.mkdir(parents=True)
    pd.DataFrame({"brightness": [0.5]}).to_parquet(params.drift.features)
    return tmp_path


def _champion_files(params: Params) -> dict[str, bytes]:
    """Every file of the champion in place, by relative path ({} when there is none)."""
    champion = params.retrain.production_dir / CHAMPION_DIR
    if not champion.exists():
        return {}
    return {
        str(path.relative_to(champion)): path.read_bytes()
        for path in sorted(champion.rglob("*"))
        if path.is_file()
    }


def _assert_whole(files: dict[str, bytes], weights: dict[str, bytes]) -> str:
    """The champion is one whole model; returns which of `weights` it is."""
    assert {REFERENCE_FILE, TRAIN_PROMPTS_FILE, CHAMPION_FILE} <= set(files), sorted(files)
    assert f"{REWARD_DIR}/config.json" in files, sorted(files)
    [name] = [name for name, data in weights.items() if files[f"{REWARD_DIR}/{MODEL_FILE}"] == data]
    return name


def _old_layout_champion(params: Params, rewards) -> None:
    """A champion as the earlier two-rename promotion left it: a real folder, no version."""
    champion = params.retrain.production_dir / CHAMPION_DIR
    rewards["chance"].save_pretrained(champion / REWARD_DIR)
    for name in (REFERENCE_FILE, TRAIN_PROMPTS_FILE):
        pd.DataFrame({"prompt_key": ["old"]}).to_parquet(champion / name)
    (champion / CHAMPION_FILE).write_text(json.dumps({"reason": "old layout"}))
    params.retrain.registry.write_text(
        json.dumps({**_promotion_decision("old layout"), "time": "2026-01-01T00:00:00Z"}) + "\n"
    )


@pytest.mark.parametrize(
    ("layout", "step"),
    [
        (layout, step)
        for layout in ("first", "versioned", "old-layout")
        for step in PROMOTION_STEPS
        if step != "adopted" or layout == "old-layout"
    ],
)
def test_a_promotion_killed_at_any_step_recovers_to_one_whole_recorded_champion(
    promotion_project, rewards, layout, step
):
    params = Params()
    weights = {}
    if layout == "versioned":
        _challenger(params, rewards["chance"])
        promote(params, _promotion_decision("the champion before"))
    elif layout == "old-layout":
        _old_layout_champion(params, rewards)
    if layout != "first":
        weights["old"] = _champion_files(params)[f"{REWARD_DIR}/{MODEL_FILE}"]
    _challenger(params, rewards["right"])
    weights["new"] = (params.train.variants["reward"].out_dir / MODEL_FILE).read_bytes()
    promotions_before = sum(entry["promoted"] for entry in read_registry(params))

    decision = _promotion_decision("new")
    exit_code = killed_after(step, lambda stop: promote(Params(), decision, after_step=stop))

    assert exit_code == -signal.SIGKILL
    # Killed: whatever a reader sees in between is one whole model, old or new.
    if _champion_files(params):
        _assert_whole(_champion_files(params), weights)
    else:
        assert layout == "first" or step == "adopted"

    recover_promotion(params)

    expected = "old" if step == "intent" else "new"
    if expected == "old" and layout == "first":
        assert read_champion(params) is None and _champion_files(params) == {}
        assert read_registry(params) == []
    else:
        assert _assert_whole(_champion_files(params), weights) == expected
        champion = read_champion(params)
        promotions = [entry for entry in read_registry(params) if entry["promoted"]]
        assert len(promotions) == promotions_before + (expected == "new")  # recorded once
        assert promotions[-1].get(VERSION_KEY) == champion.get(VERSION_KEY)
        if champion.get(VERSION_KEY) is not None:  # None: the old-layout champion, kept
            link = params.retrain.production_dir / CHAMPION_DIR
            assert link.is_symlink() and link.resolve().name == champion[VERSION_KEY]
            versions = params.retrain.production_dir / VERSIONS_DIR
            assert [path.name for path in versions.iterdir()] == [champion[VERSION_KEY]]
    assert not list(params.retrain.production_dir.glob(".*"))  # no intent, staging or link
    assert recover_promotion(params) is None  # nothing left to do


def test_a_recorded_champion_that_is_missing_is_an_error_not_a_first_promotion(
    promotion_project, rewards
):
    params = Params()
    _challenger(params, rewards["chance"])
    promote(params, _promotion_decision("the champion"))
    (params.retrain.production_dir / CHAMPION_DIR).unlink()

    with pytest.raises(RegistryError, match=r"champion\.json: missing, but .*registry\.jsonl"):
        read_champion(params)


def test_a_swap_the_earlier_promotion_left_half_done_is_rolled_back(promotion_project, rewards):
    """The earlier code renamed champion/ to .previous/ and .incoming/ to champion/: a crash
    between the two left no champion/."""
    params = Params()
    _old_layout_champion(params, rewards)
    old = _champion_files(params)
    production = params.retrain.production_dir
    (production / CHAMPION_DIR).rename(production / ".previous")
    rewards["right"].save_pretrained(production / ".incoming" / REWARD_DIR)

    assert read_champion(params) == {"reason": "old layout"}

    assert _champion_files(params) == old
    assert not list(production.glob(".*"))
