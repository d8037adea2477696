"""The `social-reward` command: one sub-command per DVC stage (run by `dvc repro`), plus the
simulator, the retrain steps, scoring and run configurations. It parses, calls and prints.

Errors are handled in one place (`CommandGroup`): a `SocialRewardError` becomes one line,
`error: <message>`, on stderr and exit status 1. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import click
import typer
from typer.core import TyperGroup

from social_reward.artifacts import StageResult
from social_reward.config.section import DEFAULT_PARAMS
from social_reward.errors import SocialRewardError

FAILED = 1  # exit status of a command that stopped with a SocialRewardError
UNSCORED_ROWS = 2  # `score`: some images could not be read; the others were scored


class CommandGroup(TyperGroup):
    """The one place where the project's errors become a message and an exit status."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SocialRewardError as error:
            typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
            raise typer.Exit(code=FAILED) from None


app = typer.Typer(
    cls=CommandGroup,
    help="Social Reward: learn what a creative community likes from its remixes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

ParamsOption = Annotated[Path, typer.Option("--params", help="The pipeline's params.yaml.")]


def _show(result: StageResult) -> None:
    for line in result.summary:
        typer.echo(line)
    if result.written:
        typer.echo("wrote " + ", ".join(str(path) for path in result.written))


# ---- the DVC stages, in pipeline order ------------------------------------------------------


@app.command()
def validate(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage `validate`: check the export against its contract; quarantine bad rows (gate)."""
    from social_reward.stages import validate as stage

    _show(stage.main(params))


@app.command()
def profile(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage `profile`: counts of the export and how raw remix counts follow confounders."""
    from social_reward.stages import profile as stage

    _show(stage.main(params))


@app.command()
def pairs(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage `pairs`: debiased (or naive) preference pairs and their train/val/test splits."""
    from social_reward.stages import pairs as stage

    _show(stage.main(params))


@app.command()
def drift(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage `drift`: compare the export with the production model's reference (gate)."""
    from social_reward.stages import drift as stage

    _show(stage.main(params))


@app.command()
def pretrain(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage `pretrain`: the backbone, trained with the CLIP loss unless weights are given."""
    from social_reward.stages import pretrain as stage

    _show(stage.main(params))


@app.command()
def train(
    variant: Annotated[
        str, typer.Option(help="Which pairs (params.yaml train.variants): reward or ablation.")
    ] = "reward",
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Stage `train`: fine-tune the reward on preference pairs (Lightning)."""
    from social_reward.stages import train as stage

    _show(stage.main(variant, params))


@app.command()
def evaluate(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage `evaluate`: the reward against every baseline on the test split."""
    from social_reward.stages import evaluate as stage

    _show(stage.main(params))


@app.command()
def generator_pretrain(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage `generator_pretrain`: the small default generator, or a local Stable Diffusion."""
    from social_reward.stages import generator_pretrain as stage

    _show(stage.main(params))


@app.command()
def finetune(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage `finetune`: LoRA adapters that raise the Social Reward of the generator."""
    from social_reward.stages import finetune as stage

    _show(stage.main(params))


@app.command()
def evaluate_generator(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage `evaluate_generator`: base vs fine-tuned generator under every judge."""
    from social_reward.stages import evaluate_generator as stage

    _show(stage.main(params))


@app.command()
def report(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Stage `report`: the run's site (reports/index.html), model card and Evidently history."""
    from social_reward.stages import report as stage

    _show(stage.main(params))


# ---- data, retraining, scoring, configurations --------------------------------------------


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
        typer.Option(
            help="Write tables and manifest only, at paper scale unless sizes are given; "
            "prompts spread as in the paper's data (16 images per prompt, Zipf 1)."
        ),
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
    from social_reward.config.run_config import load_run_config
    from social_reward.simulate import world_from_options, write_export
    from social_reward.simulate.config import (
        PAPER_SCALE_IMAGES,
        PAPER_SCALE_PROMPTS,
        PAPER_SCALE_USERS,
    )

    options: dict[str, int] = {}
    if metadata_only:
        options = {"users": PAPER_SCALE_USERS, "images": PAPER_SCALE_IMAGES, **PAPER_SCALE_PROMPTS}
    if config is not None:
        options.update(load_run_config(config).simulate.model_dump(exclude_none=True))
    given = {"seed": seed, "users": users, "images": images, "days": days, "image_size": image_size}
    options.update({key: value for key, value in given.items() if value is not None})
    world = world_from_options(options, later_days, drifted)
    summary = write_export(
        world, out, truth, metadata_only=metadata_only, overwrite=overwrite, workers=workers
    )
    typer.echo(
        f"wrote {out}: {summary.users} users, {summary.images} images, "
        f"{summary.remixes} remixes, {summary.prompts} prompts"
        + (f"; truth in {truth}" if truth else "")
    )


@app.command()
def generic_backbone(
    out: Annotated[Path, typer.Option(help="Folder the backbone is written to.")],
    images: Annotated[
        int | None, typer.Option(min=1, help="Images of the generic corpus [40000].")
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Contrastive epochs [8].")] = None,
    image_size: Annotated[int | None, typer.Option(min=16, help="Side of its images [64].")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Render processes (default: all cores).")
    ] = None,
) -> None:
    """Pretrain the generic backbone on a simulated captioned corpus (off the pipeline's
    clock); `model.pretrained` then loads it like any real checkpoint."""
    from social_reward.reward.generic_backbone import GenericBackboneConfig, pretrain_generic

    settings = GenericBackboneConfig().model_dump()
    corpus = {"images": images, "image_size": image_size}
    settings["corpus"].update({key: value for key, value in corpus.items() if value is not None})
    if epochs is not None:
        settings["epochs"] = epochs
    config = GenericBackboneConfig.model_validate(settings)
    record = pretrain_generic(config, out, workers)
    typer.echo(f"wrote {out}: {config.backbone}, {record['captions']} distinct captions")


@app.command()
def intake(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Retrain: take the newest fresh export from the inbox, check it and put it in place.

    Prints one JSON line: the export taken (null when the inbox holds nothing newer).
    """
    from social_reward.config.params import load_params
    from social_reward.ops.retrain import intake

    typer.echo(json.dumps(intake(load_params(params))))


@app.command()
def gx_project(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Regenerate the validate stage's Great Expectations project (validate.expectations_dir
    /gx: the export's data source, one checkpoint per table) after a change of tables."""
    from social_reward.config.section import load_section
    from social_reward.config.validate import ValidateConfig
    from social_reward.data.gx_project import write_gx_project

    config = load_section(params, ValidateConfig)
    typer.echo(f"wrote {write_gx_project(config.expectations_dir)}")


@app.command()
def schedule(
    field: Annotated[str, typer.Argument(help="cron or timezone")],
    params: ParamsOption = DEFAULT_PARAMS,
) -> None:
    """Print the retrain schedule's cron or time zone (prefect.yaml's deployments read it)."""
    from social_reward.config.params import load_params

    schedule = load_params(params).retrain.schedule
    if field not in type(schedule).model_fields:
        raise SocialRewardError(
            f"{params}: retrain.schedule has no field {field!r}; "
            f"fields: {', '.join(type(schedule).model_fields)}, e.g. `social-reward schedule cron`"
        )
    typer.echo(getattr(schedule, field))


@app.command()
def version_run(params: ParamsOption = DEFAULT_PARAMS) -> None:
    """Retrain: commit and tag the run's versioned files, push its data and models.

    Prints one JSON line: the commit, the tag and the remotes pushed to.
    """
    from social_reward.config.params import load_params
    from social_reward.ops.versioning import version_run

    typer.echo(json.dumps(version_run(load_params(params).retrain.versioning)))


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
    from social_reward.config.params import load_params
    from social_reward.ops.registry import challenge

    typer.echo(json.dumps(challenge(load_params(params), incomplete_reason=incomplete)))


@app.command()
def score(
    model: Annotated[Path, typer.Option(help="A saved Social Reward model folder.")],
    input: Annotated[
        Path, typer.Option("--input", help="Parquet or CSV with columns prompt and file.")
    ],
    output: Annotated[Path, typer.Option(help="Parquet or CSV: the rows with a score.")],
    batch_size: Annotated[int, typer.Option(help="Images encoded at a time.")] = 64,
    # The device options: unset, LightningOptions' defaults (training's: one CPU process).
    accelerator: Annotated[
        str | None, typer.Option(help="Lightning accelerator: cpu (default), gpu, auto.")
    ] = None,
    devices: Annotated[
        str | None, typer.Option(help="Devices per node: a count (default 1), 0,1 or auto.")
    ] = None,
    num_nodes: Annotated[int | None, typer.Option(help="Nodes (default 1).")] = None,
    strategy: Annotated[
        str | None, typer.Option(help="Lightning strategy: auto (default), ddp, ...")
    ] = None,
    precision: Annotated[
        str | None, typer.Option(help="Lightning precision: 32-true (default), bf16-mixed, ...")
    ] = None,
    decode_workers: Annotated[
        int, typer.Option(help="DataLoader workers decoding images, per process (0: inline).")
    ] = 0,
    rows_per_batch: Annotated[
        int, typer.Option(help="Rows read, decoded and scored at a time by a process.")
    ] = 256,
) -> None:
    """Score (prompt, image file) rows with a saved reward; unreadable images get no score.

    Runs through Lightning like training: several devices or nodes (DDP) split the rows.
    """
    from social_reward.reward.model import SocialReward
    from social_reward.reward.scoring import score_table
    from social_reward.training.lightning_options import LightningOptions

    reward = SocialReward.from_pretrained(model, batch_size=batch_size)
    given = {
        "accelerator": accelerator,
        "devices": int(devices) if devices and devices.lstrip("-").isdigit() else devices,
        "num_nodes": num_nodes,
        "strategy": strategy,
        "precision": precision,
    }
    options = LightningOptions(**{key: value for key, value in given.items() if value is not None})
    scored = score_table(
        reward,
        input,
        output,
        options=options,
        decode_workers=decode_workers,
        rows_per_batch=rows_per_batch,
    )
    if not scored.main_process:  # another DDP process: the main one reports for all
        return
    for problem in scored.errors:
        typer.secho(f"error: unreadable image {problem}", fg=typer.colors.RED, err=True)
    typer.echo(f"scored {scored.scored} of {scored.rows} rows into {output}")
    if scored.errors:
        raise typer.Exit(code=UNSCORED_ROWS)


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

    from social_reward.artifacts import write_text_atomic
    from social_reward.config.params import Params, load_params
    from social_reward.config.run_config import load_run_config
    from social_reward.config.section import validated

    run_config = load_run_config(config)
    if write is None:
        typer.echo(" ".join(run_config.dvc_set_params()))
        return
    load_params(write)  # refuse to rewrite a params.yaml that does not load
    applied = run_config.apply_to(yaml.safe_load(write.read_text(encoding="utf-8")))
    validated(write, Params, applied)  # nor write one that would not
    write_text_atomic(write, yaml.safe_dump(applied, sort_keys=False))
    typer.echo(f"wrote {write} with the overrides of {config}")


if __name__ == "__main__":
    app()
