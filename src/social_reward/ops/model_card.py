"""The reward's model card (`models/reward/README.md`): what it was trained on, how its pairs
were built, how it compares with every baseline, its confounder audit and its limits.

Every number comes from the run's files (metrics, the model's config, params.yaml), so the
card is rebuilt by the `report` stage whenever one of them changes.
"""

from __future__ import annotations

from pathlib import Path

from social_reward.config.params import Params

AUDIT_TRACES = {
    "influencer": "an influencer's signature",
    "old_generator": "the old generator's look",
}
# Said of every reward this pipeline trains, whatever the run's numbers.
STANDING_LIMITS = (
    "Remixes are implicit feedback: a remix says a member wanted to build on an image, "
    "not that it is good. Pairs control for exposure, reach, publication time and generator "
    "(see above), not for every confounder.",
    "The accuracy above is measured on the community this export came from; another "
    "community, or this one after its taste moves, needs a retrain (the drift report says "
    "when the export moved).",
    "A reward that is optimised against (fine-tuning, best-of-n) can be gamed: check "
    "fine-tuned generators with other judges too (the generator report does).",
)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _interval(values: dict, key: str) -> str:
    """`values[key]` with its interval, as percentages: "61.7% [54.3%, 69.2%]"."""
    low, high = _percent(values.get("low")), _percent(values.get("high"))
    return f"{_percent(values.get(key))} [{low}, {high}]"


