"""The production model and the champion/challenger record.

`models/production/champion/` (params `retrain.production_dir`) holds the model the platform
serves and what it was trained on:

    reward/                   the Social Reward model (SocialReward.from_pretrained)
    drift_reference.parquet   the feature table of its export: the `drift` stage's reference
    train_prompts.parquet     the prompts of its train and val splits
    champion.json             when and why it was promoted, from which export and commit

After a pipeline run on a fresh export, `challenge` scores the new model (challenger) and
the champion on the same fresh test pairs, leaving out the prompts the champion trained on
(the splits are redrawn per export), and promotes the challenger only when every gate passed
and its pairwise accuracy beats the champion's by `retrain.min_improvement`. Each decision is
one line of `retrain.registry` (JSON Lines), promoted or not and why.

Promotion survives a crash at any point. `champion` is a relative symlink to one whole
model in `versions/<version>/`, and a promotion:

1. writes its intent (`.promotion.json`: the new version and its registry line),
2. assembles the new model in `.incoming/` and renames it to `versions/<version>/`,
3. switches `champion` to it with one rename of a new symlink over the old one,
4. appends the registry line (naming `champion_version`), then deletes the old version and
   the intent.

Any later promotion, challenge or read of the champion first finishes a promotion whose
version was assembled whole, or rolls back one that was not (`recover_promotion`), under a
lock beside the folder. A registry that records a promotion never accepts "no champion".
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from filelock import FileLock

from social_reward.artifacts import (
    IMAGE_SPLITS_FILE,
    METRIC_DIGITS,
    TEST_SPLIT,
    TRAINED_SPLITS,
    read_image_splits,
    split_file,
    write_text_atomic,
)
from social_reward.config.params import Params
from social_reward.data.export import MANIFEST_FILE, Manifest, format_utc, read_manifest
from social_reward.errors import SocialRewardError
from social_reward.ops.provenance import provenance

CHAMPION_DIR = "champion"  # a symlink to versions/<version>, switched with one rename
VERSIONS_DIR = "versions"  # whole champions; only the one in place outlives a promotion
INCOMING_DIR = ".incoming"  # the next champion, assembled before it becomes a version
INTENT_FILE = ".promotion.json"  # a promotion under way: its version and registry line
PREVIOUS_DIR = ".previous"  # the old two-rename swap's champion, left by a crash
REWARD_DIR = "reward"
MODEL_CARD_FILE = "README.md"  # where a model hub looks for a model's card
REFERENCE_FILE = "drift_reference.parquet"
TRAIN_PROMPTS_FILE = "train_prompts.parquet"
CHAMPION_FILE = "champion.json"
VERSION_KEY = "champion_version"  # in champion.json and the registry line of its promotion
# The steps of a promotion, in order; `promote(after_step=...)` is called after each (a test
# hook: the fault-injection tests kill the process there). "adopted" only happens once, when
# an old-layout champion folder is moved into versions/.
PROMOTION_STEPS = ("intent", "staged", "adopted", "switched", "recorded", "cleaned")

StepHook = Callable[[str], None]
log = logging.getLogger(__name__)


class RegistryError(SocialRewardError, RuntimeError):
    """The champion or the challenger's files are not what promotion needs."""


def champion_dir(params: Params) -> Path:
    return params.retrain.production_dir / CHAMPION_DIR


def read_champion(params: Params) -> dict | None:
    """The champion's record, or None before the first promotion.

    A half-done promotion is finished or rolled back first. When the registry records a
    promotion but no champion is in place, RegistryError: it was lost, not never made."""
    recover_promotion(params)
    path = champion_dir(params) / CHAMPION_FILE
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    promotions = [entry for entry in read_registry(params) if entry.get("promoted")]
    if promotions:
        last = promotions[-1]
        raise RegistryError(
            f"{path}: missing, but {params.retrain.registry} records a promotion (last at "
            f"{last.get('time')}, {VERSION_KEY} {last.get(VERSION_KEY)!r}); rule: a promoted "
            "champion stays in place until another one replaces it. Restore "
            f"{champion_dir(params)} (e.g. `dvc checkout` or a backup), or move "
            f"{params.retrain.registry} aside to start again without a champion."
        )
    return None


