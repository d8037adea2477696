"""Generators: the small default saved and loaded, a Stable Diffusion folder through the same
code, and the errors a user meets."""

from __future__ import annotations

import json

import pytest
import torch

from social_reward.generator.pipeline import (
    GENERATOR_FILE,
    GeneratorError,
    StableDiffusionGenerator,
    TinyGenerator,
    autoencoder_config,
    load_generator,
    unet_config,
)
from social_reward.generator.sampling import sample
from social_reward.reward.backbone import load_saved_backbone
from tests.code.generator.conftest import build_small
from tests.conftest import SMALL_VAE, small_vae

PROMPTS = ["a red star on a navy background", "a blue ring on a white background"]


def test_images_and_latents_map_back_and_forth_through_the_autoencoder(generator):
    images = torch.rand(2, 3, generator.image_size, generator.image_size)
    latents = generator.to_latents(images)
    # The autoencoder's latent channels, the image side over the autoencoder's factor.
    side = generator.image_size // generator.vae_scale_factor
    assert latents.shape == (2, generator.vae.config.latent_channels, side, side)
    assert latents.shape == (2, *generator.latent_shape)
    decoded = generator.from_latents(latents)
    assert decoded.shape == images.shape and decoded.min() >= 0 and decoded.max() <= 1
    # The scaling factor scales the latents both ways.
    generator.vae.register_to_config(scaling_factor=2.0)
    torch.manual_seed(0)
    doubled = generator.to_latents(images)
    generator.vae.register_to_config(scaling_factor=1.0)
    torch.manual_seed(0)
    assert torch.allclose(doubled, 2 * generator.to_latents(images), atol=1e-6)
    assert not any(p.requires_grad for p in generator.vae.parameters())


def test_prompt_conditioning_has_the_unet_shapes(generator):
    condition = generator.condition(PROMPTS)
    tokens = generator.prompt_encoder.tokens
    assert condition["encoder_hidden_states"].shape == (2, 2 * tokens, 128)
    assert condition["class_labels"].shape == (2, 128)
    # Distinct prompts condition differently; the text tower is frozen.
    assert not torch.allclose(condition["class_labels"][0], condition["class_labels"][1])
    assert not any(p.requires_grad for p in generator.prompt_encoder.parameters())


def test_the_pooled_prompt_embedding_is_the_backbones(generator, backbone_dir):
    backbone, name = load_saved_backbone(backbone_dir)
    from social_reward.reward.backbone import tokenizer_for

    expected = backbone.encode_text(tokenizer_for(name)(PROMPTS))
    assert torch.allclose(generator.condition(PROMPTS)["class_labels"], expected, atol=1e-5)


def test_a_saved_generator_loads_back_and_samples_the_same(generator, backbone_dir, tmp_path):
    backbone, _ = load_saved_backbone(backbone_dir)
    folder = generator.save_pretrained(tmp_path / "base", backbone)
    # Stable Diffusion's folder layout, each part as diffusers writes it.
    assert {p.name for p in folder.iterdir()} == {
        GENERATOR_FILE,
        "vae",
        "unet",
        "scheduler",
        "text_encoder",
    }
    assert json.loads((folder / "vae" / "config.json").read_text())["_class_name"] == (
        "AutoencoderKL"
    )
    loaded = load_generator(folder)
    assert isinstance(loaded, TinyGenerator)
    expected = sample(generator, PROMPTS, [1, 2], steps=3, guidance=2.0)
    assert torch.allclose(
        sample(loaded, PROMPTS, [1, 2], steps=3, guidance=2.0), expected, atol=1e-6
    )


def test_unknown_unet_config_names_the_known_ones(backbone_dir):
    with pytest.raises(
        GeneratorError, match=r"no such config file; known names: .*social-reward-tiny-unet"
    ):
        unet_config("social-reward-huge-unet")


