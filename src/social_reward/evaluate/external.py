"""The published preference scorers the evaluation compares the social reward against.

Each peer (paper notes, "The peers") sits behind `ImageScorer` and is built from LOCAL weights
only; `PUBLISHED_WEIGHTS` says where each is published, as documentation (nothing here
downloads). Nothing is loaded with unrestricted pickle: torch files go through
`torch.load(weights_only=True)`, transformers folders through safetensors.

- PickScore: a transformers `CLIPModel` (ViT-H/14) folder; score = logit_scale * cosine of the
  normalised text and image embeddings, as the PickScore repository computes it.
- HPS v2 / v2.1: open_clip ViT-H-14 with HPS's state dict; score = the cosine (HPS prints it
  x100; the cosine is kept).
- LAION aesthetic predictor: the improved-aesthetic-predictor MLP on the L2-normalised image
  embedding of OpenAI's CLIP ViT-L/14 (open_clip `ViT-L-14-quickgelu`: OpenAI's weights were
  trained with QuickGELU); ignores the prompt.
- ImageReward: BLIP (ViT-L/16 image encoder, BERT text encoder with cross-attention to the
  image) and an MLP on the text [CLS] state; score = (mlp - mean) / std with the repository's
  constants. The `image-reward` package cannot be installed next to this project (it pins
  timm==0.6.13 against open_clip's timm 1.x and needs fairscale), so the same architecture is
  built from transformers' port of BLIP (`BlipVisionModel`, `BlipTextModel`, which follow
  BLIP's `vit.py` / `med.py` layer for layer) and the checkpoint's keys are renamed
  (`IMAGEREWARD_VISION_RENAMES`; text keys keep their names). Dropped from the checkpoint:
  the text `position_ids` buffer (recomputed) and BLIP's contrastive projections
  `vision_proj` / `text_proj`, which the reward never uses.
"""

from __future__ import annotations

import json
import re
from abc import abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from safetensors.torch import load_file

from social_reward.errors import SocialRewardError
from social_reward.evaluate.scorers import ImageInput, ImageScorer, Scorer, open_rgb
from social_reward.reward.backbone import (
    BackboneError,
    build_backbone,
    register_model_configs,
    tokenizer_for,
)

if TYPE_CHECKING:
    from transformers import BlipTextConfig, BlipVisionConfig

CONFIG_SECTION = "evaluate.external"
PICKSCORE, HPSV2, AESTHETIC, AESTHETIC_CLIP, IMAGEREWARD = (
    "pickscore",
    "hpsv2",
    "aesthetic",
    "aesthetic_clip",
    "imagereward",
)
EXTERNAL_KEYS = (PICKSCORE, HPSV2, AESTHETIC, AESTHETIC_CLIP, IMAGEREWARD)

# Where the weights are published. Documentation only: nothing in this module downloads.
PUBLISHED_WEIGHTS: dict[str, str] = {
    PICKSCORE: "https://huggingface.co/yuvalkirstain/PickScore_v1 (model); tokenizer and "
    "preprocessor files: https://huggingface.co/laion/CLIP-ViT-H-14-laion2B-s32B-b79K",
    HPSV2: "https://huggingface.co/xswu/HPSv2 (HPS_v2_compressed.pt, HPS_v2.1_compressed.pt)",
    AESTHETIC: "https://github.com/christophschuhmann/improved-aesthetic-predictor "
    "(sac+logos+ava1-l14-linearMSE.pth)",
    AESTHETIC_CLIP: "https://huggingface.co/timm/vit_large_patch14_clip_224.openai "
    "(OpenAI CLIP ViT-L/14 in open_clip format)",
    IMAGEREWARD: "https://huggingface.co/THUDM/ImageReward (ImageReward.pt, med_config.json); "
    "tokenizer: https://huggingface.co/google-bert/bert-base-uncased (vocab.txt)",
}

