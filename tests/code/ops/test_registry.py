"""Champion/challenger with real saved rewards, scored on real images.

The test pairs are built from one model's own ranking, so that model is right on every pair
and the other (a different random initialisation) is at chance: a better and a worse
challenger whose difference is known in sign and far from the margin.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pandas as pd
import pytest
import torch

from social_reward.config.params import Params
from social_reward.ops.registry import (
    CHAMPION_DIR,
    CHAMPION_FILE,
    REFERENCE_FILE,
    REWARD_DIR,
    TRAIN_PROMPTS_FILE,
    challenge,
    decide,
    provenance,
    read_champion,
    read_registry,
)
from social_reward.reward.backbone import build_backbone
from social_reward.reward.model import MODEL_FILE, SocialReward
from tests.conftest import run

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
