"""`sqnn demo`: the main job — source-only against SQNN on the shipped W-jet case, with a γ sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sqnn._atomic import write_json
from sqnn.cases import get_generator
from sqnn.cli.run_commands import format_metrics
from sqnn.data import ColumnSpec
from sqnn.datasets import WJETS_FEATURES, wjets_path
from sqnn.errors import SqnnError
from sqnn.methods.sqnn import SQNNObjective
from sqnn.pipeline import evaluate_run, train_run
from sqnn.run import json_safe
from sqnn.train import TrainConfig

__all__ = ["demo", "run_demo", "DEMO_GAMMAS"]

TOY_FEATURES = ("x0", "x1", "x2", "x3", "x4", "x5")
DEMO_GAMMAS = (0.1, 0.3, 1.0, 2.0)


def _inputs(case: str, out: Path, quick: bool) -> tuple[Path, Path, ColumnSpec]:
    if case == "wjets":
        sim, data = wjets_path("sim"), wjets_path("data")
        if not (sim.exists() and data.exists()):
            raise SqnnError(f"{sim.parent}: the shipped W-jet dataset is missing; reinstall sqnn or use --case toy")
        return sim, data, ColumnSpec(features=WJETS_FEATURES, label="is_signal", control="control", observer="pt")
    generate = get_generator("toy")
    n = 8000 if quick else 40000
    sim = generate("sim", n, 1, out / "toy_sim.parquet")
    data = generate("data", n, 2, out / "toy_data.parquet")
    return sim, data, ColumnSpec(features=TOY_FEATURES, label="is_signal", weight="weight", control="control", observer="mass")


def run_demo(
    out: Path, *, case: str = "wjets", quick: bool = False, gammas: tuple[float, ...] = DEMO_GAMMAS, progress: bool = True
) -> dict[str, dict[str, Any]]:
    """Train source-only, SQNN at its default γ and a γ sweep; evaluate each with the data labels."""
    sim_file, data_file, spec = _inputs(case, out, quick)
    config = TrainConfig(epochs=8 if quick else 30, seed=0)
    default_gamma = SQNNObjective().gamma
    settings: list[tuple[str, str, float | None]] = [("source-only", "source-only", None)]
    settings += [(f"sqnn γ={g:g}" + (" (default)" if g == default_gamma else ""), "sqnn", g) for g in sorted({*gammas, default_gamma})]
    table: dict[str, dict[str, Any]] = {}
    for name, method, gamma in settings:
        run_dir = out / "runs" / (method if gamma is None else f"sqnn_gamma{gamma:g}")
        train_run(sim_file, data_file, spec, run_dir, method=method, gamma=gamma, train_config=config, progress=progress)
        table[name] = evaluate_run(run_dir, sim_file, data_file, data_label="is_signal", out=run_dir / "metrics.json")
    write_json(out / "summary.json", json_safe(table))
    return table


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"), show_default=True)
@click.option("--case", type=click.Choice(["wjets", "toy"]), default="wjets", show_default=True, help="Shipped W-jet data or the toy.")
@click.option("--quick", is_flag=True, help="Fewer epochs (a few minutes on 2 cores).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo(out: Path, case: str, quick: bool, quiet: bool) -> None:
    """Train source-only and SQNN (γ sweep) and print the comparison table."""
    table = run_demo(out, case=case, quick=quick, progress=not quiet)
    click.echo(format_metrics(table, keys=TABLE_KEYS))
    click.echo(f"run directories, metrics.json per run and summary.json in {out}")


TABLE_KEYS = ("auc_source", "auc_target", "ks", "ks_signal", "ks_background", "domain_auc", "mi_bits", "sf_signal", "sf_background")
