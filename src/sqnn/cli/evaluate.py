"""`sqnn evaluate`: the metrics of a trained run on simulation and data files."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sqnn.cli.options import data_options, device_option, engine_option
from sqnn.cli.summary import terminal_metrics
from sqnn.data import ColumnSpec
from sqnn.errors import SqnnError
from sqnn.methods import strength_of
from sqnn.nn.model import SCORING_MODES
from sqnn.workflows.train import evaluate_run

__all__ = ["evaluate"]


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--sim", "simulation", required=True, help="Labelled simulation file.")
@click.option("--data", "data", help="Data file.")
@click.option("--data-label", help="Class column in data, used only for evaluation.")
@data_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="metrics.json to write.")
@click.option("--inference", type=click.Choice(SCORING_MODES), default=None,
              help="Score with this mode instead of the network's own (network.inference).")
@device_option
@engine_option
def evaluate(
    run_dir: Path,
    simulation: str,
    data: str | None,
    data_label: str | None,
    features: str | None,
    label: str | None,
    weight: str | None,
    control: str | None,
    signal_control: str | None,
    observer: str | None,
    domain_column: str | None,
    out: Path | None,
    inference: str | None,
    device: str | None,
    engine: str,
) -> None:
    """Metrics of a trained run; on its own training files only the test split is used."""
    if features is not None:
        raise SqnnError("evaluate uses the run's own features; drop --features")
    columns = ColumnSpec(label=label, weight=weight, control=control, signal_control=signal_control, observer=observer)
    metrics = evaluate_run(
        run_dir, simulation, data, data_label=data_label, columns=columns, domain_column=domain_column, out=out,
        inference=inference, device=device, engine=engine,
    )
    if out is None:
        click.echo(json.dumps(metrics, indent=2))
        return
    meta = json.loads((run_dir / "model.json").read_text())
    click.echo(terminal_metrics(str(meta.get("method", run_dir.name)), strength_of(str(meta.get("method")), meta.get("gamma")), metrics))
    click.echo(f"wrote {out} (every metric)")
