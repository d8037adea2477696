"""The DVC pipeline, really run, on the CI-sized export (one full `dvc repro` per module)."""

import json
import shutil
import time
from pathlib import Path

import pytest
import yaml

from tests.browser import SCREENSHOTS, check_page, chromium, local_target
from tests.conftest import REPO_ROOT, clone_and_pull, copy_project, output_digests, run
from tests.servers import background, prefect_command, prefect_environment, prefect_server

pytestmark = pytest.mark.slow
STAGES = (
    "validate",
    "profile",
    "pairs",
    "drift",
    "pretrain",
    "train@reward",
    "train@ablation",
    "train@reward_25",
    "train@reward_50",
    "evaluate",
    "generator_pretrain",
    "finetune",
    "evaluate_generator",
    "report",
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
    # params.yaml's model.pretrained: the generic backbone, written unchanged, its loss plotted.
    assert pretrain["pretrained"] == "backbones/social-reward-tiny-generic"
    assert not pretrain["trained"]
    assert (project / "plots" / "pretrain.csv").read_text().startswith("epoch,train_loss\n1,")
    for variant, folder in (("reward", "reward"), ("ablation", "reward_ablation")):
        trained = read_json(project / "metrics" / "train" / f"{variant}.json")
        assert trained["cached_prefix"] and 0.0 <= trained["val_accuracy"] <= 1.0
        assert (
            (project / "plots" / "train" / f"{variant}.csv")
            .read_text()
            .startswith("epoch,train_loss,train_accuracy,val_accuracy")
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
    # The diagnostics: clear pairs, the feature ceiling and the learning curve.
    diagnostics = evaluation["diagnostics"]
    assert 0 < evaluation["truth"]["clear_pairs"] < evaluation["truth"]["pairs"]
    for values in evaluation["truth"]["scorers"].values():
        assert values["clear_low"] <= values["clear_accuracy"] <= values["clear_high"]
    assert set(diagnostics["feature_ceiling"]) == {"social_reward", "clip_score"}
    for by_features in diagnostics["feature_ceiling"].values():
        assert set(by_features) == {"image", "prompt_image", "model_itself"}
    curve = diagnostics["learning_curve"]
    assert list(curve) == ["0.25", "0.5", "1.0"]
    assert curve["0.25"]["train_pairs"] < curve["0.5"]["train_pairs"] < curve["1.0"]["train_pairs"]
    assert curve["1.0"]["accuracy"] == evaluation["truth"]["scorers"]["social_reward"]["accuracy"]
    for name in ("index.html", "scores.html", "best_of_n.png", "diagnostics.png"):
        assert (project / "reports" / "evaluate" / name).stat().st_size > 1000
    assert (project / "plots" / "evaluate" / "accuracy.png").stat().st_size > 10_000


def test_the_generator_stages_write_a_base_adapters_and_their_evaluation(reproduced_project):
    from social_reward.generator.finetune_trainer import LORA_WEIGHTS_FILE, load_lora
    from social_reward.generator.pipeline import load_generator

    project = reproduced_project
    pretrained = read_json(project / "metrics" / "generator_pretrain.json")
    assert pretrained["trained"] and pretrained["held_out_split"] == "test"
    assert (project / "reports" / "generator_pretrain" / "samples.png").stat().st_size > 5000
    # The autoencoder came first: its reconstructions are shown and measured.
    assert (project / "reports" / "generator_pretrain" / "reconstructions.png").is_file()
    assert pretrained["autoencoder"]["reconstruction_psnr_db"] > 0
    vae = read_json(project / "models" / "generator_base" / "vae" / "config.json")
    assert pretrained["latent_shape"][0] == vae["latent_channels"]
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
    # What the images show, per attribute, for real, base and fine-tuned images.
    attributes = evaluation["attributes"]
    assert set(attributes) == {"real", "base", "tuned"}
    for rates in attributes.values():
        assert set(rates) == {"colour", "subject", "background", "style"}
        assert all(0.0 <= rate <= 1.0 for rate in rates.values())
    assert set(evaluation["attribute_judge"]["held_out_accuracy"]) == set(attributes["real"])
    assert (project / "reports" / "generator" / "attributes.png").is_file()
    assert (
        (project / "plots" / "generator" / "win_rates.csv")
        .read_text()
        .startswith("judge,win_rate,low,high")
    )


def test_dvc_exp_run_sets_a_parameter_and_dvc_compares_the_runs(reproduced_project, tmp_path):
    """A parameter sweep point as the README shows it: `dvc exp run -S`, then `dvc exp show`,
    `dvc metrics diff` and `dvc plots diff` against the committed baseline."""
    project = copy_project(reproduced_project, tmp_path / "project")
    run(["git", "add", "-A"], cwd=project)
    run(["git", "commit", "-qm", "baseline"], cwd=project)
    rerun = run(
        ["dvc", "exp", "run", "-n", "audit-30", "-S", "evaluate.audit_pairs=30"], cwd=project
    )
    assert "Running stage 'evaluate'" in rerun.stdout
    for stage in STAGES:
        if stage not in ("evaluate", "report"):
            assert f"Running stage '{stage}'" not in rerun.stdout
    evaluation = read_json(project / "metrics" / "evaluate.json")
    assert all(values["pairs"] == 30 for values in evaluation["audit"]["influencer"].values())

    shown = json.loads(run(["dvc", "exp", "show", "--json"], cwd=project).stdout)
    experiments = [
        experiment
        for baseline in shown
        for experiment in (baseline.get("experiments") or [])
        if experiment.get("name") == "audit-30"
    ]
    assert len(experiments) == 1
    revision = experiments[0]["revs"][0]["data"]
    assert revision["params"]["params.yaml"]["data"]["evaluate"]["audit_pairs"] == 30
    assert "remix_pairs" in revision["metrics"]["metrics/evaluate.json"]["data"]

    diff = json.loads(run(["dvc", "metrics", "diff", "--json"], cwd=project).stdout)
    changed = diff["metrics/evaluate.json"]
    assert changed["audit.influencer.social_reward.pairs"] == {"old": 40, "new": 30, "diff": -10}
    run(["dvc", "plots", "diff", "HEAD", "-o", str(tmp_path / "diff")], cwd=project)
    assert "plots/evaluate/accuracy.csv" in (tmp_path / "diff" / "index.html").read_text()


def test_two_forced_reruns_give_identical_pairs_models_and_metrics(reproduced_project, tmp_path):
    """`dvc repro --force` on the same commit and export: DVC's hashes of every pair and
    model file, and every metric, are those of the first run."""
    project = copy_project(reproduced_project, tmp_path / "project")
    run(["dvc", "repro", "--force"], cwd=project)

    def outputs(root):
        lock = yaml.safe_load((root / "dvc.lock").read_text())
        return {
            out["path"]: out["md5"]
            for stage in lock["stages"].values()
            for out in stage.get("outs", [])
            if out["path"].startswith(("artifacts/pairs", "models/"))
        }

    first, second = outputs(reproduced_project), outputs(project)
    assert {
        "artifacts/pairs",
        "models/backbone",
        "models/reward/model.safetensors",
        "models/generator_base",
        "models/generator",
    } <= set(first)
    assert second == first
    for path in sorted((reproduced_project / "metrics").rglob("*.json")):
        relative = path.relative_to(reproduced_project)
        assert read_json(project / relative) == read_json(path), relative


def test_dvc_push_then_pull_in_another_clone_gives_every_output_and_a_clean_status(
    reproduced_project, tmp_path
):
    project = copy_project(reproduced_project, tmp_path / "project")
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "--local", "--default", "store", str(remote)], cwd=project)
    run(["git", "add", "-A"], cwd=project)
    run(["git", "commit", "-qm", "a reproduced pipeline"], cwd=project)
    run(["dvc", "push", "-q"], cwd=project)

    clone = clone_and_pull(project, tmp_path / "clone", remote)

    assert run(["dvc", "status", "--json"], cwd=clone).stdout.strip() == "{}"
    pushed = output_digests(project)
    assert len(pushed) > 50 and output_digests(clone) == pushed


