"""The `social-reward` command: one sub-command per stage. It parses, calls and prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from social_reward.config import DEFAULT_PARAMS, ParamsError, load_params, load_run_config
from social_reward.errors import GateFailed
from social_reward.export import ExportError
from social_reward.truth import TruthMismatchError

app = typer.Typer(
    help="Social Reward: learn what a creative community likes from its remixes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

ParamsOption = Annotated[Path, typer.Option("--params", help="The pipeline's params.yaml.")]


def _fail(error: Exception) -> None:
    typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Folder the export is written to.")] = Path("data"),
    truth: Annotated[
        Path | None,
        typer.Option(help="Where to write the ground truth (outside the export); none if omitted."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Same seed and options, same bytes [0].")] = None,
    users: Annotated[
        int | None,
        typer.Option(help="Accounts at the export moment (those who appear are listed)."),
    ] = None,
    images: Annotated[int | None, typer.Option(help="Images published over the period.")] = None,
    days: Annotated[
        int | None, typer.Option(help="Days from the platform's start to the export.")
    ] = None,
    image_size: Annotated[
        int | None, typer.Option(help="Side of the square images, in pixels.")
    ] = None,
    metadata_only: Annotated[
        bool,
        typer.Option(help="Write tables and manifest only, at paper scale unless sizes are given."),
    ] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an export already in --out.")] = False,
    workers: Annotated[
        int | None, typer.Option(help="Render processes (default: all cores).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="A run configuration (configs/*.yaml) giving the sizes.")
    ] = None,
    later_days: Annotated[
        int,
        typer.Option(
            help="A later export of the same community: this many more days of engagement "
            "and new images (the first export's rows are kept)."
        ),
    ] = 0,
    drifted: Annotated[
        bool,
        typer.Option(help="A drifted community: new generator, darker images, new caption words."),
    ] = False,
) -> None:
    """Write a simulated community export that follows the contract, and its ground truth."""
    from social_reward.simulate import write_export
    from social_reward.simulate.config import PAPER_SCALE_IMAGES, PAPER_SCALE_USERS, WorldConfig
    from social_reward.simulate.config import drifted as drifted_world

    sizes: dict[str, int] = {}
    if metadata_only:
        sizes = {"users": PAPER_SCALE_USERS, "images": PAPER_SCALE_IMAGES}
    try:
        if config is not None:
            sizes.update(load_run_config(config).simulate.model_dump(exclude_none=True))
        given = {
            "seed": seed,
            "users": users,
            "images": images,
            "days": days,
            "image_size": image_size,
        }
        sizes.update({key: value for key, value in given.items() if value is not None})
        if later_days < 0:
            raise ValueError(f"--later-days must be >= 0, got {later_days}")
        world = WorldConfig(**sizes)
        if later_days:
            world = world.model_copy(update={"snapshot_day": world.days + later_days})
        if drifted:
            world = drifted_world(world)
        summary = write_export(
            world, out, truth, metadata_only=metadata_only, overwrite=overwrite, workers=workers
        )
    except (FileExistsError, ValueError, ParamsError) as error:
        _fail(error)
    typer.echo(
        f"wrote {out}: {summary.users} users, {summary.images} images, "
        f"{summary.remixes} remixes, {summary.prompts} prompts"
        + (f"; truth in {truth}" if truth else "")
    )


@app.command()
def profile(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage `profile`: counts of the export and how raw remix counts follow confounders."""
    from social_reward.profile import run_profile

    try:
        config = load_params(params).profile
        metrics = run_profile(config)
    except (ParamsError, ExportError, TruthMismatchError) as error:
        _fail(error)
    typer.echo(json.dumps({"counts": metrics["counts"], "follow": metrics["raw_remixes_follow"]}))
    typer.echo(f"wrote {config.metrics} and {config.plot}")


