"""open_clip backbones: building one (the small config of this repository or a real
architecture), loading local weights, saving, and unlocking the blocks that train.

Weights are never downloaded at run time here: `pretrained` is a local file or folder
(safetensors preferred); an open_clip pretrained tag is passed through for machines that
can reach the network. Nothing is loaded with unrestricted pickle.
"""

from __future__ import annotations

import json
import logging
from importlib.resources import files
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from social_reward.errors import SocialRewardError
from social_reward.reward.unlock_modes import ALL_BLOCKS, UNLOCK_MODES

MODEL_CONFIGS = "social_reward.reward"  # package holding model_configs/*.json
DEFAULT_BACKBONE = "social-reward-tiny"
WEIGHTS_FILE = "open_clip_model.safetensors"
CONFIG_FILE = "open_clip_config.json"
RECORD_FILE = "pretraining.json"  # how weights were pretrained, where their folder says so
# Tables stored by their non-zero rows: safetensors metadata under SPARSE_ROWS_METADATA maps
# each such tensor to its full number of rows, and `<name>ROW_INDEX_SUFFIX` holds the rows
# kept. The generic backbone's token table is 99.8% zero rows (tokens its corpus never used).
SPARSE_ROWS_METADATA = "sparse_rows"
ROW_INDEX_SUFFIX = ".row_index"
# Weight files open_clip writes or hubs publish, in the order a folder is searched.
WEIGHT_FILE_NAMES = (WEIGHTS_FILE, "open_clip_pytorch_model.bin", "model.safetensors")


class BackboneError(SocialRewardError, ValueError):
    """A backbone that cannot be built or loaded, with the reason."""


def register_model_configs() -> None:
    """Make the model configs of this repository (model_configs/*.json) known to open_clip."""
    import open_clip

    open_clip.add_model_config(Path(str(files(MODEL_CONFIGS).joinpath("model_configs"))))


def resolve_weights(pretrained: str | Path | None) -> str | None:
    """A local weights file (a folder is searched for the usual names), or a tag as given."""
    if pretrained is None or str(pretrained) == "":
        return None
    path = Path(pretrained)
    if path.is_dir():
        for name in WEIGHT_FILE_NAMES:
            if (path / name).is_file():
                return str(path / name)
        raise BackboneError(
            f"{path}: no weights file in the folder (looked for {', '.join(WEIGHT_FILE_NAMES)})"
        )
    if path.suffix in (".safetensors", ".bin", ".pt", ".pth") and not path.is_file():
        raise BackboneError(f"{path}: weights file missing")
    return str(pretrained)


def build_backbone(name: str = DEFAULT_BACKBONE, pretrained: str | Path | None = None):
    """The open_clip model `name`, with `pretrained` weights when given (else random)."""
    import open_clip

    register_model_configs()
    if name not in open_clip.list_models():
        raise BackboneError(
            f"model.backbone {name!r} is not an open_clip architecture; "
            f"e.g. {DEFAULT_BACKBONE}, ViT-B-32, ViT-L-14, ViT-H-14"
        )
    weights = resolve_weights(pretrained)
    try:
        if weights and _sparse_rows(weights):
            # Built bare, then loaded here: open_clip's "initialized randomly" warning would
            # be wrong, so it is silenced for this one call.
            logging.disable(logging.WARNING)
            try:
                model = open_clip.create_model(name)
            finally:
                logging.disable(logging.NOTSET)
            model.load_state_dict(_dense_state(weights))
            return model
        return open_clip.create_model(name, pretrained=weights)
    # open_clip signals weights of another architecture by RuntimeError or AssertionError.
    except (RuntimeError, AssertionError, KeyError) as error:
        raise BackboneError(f"{pretrained}: weights do not fit {name}: {error}") from error


def _sparse_rows(weights: str) -> dict[str, int]:
    """The tensors a safetensors file stores by their non-zero rows, with their full rows."""
    if not weights.endswith(".safetensors") or not Path(weights).is_file():
        return {}
    with safe_open(weights, framework="pt") as handle:
        metadata = handle.metadata() or {}
    return json.loads(metadata.get(SPARSE_ROWS_METADATA, "{}"))


def _dense_state(weights: str) -> dict[str, torch.Tensor]:
    """The state dict of a file with sparse-row tables, every table back to its full rows."""
    state = load_file(weights)
    for key, rows in _sparse_rows(weights).items():
        kept = state.pop(key + ROW_INDEX_SUFFIX)
        values = state[key]
        state[key] = values.new_zeros((rows, *values.shape[1:]))
        state[key][kept] = values
    return state


def tokenizer_for(name: str = DEFAULT_BACKBONE):
    """open_clip's tokenizer for the architecture; its BPE vocabulary ships with open_clip."""
    import open_clip

    register_model_configs()
    return open_clip.get_tokenizer(name)


