"""Prompt conditioning of the small generator: the reward backbone's frozen text tower.

A tiny text encoder trained from scratch with the denoiser learns too slowly on a CPU (the
samples get the background and nothing else). The backbone's text tower is already trained
on these prompts, and open_clip ships its tokenizer, so nothing is downloaded. The denoiser
attends to two views of each prompt token: its word embedding, which keeps every word
distinct (subject, colour, style), and its contextual feature after the transformer; the
pooled, projected prompt embedding conditions every block through the class embedding.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class PromptEncoder(torch.nn.Module):
    """Prompts -> (token features [B, 2T, width], pooled embedding [B, embed_dim]); frozen."""

    def __init__(self, backbone: torch.nn.Module, tokenizer, tokens: int) -> None:
        super().__init__()
        self.token_embedding = backbone.token_embedding
        self.positional_embedding = backbone.positional_embedding
        self.transformer = backbone.transformer
        self.ln_final = backbone.ln_final
        self.text_projection = backbone.text_projection
        self.register_buffer("attn_mask", backbone.attn_mask, persistent=False)
        self.tokenizer = tokenizer
        self.tokens = tokens
        self.requires_grad_(False)
        self.eval()

    @property
    def width(self) -> int:
        return self.token_embedding.embedding_dim

    @property
    def embed_dim(self) -> int:
        projection = self.text_projection
        return (
            projection.out_features if hasattr(projection, "out_features") else projection.shape[1]
        )

    @torch.no_grad()
    def forward(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.token_embedding.weight.device
        tokens = self.tokenizer(list(prompts)).to(device)
        words = self.token_embedding(tokens)
        context = self.transformer(words + self.positional_embedding, attn_mask=self.attn_mask)
        context = self.ln_final(context)
        # open_clip pools at the end-of-text token, the highest id in its vocabulary.
        pooled = context[torch.arange(len(tokens), device=device), tokens.argmax(dim=-1)]
        projection = self.text_projection
        pooled = (
            projection(pooled) if isinstance(projection, torch.nn.Linear) else pooled @ projection
        )
        features = torch.cat([words[:, : self.tokens], context[:, : self.tokens]], dim=1)
        return features, pooled