@app.command()
def validate(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage `validate`: check the export against its contract; quarantine bad rows (gate)."""
    from social_reward.validate import SuiteError, run_validate

    try:
        config = load_params(params).validate_
        summary = run_validate(config)
    except (ParamsError, ExportError, SuiteError, GateFailed) as error:
        _fail(error)
    for name, counts in summary["tables"].items():
        typer.echo(
            f"{name}: {counts['rows_in']} rows, {counts['rows_kept']} kept, "
            f"{counts['rows_quarantined']} quarantined"
        )
    typer.echo(f"wrote {config.validated_dir}, {config.quarantine_dir}, {config.report}")


@app.command()
def pairs(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage `pairs`: debiased (or naive) preference pairs and their train/val/test splits."""
    from social_reward.pairs import run_pairs

    try:
        config = load_params(params).pairs
        metrics = run_pairs(config)
    except (ParamsError, ExportError, TruthMismatchError) as error:
        _fail(error)
    typer.echo(f"{config.mode} pairs: {json.dumps(metrics['pairs'])}")
    if "truth_agreement" in metrics:
        typer.echo(f"truth agreement: {json.dumps(metrics['truth_agreement'])}")
    typer.echo(f"wrote {config.out_dir} and {config.metrics}")


@app.command()
def drift(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage `drift`: compare the export with the production model's reference (gate)."""
    from social_reward.drift import run_drift

    try:
        config = load_params(params).drift
        metrics = run_drift(config)
    except (ParamsError, ExportError, GateFailed) as error:
        _fail(error)
    typer.echo(f"drift: {metrics['summary']}")
    typer.echo(f"wrote {config.report_dir} and {config.metrics}")


@app.command()
def pretrain(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage `pretrain`: the backbone, trained with the CLIP loss unless weights are given."""
    from social_reward.pretrain import run_pretrain
    from social_reward.reward.backbone import BackboneError
    from social_reward.reward.data import PairDataError

    try:
        loaded = load_params(params)
        metrics = run_pretrain(loaded.model, loaded.pretrain)
    except (ParamsError, BackboneError, PairDataError) as error:
        _fail(error)
    typer.echo(json.dumps(metrics))
    typer.echo(f"wrote {loaded.pretrain.out_dir} and {loaded.pretrain.metrics}")


@app.command()
def train(
    variant: Annotated[
        str, typer.Option(help="Which pairs (params.yaml train.variants): reward or ablation.")
    ] = "reward",
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Stage `train`: fine-tune the reward on preference pairs (Lightning)."""
    from social_reward.reward.backbone import BackboneError
    from social_reward.reward.data import PairDataError
    from social_reward.train import TrainingInterrupted, run_train

    try:
        config = load_params(params).train
        metrics = run_train(config, variant)
    except (ParamsError, BackboneError, PairDataError, TrainingInterrupted) as error:
        _fail(error)
    if metrics:  # the other processes of a multi-process run print nothing
        typer.echo(json.dumps(metrics))
        typer.echo(f"wrote {config.variants[variant].out_dir}")


@app.command()
def evaluate(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage `evaluate`: the reward against every baseline on the test split."""
    from social_reward.evaluate.external import ExternalWeightsError
    from social_reward.evaluate.stage import run_evaluate
    from social_reward.reward.backbone import BackboneError

    try:
        config = load_params(params).evaluate
        metrics = run_evaluate(config)
    except (
        ParamsError,
        BackboneError,
        ExportError,
        TruthMismatchError,
        ExternalWeightsError,
    ) as error:
        _fail(error)
    for section in ("remix_pairs", "truth"):
        if section in metrics:
            accuracy = {
                name: values["accuracy"] for name, values in metrics[section]["scorers"].items()
            }
            typer.echo(f"{section} accuracy: {json.dumps(accuracy)}")
    if "ablation" in metrics:
        typer.echo(f"ablation: {json.dumps(metrics['ablation'])}")
    typer.echo(f"wrote {config.metrics} and {config.report_dir}")


@app.command()
def generator_pretrain(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage `generator_pretrain`: the small default generator, or a local Stable Diffusion."""
    from social_reward.generator.pipeline import GeneratorError
    from social_reward.generator_pretrain import run_generator_pretrain
    from social_reward.reward.backbone import BackboneError
    from social_reward.reward.data import PairDataError

    try:
        loaded = load_params(params)
        metrics = run_generator_pretrain(loaded.generator, loaded.generator_pretrain)
    except (ParamsError, GeneratorError, BackboneError, PairDataError) as error:
        _fail(error)
    typer.echo(json.dumps(metrics))
    typer.echo(f"wrote {loaded.generator_pretrain.out_dir} and {loaded.generator_pretrain.metrics}")


@app.command()
def finetune(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage `finetune`: LoRA adapters that raise the Social Reward of the generator."""
    from social_reward.finetune import run_finetune
    from social_reward.generator.pipeline import GeneratorError
    from social_reward.reward.backbone import BackboneError
    from social_reward.reward.data import PairDataError

    try:
        loaded = load_params(params)
        metrics = run_finetune(loaded.finetune)
    except (ParamsError, GeneratorError, BackboneError, PairDataError) as error:
        _fail(error)
    typer.echo(json.dumps(metrics))
    typer.echo(f"wrote {loaded.finetune.out_dir} and {loaded.finetune.metrics}")


@app.command()
def evaluate_generator(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage `evaluate_generator`: base vs fine-tuned generator under every judge."""
    from social_reward.evaluate.external import ExternalWeightsError
    from social_reward.evaluate_generator import run_evaluate_generator
    from social_reward.generator.pipeline import GeneratorError
    from social_reward.reward.backbone import BackboneError
    from social_reward.reward.data import PairDataError

    try:
        loaded = load_params(params)
        metrics = run_evaluate_generator(loaded.evaluate_generator)
    except (
        ParamsError,
        GeneratorError,
        BackboneError,
        PairDataError,
        ExternalWeightsError,
        ExportError,
        TruthMismatchError,
    ) as error:
        _fail(error)
    typer.echo(json.dumps(metrics))
    typer.echo(f"wrote {loaded.evaluate_generator.metrics}")


@app.command()
def report(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage `report`: the run's site (reports/index.html), model card and Evidently history."""
    from social_reward.history import HistoryError
    from social_reward.report import ReportError, run_report

    try:
        written = run_report(load_params(params))
    except (ParamsError, ReportError, HistoryError) as error:
        _fail(error)
    typer.echo(json.dumps(written))
    typer.echo(f"open {written['site']} in a browser")


@app.command()
def intake(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Retrain: take the newest fresh export from the inbox, check it and put it in place.

    Prints one JSON line: the export taken (null when the inbox holds nothing newer).
    """
    from social_reward.dvc_command import DvcError
    from social_reward.retrain import IntakeError, intake

    try:
        result = intake(load_params(params))
    except (ParamsError, GateFailed, IntakeError, DvcError) as error:
        _fail(error)
    typer.echo(json.dumps(result))


@app.command()
def challenge(
    params: ParamsOption = DEFAULT_PARAMS,
    incomplete: Annotated[
        str | None,
        typer.Option(help="The pipeline did not finish, and why: recorded, nothing promoted."),
    ] = None,
) -> None:
    """Retrain: the new reward against the production one; promote it or not, and record why.

    Prints one JSON line: the registry entry of the decision.
    """
    from social_reward.dvc_command import DvcError
    from social_reward.registry import RegistryError, challenge

    try:
        decision = challenge(load_params(params), incomplete_reason=incomplete)
    except (ParamsError, RegistryError, DvcError) as error:
        _fail(error)
    typer.echo(json.dumps(decision))


@app.command()
def score(
    model: Annotated[Path, typer.Option(help="A saved Social Reward model folder.")],
    input: Annotated[
        Path, typer.Option("--input", help="Parquet or CSV with columns prompt and file.")
    ],
    output: Annotated[Path, typer.Option(help="Parquet or CSV: the rows with a score.")],
    batch_size: Annotated[int, typer.Option(help="Images encoded at a time.")] = 64,
) -> None:
    """Score (prompt, image file) rows with a saved reward; unreadable images get no score."""
    from social_reward.reward.backbone import BackboneError
    from social_reward.reward.model import SocialReward
    from social_reward.reward.scoring import ScoringInputError, score_table

    try:
        reward = SocialReward.from_pretrained(model, batch_size=batch_size)
        report = score_table(reward, input, output)
    except (BackboneError, ScoringInputError) as error:
        _fail(error)
    for problem in report.errors:
        typer.secho(f"error: unreadable image {problem}", fg=typer.colors.RED, err=True)
    typer.echo(f"scored {report.scored} of {report.rows} rows into {output}")
    if report.errors:
        raise typer.Exit(code=2)


@app.command()
def overrides(
    config: Annotated[Path, typer.Argument(help="A run configuration, configs/*.yaml.")],
    write: Annotated[
        Path | None,
        typer.Option(help="Apply them to this params.yaml in place (comments are not kept)."),
    ] = None,
) -> None:
    """Print a run configuration's params overrides as `dvc exp run` arguments, or apply them."""
    import yaml

    try:
        run_config = load_run_config(config)
        if write is None:
            typer.echo(" ".join(run_config.dvc_set_params()))
            return
        load_params(write)  # refuse to rewrite a params.yaml that does not load
        applied = run_config.apply_to(yaml.safe_load(write.read_text(encoding="utf-8")))
        write.write_text(yaml.safe_dump(applied, sort_keys=False), encoding="utf-8")
        load_params(write)
    except ParamsError as error:
        _fail(error)
    typer.echo(f"wrote {write} with the overrides of {config}")


if __name__ == "__main__":
    app()
