"""The generic corpus: captions describe what is drawn, like alt-text, and finish sometimes."""

from __future__ import annotations

import numpy as np

from social_reward.simulate.corpus import CorpusConfig, corpus, write_corpus
from social_reward.simulate.render import render_image


def test_captions_name_the_drawn_subject_and_the_colour_nearest_the_drawn_hue():
    config = CorpusConfig(images=300)
    specs, captions = corpus(config)
    hues = config.vocabulary.colours
    for spec, caption in zip(specs, captions, strict=True):
        hue = (
            hues[spec.colour]
            + spec.hue_shift_sign * (1 - spec.colour_match) * config.attributes.max_hue_shift
        ) % 1.0
        nearest = min(hues, key=lambda name: abs((hues[name] - hue + 0.5) % 1.0 - 0.5))
        assert caption.startswith(f"a {nearest} {spec.drawn_subject}"), caption
        assert spec.drawn_subject == spec.subject and spec.drawn_style == spec.style
    # The colour asked for is not always the one drawn: captions follow the picture.
    assert any(
        not caption.startswith(f"a {spec.colour} ")
        for spec, caption in zip(specs, captions, strict=True)
    )


def test_finish_words_follow_the_attribute_terciles_and_some_captions_leave_them_out():
    config = CorpusConfig(images=600)
    specs, captions = corpus(config)
    words = config.finish_words
    contrast = np.array([spec.contrast for spec in specs])
    low, high = np.quantile(contrast, [1 / 3, 2 / 3])
    for spec, caption in zip(specs, captions, strict=True):
        if words.contrast[1] in caption:
            assert spec.contrast >= high
        if words.contrast[0] in caption:
            assert spec.contrast <= low
    described = np.mean(
        [any(w in c for w in (*words.composition, *words.contrast)) for c in captions]
    )
    # Half the captions describe the finish; most of those have such a word (89%).
    assert 0.35 < described < 0.55


def test_the_corpus_is_deterministic_and_follows_its_seed():
    assert corpus(CorpusConfig(images=50)) == corpus(CorpusConfig(images=50))
    assert corpus(CorpusConfig(images=50))[1] != corpus(CorpusConfig(images=50, seed=1))[1]


def test_written_images_are_the_specs_rendered(tmp_path):
    config = CorpusConfig(images=6, image_size=32)
    table = write_corpus(config, tmp_path, workers=1, progress=False)
    specs, captions = corpus(config)
    assert list(table["prompt"]) == captions
    from PIL import Image

    with Image.open(table["path"][0]) as written:
        expected = render_image(specs[0], config.world())
        assert np.array_equal(np.asarray(written.convert("RGB")), np.asarray(expected))
    assert (tmp_path / "captions.parquet").is_file()