WORK_POOL = "social-reward"  # prefect.yaml's
FLOW_RUN_WAIT_S = 420


def test_prefect_yaml_deploys_both_flows_and_a_worker_runs_the_pipeline(
    reproduced_project, tmp_path
):
    """The README's scheduling path: a real `prefect server start`, a process work pool,
    `prefect deploy --all` from prefect.yaml, a worker; a run triggered through the API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    project = copy_project(reproduced_project, tmp_path / "project")
    shutil.copy(REPO_ROOT / "prefect.yaml", project / "prefect.yaml")
    shutil.copytree(
        REPO_ROOT / "flows", project / "flows", ignore=shutil.ignore_patterns("__pycache__")
    )
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["retrain"]["schedule"] = {"cron": "15 4 * * 1", "timezone": "Europe/Paris"}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    home, logs, prefect = tmp_path / "prefect", tmp_path / "logs", prefect_command()
    with prefect_server(home, logs) as api:
        environment = prefect_environment(home, api, PREFECT_WORKER_QUERY_SECONDS="2")
        run([prefect, "work-pool", "create", WORK_POOL, "--type", "process"], env=environment)
        run([prefect, "--no-prompt", "deploy", "--all"], cwd=project, env=environment)
        worker = [prefect, "worker", "start", "--pool", WORK_POOL]
        with (
            temporary_settings({PREFECT_API_URL: api}),
            get_client(sync_client=True) as client,
            background(worker, logs / "worker.log", cwd=project, env=environment),
        ):
            retrain = client.read_deployment_by_name("social-reward-retrain/scheduled-retrain")
            [schedule] = retrain.schedules
            assert (schedule.schedule.cron, schedule.schedule.timezone) == (
                "15 4 * * 1",
                "Europe/Paris",
            )
            deployment = client.read_deployment_by_name("social-reward-pipeline/pipeline")
            for deployed in (retrain, deployment):
                assert deployed.global_concurrency_limit.limit == 1
                assert deployed.work_pool_name == WORK_POOL
                assert deployed.parameters == {"project": "."}

            flow_run = client.create_flow_run_from_deployment(deployment.id)
            deadline = time.monotonic() + FLOW_RUN_WAIT_S
            while not flow_run.state.is_final() and time.monotonic() < deadline:
                time.sleep(2)
                flow_run = client.read_flow_run(flow_run.id)
            assert flow_run.state.is_completed(), (
                flow_run.state,
                (logs / "worker.log").read_text()[-4000:],
            )
            artifacts = client.read_artifacts(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run.id]))
            )
    by_key = {artifact.key: artifact for artifact in artifacts}
    assert set(by_key) == {"pipeline-metrics", "pipeline-reports"}
    assert {"stage": "validate", "metric": "passed", "value": True} in json.loads(
        by_key["pipeline-metrics"].data
    )


def test_the_report_stage_writes_a_site_and_a_model_card(reproduced_project):
    project = reproduced_project
    evaluation = read_json(project / "metrics" / "evaluate.json")
    card = (project / "reports" / "model_card.md").read_text()
    for heading in (
        "## Training data",
        "## How pairs were built",
        "## Accuracy against the",
        "## Confounder audit",
        "## Known limits",
    ):
        assert heading in card
    for scorer, values in evaluation["remix_pairs"]["scorers"].items():
        low, high = 100 * values["low"], 100 * values["high"]
        assert (
            f"| {scorer} | {100 * values['accuracy']:.1f}% [{low:.1f}%, {high:.1f}%]"
            in card.replace("**", "")
        )
    md5 = yaml.safe_load((project / "data.dvc").read_text())["outs"][0]["md5"]
    assert md5 in card
    # The run's snapshots are in the Evidently workspace (no reference yet: no drift ones).
    from social_reward.ops.evidently_history import read_runs

    runs = read_runs(project / "reports" / "evidently_workspace", "social-reward")
    assert [run.tags for run in runs] == [("reward scores",)]


def test_the_site_and_every_report_render_in_a_real_browser(reproduced_project):
    project = reproduced_project
    site = project / "reports" / "index.html"
    evaluation = read_json(project / "metrics" / "evaluate.json")
    md5 = yaml.safe_load((project / "data.dvc").read_text())["outs"][0]["md5"]
    with chromium() as browser:
        index = check_page(browser, site, SCREENSHOTS / "site.png")
        assert index.problems == [], index.problems
        assert md5 in index.text and "Model card" in index.text
        reward = evaluation["remix_pairs"]["scorers"]["social_reward"]["accuracy"]
        assert f"{reward:.4g}" in index.text
        assert "passed" in index.text and "audit_pairs: 40" in index.text  # gates, params
        page = browser.new_page()
        page.goto(site.as_uri())
        assert page.locator("img").count() >= 5  # the image grids and figures
        assert page.locator("figure.dvc-plot svg").count() >= 4  # the Vega-Lite plots
        page.close()

        assert not (project / "dvc_plots").exists()  # the site links the images themselves
        targets = [local_target(link) for link in index.links]
        assert all(target is not None and target.exists() for target in targets), index.links
        reports = sorted({target for target in targets if target.suffix == ".html"})
        for folder in ("validate", "drift", "evaluate", "generator"):  # HTML or image grids
            assert any(f"reports/{folder}/" in target.as_posix() for target in targets), folder
        for target in reports:
            relative = target.relative_to(project / "reports")
            name = "-".join(relative.with_suffix(".png").parts)
            report = check_page(browser, target, SCREENSHOTS / name)
            assert report.problems == [], (relative, report.problems)
            assert report.text.strip(), relative


# One way to change each kind of project file without changing what it does.
TOUCHES = {
    ".py": "\n# touched by a test\n",
    ".sql": "\n-- touched by a test\n",
    ".j2": "{# touched by a test #}\n",
    ".json": "\n",
}


def representative_files() -> list[Path]:
    """One project file per distinct set of stages that use it (the code graph's answer),
    and one file of each resource kind: changing any file of a set acts as its
    representative does, since dvc.yaml lists files, not whole libraries."""
    from tests.code_graph import REPO_ROOT, code_files, modules, resources, stage_modules

    used = {stage: code_files(module) for stage, module in stage_modules().items()}
    every = sorted(path.relative_to(REPO_ROOT) for path in [*modules().values(), *resources()])
    chosen: dict[frozenset, Path] = {}
    for path in every:
        chosen.setdefault(frozenset(s for s, files in used.items() if path in files), path)
    kinds = {path.suffix: path for path in every if path.suffix != ".py"}
    return sorted(set(chosen.values()) | set(kinds.values()))


def test_changing_a_code_file_reruns_exactly_the_stages_that_use_it(reproduced_project):
    """Edit one file at a time in the reproduced project; `dvc status` must name exactly
    the stages whose module imports or reads it (and nothing when none does)."""
    from tests.code_graph import code_files, stage_modules

    project = reproduced_project
    used = {stage: code_files(module) for stage, module in stage_modules().items()}
    files = representative_files()
    assert len(files) > 30
    for relative in files:
        path = project / relative
        original = path.read_bytes()
        try:
            path.write_bytes(original + TOUCHES[path.suffix].encode())
            status = json.loads(run(["dvc", "status", "--json"], cwd=project).stdout)
        finally:
            path.write_bytes(original)
        changed = {name.split("@")[0] for name in status}
        expected = {stage for stage, files in used.items() if relative in files}
        assert changed == expected, relative
        if "train" in expected:
            assert {"train@reward", "train@ablation"} <= set(status), relative
    assert json.loads(run(["dvc", "status", "--json"], cwd=project).stdout) == {}


def test_a_bad_export_stops_the_pipeline_at_the_validation_gate(small_project):
    import pyarrow.parquet as pq

    users = pq.read_table(small_project / "data" / "users.parquet").drop_columns(["followers"])
    pq.write_table(users, small_project / "data" / "users.parquet")
    result = run(["dvc", "repro"], cwd=small_project, check=False)
    assert result.returncode != 0
    assert "users.parquet: column 'followers' missing" in result.stderr
    assert not (small_project / "artifacts" / "pairs").exists()


def test_a_drifted_export_stops_dvc_repro_train_at_the_drift_gate(small_project, drifted_export):
    """No stage that reads the export can run past a failed gate: `dvc repro train` runs the
    drift gate first (its verdict is a dep of pairs), and running a stage alone refuses it."""
    project = small_project
    run(["dvc", "repro", "drift"], cwd=project)  # no reference yet: passes
    reference = project / "models" / "production" / "champion" / "drift_reference.parquet"
    reference.parent.mkdir(parents=True)
    shutil.copy(project / "artifacts" / "drift" / "features.parquet", reference)
    shutil.rmtree(project / "data")
    shutil.copytree(drifted_export.export_dir, project / "data")
    run(["dvc", "add", "-q", "data"], cwd=project)

    result = run(["dvc", "repro", "train"], cwd=project, check=False)
    assert result.returncode != 0
    assert "error: drift gate:" in result.stderr
    assert not (project / "artifacts" / "pairs").exists()
    assert not (project / "models" / "reward").exists()

    for command in (["social-reward", "pairs"], ["dvc", "repro", "--single-item", "pairs"]):
        alone = run(command, cwd=project, check=False)
        assert alone.returncode != 0
        assert "artifacts/gates/drift.json: the drift gate did not pass this export" in (
            alone.stderr + alone.stdout
        )
        assert not (project / "artifacts" / "pairs").exists()


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