# What each key must point at, for the error messages.
EXPECTED: dict[str, str] = {
    PICKSCORE: "a transformers CLIPModel folder (config.json, model.safetensors, tokenizer and "
    "preprocessor_config.json), e.g. models/external/PickScore_v1",
    HPSV2: "an open_clip ViT-H-14 state dict (a torch file holding it bare or under "
    "'state_dict', or .safetensors), e.g. models/external/HPS_v2.1_compressed.pt",
    AESTHETIC: "the improved-aesthetic-predictor MLP state dict (layers.0.weight ... "
    "layers.7.bias; torch file or .safetensors), e.g. "
    "models/external/sac+logos+ava1-l14-linearMSE.pth",
    AESTHETIC_CLIP: "OpenAI CLIP ViT-L/14 weights in open_clip format (a file, or a folder "
    "with open_clip_model.safetensors), e.g. models/external/vit_large_patch14_clip_224.openai",
    IMAGEREWARD: "a folder with ImageReward.pt (or ImageReward.safetensors), med_config.json and "
    "the bert-base-uncased tokenizer (vocab.txt), e.g. models/external/ImageReward",
}

# The published architectures; `architectures` in build_external_scorers overrides them
# (tests pass tiny ones). For ImageReward the name is a key of IMAGEREWARD_VISION_TOWERS.
DEFAULT_ARCHITECTURES: dict[str, str] = {
    HPSV2: "ViT-H-14",
    AESTHETIC_CLIP: "ViT-L-14-quickgelu",
    IMAGEREWARD: "vit-large",
}
DEFAULT_BATCH_SIZE = 32

PICKSCORE_WEIGHT_NAMES = ("model.safetensors", "model.safetensors.index.json")
PICKSCORE_MAX_TOKENS = 77  # CLIP's text context, as PickScore's processor call truncates

# The head shared by the aesthetic predictor and ImageReward (the latter copied the former):
# Linear layers of these widths with the dropouts between the first four, no activations.
HEAD_WIDTHS = (1024, 128, 64, 16, 1)
HEAD_DROPOUTS = (0.2, 0.2, 0.1)

# ImageReward (ImageReward.py): prompt length, and the reward's normalisation constants.
IMAGEREWARD_MAX_TOKENS = 35
IMAGEREWARD_MEAN = 0.16717362830052426
IMAGEREWARD_STD = 1.0333394966054072
IMAGEREWARD_WEIGHT_NAMES = ("ImageReward.safetensors", "ImageReward.pt")
IMAGEREWARD_TEXT_CONFIG = "med_config.json"
BLIP_DECODER_TOKEN = "[DEC]"  # BLIP's init_tokenizer adds these two to bert-base-uncased
BLIP_ENCODER_TOKEN = "[ENC]"
TIMM_VIT_LAYER_NORM_EPS = 1e-6  # BLIP's vit.py: partial(nn.LayerNorm, eps=1e-6)
# BLIP's create_vit('large') at image_size 224 (BLIP_Pretrain(image_size=224, vit='large')).
IMAGEREWARD_VISION_TOWERS: dict[str, dict[str, Any]] = {
    "vit-large": {
        "hidden_size": 1024,
        "intermediate_size": 4096,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "image_size": 224,
        "patch_size": 16,
    },
}
# ImageReward checkpoint (BLIP's timm-style ViT) -> transformers BlipVisionModel, by regex on
# the key after "blip.visual_encoder.".
IMAGEREWARD_VISION_RENAMES: tuple[tuple[str, str], ...] = (
    (r"^cls_token$", "embeddings.class_embedding"),
    (r"^pos_embed$", "embeddings.position_embedding"),
    (r"^patch_embed\.proj\.", "embeddings.patch_embedding."),
    (r"^blocks\.(\d+)\.norm1\.", r"encoder.layers.\1.layer_norm1."),
    (r"^blocks\.(\d+)\.norm2\.", r"encoder.layers.\1.layer_norm2."),
    (r"^blocks\.(\d+)\.attn\.qkv\.", r"encoder.layers.\1.self_attn.qkv."),
    (r"^blocks\.(\d+)\.attn\.proj\.", r"encoder.layers.\1.self_attn.projection."),
    (r"^blocks\.(\d+)\.mlp\.", r"encoder.layers.\1.mlp."),
    (r"^norm\.", "post_layernorm."),
)
IMAGEREWARD_PREFIXES = {
    "blip.visual_encoder.": "vision.",
    "blip.text_encoder.": "text.",
    "mlp.": "mlp.",
}
IMAGEREWARD_UNUSED = (
    "blip.vision_proj.",
    "blip.text_proj.",
    "blip.text_encoder.embeddings.position_ids",
)
DDP_PREFIX = "module."


