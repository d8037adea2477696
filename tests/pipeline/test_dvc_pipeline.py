"""The DVC pipeline, really run, on the CI-sized export (one full `dvc repro` per module)."""

import json

import pytest

from tests.conftest import copy_project, run

pytestmark = pytest.mark.slow
STAGES = (
    "validate",
    "profile",
    "pairs",
    "drift",
    "pretrain",
    "train@reward",
    "train@ablation",
    "evaluate",
    "generator_pretrain",
    "finetune",
    "evaluate_generator",
)


def read_json(path):
    return json.loads(path.read_text())


def test_dvc_repro_runs_every_stage_and_leaves_status_clean(reproduced_project):
    project = reproduced_project
    metrics = read_json(project / "metrics" / "profile.json")
    assert metrics["counts"]["images"] == 900
    assert (project / "plots" / "profile.png").stat().st_size > 10_000
    validated = read_json(project / "metrics" / "validate.json")
    assert validated["passed"] and validated["tables"]["images"]["rows_kept"] == 900
    pairs = read_json(project / "metrics" / "pairs.json")
    assert all(count > 0 for count in pairs["pairs"].values())
    for split in ("train", "val", "test"):
        assert (project / "artifacts" / "pairs" / f"{split}.parquet").is_file()
        assert (project / "artifacts" / "pairs" / "ablation" / f"{split}.parquet").is_file()
    drift = read_json(project / "metrics" / "drift.json")
    assert drift["passed"] and drift["reference"] is None
    assert (project / "reports" / "validate" / "index.html").is_file()

    status = run(["dvc", "status", "--json"], cwd=project)
    assert json.loads(status.stdout) == {}
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], cwd=project).stdout)
    data = shown[""]["data"]
    assert data["metrics/profile.json"]["data"]["counts"]["remixes"] == metrics["counts"]["remixes"]
    assert data["metrics/pairs.json"]["data"]["mode"] == "debiased"
    # Every scorer side by side in `dvc metrics show`.
    scorers = data["metrics/evaluate.json"]["data"]["remix_pairs"]["scorers"]
    assert {"social_reward", "clip_score", "random", "creator_followers", "exposure"} <= set(
        scorers
    )

    again = run(["dvc", "repro"], cwd=project)
    assert "didn't change, skipping" in again.stdout
    for stage in STAGES:
        assert f"Running stage '{stage}'" not in again.stdout


def test_the_model_stages_write_the_reward_and_its_evaluation(reproduced_project):
    from social_reward.reward.model import SocialReward

    project = reproduced_project
    pretrain = read_json(project / "metrics" / "pretrain.json")
    assert pretrain["trained"] and pretrain["held_out_split"] == "test"
    for variant, folder in (("reward", "reward"), ("ablation", "reward_ablation")):
        trained = read_json(project / "metrics" / "train" / f"{variant}.json")
        assert trained["cached_prefix"] and 0.0 <= trained["val_accuracy"] <= 1.0
        assert (
            (project / "plots" / "train" / f"{variant}.csv")
            .read_text()
            .startswith("epoch,train_loss,val_accuracy")
        )
        config = read_json(project / "models" / folder / "config.json")
        assert config["unlock"] == "visual_upper_layers_textual_upper_layers"
        assert len(config["training_data_sha256"]) == 64

    reward = SocialReward.from_pretrained(project / "models" / "reward")
    image = next((project / "data" / "images").rglob("*.png"))
    scores = reward.score("a red star on a navy background, striped style", [image, image])
    assert len(scores) == 2 and scores[0] == pytest.approx(scores[1])

    evaluation = read_json(project / "metrics" / "evaluate.json")
    for section in ("remix_pairs", "truth"):
        for values in evaluation[section]["scorers"].values():
            assert values["low"] <= values["accuracy"] <= values["high"]
    assert set(evaluation["audit"]) == {"influencer", "old_generator"}
    assert set(evaluation["ablation"]) == {"debiased", "naive"}
    for name in ("index.html", "scores.html", "best_of_n.png"):
        assert (project / "reports" / "evaluate" / name).stat().st_size > 1000
    assert (project / "plots" / "evaluate" / "accuracy.png").stat().st_size > 10_000