def test_a_unet_that_does_not_fit_the_text_tower_is_refused(backbone_dir, small_unet, tmp_path):
    config = json.loads(small_unet.read_text())
    config["cross_attention_dim"] = 64
    path = tmp_path / "unet.json"
    path.write_text(json.dumps(config))
    (tmp_path / SMALL_VAE).write_text(small_vae(small_unet).read_text())
    with pytest.raises(
        GeneratorError, match=r"cross_attention_dim is 64, but 128 is what the text tower"
    ):
        build_small(backbone_dir, path)


def test_a_unet_that_does_not_fit_the_autoencoder_is_refused(backbone_dir, small_unet, tmp_path):
    config = json.loads(small_unet.read_text())
    config["in_channels"] = 12
    path = tmp_path / "unet.json"
    path.write_text(json.dumps(config))
    (tmp_path / SMALL_VAE).write_text(small_vae(small_unet).read_text())
    channels = json.loads(small_vae(small_unet).read_text())["latent_channels"]
    with pytest.raises(
        GeneratorError, match=rf"in_channels is 12, but {channels} is what .* autoencoder"
    ):
        build_small(backbone_dir, path)


def test_unknown_autoencoder_config_names_the_setting_and_the_known_ones():
    with pytest.raises(
        GeneratorError,
        match=r"generator_pretrain.autoencoder.model 'huge-vae': no such config file; "
        r"known names: .*social-reward-tiny-vae",
    ):
        autoencoder_config("huge-vae")


def test_loading_a_folder_without_a_generator_says_which_stage_to_run(tmp_path):
    with pytest.raises(
        GeneratorError,
        match=f"{tmp_path / GENERATOR_FILE}: file missing; run the `generator_pretrain`",
    ):
        load_generator(tmp_path)
    (tmp_path / GENERATOR_FILE).write_text(json.dumps({"kind": "dalle"}))
    with pytest.raises(GeneratorError, match="kind 'dalle' unknown"):
        load_generator(tmp_path)


def test_a_folder_that_is_not_stable_diffusion_is_refused(tmp_path):
    with pytest.raises(GeneratorError, match=r"not a Stable Diffusion folder .*model_index\.json"):
        StableDiffusionGenerator.from_pretrained(tmp_path)


@pytest.fixture(scope="module")
def stable_diffusion_folder(tmp_path_factory):
    """A tiny Stable Diffusion pipeline of the real classes, saved as diffusers saves one."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("sd")
    words = ["a", "red", "star", "on", "navy", "background", "blue", "ring", "white"]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for word in words:
        vocab[f"{word}</w>"] = len(vocab)
    for letter in "abcdefghijklmnopqrstuvwxyz":
        vocab.setdefault(letter, len(vocab))
        vocab.setdefault(f"{letter}</w>", len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            projection_dim=32,
        )
    )
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(16, 32),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=8,
        sample_size=16,
    )
    pipeline = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=DDIMScheduler(prediction_type="epsilon"),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipeline.save_pretrained(folder / "pipeline")
    return folder / "pipeline"


def test_a_stable_diffusion_folder_loads_and_samples_through_the_same_code(
    stable_diffusion_folder, tmp_path
):
    generator = StableDiffusionGenerator.from_pretrained(stable_diffusion_folder)
    assert generator.image_size == 16
    images = sample(generator, PROMPTS, [3, 4], steps=2, guidance=2.0)
    assert images.shape == (2, 3, 16, 16) and images.min() >= 0.0 and images.max() <= 1.0
    # The generator_pretrain stage records where the weights are; loading follows it.
    generator.save_reference(tmp_path / "base", stable_diffusion_folder)
    again = load_generator(tmp_path / "base")
    assert isinstance(again, StableDiffusionGenerator)
    assert torch.allclose(sample(again, PROMPTS, [3, 4], steps=2, guidance=2.0), images, atol=1e-5)
    latents = generator.to_latents(images)
    assert latents.shape == (2, *generator.latent_shape)