class ExternalWeightsError(SocialRewardError, ValueError):
    """Weights of an external scorer that are missing or do not fit, with the rule."""


def weights_error(key: str, path: str | Path, problem: str) -> ExternalWeightsError:
    """The error that names the config key, the path, what is wrong and what is expected."""
    return ExternalWeightsError(
        f"{CONFIG_SECTION}.{key}: {path}: {problem}; expected {EXPECTED[key]}"
    )


# A foreign weights file can fail in any layer that reads it (unpickler, zip, safetensors,
# load_state_dict, open_clip's loader), each with its own exception type; whatever it is, the
# file does not fit, and the error says so with the key, the path and the rule, chaining it.
LOAD_FAILURES = (Exception,)
CAUSE_LINES = 3  # lines of the underlying error quoted in the message


def cause(error: BaseException) -> str:
    """The first lines of the underlying error (load_state_dict lists every key; the whole
    error stays chained)."""
    root = error.__cause__ if isinstance(error, BackboneError) and error.__cause__ else error
    lines = str(root).strip().splitlines() or [type(root).__name__]
    more = f" (+{len(lines) - CAUSE_LINES} lines)" if len(lines) > CAUSE_LINES else ""
    return " ".join(line.strip() for line in lines[:CAUSE_LINES]) + more


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from safetensors or a torch file (weights_only), bare or under
    'state_dict', without a DistributedDataParallel 'module.' prefix."""
    if path.suffix == ".safetensors":
        state: Any = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, Mapping) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(
        isinstance(value, torch.Tensor) for value in state.values()
    ):
        raise ValueError("not a state dict of tensors")
    if state and all(key.startswith(DDP_PREFIX) for key in state):
        state = {key.removeprefix(DDP_PREFIX): value for key, value in state.items()}
    return dict(state)


class PreferenceHead(torch.nn.Module):
    """The improved-aesthetic-predictor MLP, which ImageReward reuses: Linear layers with
    dropout and no activations, keys `layers.0` ... `layers.7` as published."""

    def __init__(self, input_size: int) -> None:
        super().__init__()
        parts: list[torch.nn.Module] = []
        width = input_size
        for index, out in enumerate(HEAD_WIDTHS):
            parts.append(torch.nn.Linear(width, out))
            if index < len(HEAD_DROPOUTS):
                parts.append(torch.nn.Dropout(HEAD_DROPOUTS[index]))
            width = out
        self.layers = torch.nn.Sequential(*parts)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


class BatchedImageScorer(ImageScorer):
    """Scores rows in batches of `batch_size` with a model in eval mode on `device`."""

    def __init__(self, batch_size: int, device: str) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.device = torch.device(device)

    def score_images(self, prompts: Sequence[str], images: Sequence[ImageInput]) -> np.ndarray:
        if len(prompts) != len(images):
            raise ValueError(f"{len(prompts)} prompts for {len(images)} images")
        scores = [
            self.score_batch(
                list(prompts[start : start + self.batch_size]),
                [open_rgb(image) for image in images[start : start + self.batch_size]],
            )
            for start in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(scores) if scores else np.zeros(0, dtype=np.float64)

    def score_batch(self, prompts: list[str], images: list[Image.Image]) -> np.ndarray:
        """One batch, without gradients, as float64."""
        with torch.inference_mode():
            return self.forward_batch(prompts, images).detach().cpu().double().numpy()

    @abstractmethod
    def forward_batch(self, prompts: list[str], images: list[Image.Image]) -> torch.Tensor:
        """The scores of one batch, shape (len(images),)."""


class PickScoreScorer(BatchedImageScorer):
    """PickScore: logit_scale * cosine(text, image) of a transformers CLIPModel."""

    name = PICKSCORE

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Callable[..., Any],
        image_processor: Callable[..., Any],
        batch_size: int,
        device: str,
    ) -> None:
        super().__init__(batch_size, device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.image_processor = image_processor

    def forward_batch(self, prompts: list[str], images: list[Image.Image]) -> torch.Tensor:
        pixels = self.image_processor(images=images, return_tensors="pt")["pixel_values"]
        text = self.tokenizer(
            prompts,
            padding=True,
            truncation=True,
            max_length=PICKSCORE_MAX_TOKENS,
            return_tensors="pt",
        )
        out = self.model(
            input_ids=text["input_ids"].to(self.device),
            attention_mask=text["attention_mask"].to(self.device),
            pixel_values=pixels.to(self.device),
        )
        # The model returns both embeddings L2-normalised.
        return self.model.logit_scale.exp() * (out.text_embeds * out.image_embeds).sum(dim=-1)


class OpenClipCosineScorer(BatchedImageScorer):
    """HPS v2: cosine of the normalised open_clip text and image embeddings."""

    def __init__(
        self, name: str, model: torch.nn.Module, architecture: str, batch_size: int, device: str
    ) -> None:
        super().__init__(batch_size, device)
        self.name = name
        self.model = model.to(self.device).eval()
        self.preprocess = open_clip_preprocess(model)
        self.tokenizer = tokenizer_for(architecture)

    def forward_batch(self, prompts: list[str], images: list[Image.Image]) -> torch.Tensor:
        pixels = torch.stack([self.preprocess(image) for image in images]).to(self.device)
        text = self.model.encode_text(self.tokenizer(prompts).to(self.device), normalize=True)
        return (self.model.encode_image(pixels, normalize=True) * text).sum(dim=-1)


class AestheticScorer(BatchedImageScorer):
    """The LAION aesthetic predictor: its MLP on the L2-normalised CLIP image embedding."""

    name = AESTHETIC
    inputs = ("image",)  # the prompt plays no part

    def __init__(
        self, clip_model: torch.nn.Module, head: PreferenceHead, batch_size: int, device: str
    ) -> None:
        super().__init__(batch_size, device)
        self.model = clip_model.to(self.device).eval()
        self.head = head.to(self.device).eval()
        self.preprocess = open_clip_preprocess(clip_model)

    def score(self, items: pd.DataFrame) -> np.ndarray:
        """Scores from the `image` column alone: tables without prompts score too."""
        images = list(items["image"])
        return self.score_images([""] * len(images), images)

    def forward_batch(self, prompts: list[str], images: list[Image.Image]) -> torch.Tensor:
        pixels = torch.stack([self.preprocess(image) for image in images]).to(self.device)
        return self.head(self.model.encode_image(pixels, normalize=True)).squeeze(-1)


class ImageRewardModel(torch.nn.Module):
    """ImageReward's network: BLIP image encoder, BERT text encoder cross-attending to the
    image tokens, and the MLP on the text [CLS] state, normalised by the published constants."""

    def __init__(self, vision_config: BlipVisionConfig, text_config: BlipTextConfig) -> None:
        from transformers import BlipTextModel, BlipVisionModel

        super().__init__()
        self.vision = BlipVisionModel(vision_config)
        self.text = BlipTextModel(text_config, add_pooling_layer=False)
        self.mlp = PreferenceHead(text_config.hidden_size)

    def forward(
        self, pixel_values: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        image_embeds = self.vision(pixel_values=pixel_values).last_hidden_state
        image_mask = torch.ones(
            image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device
        )
        text = self.text(
            input_ids=input_ids,
            attention_mask=attention_mask,
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=image_mask,
        )
        reward = self.mlp(text.last_hidden_state[:, 0, :]).squeeze(-1)
        return (reward - IMAGEREWARD_MEAN) / IMAGEREWARD_STD


class ImageRewardScorer(BatchedImageScorer):
    """ImageReward: BLIP cross-attention features of (prompt, image) through its MLP."""

    name = IMAGEREWARD

    def __init__(
        self,
        model: ImageRewardModel,
        tokenizer: Callable[..., Any],
        batch_size: int,
        device: str,
    ) -> None:
        super().__init__(batch_size, device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.preprocess = imagereward_preprocess(model.vision.config.image_size)

    def forward_batch(self, prompts: list[str], images: list[Image.Image]) -> torch.Tensor:
        pixels = torch.stack([self.preprocess(image) for image in images]).to(self.device)
        text = self.tokenizer(
            prompts,
            padding="max_length",
            truncation=True,
            max_length=IMAGEREWARD_MAX_TOKENS,
            return_tensors="pt",
        )
        return self.model(
            pixels, text["input_ids"].to(self.device), text["attention_mask"].to(self.device)
        )


def open_clip_preprocess(model: torch.nn.Module) -> Callable[[Image.Image], torch.Tensor]:
    """open_clip's evaluation transform for the model (resize, centre crop, CLIP normalise)."""
    from open_clip.transform import PreprocessCfg, image_transform_v2

    return image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg), is_train=False)


