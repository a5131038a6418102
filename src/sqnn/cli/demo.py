"""`sqnn demo`: the main job — source-only against SQNN on a case study, with a γ sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sqnn._atomic import write_json
from sqnn.cases import get_generator
from sqnn.cli.run_commands import format_metrics
from sqnn.data import ColumnSpec
from sqnn.pipeline import evaluate_run, train_run
from sqnn.run import json_safe
from sqnn.train import TrainConfig

__all__ = ["demo", "run_demo"]

TOY_FEATURES = ("x0", "x1", "x2", "x3", "x4", "x5")
DEFAULT_GAMMAS = (0.3, 1.0, 3.0, 10.0)


def run_demo(out: Path, *, quick: bool, gammas: tuple[float, ...] = DEFAULT_GAMMAS, progress: bool = True) -> dict[str, dict[str, Any]]:
    """Generate the toy, train source-only and SQNN over ``gammas``, evaluate with data labels."""
    n = 8000 if quick else 40000
    generate = get_generator("toy")
    sim_file = generate("sim", n, 1, out / "toy_sim.parquet")
    data_file = generate("data", n, 2, out / "toy_data.parquet")
    spec = ColumnSpec(features=TOY_FEATURES, label="is_signal", weight="weight", control="control", observer="mass")
    config = TrainConfig(epochs=8 if quick else 25, seed=0)
    settings: list[tuple[str, str, float | None]] = [("source-only", "source-only", None)]
    settings += [(f"sqnn γ={g:g}", "sqnn", g) for g in gammas]
    table: dict[str, dict[str, Any]] = {}
    for name, method, gamma in settings:
        run_dir = out / "runs" / name.replace(" ", "_").replace("γ=", "gamma")
        train_run(sim_file, data_file, spec, run_dir, method=method, gamma=gamma, train_config=config, progress=progress)
        table[name] = evaluate_run(run_dir, sim_file, data_file, data_label="is_signal", out=run_dir / "metrics.json")
    write_json(out / "summary.json", json_safe(table))
    return table


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"), show_default=True)
@click.option("--quick", is_flag=True, help="Smaller samples and fewer epochs (a few minutes on 2 cores).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo(out: Path, quick: bool, quiet: bool) -> None:
    """Train source-only and SQNN (γ sweep) and print the comparison table."""
    table = run_demo(out, quick=quick, progress=not quiet)
    click.echo(format_metrics(table))
    click.echo(f"run directories and summary.json in {out}")