def read_registry(params: Params) -> list[dict]:
    path = params.retrain.registry
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _decision(params: Params, *, outcome: str, promoted: bool, reason: str, **details) -> dict:
    return {
        "time": format_utc(datetime.now(UTC)),
        "outcome": outcome,
        "promoted": promoted,
        "reason": reason,
        **provenance(params),
        **details,
    }


def _append_to_registry(params: Params, entry: dict) -> dict:
    # Rewritten whole to a temporary file and renamed: a crash leaves the old registry or the
    # new one, never a torn last line (one run at a time holds the retrain lock).
    path = params.retrain.registry
    before = path.read_text(encoding="utf-8") if path.is_file() else ""
    write_text_atomic(path, before + json.dumps(entry, sort_keys=True) + "\n")
    return entry


def record_decision(
    params: Params, *, outcome: str, promoted: bool, reason: str, **details
) -> dict:
    """Append one decision to the registry and return it."""
    return _append_to_registry(
        params, _decision(params, outcome=outcome, promoted=promoted, reason=reason, **details)
    )


def _paired_difference(
    challenger: np.ndarray, champion: np.ndarray, clusters: pd.Series, params: Params
) -> dict:
    """Challenger minus champion accuracy, with a bootstrap interval over whole prompts."""
    config = params.retrain
    difference = challenger - champion
    codes, _ = pd.factorize(clusters.to_numpy())
    sums = np.bincount(codes, weights=difference)
    sizes = np.bincount(codes).astype(np.float64)
    rng = np.random.default_rng(config.seed)
    draws = rng.integers(0, sums.size, size=(config.bootstrap_resamples, sums.size))
    resampled = sums[draws].sum(axis=1) / sizes[draws].sum(axis=1)
    tail = (1.0 - config.level) / 2.0
    low, high = np.quantile(resampled, [tail, 1.0 - tail])
    return {
        "difference": round(float(difference.mean()), METRIC_DIGITS),
        "low": round(float(low), METRIC_DIGITS),
        "high": round(float(high), METRIC_DIGITS),
        "level": config.level,
    }


def score_on_pairs(params: Params, folder: Path, pairs: pd.DataFrame) -> tuple[dict, np.ndarray]:
    """A saved reward's accuracy on pairs (ties half), its interval, and each pair's outcome."""
    from social_reward.evaluate import metrics as M
    from social_reward.reward.model import SocialReward

    config = params.retrain
    columns = ["image_id", "prompt", "path"]
    images = pd.concat(
        [
            pairs[["pos_image_id", "prompt", "pos_path"]].set_axis(columns, axis=1),
            pairs[["neg_image_id", "prompt", "neg_path"]].set_axis(columns, axis=1),
        ]
    ).drop_duplicates("image_id")
    reward = SocialReward.from_pretrained(folder, config.batch_size)
    scores = pd.Series(
        reward.score_pairs(images["prompt"].tolist(), images["path"].tolist()),
        index=pd.Index(images["image_id"]),
    )
    pos, neg = M.pair_scores(scores, pairs)
    low, high = M.bootstrap_interval(
        pos, neg, config.bootstrap_resamples, config.seed, config.level, pairs["prompt_key"]
    )
    accuracy = M.pairwise_accuracy(pos, neg)
    summary = {
        "model": str(folder),
        "accuracy": round(accuracy["accuracy"], METRIC_DIGITS),
        "low": round(low, METRIC_DIGITS),
        "high": round(high, METRIC_DIGITS),
        "pairs": accuracy["pairs"],
    }
    return summary, M.pair_outcomes(pos, neg)


