"""The `social-reward` command: one sub-command per stage. It parses, calls and prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from social_reward.config import DEFAULT_PARAMS, ParamsError, load_params, load_run_config
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
) -> None:
    """Write a simulated community export that follows the contract, and its ground truth."""
    from social_reward.simulate import write_export
    from social_reward.simulate.config import PAPER_SCALE_IMAGES, PAPER_SCALE_USERS, WorldConfig

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
        world = WorldConfig(**sizes)
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
def overrides(
    config: Annotated[Path, typer.Argument(help="A run configuration, configs/*.yaml.")],
) -> None:
    """Print a run configuration's params overrides as `dvc exp run` arguments."""
    try:
        typer.echo(" ".join(load_run_config(config).dvc_set_params()))
    except ParamsError as error:
        _fail(error)


if __name__ == "__main__":
    app()
