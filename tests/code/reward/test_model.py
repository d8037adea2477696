"""SocialReward: save and load, and one scoring path for files and images."""

import pytest
import torch
from PIL import Image

from social_reward.reward.backbone import DEFAULT_BACKBONE, BackboneError, build_backbone
from social_reward.reward.model import SocialReward


@pytest.fixture(scope="module")
def reward() -> SocialReward:
    torch.manual_seed(0)
    return SocialReward(build_backbone(DEFAULT_BACKBONE), DEFAULT_BACKBONE, batch_size=2)


@pytest.fixture(scope="module")
def image_files(tmp_path_factory) -> list:
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for n, colour in enumerate(["red", "navy", "yellow", "green", "white"]):
        path = folder / f"{n}.png"
        Image.new("RGB", (32, 32), colour).save(path)
        paths.append(path)
    return paths


def test_scores_are_one_per_image_in_order_whatever_the_batching(reward, image_files):
    scores = reward.score("a red square", image_files)
    assert len(scores) == len(image_files)
    one_by_one = [reward.score("a red square", [path])[0] for path in image_files]
    assert scores == pytest.approx(one_by_one, abs=1e-5)
    assert all(-1.0 <= score <= 1.0 for score in scores)


def test_files_and_pil_images_score_alike(reward, image_files):
    images = [Image.open(path) for path in image_files]
    assert reward.score("a square", images) == pytest.approx(
        reward.score("a square", image_files), abs=1e-6
    )


def test_a_saved_reward_loads_back_and_scores_the_same(reward, image_files, tmp_path):
    reward.config["unlock"] = "visual_upper_layers_textual_upper_layers"
    folder = reward.save_pretrained(tmp_path / "reward")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    loaded = SocialReward.from_pretrained(folder)
    assert loaded.config["unlock"] == "visual_upper_layers_textual_upper_layers"
    assert loaded.score("a star", image_files) == pytest.approx(
        reward.score("a star", image_files), abs=1e-6
    )


def test_a_folder_without_a_saved_reward_is_refused(tmp_path):
    with pytest.raises(BackboneError, match="not a saved Social Reward model"):
        SocialReward.from_pretrained(tmp_path)