def compare(params: Params, champion: Path, challenger: Path, pairs: pd.DataFrame) -> dict:
    """Both models on the same pairs: accuracy, intervals and the paired difference."""
    champion_summary, champion_outcomes = score_on_pairs(params, champion, pairs)
    challenger_summary, challenger_outcomes = score_on_pairs(params, challenger, pairs)
    return {
        "champion": champion_summary,
        "challenger": challenger_summary,
        "difference": _paired_difference(
            challenger_outcomes, champion_outcomes, pairs["prompt_key"], params
        ),
    }


def _gates(params: Params) -> dict:
    """The pipeline's gates as its metrics files recorded them."""
    gates = {}
    for name, path in (("validate", params.validate_.metrics), ("drift", params.drift.metrics)):
        metrics = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        gates[name] = {
            "passed": bool(metrics.get("passed", False)),
            "override": bool(metrics.get("override", False)),
        }
    return gates


def _pipeline_complete() -> dict:
    """Whether every stage's outputs match its inputs (`dvc status` is clean)."""
    from social_reward.ops.dvc_command import checked_dvc

    status = json.loads(checked_dvc(["status", "--json"]) or "{}")
    return {"complete": not status, "stale": sorted(status)}


def export_in_place(params: Params) -> Manifest | None:
    """The manifest of the export in `data/` (validate.export_dir), None when there is none."""
    export_dir = params.validate_.export_dir
    return read_manifest(export_dir) if (export_dir / MANIFEST_FILE).is_file() else None


def _describe_export_in_place(params: Params) -> dict:
    manifest = export_in_place(params)
    described = {"path": str(params.validate_.export_dir)}
    if manifest is not None:
        described.update(exported_at=format_utc(manifest.exported_at), source=manifest.source)
    return described


def fresh_test_pairs(params: Params) -> pd.DataFrame:
    """The pairs stage's test pairs, with the prompt key of each (from images.parquet)."""
    pairs = pd.read_parquet(split_file(params.pairs.out_dir, TEST_SPLIT))
    keys = read_image_splits(params.pairs.out_dir)[["image_id", "prompt_key"]]
    return pairs.merge(
        keys.rename(columns={"image_id": "pos_image_id"}),
        on="pos_image_id",
        how="left",
        validate="many_to_one",
    )


def challenge(params: Params, incomplete_reason: str | None = None) -> dict:
    """Champion against challenger on the fresh test pairs; promote or keep; record why.

    `incomplete_reason`: the pipeline did not finish (the flow passes its error); recorded,
    and nothing is promoted.
    """
    config = params.retrain
    challenger = params.train.variants["reward"].out_dir
    export = _describe_export_in_place(params)
    gates = _gates(params)
    details = {"export": export, "gates": gates, "min_improvement": config.min_improvement}
    status = _pipeline_complete()
    if incomplete_reason or not status["complete"]:
        reason = incomplete_reason or f"stages not up to date: {', '.join(status['stale'])}"
        return record_decision(
            params,
            outcome="pipeline_incomplete",
            promoted=False,
            reason=f"the pipeline did not complete on this export ({reason}); champion kept",
            **details,
        )
    failed = [name for name, gate in gates.items() if not gate["passed"]]
    if failed:
        return record_decision(
            params,
            outcome="gate_failed",
            promoted=False,
            reason=f"gate(s) {', '.join(failed)} failed; champion kept",
            **details,
        )
    pairs = fresh_test_pairs(params)
    champion = read_champion(params)
    if champion is None:
        decision = {
            "promoted": True,
            "outcome": "promoted",
            "reason": "no champion yet: the first model to pass every gate is promoted",
        }
        details["test_pairs"] = {"fresh": len(pairs)}
        scores = {"champion": None, "challenger": score_on_pairs(params, challenger, pairs)[0]}
    else:
        trained = pd.read_parquet(champion_dir(params) / TRAIN_PROMPTS_FILE)["prompt_key"]
        fair = pairs[~pairs["prompt_key"].isin(trained)].reset_index(drop=True)
        details["test_pairs"] = {"fresh": len(pairs), "unseen_by_champion": len(fair)}
        if fair.empty:
            return record_decision(
                params,
                outcome="kept_champion",
                promoted=False,
                reason="no fresh test pair outside the prompts the champion trained on: "
                "nothing to compare on; champion kept",
                **details,
            )
        scores = compare(params, champion_dir(params) / REWARD_DIR, challenger, fair)
        decision = decide(scores, config.min_improvement)
    details.update(scores)
    if decision["promoted"]:
        return promote(
            params,
            _decision(
                params, outcome="promoted", promoted=True, reason=decision["reason"], **details
            ),
        )
    return record_decision(
        params,
        outcome=decision["outcome"],
        promoted=decision["promoted"],
        reason=decision["reason"],
        **details,
    )