def imagereward_preprocess(image_size: int) -> Callable[[Image.Image], torch.Tensor]:
    """ImageReward's `_transform`: bicubic resize, centre crop, CLIP's mean and std."""
    from open_clip.constants import OPENAI_DATASET_MEAN, OPENAI_DATASET_STD
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.Resize(image_size, interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.CenterCrop(image_size),
            transforms.ToTensor(),
            transforms.Normalize(OPENAI_DATASET_MEAN, OPENAI_DATASET_STD),
        ]
    )


def load_pickscore(path: Path, batch_size: int, device: str) -> PickScoreScorer:
    """PickScore from a transformers folder, weights from safetensors only."""
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPTokenizer

    if not path.is_dir():
        raise weights_error(PICKSCORE, path, "folder missing")
    if not any((path / name).is_file() for name in PICKSCORE_WEIGHT_NAMES):
        raise weights_error(
            PICKSCORE, path, "no model.safetensors (only safetensors are read, never pickle)"
        )
    try:
        config = CLIPConfig.from_pretrained(path, local_files_only=True)
    except LOAD_FAILURES as error:
        raise weights_error(PICKSCORE, path, f"no CLIP config.json: {cause(error)}") from error
    if config.model_type != "clip":
        raise weights_error(PICKSCORE, path, f"config.json is a {config.model_type!r} model")
    try:
        # Mismatched shapes are collected (not raised) so that the error can list them.
        model, info = CLIPModel.from_pretrained(
            path,
            local_files_only=True,
            use_safetensors=True,
            output_loading_info=True,
            ignore_mismatched_sizes=True,
        )
        tokenizer = CLIPTokenizer.from_pretrained(path, local_files_only=True)
        # The PIL processor, as PickScore's transformers 4 processor resized with PIL.
        image_processor = CLIPImageProcessorPil.from_pretrained(path, local_files_only=True)
    except LOAD_FAILURES as error:
        raise weights_error(PICKSCORE, path, f"cannot load: {cause(error)}") from error
    unfit = sorted(info["missing_keys"]) + sorted(str(key[0]) for key in info["mismatched_keys"])
    if unfit:
        raise weights_error(
            PICKSCORE, path, f"weights do not fit config.json: {len(unfit)} keys, e.g. {unfit[:3]}"
        )
    return PickScoreScorer(model, tokenizer, image_processor, batch_size, device)


