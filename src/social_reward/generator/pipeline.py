"""The generators: the small default of this repository and a real Stable Diffusion folder.

Both are latent diffusion models made of Stable Diffusion's own parts: an `AutoencoderKL`
(images <-> latents), a `UNet2DConditionModel` that denoises the latents under prompt
conditioning, and a diffusers scheduler. They share one class, `LatentGenerator`, and so one
code path through pretraining, fine-tuning, sampling and evaluation; they differ only in the
text encoder and in where the weights come from.

- `TinyGenerator`: the small default, trained from random weights by `generator_pretrain`
  (the autoencoder first, then the denoiser in its latent space). Prompts are encoded by the
  reward backbone's frozen text tower (`text.PromptEncoder`). Saved in Stable Diffusion's
  folder layout: `vae/`, `unet/` and `scheduler/` as diffusers writes them (and loads them,
  with the same calls as a real one), `text_encoder/` as the open_clip backbone.
- `StableDiffusionGenerator`: a diffusers `StableDiffusionPipeline` from a local folder
  (`save_pretrained` layout) or a single checkpoint file, with its CLIP text encoder.

Images are float tensors [B, 3, H, W] in [0, 1] on both sides of the interface.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

import torch
import torch.nn.functional as F

from social_reward.errors import SocialRewardError

GENERATOR_FILE = "generator.json"
UNET_DIR = "unet"
VAE_DIR = "vae"
SCHEDULER_DIR = "scheduler"
TEXT_ENCODER_DIR = "text_encoder"
MODEL_CONFIGS = "social_reward.generator"  # package holding model_configs/*.json
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")


class GeneratorError(SocialRewardError, ValueError):
    """A generator that cannot be built or loaded, with the reason."""


def device_for(accelerator: str) -> str:
    """The torch device of a Lightning accelerator name, for work outside the Trainer."""
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return "cuda"
    return "cpu"


def model_config(name: str, field: str = "unet") -> dict:
    """A diffusers model config: a JSON file, or a name in this repository's
    generator/model_configs; `field` names the setting it came from, for the error."""
    folder = Path(str(files(MODEL_CONFIGS).joinpath("model_configs")))
    path = Path(name) if name.endswith(".json") else folder / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.json"))
        raise GeneratorError(
            f"generator_pretrain.{field} {name!r}: no such config file; known names: {known}"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def unet_config(name: str) -> dict:
    return model_config(name, "unet")


def autoencoder_config(name: str) -> dict:
    return model_config(name, "autoencoder.model")


def training_scheduler(prediction_type: str, timesteps: int, beta_schedule: str):
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=timesteps,
        beta_schedule=beta_schedule,
        prediction_type=prediction_type,
        clip_sample=False,
    )


class LatentGenerator:
    """What every generator is: an autoencoder, a conditional denoiser of its latents and a
    scheduler. Subclasses add the prompt conditioning and the loading."""

    kind = ""

    def __init__(self, vae, unet, scheduler) -> None:
        self.vae = vae
        self.unet = unet
        self.scheduler = scheduler
        self.vae.requires_grad_(False)  # tuning moves the denoiser only
        self.vae.eval()

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def image_size(self) -> int:
        return self.unet.config.sample_size * self.vae_scale_factor

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        size = self.unet.config.sample_size
        return (self.unet.config.in_channels, size, size)

    def latent_distribution(self, images: torch.Tensor):
        """The autoencoder's posterior of images in [0, 1], at the generator's size."""
        images = F.interpolate(images, size=self.image_size, mode="bilinear", antialias=True)
        return self.vae.encode(images.to(self.vae.dtype) * 2 - 1).latent_dist

    def to_latents(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] -> scaled latents, as Stable Diffusion's training scripts make
        them (a sample of the posterior times the scaling factor)."""
        return self.latent_distribution(images).sample() * self.vae.config.scaling_factor

    def from_latents(self, latents: torch.Tensor) -> torch.Tensor:
        latents = latents.to(self.vae.dtype) / self.vae.config.scaling_factor
        return ((self.vae.decode(latents).sample + 1) / 2).clamp(0, 1).float()

    def condition(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def to(self, device: str | torch.device) -> LatentGenerator:
        self.vae.to(device)
        self.unet.to(device)
        return self


class TinyGenerator(LatentGenerator):
    """The small default: Stable Diffusion's parts at a size a CPU trains in minutes."""

    kind = "tiny"

    def __init__(self, vae, unet, scheduler, prompt_encoder, backbone_name: str) -> None:
        super().__init__(vae, unet, scheduler)
        self.prompt_encoder = prompt_encoder
        self.backbone_name = backbone_name

    @classmethod
    def build(
        cls,
        autoencoder_name: str,
        unet_name: str,
        backbone_dir: Path,
        prediction_type: str,
        timesteps: int,
        beta_schedule: str,
        text_tokens: int,
    ) -> TinyGenerator:
        """Random weights from the named configs; the prompt encoder is the backbone's."""
        from diffusers import AutoencoderKL, UNet2DConditionModel

        from social_reward.generator.text import PromptEncoder
        from social_reward.reward.backbone import load_saved_backbone, tokenizer_for

        backbone, name = load_saved_backbone(backbone_dir)
        encoder = PromptEncoder(backbone, tokenizer_for(name), text_tokens)
        config = unet_config(unet_name)
        vae_config = autoencoder_config(autoencoder_name)
        expected = {
            "cross_attention_dim": encoder.width,
            "in_channels": vae_config["latent_channels"],
            "out_channels": vae_config["latent_channels"],
        }
        if config.get("class_embed_type") == "projection":
            expected["projection_class_embeddings_input_dim"] = encoder.embed_dim
        for key, value in expected.items():
            if config.get(key) != value:
                raise GeneratorError(
                    f"generator_pretrain.unet {unet_name!r}: {key} is {config.get(key)}, "
                    f"but {value} is what the text tower of {backbone_dir} and the "
                    f"autoencoder {autoencoder_name!r} give"
                )
        vae = AutoencoderKL.from_config(vae_config)
        unet = UNet2DConditionModel.from_config(config)
        scheduler = training_scheduler(prediction_type, timesteps, beta_schedule)
        return cls(vae, unet, scheduler, encoder, name)

    def condition(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        features, pooled = self.prompt_encoder(prompts)
        return {"encoder_hidden_states": features, "class_labels": pooled}

    def to(self, device: str | torch.device) -> TinyGenerator:
        super().to(device)
        self.prompt_encoder.to(device)
        return self

    def save_pretrained(self, folder: Path, backbone: torch.nn.Module | None = None) -> Path:
        from social_reward.reward.backbone import save_backbone

        folder.mkdir(parents=True, exist_ok=True)
        self.vae.save_pretrained(folder / VAE_DIR)
        self.unet.save_pretrained(folder / UNET_DIR)
        self.scheduler.save_pretrained(folder / SCHEDULER_DIR)
        if backbone is not None:
            save_backbone(backbone, self.backbone_name, folder / TEXT_ENCODER_DIR)
        config = {"kind": self.kind, "text_tokens": self.prompt_encoder.tokens}
        (folder / GENERATOR_FILE).write_text(json.dumps(config, indent=2) + "\n")
        return folder

    @classmethod
    def from_pretrained(cls, folder: Path) -> TinyGenerator:
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel

        from social_reward.generator.text import PromptEncoder
        from social_reward.reward.backbone import load_saved_backbone, tokenizer_for

        config = json.loads((folder / GENERATOR_FILE).read_text(encoding="utf-8"))
        # The same calls as StableDiffusionPipeline.from_pretrained makes for these parts.
        vae = AutoencoderKL.from_pretrained(folder, subfolder=VAE_DIR)
        unet = UNet2DConditionModel.from_pretrained(folder, subfolder=UNET_DIR)
        scheduler = DDPMScheduler.from_pretrained(folder, subfolder=SCHEDULER_DIR)
        backbone, name = load_saved_backbone(folder / TEXT_ENCODER_DIR)
        encoder = PromptEncoder(backbone, tokenizer_for(name), config["text_tokens"])
        return cls(vae, unet, scheduler, encoder, name)


class StableDiffusionGenerator(LatentGenerator):
    """A diffusers StableDiffusionPipeline (2.1 base as in the paper, or 1.5)."""

    kind = "stable_diffusion"

    def __init__(self, pipeline) -> None:
        super().__init__(pipeline.vae, pipeline.unet, pipeline.scheduler)
        self.pipeline = pipeline
        pipeline.text_encoder.requires_grad_(False)

    @classmethod
    def from_pretrained(cls, source: Path, dtype: torch.dtype = torch.float32):
        from diffusers import StableDiffusionPipeline

        if source.is_file() and source.suffix in SINGLE_FILE_SUFFIXES:
            pipeline = StableDiffusionPipeline.from_single_file(
                str(source), torch_dtype=dtype, local_files_only=True
            )
        elif (source / "model_index.json").is_file():
            pipeline = StableDiffusionPipeline.from_pretrained(
                source, torch_dtype=dtype, local_files_only=True, safety_checker=None
            )
        else:
            raise GeneratorError(
                f"{source}: not a Stable Diffusion folder (no model_index.json) or "
                f"checkpoint file ({', '.join(SINGLE_FILE_SUFFIXES)})"
            )
        pipeline.set_progress_bar_config(disable=True)
        return cls(pipeline)

    def condition(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        embeddings, _ = self.pipeline.encode_prompt(
            list(prompts), self.unet.device, 1, do_classifier_free_guidance=False
        )
        return {"encoder_hidden_states": embeddings}

    def to(self, device: str | torch.device) -> StableDiffusionGenerator:
        self.pipeline.to(device)
        return self

    def save_reference(self, folder: Path, source: Path) -> Path:
        """Record where the weights live: gigabytes are not copied into the pipeline."""
        folder.mkdir(parents=True, exist_ok=True)
        config = {"kind": self.kind, "source": str(source)}
        (folder / GENERATOR_FILE).write_text(json.dumps(config, indent=2) + "\n")
        return folder


Generator = TinyGenerator | StableDiffusionGenerator


def load_generator(folder: Path) -> Generator:
    """A generator saved by `generator_pretrain` (either kind)."""
    path = folder / GENERATOR_FILE
    if not path.is_file():
        raise GeneratorError(f"{path}: file missing; run the `generator_pretrain` stage first")
    config = json.loads(path.read_text(encoding="utf-8"))
    kind = config.get("kind")
    if kind == TinyGenerator.kind:
        return TinyGenerator.from_pretrained(folder)
    if kind == StableDiffusionGenerator.kind:
        return StableDiffusionGenerator.from_pretrained(Path(config["source"]))
    raise GeneratorError(f"{path}: kind {kind!r} unknown; expected tiny or stable_diffusion")