def decide(scores: dict, min_improvement: float) -> dict:
    """Promote when the challenger's accuracy beats the champion's by min_improvement."""
    difference = scores["difference"]
    figures = (
        f"challenger {scores['challenger']['accuracy']:.4f} vs champion "
        f"{scores['champion']['accuracy']:.4f} on {scores['challenger']['pairs']} pairs: "
        f"difference {difference['difference']:+.4f} ({difference['level']:.0%} interval "
        f"[{difference['low']:+.4f}, {difference['high']:+.4f}])"
    )
    if difference["difference"] >= min_improvement:
        return {
            "promoted": True,
            "outcome": "promoted",
            "reason": f"{figures} >= retrain.min_improvement {min_improvement}",
        }
    return {
        "promoted": False,
        "outcome": "kept_champion",
        "reason": f"{figures} < retrain.min_improvement {min_improvement}; champion kept",
    }


def promote(params: Params, decision: dict, after_step: StepHook | None = None) -> dict:
    """Make the challenger the champion and record `decision` (a registry line); returns the
    line as recorded, with the new `champion_version`.

    Crash-safe (see the module's docstring): intent, staged version, one-rename switch,
    registry line, clean-up. `after_step` is a test hook called with each PROMOTION_STEPS name.
    """
    from social_reward.reward.model import CONFIG_FILE

    challenger = params.train.variants["reward"].out_dir
    reference = params.drift.features
    for needed in (challenger / CONFIG_FILE, reference, params.pairs.out_dir / IMAGE_SPLITS_FILE):
        if not needed.is_file():
            raise RegistryError(f"{needed}: file missing; promotion needs the pipeline's outputs")
    production = params.retrain.production_dir
    with _promotion_lock(params):
        _recover(params)
        version = _new_version()
        champion = production / CHAMPION_DIR
        # An old-layout champion (a real folder) becomes a version of its own first.
        adopt = f"{_new_version()}-adopted" if _is_real_folder(champion) else None
        entry = {**decision, VERSION_KEY: version}
        intent = {"version": version, "adopt": adopt, "decision": entry}
        write_text_atomic(production / INTENT_FILE, json.dumps(intent, indent=2) + "\n")
        _step(after_step, "intent")

        incoming = production / INCOMING_DIR
        shutil.rmtree(incoming, ignore_errors=True)
        incoming.mkdir(parents=True)
        shutil.copytree(challenger, incoming / REWARD_DIR)
        if params.report.model_card.is_file():  # the champion carries its card
            shutil.copy2(params.report.model_card, incoming / REWARD_DIR / MODEL_CARD_FILE)
        shutil.copy2(reference, incoming / REFERENCE_FILE)
        images = read_image_splits(params.pairs.out_dir)[["prompt_key", "split"]]
        trained = images.loc[images["split"].isin(TRAINED_SPLITS), ["prompt_key"]].drop_duplicates()
        trained.sort_values("prompt_key").to_parquet(incoming / TRAIN_PROMPTS_FILE, index=False)
        unrecorded = {"time", "outcome", "promoted"}
        record = {
            "promoted_at": entry["time"],
            **{key: value for key, value in entry.items() if key not in unrecorded},
        }
        (incoming / CHAMPION_FILE).write_text(json.dumps(record, indent=2) + "\n", "utf-8")
        _sync_tree(incoming)
        (production / VERSIONS_DIR).mkdir(exist_ok=True)
        incoming.rename(production / VERSIONS_DIR / version)  # from here on, it is finished
        _sync_folder(production / VERSIONS_DIR)
        _step(after_step, "staged")
        _finish(params, intent, after_step)
    return entry


