"""Image grids a person looks at: samples per prompt, base beside fine-tuned."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import torch

from social_reward.generator.data import to_pil
from social_reward.generator.sampling import sample_batched

CELL_PIXELS = 96  # each image is shown at least this large (nearest neighbour)
LABEL_WIDTH = 28  # characters per line of a row label


def save_grid(
    rows: Sequence[torch.Tensor],
    row_labels: Sequence[str],
    path: Path,
    title: str,
    column_labels: Sequence[str] | None = None,
) -> Path:
    """A PNG with one row of images per label; images are float [N, 3, H, W] in [0, 1]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = max(len(row) for row in rows)
    figure, axes = plt.subplots(
        len(rows), columns, figsize=(1.1 * columns + 2.4, 1.15 * len(rows) + 0.6), squeeze=False
    )
    for r, (images, label) in enumerate(zip(rows, row_labels, strict=True)):
        for c in range(columns):
            axis = axes[r][c]
            axis.set_xticks([])
            axis.set_yticks([])
            if c < len(images):
                picture = to_pil(images[c : c + 1])[0]
                scale = max(1, CELL_PIXELS // picture.width)
                axis.imshow(picture.resize((picture.width * scale,) * 2, resample=0))
            else:
                axis.axis("off")
            if r == 0 and column_labels:
                axis.set_title(column_labels[c], fontsize=7)
        axes[r][0].set_ylabel(
            textwrap.fill(label, LABEL_WIDTH), rotation=0, ha="right", va="center", fontsize=7
        )
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def sample_grid(
    generator,
    prompts: Sequence[str],
    seeds: int,
    steps: int,
    guidance: float,
    path: Path,
    title: str,
) -> Path:
    """Samples of `generator` for each prompt (rows) and seeds 0..seeds-1 (columns)."""
    texts = [prompt for prompt in prompts for _ in range(seeds)]
    images = sample_batched(
        generator, texts, list(range(seeds)) * len(prompts), steps, guidance, batch_size=64
    )
    rows = [images[n * seeds : (n + 1) * seeds] for n in range(len(prompts))]
    return save_grid(rows, prompts, path, title, [f"seed {s}" for s in range(seeds)])
