"""What limits the reward, measured against a simulated export's true appeal (stage `evaluate`).

- Clear pairs: same-prompt test pairs whose true appeal differs by at least
  `clear_gap_sd` standard deviations. Accuracy there says whether a scorer gets the
  obvious cases right; accuracy on all pairs mixes them with near-ties nobody can call.
- The feature ceiling: a linear probe fitted *on the true appeal* over a model's frozen
  features, on the train split's images (ridge, its strength chosen by cross-validation
  over prompt groups), then judged on the test split's pairs like any scorer. Nothing that
  re-weights those features can do better, so a probe barely above the model itself says
  the features, not the preference training, are the limit. Two feature sets: the image
  embedding alone, and the image embedding with its elementwise product with the prompt
  embedding (what the prompt asks for, as the cosine sees it).
- The learning curve: rewards trained on a share of the training pairs (the `train`
  stage's variants), judged on the same pairs: a curve still rising at 100% says signal is
  the limit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from social_reward.config.evaluate import ProbeConfig

IMAGE_FEATURES = "image"
PROMPT_IMAGE_FEATURES = "prompt_image"


def clear_pair_mask(oriented: pd.DataFrame, appeal: pd.Series, threshold: float) -> np.ndarray:
    """True for the pairs (better_id, worse_id) whose appeal gap is at least `threshold`."""
    gap = appeal.loc[oriented["better_id"]].to_numpy() - appeal.loc[oriented["worse_id"]].to_numpy()
    return gap >= threshold


def frozen_features(reward, prompts: Sequence[str], images: Sequence) -> dict[str, np.ndarray]:
    """The two feature sets of a SocialReward (or its backbone) for (prompt, image) rows."""
    image_embeddings = reward.embed_images(list(images))
    distinct = sorted(set(prompts))
    index = {prompt: n for n, prompt in enumerate(distinct)}
    prompt_embeddings = reward.embed_prompts(distinct)[[index[prompt] for prompt in prompts]]
    joint = torch.cat([image_embeddings, image_embeddings * prompt_embeddings], dim=1)
    return {
        IMAGE_FEATURES: image_embeddings.numpy().astype(np.float64),
        PROMPT_IMAGE_FEATURES: joint.numpy().astype(np.float64),
    }


def _centred_within(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Each row minus its group's mean: only differences within a prompt are kept."""
    frame = pd.DataFrame(values)
    return (frame - frame.groupby(groups).transform("mean")).to_numpy()


def fit_probe(features: np.ndarray, appeal: np.ndarray, prompts: np.ndarray, config: ProbeConfig):
    """Ridge regression of appeal on features, within prompts (both centred per prompt), its
    strength chosen by cross-validation over prompt groups. Returns the fitted model."""
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import GroupKFold

    folds = min(config.folds, len(np.unique(prompts)))
    probe = RidgeCV(
        alphas=list(config.alphas), cv=list(GroupKFold(folds).split(features, appeal, prompts))
    )
    return probe.fit(
        _centred_within(features, prompts), _centred_within(appeal[:, None], prompts)[:, 0]
    )


def probe_scores(
    reward,
    train: pd.DataFrame,
    test: pd.DataFrame,
    config: ProbeConfig,
) -> dict[str, np.ndarray]:
    """Per feature set: the probe's scores of the test rows, fitted on the train rows.

    `train` and `test` have the columns prompt, path, prompt_key and (train only) appeal."""
    train_features = frozen_features(reward, list(train["prompt"]), list(train["path"]))
    test_features = frozen_features(reward, list(test["prompt"]), list(test["path"]))
    scores = {}
    for name, features in train_features.items():
        probe = fit_probe(
            features, train["appeal"].to_numpy(), train["prompt_key"].to_numpy(), config
        )
        scores[name] = probe.predict(test_features[name])
    return scores
