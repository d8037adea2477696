"""The truth judge: an independent stand-in for the paper's user study, on simulated data.

A small convolutional network, conditioned on the prompt's words, trained to predict the
true appeal of the export's images from the truth file. It
never sees remix counts and shares nothing with the reward: its own tokens-to-vector map
(a bag of open_clip token ids), its own image tower, its own training. It judges generated
images, for which no truth exists. Its accuracy on held-out real images is reported with
it, so that a reader knows how far to trust it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

MAX_PIXEL = 255.0
VOCABULARY = 49408  # open_clip's BPE vocabulary


def prompt_tokens(prompts: Sequence[str]) -> torch.Tensor:
    import open_clip

    return open_clip.tokenize(list(prompts))


@dataclass(frozen=True)
class JudgeSettings:
    image_size: int
    width: int
    epochs: int
    batch_size: int
    learning_rate: float
    seed: int


class TruthJudge(nn.Module):
    """(prompt, image) -> appeal, read from the image features, the prompt's words and their
    product (how well the picture matches what was asked)."""

    def __init__(self, width: int, image_size: int) -> None:
        super().__init__()
        self.image_size = image_size
        self.words = nn.EmbeddingBag(VOCABULARY, 2 * width, mode="mean", padding_idx=0)

        def block(inputs: int, outputs: int, stride: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(inputs, outputs, 3, stride, 1), nn.GroupNorm(8, outputs), nn.SiLU()
            )

        self.image = nn.Sequential(
            block(3, width, 1),
            block(width, width, 2),
            block(width, 2 * width, 2),
            block(2 * width, 2 * width, 2),
        )
        self.appeal = nn.Sequential(
            nn.Linear(6 * width, 2 * width), nn.SiLU(), nn.Linear(2 * width, 1)
        )

    def forward(self, tokens: torch.Tensor, images: torch.Tensor):
        words = self.words(tokens)
        pooled = self.image(images * 2 - 1).mean(dim=(2, 3))
        return self.appeal(torch.cat([pooled, words, pooled * words], dim=-1)).squeeze(-1)

    def resize(self, images: torch.Tensor) -> torch.Tensor:
        return F.interpolate(images, size=self.image_size, mode="area")

    @torch.no_grad()
    def judge(
        self, prompts: Sequence[str], images: torch.Tensor, batch_size: int = 256
    ) -> torch.Tensor:
        """Predicted appeal of float images [B, 3, H, W] in [0, 1] for their prompts."""
        self.eval()
        tokens = prompt_tokens(prompts)
        return torch.cat(
            [
                self(
                    tokens[start : start + batch_size],
                    self.resize(images[start : start + batch_size].float()),
                )
                for start in range(0, len(images), batch_size)
            ]
        )


def train_judge(
    prompts: Sequence[str],
    pixels: torch.Tensor,
    appeal: torch.Tensor,
    settings: JudgeSettings,
    progress: bool = True,
) -> TruthJudge:
    """Fit the judge to standardised appeal; pixels are uint8."""
    torch.manual_seed(settings.seed)
    judge = TruthJudge(settings.width, settings.image_size)
    tokens = prompt_tokens(prompts)
    images = judge.resize(pixels.float() / MAX_PIXEL)
    target = (appeal - appeal.mean()) / appeal.std()
    optimizer = torch.optim.AdamW(judge.parameters(), lr=settings.learning_rate)
    steps = settings.epochs * max(1, len(images) // settings.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, settings.learning_rate, steps)
    order = torch.Generator().manual_seed(settings.seed)
    judge.train()
    with tqdm(total=steps, desc="truth judge", unit="step", disable=not progress) as bar:
        for _ in range(settings.epochs):
            permutation = torch.randperm(len(images), generator=order)
            for start in range(0, len(images) - settings.batch_size + 1, settings.batch_size):
                rows = permutation[start : start + settings.batch_size]
                loss = F.mse_loss(judge(tokens[rows], images[rows]), target[rows])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                bar.update(1)
    return judge.eval()