def recover_promotion(params: Params) -> str | None:
    """Finish or roll back a promotion a crash interrupted; None when there was none.

    Finished ("finished") when its new version was assembled whole, so that the decision its
    intent records takes effect and is recorded once; otherwise rolled back ("rolled back"):
    the champion in place and the registry stay as they were."""
    production = params.retrain.production_dir
    if not (production / INTENT_FILE).exists() and not (production / PREVIOUS_DIR).exists():
        return None  # the common case: nothing to do, no lock file written
    with _promotion_lock(params):
        return _recover(params)


def _recover(params: Params) -> str | None:
    production = params.retrain.production_dir
    champion, previous = production / CHAMPION_DIR, production / PREVIOUS_DIR
    if previous.is_dir() and not champion.exists():
        # The earlier two-rename swap stopped between its renames; its registry line was
        # not written yet, so the old champion goes back.
        previous.rename(champion)
        shutil.rmtree(production / INCOMING_DIR, ignore_errors=True)
        log.warning("%s: restored from %s (an interrupted promotion)", champion, previous)
    shutil.rmtree(previous, ignore_errors=True)
    intent_file = production / INTENT_FILE
    if not intent_file.is_file():
        return None
    intent = json.loads(intent_file.read_text(encoding="utf-8"))
    if not (production / VERSIONS_DIR / intent["version"]).is_dir():
        shutil.rmtree(production / INCOMING_DIR, ignore_errors=True)
        intent_file.unlink()
        log.warning(
            "%s: promotion of %s stopped before it was assembled; rolled back, the champion "
            "in place is unchanged",
            intent_file,
            intent["version"],
        )
        return "rolled back"
    _finish(params, intent)
    log.warning(
        "%s: promotion of %s finished after an interruption", intent_file, intent["version"]
    )
    return "finished"


def _finish(params: Params, intent: dict, after_step: StepHook | None = None) -> None:
    """Every step after the new version is whole; each one can be repeated."""
    production = params.retrain.production_dir
    version, adopt = intent["version"], intent.get("adopt")
    champion = production / CHAMPION_DIR
    if adopt and _is_real_folder(champion):
        champion.rename(production / VERSIONS_DIR / adopt)
        _step(after_step, "adopted")
    link = production / f".{CHAMPION_DIR}.link"
    link.unlink(missing_ok=True)
    # Relative, so that a copied or moved project keeps its own champion.
    os.symlink(Path(VERSIONS_DIR) / version, link, target_is_directory=True)
    os.replace(link, champion)
    _sync_folder(production)
    _step(after_step, "switched")
    if not any(entry.get(VERSION_KEY) == version for entry in read_registry(params)):
        _append_to_registry(params, intent["decision"])
    _step(after_step, "recorded")
    for old in (production / VERSIONS_DIR).iterdir():
        if old.name != version:
            shutil.rmtree(old)
    (production / INTENT_FILE).unlink()
    _step(after_step, "cleaned")


def _promotion_lock(params: Params) -> FileLock:
    # Beside the production folder, not in it: that folder is a `drift` stage dependency.
    production = params.retrain.production_dir
    production.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(production.with_name(f"{production.name}.lock"))


def _new_version() -> str:
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}"


def _is_real_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _step(after_step: StepHook | None, name: str) -> None:
    if after_step is not None:
        after_step(name)


def _sync_folder(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _sync_tree(folder: Path) -> None:
    """Flush a folder's files and folders to disk, so that a power cut after the rename that
    publishes it cannot leave it half-written."""
    for path in sorted(folder.rglob("*"), reverse=True):
        _sync_folder(path)
    _sync_folder(folder)
