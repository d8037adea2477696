"""External scorers, each with small random weights of its real architecture, saved in the
published on-disk format and loaded back through build_external_scorers: the loaded scorer
scores like the in-memory model, batches like one by one, and bad weights fail with the key,
the path and the rule."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import open_clip
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from social_reward.evaluate import external
from social_reward.evaluate.external import (
    EXTERNAL_KEYS,
    IMAGEREWARD_MAX_TOKENS,
    IMAGEREWARD_MEAN,
    IMAGEREWARD_STD,
    PUBLISHED_WEIGHTS,
    ExternalWeightsError,
    build_external_scorers,
)
from social_reward.evaluate.scorers import open_rgb
from social_reward.reward.backbone import build_backbone, save_backbone, tokenizer_for

PROMPTS = ["a red cat", "blue dogs on the cat", "the", "a cat a dog a red blue cat on the dog"]
IMAGE_SIZES = [(40, 52), (32, 32), (70, 45), (33, 34)]
ATOL = 1e-5

# Tiny open_clip architectures, registered from a temporary folder.
TINY_HPS = "tiny-hps-test"
TINY_AESTHETIC_CLIP = "tiny-aesthetic-clip-test"
AESTHETIC_EMBED = 768  # the published MLP reads ViT-L/14's 768-d embedding
TINY_VISION = {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16}
TINY_TEXT = {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}
TINY_OPEN_CLIP = {
    TINY_HPS: {"embed_dim": 16, "vision_cfg": TINY_VISION, "text_cfg": TINY_TEXT},
    TINY_AESTHETIC_CLIP: {
        "embed_dim": AESTHETIC_EMBED,
        "quick_gelu": True,
        "vision_cfg": TINY_VISION,
        "text_cfg": TINY_TEXT,
    },
}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread; on a shared 2-core machine, two threads spin."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> list:
    """Random images of several sizes; the first given as a file path."""
    rng = np.random.default_rng(0)
    pictures = [
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        for height, width in IMAGE_SIZES
    ]
    path = tmp_path_factory.mktemp("images") / "first.png"
    pictures[0].save(path)
    return [path, *pictures[1:]]


@pytest.fixture(scope="module")
def tiny_open_clip(tmp_path_factory) -> None:
    folder = tmp_path_factory.mktemp("open_clip_configs")
    for name, config in TINY_OPEN_CLIP.items():
        (folder / f"{name}.json").write_text(json.dumps(config))
    open_clip.add_model_config(folder)


def check_scorer(scorer, images, reference: np.ndarray) -> np.ndarray:
    """One finite float per row, batching invariant, equal to the in-memory model."""
    scores = scorer.score_images(PROMPTS, images)
    assert scores.shape == (len(PROMPTS),)
    assert scores.dtype == np.float64
    assert np.isfinite(scores).all()
    one_by_one = np.concatenate(
        [
            scorer.score_images([prompt], [image])
            for prompt, image in zip(PROMPTS, images, strict=True)
        ]
    )
    np.testing.assert_allclose(scores, one_by_one, atol=ATOL)
    np.testing.assert_allclose(scores, reference, atol=ATOL)
    table = pd.DataFrame({"prompt": PROMPTS, "image": images})
    np.testing.assert_allclose(scorer.score(table), scores, atol=ATOL)
    assert len(np.unique(scores.round(6))) > 1, "random weights should separate the rows"
    return scores


# -- PickScore: transformers CLIPModel folder --------------------------------------------


def tiny_clip_tokenizer():
    """A CLIP BPE tokenizer over the 512 byte-level symbols and a few merges."""
    from open_clip.tokenizer import bytes_to_unicode
    from transformers import CLIPTokenizer

    symbols = list(bytes_to_unicode().values())
    merges = [("c", "a"), ("ca", "t</w>"), ("d", "o"), ("do", "g</w>")]
    tokens = [*symbols, *(symbol + "</w>" for symbol in symbols)]
    tokens += ["".join(pair) for pair in merges] + ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(vocab={token: i for i, token in enumerate(tokens)}, merges=merges)


def save_pickscore(folder: Path, seed: int = 0, width: int = 32):
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    tokenizer = tiny_clip_tokenizer()
    vocab = len(tokenizer)
    config = CLIPConfig(
        text_config={
            "vocab_size": vocab,
            "hidden_size": width,
            "intermediate_size": 2 * width,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "max_position_embeddings": 77,
            "bos_token_id": vocab - 2,
            "eos_token_id": vocab - 1,
            "pad_token_id": vocab - 1,
        },
        vision_config={
            "hidden_size": width,
            "intermediate_size": 2 * width,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_size": 32,
            "patch_size": 16,
        },
        projection_dim=16,
        logit_scale_init_value=2.0,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    processor = CLIPImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    model.save_pretrained(folder)  # safetensors, as published
    tokenizer.save_pretrained(folder)
    processor.save_pretrained(folder)
    return model, tokenizer, processor


def test_pickscore_loads_a_clipmodel_folder_and_scores_like_the_model(tmp_path, images):
    model, tokenizer, processor = save_pickscore(tmp_path / "PickScore_v1")
    assert (tmp_path / "PickScore_v1" / "model.safetensors").is_file()
    [scorer] = build_external_scorers({"pickscore": tmp_path / "PickScore_v1"}, batch_size=3)
    assert scorer.name == "pickscore"

    reference = []
    with torch.no_grad():
        for prompt, image in zip(PROMPTS, images, strict=True):
            pixels = processor(images=[open_rgb(image)], return_tensors="pt")["pixel_values"]
            tokens = tokenizer([prompt], return_tensors="pt")
            image_embed = model.get_image_features(pixel_values=pixels).pooler_output
            text_embed = model.get_text_features(**tokens).pooler_output
            cosine = torch.nn.functional.cosine_similarity(image_embed, text_embed)
            reference.append(float(model.logit_scale.exp() * cosine))
    check_scorer(scorer, images, np.array(reference))


def test_pickscore_errors_name_the_key_the_path_and_the_rule(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(
        ExternalWeightsError,
        match=r"evaluate\.external\.pickscore: .*nowhere: folder missing; "
        r"expected a transformers CLIPModel folder",
    ):
        build_external_scorers({"pickscore": missing})
    folder = tmp_path / "PickScore_v1"
    save_pickscore(folder)
    # config.json of a wider model than the weights saved.
    wider = tmp_path / "wider"
    save_pickscore(wider, width=64)
    shutil.copy(wider / "config.json", folder / "config.json")
    with pytest.raises(
        ExternalWeightsError, match=r"pickscore: .*PickScore_v1: weights do not fit config\.json"
    ):
        build_external_scorers({"pickscore": folder})
    # Only safetensors: a pickle-only folder is refused, not unpickled.
    (folder / "model.safetensors").unlink()
    with pytest.raises(
        ExternalWeightsError, match=r"evaluate\.external\.pickscore: .*no model\.safetensors"
    ):
        build_external_scorers({"pickscore": folder})


# -- HPS v2: open_clip state dict in a torch file -----------------------------------------


@pytest.mark.parametrize("layout", ["state_dict", "bare"])
def test_hpsv2_loads_a_torch_state_dict_and_scores_the_cosine(
    tmp_path, images, tiny_open_clip, layout
):
    torch.manual_seed(1)
    model = build_backbone(TINY_HPS).eval()
    state = model.state_dict()
    path = tmp_path / "HPS_v2.1_compressed.pt"
    # HPS publishes {"state_dict": ...} (with training metadata); a bare dict works too.
    torch.save({"state_dict": state, "epoch": 1} if layout == "state_dict" else state, path)
    [scorer] = build_external_scorers(
        {"hpsv2": path}, batch_size=3, architectures={"hpsv2": TINY_HPS}
    )
    assert scorer.name == "hpsv2"

    preprocess = open_clip.image_transform(model.visual.image_size, is_train=False)
    tokenize = tokenizer_for(TINY_HPS)
    with torch.no_grad():
        pixels = torch.stack([preprocess(open_rgb(image)) for image in images])
        image_features = model.encode_image(pixels)
        text_features = model.encode_text(tokenize(PROMPTS))
        reference = torch.nn.functional.cosine_similarity(image_features, text_features)
    scores = check_scorer(scorer, images, reference.numpy())
    assert np.all(np.abs(scores) <= 1.0 + ATOL)  # a cosine, not HPS's x100


def test_hpsv2_errors_name_the_key_the_path_and_the_rule(tmp_path, tiny_open_clip):
    with pytest.raises(
        ExternalWeightsError,
        match=r"evaluate\.external\.hpsv2: .*HPS_v2\.pt: file missing; "
        r"expected an open_clip ViT-H-14 state dict",
    ):
        build_external_scorers({"hpsv2": tmp_path / "HPS_v2.pt"})
    other = build_backbone(TINY_AESTHETIC_CLIP)  # 768-d projections: not the HPS tiny model
    path = tmp_path / "other.pt"
    torch.save({"state_dict": other.state_dict()}, path)
    with pytest.raises(ExternalWeightsError, match=r"hpsv2: .*other\.pt: weights do not fit"):
        build_external_scorers({"hpsv2": path}, architectures={"hpsv2": TINY_HPS})
    with pytest.raises(ExternalWeightsError, match=r"hpsv2: .*'ViT-Nothing' is not an open_clip"):
        build_external_scorers({"hpsv2": path}, architectures={"hpsv2": "ViT-Nothing"})
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(ExternalWeightsError, match=r"hpsv2: .*garbage\.pt: weights do not fit"):
        build_external_scorers({"hpsv2": garbage}, architectures={"hpsv2": TINY_HPS})


# -- LAION aesthetic predictor: MLP .pth + CLIP ViT-L/14 -----------------------------------


def aesthetic_mlp(input_size: int) -> torch.nn.Module:
    """improved-aesthetic-predictor's MLP, written out as its repository does."""

    class MLP(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = torch.nn.Sequential(
                torch.nn.Linear(input_size, 1024),
                torch.nn.Dropout(0.2),
                torch.nn.Linear(1024, 128),
                torch.nn.Dropout(0.2),
                torch.nn.Linear(128, 64),
                torch.nn.Dropout(0.1),
                torch.nn.Linear(64, 16),
                torch.nn.Linear(16, 1),
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.layers(x)

    return MLP().eval()


def save_aesthetic(folder: Path, input_size: int = AESTHETIC_EMBED):
    torch.manual_seed(2)
    clip = build_backbone(TINY_AESTHETIC_CLIP).eval()
    save_backbone(clip, TINY_AESTHETIC_CLIP, folder / "clip")
    mlp = aesthetic_mlp(input_size)
    torch.save(mlp.state_dict(), folder / "sac+logos+ava1-l14-linearMSE.pth")
    return (
        clip,
        mlp,
        {
            "aesthetic": folder / "sac+logos+ava1-l14-linearMSE.pth",
            "aesthetic_clip": folder / "clip",
        },
    )


def test_aesthetic_scores_the_normalised_image_embedding_and_ignores_the_prompt(
    tmp_path, images, tiny_open_clip
):
    clip, mlp, weights = save_aesthetic(tmp_path)
    [scorer] = build_external_scorers(
        weights, batch_size=3, architectures={"aesthetic_clip": TINY_AESTHETIC_CLIP}
    )
    assert scorer.name == "aesthetic"
    assert scorer.inputs == ("image",)

    preprocess = open_clip.image_transform(clip.visual.image_size, is_train=False)
    with torch.no_grad():
        features = clip.encode_image(torch.stack([preprocess(open_rgb(image)) for image in images]))
        features = features / features.norm(dim=-1, keepdim=True)
        reference = mlp(features).squeeze(-1).numpy()
    scores = check_scorer(scorer, images, reference)
    np.testing.assert_allclose(scorer.score_images(["other"] * len(images), images), scores)
    np.testing.assert_allclose(scorer.score(pd.DataFrame({"image": images})), scores)


def test_aesthetic_errors_name_the_key_the_path_and_the_rule(tmp_path, tiny_open_clip):
    _, _, weights = save_aesthetic(tmp_path / "ok")
    with pytest.raises(ExternalWeightsError, match=r"evaluate\.external\.aesthetic_clip: not set"):
        build_external_scorers({"aesthetic": weights["aesthetic"], "aesthetic_clip": ""})
    with pytest.raises(ExternalWeightsError, match=r"evaluate\.external\.aesthetic: not set"):
        build_external_scorers({"aesthetic_clip": weights["aesthetic_clip"]})
    tiny = {"aesthetic_clip": TINY_AESTHETIC_CLIP}
    with pytest.raises(
        ExternalWeightsError,
        match=r"evaluate\.external\.aesthetic: .*missing\.pth: file missing; "
        r"expected the improved-aesthetic-predictor MLP",
    ):
        build_external_scorers(
            {**weights, "aesthetic": tmp_path / "missing.pth"}, architectures=tiny
        )
    _, _, narrow = save_aesthetic(tmp_path / "narrow", input_size=512)  # a ViT-B MLP
    with pytest.raises(
        ExternalWeightsError, match=r"aesthetic: .*linearMSE\.pth: does not fit an MLP on 768-d"
    ):
        build_external_scorers({**weights, "aesthetic": narrow["aesthetic"]}, architectures=tiny)
    with pytest.raises(ExternalWeightsError, match=r"aesthetic_clip: .*nothing: file missing"):
        build_external_scorers(
            {**weights, "aesthetic_clip": tmp_path / "nothing"}, architectures=tiny
        )


# -- ImageReward: BLIP checkpoint with the original key names -------------------------------

BERT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "cat", "dog", "red", "blue"]
BERT_VOCAB += ["##s", "on", "the"]
TINY_TOWER = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 32,
    "patch_size": 16,
}


