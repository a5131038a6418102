"""`sqnn demo`: the main job — source-only, SQNN (a γ sweep) and the baselines on the shipped
W-jet case, the label-free selection, the comparison table and the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from sqnn.cases import get_generator
from sqnn.cli.options import Checked
from sqnn.cli.summary import terminal_summary
from sqnn.data import ColumnSpec
from sqnn.datasets import WJETS_FEATURES, wjets_path
from sqnn.errors import SqnnError
from sqnn.methods import METHODS, demo_methods
from sqnn.schema import Integer
from sqnn.training import TrainConfig
from sqnn.workflows.compare import run_compare
from sqnn.workflows.settings import Settings

__all__ = ["demo", "run_demo", "DEMO_GAMMAS", "DEMO_METHODS", "QUICK_METHODS"]

TOY_FEATURES = ("x0", "x1", "x2", "x3", "x4", "x5")
# the SQNN sweep of the closure study, around its default strength
DEMO_GAMMAS = METHODS["sqnn"].strengths
DEMO_METHODS = demo_methods("full")
QUICK_METHODS = demo_methods("quick")


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
    out: Path,
    *,
    case: str = "wjets",
    quick: bool = False,
    methods: tuple[str, ...] | None = None,
    gammas: tuple[float, ...] = DEMO_GAMMAS,
    seeds: int = 1,
    report: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Compare the methods on a case study (data labels for evaluation only) and write the report."""
    sim_file, data_file, spec = _inputs(case, out, quick)
    summary = run_compare(
        sim_file,
        data_file,
        Settings(columns=spec, train=TrainConfig(epochs=8 if quick else 30, seed=0)),
        out,
        methods=methods or (QUICK_METHODS if quick else DEMO_METHODS),
        gammas={"sqnn": gammas},
        seeds=seeds,
        data_label="is_signal",
        progress=progress,
    )
    if report:
        from sqnn.report import build_report

        if progress:
            click.echo("writing report.html (scoring the chosen runs, drawing the figures)", err=True)
        build_report(out)
    return summary


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"), show_default=True)
@click.option("--case", type=click.Choice(["wjets", "toy"]), default="wjets", show_default=True, help="Shipped W-jet data or the toy.")
@click.option("--quick", is_flag=True, help="Four methods and fewer epochs (a few minutes on 2 cores).")
@click.option("--seeds", type=Checked(Integer(1, 1000)), default=1, show_default=True, help="Seeds per setting.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo(out: Path, case: str, quick: bool, seeds: int, quiet: bool) -> None:
    """Train source-only, SQNN (γ sweep) and the baselines; print the table and write report.html."""
    if not quiet:
        data = "the shipped W-jet data" if case == "wjets" else "the toy"
        click.echo(f"sqnn demo on {data}: {', '.join(QUICK_METHODS if quick else DEMO_METHODS)}; "
                   f"{'a few minutes' if quick else 'about 5 minutes on 2 shared cores'}. Progress below; the table at the end.",
                   err=True)
    summary = run_demo(out, case=case, quick=quick, seeds=seeds, progress=not quiet)
    click.echo(terminal_summary(summary, out=str(out)))
    click.echo(f"\nNext: open {out / 'report.html'} in a browser; the run directories are under {out / 'runs'}.")