def load_open_clip(key: str, path: Path, architecture: str) -> torch.nn.Module:
    """An open_clip model from a local weights file or folder, errors naming the key."""
    import open_clip

    if not path.exists():
        raise weights_error(key, path, "file missing")
    register_model_configs()
    if architecture not in open_clip.list_models():
        raise weights_error(key, path, f"{architecture!r} is not an open_clip architecture")
    try:
        return build_backbone(architecture, path)
    except LOAD_FAILURES as error:
        raise weights_error(
            key, path, f"weights do not fit {architecture}: {cause(error)}"
        ) from error


def load_aesthetic_head(path: Path, input_size: int) -> PreferenceHead:
    """The aesthetic MLP, checked to read embeddings of the CLIP model's width."""
    if not path.is_file():
        raise weights_error(AESTHETIC, path, "file missing")
    head = PreferenceHead(input_size)
    try:
        head.load_state_dict(load_tensors(path))
    except LOAD_FAILURES as error:
        raise weights_error(
            AESTHETIC,
            path,
            f"does not fit an MLP on {input_size}-d CLIP embeddings: {cause(error)}",
        ) from error
    return head


def imagereward_state_dict(published: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The ImageReward checkpoint's keys renamed for ImageRewardModel (see the docstring)."""
    state: dict[str, torch.Tensor] = {}
    for key, value in published.items():
        if key.startswith(IMAGEREWARD_UNUSED):
            continue
        prefix = next((p for p in IMAGEREWARD_PREFIXES if key.startswith(p)), None)
        if prefix is None:
            raise KeyError(f"unexpected key {key!r}")
        rest = key.removeprefix(prefix)
        if prefix == "blip.visual_encoder.":
            for pattern, replacement in IMAGEREWARD_VISION_RENAMES:
                renamed = re.sub(pattern, replacement, rest)
                if renamed != rest:
                    rest = renamed
                    break
            else:
                raise KeyError(f"unexpected key {key!r}")
        state[IMAGEREWARD_PREFIXES[prefix] + rest] = value
    return state


def imagereward_configs(
    med_config: Path, architecture: str
) -> tuple[BlipVisionConfig, BlipTextConfig]:
    """The vision config of the named tower and the text config from BLIP's med_config.json,
    cross-attending to the vision width as BLIP_Pretrain sets it."""
    from transformers import BlipTextConfig, BlipVisionConfig

    if architecture not in IMAGEREWARD_VISION_TOWERS:
        raise ValueError(
            f"ImageReward vision tower {architecture!r}; one of {sorted(IMAGEREWARD_VISION_TOWERS)}"
        )
    vision = BlipVisionConfig(
        **IMAGEREWARD_VISION_TOWERS[architecture], layer_norm_eps=TIMM_VIT_LAYER_NORM_EPS
    )
    bert = json.loads(med_config.read_text())
    text = BlipTextConfig(
        vocab_size=bert["vocab_size"],
        hidden_size=bert["hidden_size"],
        intermediate_size=bert["intermediate_size"],
        num_hidden_layers=bert["num_hidden_layers"],
        num_attention_heads=bert["num_attention_heads"],
        max_position_embeddings=bert["max_position_embeddings"],
        hidden_act=bert["hidden_act"],
        layer_norm_eps=bert["layer_norm_eps"],
        pad_token_id=bert.get("pad_token_id", 0),
        encoder_hidden_size=vision.hidden_size,
        is_decoder=True,  # transformers builds the cross-attention layers only for a decoder
        bos_token_id=None,
        eos_token_id=None,
        sep_token_id=None,
    )
    return vision, text


def load_imagereward(
    path: Path, batch_size: int, device: str, architecture: str
) -> ImageRewardScorer:
    """ImageReward from its folder (or its weights file, the folder being the file's)."""
    from transformers import BertTokenizer

    folder = path.parent if path.is_file() else path
    if not folder.is_dir():
        raise weights_error(IMAGEREWARD, path, "folder missing")
    weights = path if path.is_file() else None
    for name in IMAGEREWARD_WEIGHT_NAMES:
        if weights is None and (folder / name).is_file():
            weights = folder / name
    if weights is None:
        raise weights_error(IMAGEREWARD, path, f"none of {', '.join(IMAGEREWARD_WEIGHT_NAMES)}")
    if not (folder / IMAGEREWARD_TEXT_CONFIG).is_file():
        raise weights_error(IMAGEREWARD, path, f"{IMAGEREWARD_TEXT_CONFIG} missing")
    try:
        vision, text = imagereward_configs(folder / IMAGEREWARD_TEXT_CONFIG, architecture)
        tokenizer = BertTokenizer.from_pretrained(folder, local_files_only=True)
        tokenizer.add_special_tokens({"bos_token": BLIP_DECODER_TOKEN})
        tokenizer.add_special_tokens({"additional_special_tokens": [BLIP_ENCODER_TOKEN]})
        if len(tokenizer) > text.vocab_size:
            raise ValueError(
                f"tokenizer of {len(tokenizer)} tokens for {text.vocab_size} embeddings"
            )
        model = ImageRewardModel(vision, text)
        model.load_state_dict(imagereward_state_dict(load_tensors(weights)))
    except LOAD_FAILURES as error:
        raise weights_error(
            IMAGEREWARD, weights, f"does not fit ImageReward ({architecture}): {cause(error)}"
        ) from error
    return ImageRewardScorer(model, tokenizer, batch_size, device)


def build_external_scorers(
    weights: Mapping[str, str | Path | None],
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str = "cpu",
    architectures: Mapping[str, str] | None = None,
) -> list[Scorer]:
    """A scorer for each configured entry of `weights` (keys in EXTERNAL_KEYS; empty entries
    are skipped), so the evaluation compares only the peers whose weights are on disk.
    `architectures` overrides DEFAULT_ARCHITECTURES (open_clip names; for ImageReward a key
    of IMAGEREWARD_VISION_TOWERS)."""
    unknown = sorted(set(weights) - set(EXTERNAL_KEYS))
    if unknown:
        raise ExternalWeightsError(
            f"{CONFIG_SECTION}: unknown keys {unknown}; known: {', '.join(EXTERNAL_KEYS)}"
        )
    chosen = {**DEFAULT_ARCHITECTURES, **(architectures or {})}
    paths = {key: Path(value) for key, value in weights.items() if value not in (None, "")}
    scorers: list[Scorer] = []
    if PICKSCORE in paths:
        scorers.append(load_pickscore(paths[PICKSCORE], batch_size, device))
    if HPSV2 in paths:
        model = load_open_clip(HPSV2, paths[HPSV2], chosen[HPSV2])
        scorers.append(OpenClipCosineScorer(HPSV2, model, chosen[HPSV2], batch_size, device))
    if AESTHETIC in paths or AESTHETIC_CLIP in paths:
        for needed in (AESTHETIC, AESTHETIC_CLIP):
            if needed not in paths:
                raise ExternalWeightsError(
                    f"{CONFIG_SECTION}.{needed}: not set; the aesthetic predictor needs both "
                    f"{AESTHETIC} (the MLP) and {AESTHETIC_CLIP} (the CLIP weights); "
                    f"expected {EXPECTED[needed]}"
                )
        clip_model = load_open_clip(AESTHETIC_CLIP, paths[AESTHETIC_CLIP], chosen[AESTHETIC_CLIP])
        head = load_aesthetic_head(paths[AESTHETIC], clip_model.visual.output_dim)
        scorers.append(AestheticScorer(clip_model, head, batch_size, device))
    if IMAGEREWARD in paths:
        scorers.append(
            load_imagereward(paths[IMAGEREWARD], batch_size, device, chosen[IMAGEREWARD])
        )
    return scorers