def med_config(hidden_size: int = 24) -> dict:
    """BLIP's med_config.json, shrunk (ImageReward publishes the bert-base one)."""
    return {
        "architectures": ["BertModel"],
        "attention_probs_dropout_prob": 0.1,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": hidden_size,
        "initializer_range": 0.02,
        "intermediate_size": 2 * hidden_size,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": 64,
        "model_type": "bert",
        "num_attention_heads": 2,
        "num_hidden_layers": 2,
        "pad_token_id": 0,
        "type_vocab_size": 2,
        "vocab_size": len(BERT_VOCAB) + 2,  # + BLIP's [DEC] and [ENC]
        "encoder_width": TINY_TOWER["hidden_size"],
        "add_cross_attention": True,
    }


def published_imagereward_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our model's state under the names of ImageReward.pt (BLIP's timm ViT and med.py BERT),
    spelled out here independently of the module's renaming, plus the checkpoint's extras."""
    vision_names = {
        "embeddings.class_embedding": "cls_token",
        "embeddings.position_embedding": "pos_embed",
        "embeddings.patch_embedding.weight": "patch_embed.proj.weight",
        "embeddings.patch_embedding.bias": "patch_embed.proj.bias",
        "post_layernorm.weight": "norm.weight",
        "post_layernorm.bias": "norm.bias",
    }
    block_names = {
        "layer_norm1": "norm1",
        "layer_norm2": "norm2",
        "self_attn.qkv": "attn.qkv",
        "self_attn.projection": "attn.proj",
        "mlp.fc1": "mlp.fc1",
        "mlp.fc2": "mlp.fc2",
    }
    published: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("vision."):
            rest = key.removeprefix("vision.")
            if rest.startswith("encoder.layers."):
                _, _, index, *part, leaf = rest.split(".")
                rest = f"blocks.{index}.{block_names['.'.join(part)]}.{leaf}"
            else:
                rest = vision_names[rest]
            published[f"blip.visual_encoder.{rest}"] = value
        elif key.startswith("text."):
            published["blip.text_encoder." + key.removeprefix("text.")] = value
        else:
            published[key] = value
    text_width = state["text.embeddings.word_embeddings.weight"].shape[1]
    positions = state["text.embeddings.position_embeddings.weight"].shape[0]
    published["blip.text_encoder.embeddings.position_ids"] = torch.arange(positions)[None]
    published["blip.vision_proj.weight"] = torch.randn(8, TINY_TOWER["hidden_size"])
    published["blip.vision_proj.bias"] = torch.zeros(8)
    published["blip.text_proj.weight"] = torch.randn(8, text_width)
    published["blip.text_proj.bias"] = torch.zeros(8)
    return published


@pytest.fixture
def tiny_tower(monkeypatch):
    monkeypatch.setitem(external.IMAGEREWARD_VISION_TOWERS, "tiny", TINY_TOWER)
    return {"imagereward": "tiny"}


def save_imagereward(folder: Path, safetensors: bool = False):
    from transformers import BertTokenizer

    folder.mkdir(parents=True)
    (folder / "med_config.json").write_text(json.dumps(med_config()))
    (folder / "vocab.txt").write_text("\n".join(BERT_VOCAB) + "\n")
    vision, text = external.imagereward_configs(folder / "med_config.json", "tiny")
    torch.manual_seed(3)
    model = external.ImageRewardModel(vision, text).eval()
    with torch.no_grad():  # move LayerNorms and biases off their initial values too
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    published = published_imagereward_keys(model.state_dict())
    if safetensors:
        save_file(
            {k: v.contiguous() for k, v in published.items()}, folder / "ImageReward.safetensors"
        )
    else:
        torch.save(published, folder / "ImageReward.pt")
    tokenizer = BertTokenizer(str(folder / "vocab.txt"))
    tokenizer.add_special_tokens({"bos_token": "[DEC]"})
    tokenizer.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    return model, tokenizer


@pytest.mark.parametrize("safetensors", [False, True])
def test_imagereward_loads_the_published_checkpoint_and_scores_like_the_model(
    tmp_path, images, tiny_tower, safetensors
):
    from torchvision import transforms

    model, tokenizer = save_imagereward(tmp_path / "ImageReward", safetensors)
    [scorer] = build_external_scorers(
        {"imagereward": tmp_path / "ImageReward"}, batch_size=3, architectures=tiny_tower
    )
    assert scorer.name == "imagereward"
    assert len(scorer.tokenizer) == len(BERT_VOCAB) + 2

    size = TINY_TOWER["image_size"]
    preprocess = transforms.Compose(
        [
            transforms.Resize(size, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(size),
            transforms.ToTensor(),
            transforms.Normalize(
                (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
            ),
        ]
    )
    reference = []
    with torch.no_grad():
        for prompt, image in zip(PROMPTS, images, strict=True):
            tokens = tokenizer(
                prompt, padding="max_length", truncation=True, max_length=IMAGEREWARD_MAX_TOKENS
            )
            ids = torch.tensor([tokens["input_ids"]])
            mask = torch.tensor([tokens["attention_mask"]])
            image_embeds = model.vision(preprocess(open_rgb(image))[None]).last_hidden_state
            text = model.text(
                input_ids=ids,
                attention_mask=mask,
                encoder_hidden_states=image_embeds,
                encoder_attention_mask=torch.ones(image_embeds.shape[:-1], dtype=torch.long),
            ).last_hidden_state
            raw = model.mlp(text[:, 0, :]).item()
            reference.append((raw - IMAGEREWARD_MEAN) / IMAGEREWARD_STD)
    scores = check_scorer(scorer, images, np.array(reference))
    # The reward reads the image through cross-attention: another image, another score.
    swapped = scorer.score_images(PROMPTS, [images[1], images[0], images[3], images[2]])
    assert not np.allclose(swapped, scores)
    # The weights file itself may be given instead of its folder.
    name = "ImageReward.safetensors" if safetensors else "ImageReward.pt"
    [direct] = build_external_scorers(
        {"imagereward": tmp_path / "ImageReward" / name}, architectures=tiny_tower
    )
    np.testing.assert_allclose(direct.score_images(PROMPTS, images), scores, atol=ATOL)


def test_imagereward_errors_name_the_key_the_path_and_the_rule(tmp_path, tiny_tower):
    with pytest.raises(
        ExternalWeightsError,
        match=r"evaluate\.external\.imagereward: .*nothing: folder missing; "
        r"expected a folder with ImageReward\.pt",
    ):
        build_external_scorers({"imagereward": tmp_path / "nothing"}, architectures=tiny_tower)
    folder = tmp_path / "ImageReward"
    save_imagereward(folder)
    (folder / "med_config.json").write_text(json.dumps(med_config(hidden_size=16)))
    with pytest.raises(
        ExternalWeightsError, match=r"imagereward: .*ImageReward\.pt: does not fit ImageReward"
    ):
        build_external_scorers({"imagereward": folder}, architectures=tiny_tower)
    (folder / "med_config.json").write_text(json.dumps(med_config()))
    with pytest.raises(ExternalWeightsError, match=r"vision tower 'vit-huge'; one of"):
        build_external_scorers({"imagereward": folder}, architectures={"imagereward": "vit-huge"})
    (folder / "med_config.json").unlink()
    with pytest.raises(ExternalWeightsError, match=r"imagereward: .*med_config\.json missing"):
        build_external_scorers({"imagereward": folder}, architectures=tiny_tower)
    (folder / "ImageReward.pt").unlink()
    with pytest.raises(ExternalWeightsError, match=r"imagereward: .*none of ImageReward"):
        build_external_scorers({"imagereward": folder}, architectures=tiny_tower)


# -- build_external_scorers ------------------------------------------------------------


def test_unset_entries_build_nothing_and_unknown_keys_are_refused():
    assert build_external_scorers({}) == []
    assert build_external_scorers({key: None for key in EXTERNAL_KEYS}) == []
    assert build_external_scorers({"pickscore": "", "hpsv2": None}) == []
    with pytest.raises(ExternalWeightsError, match=r"evaluate\.external: unknown keys \['pick'\]"):
        build_external_scorers({"pick": "x"})
    assert set(PUBLISHED_WEIGHTS) == set(EXTERNAL_KEYS)
    assert all(url.startswith("https://") for url in PUBLISHED_WEIGHTS.values())