def _table(header: tuple[str, ...], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _scorer_rows(section: dict) -> list[tuple]:
    """Scorer, accuracy [interval], pairs; and accuracy on clear pairs, where measured."""
    scorers = section.get("scorers", {})
    ranked = sorted(scorers.items(), key=lambda item: -item[1]["accuracy"])
    return [
        (
            f"**{name}**" if name == "social_reward" else name,
            _interval(values, "accuracy"),
            values["pairs"],
            *(
                [
                    _interval(
                        {**values, "low": values["clear_low"], "high": values["clear_high"]},
                        "clear_accuracy",
                    )
                ]
                if "clear_accuracy" in values
                else []
            ),
        )
        for name, values in ranked
    ]


def _limits(params: Params, evaluation: dict, reward_config: dict) -> list[str]:
    limits = []
    if params.model.pretrained is None:
        limits.append(
            f"Backbone `{params.model.backbone}` was pretrained by this pipeline on the export's "
            "own images and prompts, not on web-scale data: a small stand-in for the paper's "
            "ViT-L-14 / ViT-H-14 (set `model.backbone` and `model.pretrained` to use one)."
        )
    remix = evaluation.get("remix_pairs", {})
    ours = remix.get("scorers", {}).get("social_reward")
    if ours:
        limits.append(
            f"Test accuracy rests on {remix.get('pairs')} remix pairs: its 95% interval is "
            f"{_percent(ours['high'] - ours['low'])} wide, so differences smaller than that "
            "between scorers are not established."
        )
    for trace, scorers in evaluation.get("audit", {}).items():
        preference = scorers.get("social_reward", {})
        if preference and not preference["low"] <= 0.5 <= preference["high"]:
            limits.append(
                f"It is not neutral to {AUDIT_TRACES.get(trace, trace)}: it prefers the traced "
                f"image in {_percent(preference['preference'])} of otherwise identical pairs "
                f"(interval [{_percent(preference['low'])}, {_percent(preference['high'])}])."
            )
    if evaluation.get("truth"):  # only a simulated export comes with the truth
        limits.append(
            "Trained and evaluated on a simulated community export (it has known ground "
            "truth): its numbers say the pipeline works, not how it does on a real platform."
        )
    return limits + list(STANDING_LIMITS)


def model_card(
    params: Params,
    *,
    pairs_metrics: dict,
    evaluation: dict,
    reward_config: dict,
    provenance: dict,
) -> str:
    """The card's Markdown, with Hugging Face style metadata in its front matter."""
    pairs = params.pairs
    train = params.train
    splits = pairs_metrics.get("splits", {})
    ours = evaluation.get("remix_pairs", {}).get("scorers", {}).get("social_reward", {})
    front = "\n".join(
        (
            "---",
            "library_name: open_clip",
            "pipeline_tag: zero-shot-image-classification",
            "tags: [reward-model, social-reward, text-to-image, preference]",
            f"base_model: {params.model.pretrained or params.model.backbone}",
            "metrics: [pairwise_accuracy]",
            "---",
        )
    )
    split_rows = [
        (split, values["pairs"], values["prompts"], values["images"])
        for split, values in splits.items()
    ]
    audit_rows = [
        (
            AUDIT_TRACES.get(trace, trace),
            name,
            _interval(values, "preference"),
            values["pairs"],
        )
        for trace, scorers in evaluation.get("audit", {}).items()
        for name, values in scorers.items()
    ]
    ablation_rows = [
        (
            mode,
            _interval({**values, "accuracy": values["truth_accuracy"]}, "accuracy"),
            ", ".join(
                f"{trace} {_percent(share)}"
                for trace, share in values.get("trace_preference", {}).items()
            ),
        )
        for mode, values in evaluation.get("ablation", {}).items()
    ]
    sections = [
        front,
        "# Social Reward: model card",
        "A CLIP reward model that scores how much this community likes an image for a prompt, "
        "learned from its remixes (Isajanyan et al., ICLR 2024). Load it with "
        '`SocialReward.from_pretrained("models/reward")` and call `score(prompt, images)`.',
        f"Pairwise accuracy on held-out remix pairs: **{_interval(ours, 'accuracy')}**.",
        "## Model",
        _table(
            ("field", "value"),
            [
                ("backbone", f"`{reward_config.get('backbone', params.model.backbone)}`"),
                ("loss", f"{train.loss} (margin {train.margin}); prompt embedding as anchor"),
                ("unlocked layers", f"`{reward_config.get('unlock', train.unlock)}`"),
                ("epochs", train.epochs),
                ("training pairs SHA-256", f"`{reward_config.get('training_data_sha256', 'n/a')}`"),
            ],
        ),
        "## Training data",
        f"The export versioned by `data.dvc` (md5 `{provenance.get('data_dvc_md5')}`), "
        f"at git commit `{provenance.get('git_commit')}`. Pairs are split by prompt group, "
        "so no test prompt was seen in training.",
        _table(("split", "pairs", "prompts", "images"), split_rows),
        "## How pairs were built",
        f"Mode `{pairs.mode}`. A positive is an image remixed by at least "
        f"{pairs.min_collective_remixes} distinct members other than its creator; a negative "
        f"had no such remix after {pairs.min_exposure_days:g} days and "
        f"{pairs.min_impressions} impressions. Both images share a prompt and were "
        f"published within {pairs.max_publication_gap_days:g} days of each other. Their "
        "creators' reach, log2(1 + followers), is within "
        f"{pairs.reach_caliper:g} of each other, or up to {pairs.max_reach_gap:g} apart in "
        "pairs kept as many each way (the creator with more reach won as often as lost)"
        + (
            "; both images come from the same generator"
            if pairs.match_generator
            else "; pairs across generators are kept as many won by each generator"
        )
        + (
            "; both creators share the influencer flag"
            if pairs.match_influencer
            else "; pairs of an influencer's image and another's are kept as many won by each"
        )
        + f"; at most {pairs.max_pairs_per_image} pairs per image and "
        f"{pairs.max_pairs_per_prompt} per prompt.",
        "## Accuracy against the baselines",
        "Held-out remix pairs (test split), 95% bootstrap intervals over prompt clusters:",
        _table(
            ("scorer", "pairwise accuracy", "pairs"),
            _scorer_rows(evaluation.get("remix_pairs", {})),
        ),
    ]
    if evaluation.get("truth"):
        sections += [
            "Against the simulated community's true appeal (all pairs of test images of a "
            "prompt, and the clear ones):",
            _table(
                ("scorer", "pairwise accuracy", "pairs", "clear pairs"),
                _scorer_rows(evaluation["truth"]),
            ),
        ]
    diagnostics = evaluation.get("diagnostics")
    if diagnostics:
        truth = evaluation["truth"]
        sections += [
            "## What limits it",
            "Against the true appeal, on all same-prompt test pairs and on the clear ones (appeal "
            f"gap of at least {params.evaluate.clear_gap_sd:g} SD: {truth['clear_pairs']} of "
            f"{truth['pairs']} "
            "pairs). The feature ceiling is a linear probe fitted on the true appeal over a "
            "model's frozen features (image embedding, and with its product with the prompt "
            "embedding): no re-weighting of those features does better.",
            _table(
                ("model", "scored by", "all pairs", "clear pairs"),
                [
                    (
                        model,
                        features.replace("_", "-"),
                        _interval(values, "accuracy"),
                        _percent(values["clear_accuracy"]),
                    )
                    for model, by_features in diagnostics["feature_ceiling"].items()
                    for features, values in by_features.items()
                ],
            ),
            "Learning curve: the same training on a seeded share of the training pairs.",
            _table(
                ("share", "training pairs", "all pairs", "clear pairs"),
                [
                    (
                        share,
                        values["train_pairs"],
                        _interval(values, "accuracy"),
                        _percent(values["clear_accuracy"]),
                    )
                    for share, values in diagnostics["learning_curve"].items()
                ],
            ),
        ]
    if audit_rows:
        sections += [
            "## Confounder audit",
            "Each image drawn twice, with and without a confounder's visible trace, everything "
            "else the same: the share of pairs in which a scorer prefers the traced image. "
            "50% is neutral; a reward that learned the confounder sits above it.",
            _table(("trace", "scorer", "prefers the trace", "pairs"), audit_rows),
        ]
    if ablation_rows:
        sections += [
            "## Debiased against naive pairs",
            "The same training on raw remix counts (mode `naive`), measured against the truth:",
            _table(("pairs", "truth accuracy", "prefers the trace"), ablation_rows),
        ]
    sections += [
        "## Known limits",
        "\n".join(f"- {limit}" for limit in _limits(params, evaluation, reward_config)),
    ]
    return "\n\n".join(sections) + "\n"


def write_model_card(path: Path, markdown: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown, encoding="utf-8")
    return path
