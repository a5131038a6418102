"""`sqnn train`: one model on labelled simulation and unlabelled data."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click

from sqnn.cli.options import CHUNK, EPOCHS, GAMMA, SEED, Checked, data_options, device_option
from sqnn.cli.summary import terminal_metrics
from sqnn.data.chunks import DEFAULT_CHUNK
from sqnn.errors import SqnnError
from sqnn.methods import METHODS, strength_of
from sqnn.methods.reweight import REWEIGHT_REGIONS
from sqnn.methods.sqnn import REGIONS
from sqnn.schema import Integer
from sqnn.workflows.settings import MODELS, Settings, columns_from, read_config, train_config_from
from sqnn.workflows.train import train_run

__all__ = ["train"]


@click.command()
@click.option("--sim", "simulation", required=True, help="Labelled simulation file.")
@click.option("--data", "data", help="Unlabelled data file.")
@data_options
@click.option("--method", type=click.Choice(sorted(METHODS)), default=None, help="Training objective [default: sqnn].")
@click.option("--gamma", type=GAMMA, default=None, help="Strength of the domain penalty.")
@click.option("--region", type=click.Choice(REGIONS), default=None, help="Events in the penalty (sqnn).")
@click.option("--reweight", type=click.Choice(("none",) + REWEIGHT_REGIONS), default=None,
              help="Reweight simulation to data before training, by a classifier of the control region or of all events "
                   "(sqnn, reweight).")
@click.option("--epochs", type=EPOCHS, default=None, help="Maximum number of epochs.")
@click.option("--seed", type=SEED, default=None, help="Random seed.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config (flags win).")
@click.option("--resume", is_flag=True, help="Continue from the run directory's last checkpoint (same settings and inputs).")
@click.option("--overwrite", is_flag=True, help="Replace the run that --out already holds.")
@click.option("--distributed", is_flag=True, help="Data-parallel training under torchrun (gloo on CPU); rank 0 writes the run.")
@click.option("--model", "model", type=click.Choice(MODELS), default="dense", show_default=True,
              help="Feed-forward network on the features, or a permutation-invariant set model on --objects.")
@click.option("--objects", help="Jagged column of objects (records) per event, read by --model set.")
@click.option("--max-objects", type=Checked(Integer(1, 1024)), default=12, show_default=True, help="Objects kept per event (set model).")
@device_option
@click.option("--chunked", is_flag=True, help="Read simulation and data in chunks instead of loading them (inputs larger than memory).")
@click.option("--stream", "chunked_alias", is_flag=True, hidden=True, help="The earlier name of --chunked.")
@click.option("--chunk", type=CHUNK, default=DEFAULT_CHUNK, show_default=True, help="Events per chunk with --chunked.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run directory.")
def train(
    simulation: str,
    data: str | None,
    features: str | None,
    label: str | None,
    weight: str | None,
    control: str | None,
    signal_control: str | None,
    observer: str | None,
    domain_column: str | None,
    method: str | None,
    gamma: float | None,
    region: str | None,
    reweight: str | None,
    epochs: int | None,
    seed: int | None,
    config_path: str | None,
    resume: bool,
    overwrite: bool,
    distributed: bool,
    model: str,
    objects: str | None,
    max_objects: int,
    device: str | None,
    chunked: bool,
    chunked_alias: bool,
    chunk: int,
    quiet: bool,
    out: Path,
) -> None:
    """Train one model on labelled simulation and unlabelled data."""
    config = read_config(config_path)
    columns = columns_from(config, features=features, label=label, weight=weight, control=control, signal_control=signal_control, observer=observer)
    if objects is not None and model != "set":
        raise SqnnError("--objects is read by the set model: add --model set")
    if model == "set":
        if objects is None:
            raise SqnnError("--model set needs the objects column: --objects COL")
        if max_objects < 1:
            raise SqnnError(f"--max-objects must be at least 1, got {max_objects}")
        columns = replace(columns, objects=objects, max_objects=max_objects)
    if columns.label is None:
        raise SqnnError(f"{simulation}: simulation needs a label column (--label COL)")
    if distributed and model != "dense":
        raise SqnnError("--distributed trains dense networks; drop --model set")
    settings = Settings.from_config(
        config,
        columns=columns,
        method=method,
        gamma=gamma,
        method_options=_method_options(config, method, region, reweight),
        train=train_config_from(config, epochs=epochs, seed=seed, device=device),
        model=model,
        domain_column=domain_column,
    )
    run, metrics = train_run(
        simulation, data, settings, out, resume=resume, progress=not quiet, distributed=distributed, chunked=chunked or chunked_alias, chunk=chunk,
        overwrite=overwrite,
    )
    if run is None or metrics is None:  # every rank but 0: rank 0 writes and reports the run
        return
    click.echo(terminal_metrics(run.meta["method"], strength_of(run.meta["method"], run.meta.get("gamma")), metrics))
    click.echo(f"wrote the run to {out} (model, history.json, metrics.json)")


def _method_options(config: dict, method: str | None, region: str | None, reweight: str | None) -> dict[str, str] | None:
    """The method options the flags set: ``--region``, and ``--reweight`` in the option its method names it by."""
    options = {} if region is None else {"region": region}
    if reweight is None:
        return options or None
    chosen = method or config.get("method") or "sqnn"
    if chosen == "sqnn":
        options["reweight"] = reweight
    elif chosen == "reweight":
        if region is not None:
            raise SqnnError("--method reweight: give its region with --reweight control|all, not --region as well")
        if reweight == "none":
            raise SqnnError("--method reweight always reweights: --reweight control or all")
        options["region"] = reweight
    else:
        raise SqnnError(f"--reweight is an option of --method sqnn and reweight, not of {chosen}")
    return options