def save_backbone(
    model: torch.nn.Module,
    name: str,
    folder: Path,
    dtype: torch.dtype | None = None,
    sparse_rows: tuple[str, ...] = (),
) -> Path:
    """Weights as safetensors and the architecture's name, in a folder build_backbone reads.
    `dtype` stores floating weights smaller (float16 halves a shipped file); loading casts
    them back to the model's. The tables named in `sparse_rows` keep only their non-zero
    rows; loading restores the zero ones."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        key: (value.to(dtype) if dtype and value.is_floating_point() else value)
        .detach()
        .contiguous()
        for key, value in model.state_dict().items()
    }
    full_rows = {}
    for key in sparse_rows:
        kept = state[key].flatten(1).any(dim=1).nonzero().squeeze(1)
        full_rows[key] = state[key].shape[0]
        state[key] = state[key][kept].contiguous()
        state[key + ROW_INDEX_SUFFIX] = kept
    metadata = {SPARSE_ROWS_METADATA: json.dumps(full_rows)} if full_rows else None
    save_file(state, folder / WEIGHTS_FILE, metadata=metadata)
    (folder / CONFIG_FILE).write_text(json.dumps({"backbone": name}, indent=2) + "\n")
    return folder


def pretraining_losses(pretrained: str | Path | None) -> list[float]:
    """The loss per epoch a weights folder records (`RECORD_FILE`, as the generic backbone's
    does); none for weights that come without it, such as a real checkpoint."""
    record = Path(pretrained) / RECORD_FILE if pretrained else None
    if record is None or not record.is_file():
        return []
    return list(json.loads(record.read_text(encoding="utf-8")).get("loss_per_epoch", []))


def load_saved_backbone(folder: Path):
    """A backbone saved by save_backbone: its architecture and weights."""
    config = folder / CONFIG_FILE
    if not config.is_file():
        raise BackboneError(f"{config}: file missing; not a folder written by save_backbone")
    name = json.loads(config.read_text())["backbone"]
    return build_backbone(name, folder), name


def is_resnet(visual: torch.nn.Module) -> bool:
    """open_clip's ModifiedResNet tower (RN50-style configs: `vision_cfg.layers` a list)."""
    return hasattr(visual, "layer4") and hasattr(visual, "attnpool")


def vision_blocks(visual: torch.nn.Module) -> list[torch.nn.Module]:
    """The vision tower's blocks, bottom to top: transformer blocks, or residual bottlenecks."""
    if is_resnet(visual):
        return [*visual.layer1, *visual.layer2, *visual.layer3, *visual.layer4]
    if hasattr(visual, "transformer"):
        return list(visual.transformer.resblocks)
    raise BackboneError(f"vision tower {type(visual).__name__}: no known blocks to unlock")


def vision_head(visual: torch.nn.Module) -> list[torch.nn.Module]:
    """What follows the last block: the final norm (ViT) or the attention pooling (ResNet)."""
    return [visual.attnpool] if is_resnet(visual) else [visual.ln_post]


def vision_embeddings(visual: torch.nn.Module) -> list[torch.nn.Module | torch.nn.Parameter]:
    """What precedes the first block: patch and position embeddings, or the conv stem."""
    if is_resnet(visual):
        return [visual.conv1, visual.bn1, visual.conv2, visual.bn2, visual.conv3, visual.bn3]
    parts = [visual.conv1, visual.class_embedding, visual.positional_embedding]
    return parts + ([visual.ln_pre] if hasattr(visual, "ln_pre") else [])


def _last(blocks: list[torch.nn.Module], count: int) -> list[torch.nn.Module]:
    if count == 0:
        return []
    return list(blocks) if count == ALL_BLOCKS else list(blocks)[-count:]


def unlock(model: torch.nn.Module, mode: str) -> list[str]:
    """Freeze the model but for what `mode` unlocks (requires_grad on each parameter, not a
    module attribute); returns the names of the parameters that train."""
    if mode not in UNLOCK_MODES:
        raise BackboneError(f"unlock mode {mode!r}; one of {sorted(UNLOCK_MODES)}")
    plan = UNLOCK_MODES[mode]
    for parameter in model.parameters():
        parameter.requires_grad_(plan.everything)
    if not plan.everything:
        visual = model.visual
        trained: list[torch.nn.Module | torch.nn.Parameter] = []
        if plan.vision_blocks:
            trained += [*_last(vision_blocks(visual), plan.vision_blocks), *vision_head(visual)]
            if plan.vision_blocks == ALL_BLOCKS:
                trained += [visual]
        if plan.text_blocks:
            trained += [*_last(model.transformer.resblocks, plan.text_blocks), model.ln_final]
            trained += [model.text_projection]
        for part in trained:
            parts = [part] if isinstance(part, torch.nn.Parameter) else part.parameters()
            for parameter in parts:
                parameter.requires_grad_(True)
    return [name for name, parameter in model.named_parameters() if parameter.requires_grad]
