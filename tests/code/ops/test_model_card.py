"""The model card: every number from the run's metrics, every section a reviewer needs."""

from social_reward.config.params import Params
from social_reward.ops.model_card import model_card

EVALUATION = {
    "remix_pairs": {
        "pairs": 162,
        "scorers": {
            "clip_score": {"accuracy": 0.5556, "low": 0.4877, "high": 0.6298, "pairs": 162},
            "social_reward": {"accuracy": 0.6173, "low": 0.5432, "high": 0.6915, "pairs": 162},
            "random": {"accuracy": 0.537, "low": 0.463, "high": 0.6173, "pairs": 162},
        },
    },
    "truth": {
        "scorers": {
            "social_reward": {"accuracy": 0.5987, "low": 0.5933, "high": 0.6042, "pairs": 32101}
        }
    },
    "audit": {
        "influencer": {
            "social_reward": {"preference": 0.6667, "low": 0.6115, "high": 0.7176, "pairs": 300},
        },
        "old_generator": {
            "social_reward": {"preference": 0.52, "low": 0.46, "high": 0.58, "pairs": 300},
        },
    },
    "ablation": {
        "debiased": {
            "truth_accuracy": 0.5987,
            "low": 0.59,
            "high": 0.60,
            "trace_preference": {"influencer": 0.6667},
        },
        "naive": {
            "truth_accuracy": 0.5638,
            "low": 0.55,
            "high": 0.57,
            "trace_preference": {"influencer": 0.7867},
        },
    },
}
PAIRS = {"splits": {"train": {"pairs": 807, "prompts": 43, "images": 828}}}
PROVENANCE = {"data_dvc_md5": "16d093c2abcdef.dir", "git_commit": "0123abcd", "git_dirty": False}


def card(evaluation=EVALUATION) -> str:
    return model_card(
        Params(),
        pairs_metrics=PAIRS,
        evaluation=evaluation,
        reward_config={
            "backbone": "social-reward-tiny",
            "unlock": "visual_upper_layers",
            "training_data_sha256": "f" * 64,
        },
        provenance=PROVENANCE,
    )


def test_the_card_ranks_every_scorer_with_its_interval():
    text = card()
    assert text.startswith("---\nlibrary_name: open_clip\n")
    ours = text.index("| **social_reward** | 61.7% [54.3%, 69.2%] | 162 |")
    assert ours < text.index("| clip_score | 55.6% [48.8%, 63.0%] | 162 |")
    assert text.index("| clip_score |") < text.index("| random | 53.7% [46.3%, 61.7%] | 162 |")
    assert "16d093c2abcdef.dir" in text and "0123abcd" in text and "f" * 64 in text
    assert "| train | 807 | 43 | 828 |" in text
    assert "Mode `debiased`" in text and "at least 2 distinct members" in text


def test_the_audit_and_the_limits_say_what_the_reward_is_not():
    text = card()
    assert "| an influencer's signature | social_reward | 66.7% [61.2%, 71.8%] | 300 |" in text
    limits = text.split("## Known limits")[1]
    # Only the confounder whose interval excludes 50% is named as a limit.
    assert "not neutral to an influencer's signature" in limits
    assert "old generator" not in limits
    assert "simulated community export" in limits
    assert "14.8% wide" in limits  # the reward's own interval on 162 test pairs
    assert "| naive | 56.4% [55.0%, 57.0%] | influencer 78.7% |" in text


def test_a_card_without_truth_or_audit_leaves_those_sections_out():
    text = card({"remix_pairs": EVALUATION["remix_pairs"]})
    assert "## Confounder audit" not in text and "simulated" not in text
    assert "## Known limits" in text
