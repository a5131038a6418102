"""`sqnn demo`: the main job on the shipped W-jet case (or the toy); prints the table and writes the report."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import click

from sqnn.cli.options import Checked
from sqnn.cli.summary import terminal_summary
from sqnn.schema import Integer
from sqnn.workflows.demo import CASES, DEMO_METHODS, QUICK_METHODS, run_demo

__all__ = ["demo"]


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo-out"), show_default=True)
@click.option("--case", type=click.Choice(list(CASES)), default="wjets", show_default=True, help="Shipped W-jet data or the toy.")
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
    summary = run_demo(out, case=case, quick=quick, seeds=seeds, progress=not quiet,
                       echo=None if quiet else partial(click.echo, err=True))
    click.echo(terminal_summary(summary, out=str(out)))
    click.echo(f"\nNext: open {out / 'report.html'} in a browser; the run directories are under {out / 'runs'}.")
