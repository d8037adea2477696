"""SocialReward: the reward a user loads and calls. One scoring path for every caller.

    reward = SocialReward.from_pretrained("models/reward")
    scores = reward.score("a red star on a navy background", ["a.png", "b.png"])

The score is the cosine of the normalised prompt and image embeddings of the backbone.
A saved reward is a folder with `model.safetensors` and `config.json` (the architecture and
what produced the weights); nothing is loaded with unrestricted pickle.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image
from safetensors.torch import save_file

from social_reward.reward.backbone import BackboneError, build_backbone, tokenizer_for

MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
DEFAULT_BATCH = 64


class SocialReward:
    """An open_clip backbone that scores images for a prompt."""

    def __init__(
        self,
        backbone: torch.nn.Module,
        name: str,
        config: dict | None = None,
        batch_size: int = DEFAULT_BATCH,
    ) -> None:
        from open_clip.transform import PreprocessCfg, image_transform_v2

        self.backbone = backbone.eval()
        self.name = name
        self.config = {"backbone": name, **(config or {})}
        self.batch_size = batch_size
        self.tokenizer = tokenizer_for(name)
        self.preprocess = image_transform_v2(
            PreprocessCfg(**backbone.visual.preprocess_cfg), is_train=False
        )

    @classmethod
    def from_pretrained(cls, folder: str | Path, batch_size: int = DEFAULT_BATCH) -> SocialReward:
        folder = Path(folder)
        config_path = folder / CONFIG_FILE
        if not config_path.is_file():
            raise BackboneError(f"{config_path}: file missing; not a saved Social Reward model")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        backbone = build_backbone(config["backbone"], folder / MODEL_FILE)
        return cls(backbone, config["backbone"], config, batch_size)

    def save_pretrained(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.backbone.state_dict().items()}
        save_file(state, folder / MODEL_FILE)
        (folder / CONFIG_FILE).write_text(json.dumps(self.config, indent=2) + "\n")
        return folder

    def image_tensor(self, image: str | Path | Image.Image | torch.Tensor) -> torch.Tensor:
        """The model's input for one image (a tensor is taken as already preprocessed)."""
        if isinstance(image, torch.Tensor):
            return image
        if isinstance(image, Image.Image):
            return self.preprocess(image.convert("RGB"))
        with Image.open(image) as opened:
            return self.preprocess(opened.convert("RGB"))

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    def to(self, device: str | torch.device) -> SocialReward:
        """Move the model (e.g. to "cuda"); inputs follow it."""
        self.backbone.to(device)
        return self

    @torch.no_grad()
    def embed_prompts(self, prompts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(prompts)).to(self.device)
        return self.backbone.encode_text(tokens, normalize=True).cpu()

    @torch.no_grad()
    def embed_images(
        self, images: Sequence[str | Path | Image.Image | torch.Tensor]
    ) -> torch.Tensor:
        batches = [
            self.backbone.encode_image(
                torch.stack(
                    [self.image_tensor(image) for image in images[i : i + self.batch_size]]
                ).to(self.device),
                normalize=True,
            ).cpu()
            for i in range(0, len(images), self.batch_size)
        ]
        return torch.cat(batches) if batches else torch.empty(0, self.backbone.visual.output_dim)

    def score(
        self, prompt: str, images: Sequence[str | Path | Image.Image | torch.Tensor]
    ) -> list[float]:
        """One score per image: the cosine of the prompt's and the image's embeddings."""
        return self.score_pairs([prompt] * len(images), images)

    def score_pairs(
        self, prompts: Sequence[str], images: Sequence[str | Path | Image.Image | torch.Tensor]
    ) -> list[float]:
        """One score per (prompt, image) row; each distinct prompt is embedded once."""
        distinct = sorted(set(prompts))
        index = {prompt: n for n, prompt in enumerate(distinct)}
        prompt_embeddings = self.embed_prompts(distinct) if distinct else None
        if prompt_embeddings is None:
            return []
        rows = prompt_embeddings[[index[prompt] for prompt in prompts]]
        return (self.embed_images(images) * rows).sum(-1).tolist()
