"""What a pipeline run shows its reviewers: the gates' verdicts, key metrics per stage and the
reports and image grids it wrote. Read from the stages' files; the orchestrator publishes it.

Paths come from the run's params (read once by the caller) and are taken from `project`, the
DVC project's root.
"""

from __future__ import annotations

import json
from pathlib import Path

from social_reward.config.params import Params
from social_reward.errors import GateFailed
from social_reward.ops.dvc_command import error_line

# Key metrics per stage: (label, dotted key in the stage's metrics file).
KEY_METRICS: dict[str, tuple[tuple[str, str], ...]] = {
    "validate": (
        ("passed", "passed"),
        ("images kept", "tables.images.rows_kept"),
        ("images quarantined", "tables.images.rows_quarantined"),
        ("remixes kept", "tables.remixes.rows_kept"),
    ),
    "profile": (
        ("images", "counts.images"),
        ("remixes", "counts.remixes"),
        ("never remixed", "images_never_remixed_share"),
    ),
    "pairs": (
        ("train pairs", "pairs.train"),
        ("val pairs", "pairs.val"),
        ("test pairs", "pairs.test"),
        ("truth agreement", "truth_agreement.debiased"),
    ),
    "drift": (("passed", "passed"), ("drift share", "drift_share"), ("summary", "summary")),
    "pretrain": (("trained", "trained"), ("final loss", "final_train_loss")),
    "train": (
        ("val accuracy", "val_accuracy"),
        ("train accuracy", "train_accuracy"),
        ("best epoch", "best_epoch"),
    ),
    "evaluate": (
        ("reward accuracy", "remix_pairs.scorers.social_reward.accuracy"),
        ("CLIP score accuracy", "remix_pairs.scorers.clip_score.accuracy"),
        ("reward truth accuracy", "truth.scorers.social_reward.accuracy"),
        ("CLIP score truth accuracy", "truth.scorers.clip_score.accuracy"),
        ("reward truth accuracy, clear pairs", "truth.scorers.social_reward.clear_accuracy"),
        (
            "feature ceiling (backbone probe)",
            "diagnostics.feature_ceiling.clip_score.prompt_image.accuracy",
        ),
    ),
    "generator_pretrain": (
        ("steps", "steps"),
        ("final loss", "final_train_loss"),
        ("autoencoder PSNR (dB)", "autoencoder.reconstruction_psnr_db"),
    ),
    "finetune": (("method", "method"), ("final loss", "final_train_loss")),
    "evaluate_generator": (
        ("win rate (reward)", "win_rate.social_reward.win_rate"),
        ("win rate (truth judge)", "win_rate.truth_judge.win_rate"),
        ("win rate (CLIP score)", "win_rate.clip_score.win_rate"),
        ("subject shown: real images", "attributes.real.subject"),
        ("subject shown: base", "attributes.base.subject"),
        ("subject shown: fine-tuned", "attributes.tuned.subject"),
    ),
}
GATES = ("validate", "drift")  # stages whose metrics say whether the data may pass
REPORT_SUFFIXES = (".html", ".png")


def metrics_file(params: Params, stage: str) -> Path:
    """The metrics file a stage writes, from its params.yaml section."""
    if stage == "train":
        return params.train.metrics_dir / "reward.json"
    return params.section(stage).metrics


def _lookup(metrics: dict, dotted: str):
    value = metrics
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def gate_failure(params: Params, project: Path, stage: str, stage_error: str) -> GateFailed | None:
    """The gate's own failure when `stage` is a gate whose metrics say it did not pass.

    `stage_error` is what the stage printed; its `error:` line is the gate's message.
    """
    if stage not in GATES:
        return None
    metrics = _read(project / metrics_file(params, stage))
    if metrics is None or metrics.get("passed", True):
        return None
    message = error_line(stage_error) or metrics.get("summary", "")
    return GateFailed(f"{stage} gate failed: {message}")


def stage_metrics(params: Params, project: Path, stages: tuple[str, ...]) -> list[dict]:
    """One row per key metric of each stage that has written its metrics file."""
    rows = []
    for stage in stages:
        if stage not in KEY_METRICS:  # a stage without metrics (`report`)
            continue
        metrics = _read(project / metrics_file(params, stage))
        if metrics is None:
            continue
        for label, dotted in KEY_METRICS.get(stage, ()):
            value = _lookup(metrics, dotted)
            if value is not None:
                rows.append({"stage": stage, "metric": label, "value": value})
    return rows


def report_files(params: Params, project: Path) -> list[Path]:
    """The run's HTML reports and image grids (absolute paths), in pipeline order."""
    folders = (
        params.validate_.report.parent,
        params.drift.report_dir,
        params.profile.plot.parent,
        params.evaluate.report_dir,
        params.generator_pretrain.samples.parent,
        params.evaluate_generator.report_dir,
    )
    site = (project / params.report.site).resolve()
    files: list[Path] = [site] if site.is_file() else []  # the run's one page, first
    for folder in folders:
        root = (project / folder).resolve()
        if root.is_dir():
            files += sorted(
                path
                for path in root.iterdir()
                if path.suffix in REPORT_SUFFIXES and path not in files
            )
    return files


def report_links_markdown(params: Params, project: Path) -> str:
    """A Markdown list of the run's reports and grids as file links (they open locally)."""
    files = report_files(params, project)
    if not files:
        return "No report was written."
    root = project.resolve()
    return "\n".join(f"- [{path.relative_to(root)}]({path.as_uri()})" for path in files)


def decision_markdown(decision: dict) -> str:
    """A retrain decision (a registry entry) for reviewers: verdict, reason, both models."""
    rows = [
        f"| {role} | {scores['accuracy']} | [{scores['low']}, {scores['high']}] | "
        f"{scores['pairs']} |"
        for role in ("champion", "challenger")
        if (scores := decision.get(role))
    ]
    table = (
        "\n| model | pairwise accuracy | interval | pairs |\n|---|---|---|---|\n" + "\n".join(rows)
        if rows
        else ""
    )
    verdict = "Promoted" if decision["promoted"] else "Champion kept"
    return (
        f"# {verdict}: {decision['outcome']}\n\n{decision['reason']}\n{table}\n\n"
        f"Export: `{json.dumps(decision.get('export'))}`; data.dvc md5 "
        f"`{decision.get('data_dvc_md5')}`; commit `{decision.get('git_commit')}`."
    )
