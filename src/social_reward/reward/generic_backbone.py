"""The generic backbone: a CLIP pretrained once on the generic corpus (simulate/corpus.py),
off the pipeline's clock, and then loaded through `model.pretrained` exactly like a real
checkpoint, as the paper starts from a CLIP pretrained on web data.

    social-reward generic-backbone --out backbones/social-reward-tiny-generic

writes the weights (float16 safetensors, the token table by its non-zero rows, as
`save_backbone` writes them: about 5 MB), the architecture's name and `pretraining.json`
(the configuration and the loss per epoch). Same options, same
weights on the same machine.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from pydantic import Field

from social_reward.reward.backbone import (
    DEFAULT_BACKBONE,
    RECORD_FILE,
    build_backbone,
    save_backbone,
    tokenizer_for,
)
from social_reward.reward.contrastive_config import ContrastiveConfig
from social_reward.reward.contrastive_trainer import fit_contrastive
from social_reward.simulate.corpus import CorpusConfig, write_corpus
from social_reward.training.checkpoints import discard_checkpoints
from social_reward.training.run_identity import run_fingerprint

TOKEN_TABLE = "token_embedding.weight"  # stored by its non-zero rows (zero_unseen_tokens)


class GenericBackboneConfig(ContrastiveConfig):
    """The shipped generic backbone's recipe: architecture, corpus and contrastive training."""

    backbone: str = DEFAULT_BACKBONE
    corpus: CorpusConfig = CorpusConfig()
    epochs: int = Field(8, gt=0)


@torch.no_grad()
def zero_unseen_tokens(backbone: torch.nn.Module, name: str, captions: list[str]) -> int:
    """Zero the token embeddings no caption used: they never trained (random, meaningless),
    a word the corpus never had then adds nothing, and the shipped file keeps only the rest."""
    seen = torch.unique(tokenizer_for(name)(sorted(set(captions))))
    unseen = torch.ones(backbone.token_embedding.num_embeddings, dtype=torch.bool)
    unseen[seen] = False
    backbone.token_embedding.weight[unseen] = 0.0
    return int(unseen.sum())


def pretrain_generic(
    config: GenericBackboneConfig,
    out_dir: Path,
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Render the corpus (in a temporary folder), pretrain the backbone on it with the CLIP
    loss and save it in `out_dir`; returns the record written beside the weights.

    An interrupted run resumes from its last epoch (`<out_dir>.checkpoints-<fingerprint of
    the config>`, beside it; the corpus is rendered again, identically, from its seed)."""
    started = time.perf_counter()
    fingerprint = run_fingerprint(config.model_dump(mode="json"))
    checkpoints = out_dir.with_name(f"{out_dir.name}.checkpoints-{fingerprint}")
    with tempfile.TemporaryDirectory(prefix="generic-corpus-") as scratch:
        images = write_corpus(config.corpus, Path(scratch), workers, progress)
        L.seed_everything(config.seed, workers=True, verbose=False)
        backbone = build_backbone(config.backbone)
        history = fit_contrastive(backbone, config.backbone, images, config, checkpoints, progress)
    unseen = zero_unseen_tokens(backbone, config.backbone, list(images["prompt"]))
    save_backbone(
        backbone, config.backbone, out_dir, dtype=torch.float16, sparse_rows=(TOKEN_TABLE,)
    )
    record = {
        "backbone": config.backbone,
        "config": config.model_dump(mode="json"),
        "captions": int(images["prompt_key"].nunique()),
        "token_embeddings_zeroed": unseen,
        "loss_per_epoch": [row["train_loss"] for row in history.rows],
    }
    (out_dir / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    discard_checkpoints(checkpoints)
    print(f"pretrained the generic backbone in {time.perf_counter() - started:.0f} s")
    return record
