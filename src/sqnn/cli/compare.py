"""`sqnn compare`: every method over a γ sweep and seeds, the summary table and report.html."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sqnn.cli.options import EPOCHS, SEED, THREADS, Checked, data_options, device_option, engine_option
from sqnn.cli.summary import terminal_summary
from sqnn.schema import Integer, Real
from sqnn.errors import SqnnError
from sqnn.methods import METHODS
from sqnn.workflows.compare import parse_gammas, run_compare
from sqnn.workflows.selection import DEFAULT_DELTA, DISAGREEMENT_METRICS
from sqnn.workflows.settings import Settings, columns_from, read_config, split_list, train_config_from

__all__ = ["compare"]


def _per_method(config: dict[str, Any], key: str, methods: list[str]) -> dict[str, dict[str, Any]]:
    """``method_options`` / ``network`` of a config: a mapping from method name to settings."""
    value = config.get(key) or {}
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise SqnnError(f"--config: for compare, '{key}' maps a method name to its settings, e.g. {{sqnn: {{...}}}}")
    unknown = set(value) - set(methods)
    if unknown:
        raise SqnnError(f"--config: '{key}' names {', '.join(sorted(unknown))}, not among --methods")
    return {k: dict(v) for k, v in value.items()}


@click.command()
@click.option("--sim", "simulation", required=True, help="Labelled simulation file.")
@click.option("--data", "data", help="Data file.")
@click.option("--data-label", help="Class column in data, used only for the reported metrics.")
@data_options
@click.option("--methods", required=True, help=f"Comma-separated methods: {', '.join(METHODS)}.")
@click.option(
    "--gammas",
    multiple=True,
    help="Strengths to sweep: 'g1,g2,…' for every method with a penalty, or 'METHOD=g1,g2'; repeatable. "
    "Default: a grid per method.",
)
@click.option("--seeds", type=Checked(Integer(1, 1000)), default=3, show_default=True, help="Seeds per setting.")
@click.option("--epochs", type=EPOCHS, default=None, help="Maximum number of epochs per fit.")
@click.option("--seed", type=SEED, default=None, help="First seed (the others follow).")
@click.option("--delta", type=Checked(Real(0.0, 1.0)), default=DEFAULT_DELTA, show_default=True, help="Accuracy guard of the selection rule.")
@click.option(
    "--select-by",
    type=click.Choice(DISAGREEMENT_METRICS),
    default=None,
    help="Label-free disagreement the selection rule minimises [default: insitu_closure_80 with a signal-enriched region, else ks_control when a control column is given, else domain_auc].",
)
@device_option
@engine_option
@click.option("--jobs", type=THREADS, default=1, show_default=True, help="Fits run in parallel processes (Dask workers with --scheduler local).")
@click.option("--scheduler", default=None, help="Spread the fits over Dask: 'local' (a LocalCluster) or tcp://HOST:PORT.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config: columns, train, per-method method_options and network.")
@click.option("--no-report", is_flag=True, help="Skip report.html.")
@click.option("--quiet", is_flag=True, help="No progress output.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output directory.")
def compare(
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
    methods: str,
    gammas: tuple[str, ...],
    seeds: int,
    epochs: int | None,
    seed: int | None,
    delta: float,
    select_by: str | None,
    device: str | None,
    engine: str,
    jobs: int,
    scheduler: str | None,
    config_path: str | None,
    no_report: bool,
    quiet: bool,
    out: Path,
) -> None:
    """Train every method over its strength sweep and seeds; write summary.json, summary.md and report.html."""
    config = read_config(config_path)
    columns = columns_from(config, features=features, label=label, weight=weight, control=control, signal_control=signal_control, observer=observer)
    if columns.label is None:
        raise SqnnError(f"{simulation}: simulation needs a label column (--label COL)")
    names = list(split_list(methods) or ())
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        raise SqnnError(f"--methods: unknown method {', '.join(unknown) or '(none given)'}; choose from {', '.join(METHODS)}")
    try:
        grids = parse_gammas(gammas, names)
    except ValueError as exc:
        raise SqnnError(f"--gammas {exc}") from None
    shared = Settings(columns=columns, train=train_config_from(config, epochs=epochs, seed=seed, device=device), domain_column=domain_column)
    summary = run_compare(
        simulation,
        data,
        shared,
        out,
        methods=names,
        gammas=grids,
        seeds=seeds,
        data_label=data_label,
        method_options=_per_method(config, "method_options", names),
        network=_per_method(config, "network", names),
        delta=delta,
        disagreement=select_by,
        jobs=jobs,
        scheduler=scheduler,
        progress=not quiet,
        echo=None if quiet else click.echo,
        engine=engine,
    )
    if not no_report:
        try:
            from sqnn.report import build_report
        except ImportError as exc:
            raise SqnnError(
                f"report.html needs the plot extra: pip install 'sqnn[plot]' ({exc}); "
                f"summary.json and summary.md are in {out}, or rerun with --no-report"
            ) from None
        if not quiet:
            click.echo("writing report.html (scoring the chosen runs, drawing the figures)", err=True)
        build_report(out)
    click.echo(terminal_summary(summary))
    click.echo(f"wrote {out / 'summary.json'}, {out / 'summary.md'}" + ("" if no_report else f", {out / 'report.html'}"))
