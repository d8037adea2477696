"""A generic captioned image corpus: what a web crawl is to a real CLIP, for this renderer.

The paper starts from a CLIP pretrained on web images and their alt-text. Here the generic
backbone is pretrained the same way, off the pipeline's clock, on images drawn like any
community's (every subject, style, colour and background, finish and both generator looks at
random: no world's taste, prompts or confounders) with captions that, like alt-text,
describe what the picture shows rather than what somebody asked for: the colour actually
drawn, the subject and style actually drawn, and sometimes the finish ("small off-centre",
"faded low contrast", "noisy") or a word that changes nothing ("4k"). Parts are left out
at random, as alt-text is partial.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import Field

from social_reward.simulate.config import AttributeConfig, Vocabulary, WorldConfig, _Frozen
from social_reward.simulate.render import ImageSpec

CORPUS_STREAM = 11  # random stream of the corpus, apart from every world's streams
CAPTIONS_FILE = "captions.parquet"


class FinishWords(_Frozen):
    """Finish words, by tercile of the hidden attribute: (low, high); the middle says nothing."""

    composition: tuple[str, str] = ("small off-centre", "large centred")
    contrast: tuple[str, str] = ("faded low contrast", "vivid high contrast")
    artifacts: tuple[str, str] = ("clean", "noisy with blotches")


class CorpusConfig(_Frozen):
    """The generic corpus: its own seed, size and how its captions are written."""

    seed: int = 2024
    images: int = Field(40_000, gt=0)
    image_size: int = Field(64, ge=16)
    vocabulary: Vocabulary = Vocabulary()
    attributes: AttributeConfig = AttributeConfig()
    finish_share: float = Field(0.5, ge=0.0, le=1.0)  # captions that describe the finish
    detail_share: float = Field(0.3, ge=0.0, le=1.0)  # ... that add a word changing nothing
    omit_background_share: float = Field(0.2, ge=0.0, le=1.0)
    omit_style_share: float = Field(0.3, ge=0.0, le=1.0)
    old_generator_share: float = Field(0.5, ge=0.0, le=1.0)  # looks never captioned
    signature_share: float = Field(0.1, ge=0.0, le=1.0)
    finish_words: FinishWords = FinishWords()

    def world(self) -> WorldConfig:
        """The rendering settings the corpus is drawn with."""
        return WorldConfig(
            seed=self.seed,
            image_size=self.image_size,
            vocabulary=self.vocabulary,
            attributes=self.attributes,
            source="social-reward generic corpus",
        )


def _nearest_colour(hues: np.ndarray, vocabulary: Vocabulary) -> np.ndarray:
    """The colour name whose hue is nearest on the hue circle."""
    named = np.array(list(vocabulary.colours.values()))
    distance = np.abs((hues[:, None] - named[None, :] + 0.5) % 1.0 - 0.5)
    return np.array(list(vocabulary.colours))[distance.argmin(axis=1)]


def _tercile_word(values: np.ndarray, words: tuple[str, str]) -> np.ndarray:
    low, high = np.quantile(values, [1 / 3, 2 / 3])
    return np.where(values <= low, words[0], np.where(values >= high, words[1], ""))


def corpus(config: CorpusConfig) -> tuple[list[ImageSpec], list[str]]:
    """Every image's render specification and its alt-text caption."""
    rng = np.random.default_rng([config.seed, CORPUS_STREAM])
    vocab, cfg, n = config.vocabulary, config.attributes, config.images
    colours, backgrounds = list(vocab.colours), list(vocab.backgrounds)
    asked_colour = rng.integers(0, len(colours), n)
    subject = rng.integers(0, len(vocab.subjects), n)
    background = rng.integers(0, len(backgrounds), n)
    style = rng.integers(0, len(vocab.styles), n)
    colour_match = 1.0 - rng.beta(*cfg.colour_miss_beta, n)
    shift_sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    finish = {
        "composition": rng.random(n),
        "contrast": rng.random(n),
        "artifacts": rng.beta(*cfg.artifacts_beta, n),
    }
    old_generator = rng.random(n) < config.old_generator_share
    signature = rng.random(n) < config.signature_share
    render_seed = rng.integers(0, 2**62, n)
    asked_hue = np.array(list(vocab.colours.values()))[asked_colour]
    drawn_hue = (asked_hue + shift_sign * (1 - colour_match) * cfg.max_hue_shift) % 1.0
    drawn_colour = _nearest_colour(drawn_hue, vocab)
    words = {
        name: _tercile_word(values, getattr(config.finish_words, name))
        for name, values in finish.items()
    }
    says_finish = rng.random(n) < config.finish_share
    says_detail = rng.random(n) < config.detail_share
    detail = rng.integers(1, len(vocab.details), n)
    says_background = rng.random(n) >= config.omit_background_share
    says_style = rng.random(n) >= config.omit_style_share

    specs, captions = [], []
    for i in range(n):
        drawn = vocab.subjects[subject[i]]
        specs.append(
            ImageSpec(
                colour=colours[asked_colour[i]],
                subject=drawn,
                background=backgrounds[background[i]],
                style=vocab.styles[style[i]],
                drawn_subject=drawn,
                drawn_style=vocab.styles[style[i]],
                colour_match=float(colour_match[i]),
                hue_shift_sign=float(shift_sign[i]),
                composition=float(finish["composition"][i]),
                contrast=float(finish["contrast"][i]),
                artifacts=float(finish["artifacts"][i]),
                old_generator=bool(old_generator[i]),
                influencer=bool(signature[i]),
                render_seed=int(render_seed[i]),
            )
        )
        caption = f"a {drawn_colour[i]} {drawn}"
        if says_background[i]:
            caption += f" on a {backgrounds[background[i]]} background"
        if says_style[i]:
            caption += f", {vocab.styles[style[i]]} style"
        if says_finish[i]:
            caption += "".join(f", {words[name][i]}" for name in finish if words[name][i])
        if says_detail[i]:
            caption += vocab.details[detail[i]]
        captions.append(caption)
    return specs, captions


def write_corpus(
    config: CorpusConfig, out_dir: Path, workers: int | None = None, progress: bool = True
) -> pd.DataFrame:
    """Render the corpus into `out_dir/images/` and write its captions; returns the table the
    contrastive trainer reads (image_id, path, prompt, prompt_key)."""
    from social_reward.simulate import render_all

    specs, captions = corpus(config)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    paths = [str(out_dir / "images" / f"{i:07d}.png") for i in range(len(specs))]
    render_all(config.world(), list(zip(specs, paths, strict=True)), workers, progress)
    table = pd.DataFrame(
        {
            "image_id": [f"corpus{i:07d}" for i in range(len(specs))],
            "path": paths,
            "prompt": captions,
            # Images with the same caption are positives of each other.
            "prompt_key": pd.factorize(pd.Series(captions))[0],
        }
    )
    table.to_parquet(out_dir / CAPTIONS_FILE, index=False)
    return table