def test_the_generator_stages_write_a_base_adapters_and_their_evaluation(reproduced_project):
    from social_reward.generator.finetune_trainer import LORA_WEIGHTS_FILE, load_lora
    from social_reward.generator.pipeline import load_generator

    project = reproduced_project
    pretrained = read_json(project / "metrics" / "generator_pretrain.json")
    assert pretrained["trained"] and pretrained["held_out_split"] == "test"
    assert (project / "reports" / "generator_pretrain" / "samples.png").stat().st_size > 5000
    finetuned = read_json(project / "metrics" / "finetune.json")
    assert finetuned["method"] == "draft" and finetuned["trainable_parameters"] > 0
    assert (project / "models" / "generator" / LORA_WEIGHTS_FILE).is_file()
    # The adapters load onto the base through diffusers' LoRA loading.
    base = load_generator(project / "models" / "generator_base")
    generator = load_lora(base, project / "models" / "generator")
    assert generator.unet.active_adapters()

    evaluation = read_json(project / "metrics" / "generator.json")
    assert {"social_reward", "clip_score", "truth_judge"} <= set(evaluation["win_rate"])
    for values in evaluation["win_rate"].values():
        assert values["low"] <= values["win_rate"] <= values["high"]
    assert 0.0 <= evaluation["prompt_consistency"]["base"] <= 1.0
    assert evaluation["diversity"]["base"]["pixel"] > 0
    assert 0.0 <= evaluation["best_of_n"]["truth_judge_win_rate"] <= 1.0
    assert (project / "reports" / "generator" / "comparison.png").stat().st_size > 5000
    assert (
        (project / "plots" / "generator" / "win_rates.csv")
        .read_text()
        .startswith("judge,win_rate,low,high")
    )


def test_changed_params_rerun_only_their_stage(reproduced_project, tmp_path):
    project = copy_project(reproduced_project, tmp_path / "project")
    params = project / "params.yaml"
    params.write_text(params.read_text().replace("audit_pairs: 40", "audit_pairs: 30"))
    status = json.loads(run(["dvc", "status", "--json"], cwd=project).stdout)
    assert set(status) == {"evaluate"}
    rerun = run(["dvc", "repro"], cwd=project)
    assert "Running stage 'evaluate'" in rerun.stdout
    for stage in STAGES:
        if stage != "evaluate":
            assert f"Running stage '{stage}'" not in rerun.stdout
    evaluation = read_json(project / "metrics" / "evaluate.json")
    assert all(values["pairs"] == 30 for values in evaluation["audit"]["influencer"].values())
    assert json.loads(run(["dvc", "status", "--json"], cwd=project).stdout) == {}


def test_a_bad_export_stops_the_pipeline_at_the_validation_gate(small_project):
    import pyarrow.parquet as pq

    users = pq.read_table(small_project / "data" / "users.parquet").drop_columns(["followers"])
    pq.write_table(users, small_project / "data" / "users.parquet")
    result = run(["dvc", "repro"], cwd=small_project, check=False)
    assert result.returncode != 0
    assert "users.parquet: column 'followers' missing" in result.stderr
    assert not (small_project / "artifacts" / "pairs").exists()


def test_dvc_plots_show_renders_every_plot(reproduced_project, tmp_path):
    run(["dvc", "plots", "show", "-o", str(tmp_path / "rendered")], cwd=reproduced_project)
    page = (tmp_path / "rendered" / "index.html").read_text()
    for plot in (
        "profile.png",
        "accuracy.png",
        "plots/train/reward.csv",
        "plots/pretrain.csv",
        "plots/generator/win_rates.csv",
        "comparison.png",
    ):
        assert plot in page
