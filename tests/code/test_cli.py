"""The `social-reward` command as a user runs it: exit codes and messages."""

import json
from pathlib import Path

import pytest

from tests.conftest import CI_CONFIG, passed_gates, run, simulate

TINY = ("--images", "20", "--users", "10", "--days", "5", "--image-size", "16")


def test_simulate_refuses_a_non_empty_folder_then_overwrites(tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    refused = run(["social-reward", "simulate", "--out", str(out), *TINY], check=False)
    assert refused.returncode == 1
    assert "is not empty; pass --overwrite" in refused.stderr
    assert (out / "keep.txt").read_text() == "mine"
    done = simulate(out, None, *TINY, "--overwrite")
    assert "20 images" in done.stdout
    assert not (out / "keep.txt").exists()


def test_simulate_rejects_bad_sizes_with_the_rule(tmp_path):
    result = run(
        ["social-reward", "simulate", "--out", str(tmp_path / "d"), "--image-size", "4"],
        check=False,
    )
    assert result.returncode == 1
    assert "image_size" in result.stderr and "greater than or equal to 16" in result.stderr


def test_simulate_takes_sizes_from_a_run_config(tmp_path):
    result = simulate(tmp_path / "d", None, "--config", str(CI_CONFIG), "--metadata-only")
    assert "900 images" in result.stdout


def test_overrides_written_into_a_params_file(tmp_path):
    import shutil

    import yaml

    from tests.conftest import REPO_ROOT

    params = tmp_path / "params.yaml"
    shutil.copy(REPO_ROOT / "params.yaml", params)
    run(["social-reward", "overrides", str(CI_CONFIG), "--write", str(params)])
    written = yaml.safe_load(params.read_text())
    assert written["train"]["epochs"] == 1 and written["finetune"]["steps"] == 2
    assert written["pairs"] == yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["pairs"]


def test_overrides_refuse_to_rewrite_a_broken_params_file(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  epochs: many\n")
    result = run(
        ["social-reward", "overrides", str(CI_CONFIG), "--write", str(params)], check=False
    )
    assert result.returncode == 1 and "train.epochs" in result.stderr
    assert params.read_text() == "train:\n  epochs: many\n"


def test_profile_with_bad_params_exits_with_the_key_named(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("profile:\n  plot_sample: none\n")
    result = run(["social-reward", "profile", "--params", str(params)], check=False)
    assert result.returncode == 1
    assert "profile.plot_sample" in result.stderr
    assert "Traceback" not in result.stderr


def test_profile_of_a_missing_export_exits_with_the_file_named(tmp_path):
    params = tmp_path / "params.yaml"
    nothing = tmp_path / "nothing"
    params.write_text(f"profile:\n  validated_dir: {nothing}\n" + passed_gates(tmp_path, nothing))
    result = run(["social-reward", "profile", "--params", str(params)], check=False)
    assert result.returncode == 1
    assert "manifest.json: file missing" in result.stderr


def test_overrides_prints_dvc_set_params():
    result = run(["social-reward", "overrides", str(CI_CONFIG)])
    assert result.stdout.strip().startswith("-S ")


def test_simulate_writes_a_later_export_of_the_same_community(tmp_path):
    import pyarrow.parquet as pq

    simulate(tmp_path / "now", None, *TINY, "--metadata-only")
    simulate(tmp_path / "later", None, *TINY, "--metadata-only", "--later-days", "3")
    now = pq.read_table(tmp_path / "now" / "images.parquet")
    later = pq.read_table(tmp_path / "later" / "images.parquet")
    assert later.num_rows > now.num_rows
    assert set(now.column("image_id").to_pylist()) <= set(later.column("image_id").to_pylist())
    manifest = (tmp_path / "later" / "manifest.json").read_text()
    assert "snapshot_day=8" in manifest


def test_simulate_writes_a_drifted_export(tmp_path):
    import pyarrow.parquet as pq

    simulate(tmp_path / "drifted", None, *TINY, "--metadata-only", "--drifted")
    images = pq.read_table(tmp_path / "drifted" / "images.parquet").to_pandas()
    assert set(images["generator"]) <= {"sim-diffusion-2.0", "sim-diffusion-3.0"}
    assert "(drifted)" in (tmp_path / "drifted" / "manifest.json").read_text()


def test_simulate_rejects_negative_later_days(tmp_path):
    result = run(
        ["social-reward", "simulate", "--out", str(tmp_path / "d"), "--later-days", "-1"],
        check=False,
    )
    assert result.returncode == 1
    assert "--later-days must be >= 0" in result.stderr


def _params_with(tmp_path, text: str):
    params = tmp_path / "params.yaml"
    params.write_text(text)
    return params


def test_pretrain_before_pairs_says_which_file_is_missing(tmp_path):
    params = _params_with(tmp_path, f"pretrain:\n  pairs_dir: {tmp_path / 'nowhere'}\n")
    result = run(["social-reward", "pretrain", "--params", str(params)], check=False)
    assert result.returncode == 1
    assert f"{tmp_path / 'nowhere' / 'images.parquet'}: file missing" in result.stderr
    assert "run the `pairs` stage first" in result.stderr


def test_train_rejects_an_unknown_variant_and_names_the_choices(tmp_path):
    params = _params_with(tmp_path, "train:\n  epochs: 1\n")
    result = run(
        ["social-reward", "train", "--variant", "best", "--params", str(params)], check=False
    )
    assert result.returncode == 1
    assert "train variant 'best' unknown" in result.stderr
    assert "['ablation', 'reward']" in result.stderr


def test_train_rejects_an_unknown_unlock_mode(tmp_path):
    params = _params_with(tmp_path, "train:\n  unlock: upper\n")
    result = run(["social-reward", "train", "--params", str(params)], check=False)
    assert result.returncode == 1
    assert "train.unlock" in result.stderr and "visual_last_layer" in result.stderr


def test_evaluate_without_a_trained_reward_names_the_folder(tmp_path):
    from social_reward.reward.backbone import build_backbone, save_backbone

    save_backbone(build_backbone(), "social-reward-tiny", tmp_path / "backbone")
    params = _params_with(
        tmp_path,
        f"evaluate:\n  backbone_dir: {tmp_path / 'backbone'}\n"
        f"  reward_dir: {tmp_path / 'missing'}\n"
        + passed_gates(tmp_path, Path("artifacts/validated")),
    )
    result = run(["social-reward", "evaluate", "--params", str(params)], check=False)
    assert result.returncode == 1
    assert f"{tmp_path / 'missing' / 'config.json'}: file missing" in result.stderr


def _image_splits(folder, split: str):
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "image_id": ["img1"],
            "path": ["img1.png"],
            "prompt_key": [1],
            "prompt": ["a red star on a navy background"],
            "split": [split],
        }
    ).to_parquet(folder / "images.parquet")
    return folder


def test_finetune_before_generator_pretrain_says_which_stage_to_run(tmp_path):
    pairs = _image_splits(tmp_path / "pairs", "train")
    params = _params_with(
        tmp_path, f"finetune:\n  pairs_dir: {pairs}\n  base_dir: {tmp_path / 'nowhere'}\n"
    )
    result = run(["social-reward", "finetune", "--params", str(params)], check=False)
    assert result.returncode == 1
    assert f"{tmp_path / 'nowhere' / 'generator.json'}: file missing" in result.stderr
    assert "run the `generator_pretrain` stage first" in result.stderr


def test_finetune_without_training_prompts_names_the_rule(tmp_path):
    pairs = _image_splits(tmp_path / "pairs", "test")
    params = _params_with(tmp_path, f"finetune:\n  pairs_dir: {pairs}\n")
    result = run(["social-reward", "finetune", "--params", str(params)], check=False)
    assert result.returncode == 1
    assert f"{pairs / 'images.parquet'}: no image in split 'train'" in result.stderr
    assert "must not be empty" in result.stderr


def test_evaluate_generator_before_finetune_says_which_stage_to_run(tmp_path):
    pairs = _image_splits(tmp_path / "pairs", "test")
    params = _params_with(
        tmp_path,
        f"evaluate_generator:\n  pairs_dir: {pairs}\n  tuned_dir: {tmp_path / 'nowhere'}\n"
        + passed_gates(tmp_path, Path("artifacts/validated")),
    )
    result = run(["social-reward", "evaluate-generator", "--params", str(params)], check=False)
    assert result.returncode == 1
    assert f"{tmp_path / 'nowhere' / 'finetune.json'}: file missing" in result.stderr
    assert "run the `finetune` stage first" in result.stderr


def test_generator_pretrain_refuses_a_folder_that_is_not_stable_diffusion(tmp_path):
    pairs = _image_splits(tmp_path / "pairs", "train")
    params = _params_with(
        tmp_path,
        f"generator:\n  pretrained: {tmp_path}\ngenerator_pretrain:\n  pairs_dir: {pairs}\n",
    )
    result = run(["social-reward", "generator-pretrain", "--params", str(params)], check=False)
    assert result.returncode == 1
    assert f"{tmp_path}: not a Stable Diffusion folder (no model_index.json)" in result.stderr


def test_evaluate_generator_rejects_groups_larger_than_the_images_drawn(tmp_path):
    params = _params_with(
        tmp_path, "evaluate_generator:\n  seeds_per_prompt: 10\n  best_of_n: 20\n"
    )
    result = run(["social-reward", "evaluate-generator", "--params", str(params)], check=False)
    assert result.returncode == 1
    assert "best_of_n (20) must not exceed seeds_per_prompt (10)" in result.stderr


def _defaults(folder):
    (folder / "params.yaml").write_text("retrain: {}\n")  # every section at its defaults


def test_intake_with_an_empty_inbox_has_nothing_to_do(tmp_path):
    _defaults(tmp_path)
    result = run(["social-reward", "intake"], cwd=tmp_path)
    assert json.loads(result.stdout.splitlines()[-1])["export"] is None


def test_intake_rejects_a_broken_manifest_names_the_key_and_keeps_the_export(tmp_path):
    _defaults(tmp_path)
    export = tmp_path / "inbox" / "day-9" / "data"
    export.mkdir(parents=True)
    (export / "manifest.json").write_text(
        '{"schema_version": 1, "exported_at": "yesterday", "source": "platform"}'
    )
    (export.parent / "READY").touch()  # the producer's "export complete" marker
    result = run(["social-reward", "intake"], cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert "stopped at the validate gate" in result.stderr
    assert "key 'exported_at' is 'yesterday'; rule: ISO-8601 UTC timestamp" in result.stderr
    kept = tmp_path / "inbox" / "rejected" / "day-9"
    assert (kept / "data" / "manifest.json").is_file() and (kept / "REJECTED.txt").is_file()
    [entry] = (tmp_path / "models" / "registry.jsonl").read_text().splitlines()
    assert json.loads(entry)["outcome"] == "rejected_at_validate"


def test_challenge_outside_a_dvc_project_says_so(tmp_path):
    _defaults(tmp_path)
    result = run(["social-reward", "challenge"], cwd=tmp_path, check=False)
    assert result.returncode == 1
    assert "dvc status --json failed" in result.stderr and "DVC repository" in result.stderr
    assert "Traceback" not in result.stderr


# ---- one error handler for every command ---------------------------------------------------

STAGE_COMMANDS = (
    ["validate"],
    ["profile"],
    ["pairs"],
    ["drift"],
    ["pretrain"],
    ["train", "--variant", "reward"],
    ["evaluate"],
    ["generator-pretrain"],
    ["finetune"],
    ["evaluate-generator"],
    ["report"],
    ["intake"],
    ["challenge"],
)


@pytest.mark.parametrize("command", STAGE_COMMANDS, ids=lambda command: command[0])
def test_every_command_reports_a_params_error_as_one_line_and_status_1(command, tmp_path):
    """CliRunner runs the command in process: the one handler (cli.CommandGroup) turns the
    error into `error: <message>` and exit status 1, whatever command raised it."""
    from typer.testing import CliRunner

    from social_reward.cli import app

    params = tmp_path / "params.yaml"
    params.write_text("- a list, not sections\n")
    result = CliRunner().invoke(app, [*command, "--params", str(params)])
    assert result.exit_code == 1, result.output
    assert result.stderr == f"error: {params}: must be a mapping of sections, got list\n"
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_an_unexpected_error_keeps_its_traceback(monkeypatch):
    """Only the project's own errors become one line: a bug must show where it is."""
    from typer.testing import CliRunner

    from social_reward.cli import app
    from social_reward.stages import profile

    def broken(params):
        raise KeyError("a bug")

    monkeypatch.setattr(profile, "main", broken)
    result = CliRunner().invoke(app, ["profile"])
    assert result.exit_code == 1
    assert isinstance(result.exception, KeyError)
    assert "error:" not in result.stderr
