"""`sqnn suite`: the simulation/data pairs, one per shift factor (see docs/suite.md)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sqnn.cli.options import COUNT, SEED, THREADS
from sqnn.errors import SqnnError

__all__ = ["suite"]


@click.group()
def suite() -> None:
    """Simulation/data pairs of W and top jets, one per shift factor, to test closure on shifts
    a method was not tuned on."""


@suite.command("list")
@click.option("--process", type=click.Choice(["wjets", "topjets"]), help="Only the cases of one process.")
def list_cases(process: str | None) -> None:
    """Print NAME<TAB>FACTORS<TAB>what the data side is, one case a line."""
    from sqnn.cases import suite as registry

    for case in registry.CASES.values():
        if process is None or case.process == process:
            click.echo(f"{case.name}\t{','.join(case.factors) or 'none'}\t{case.describe()}")


def _sizes(func):  # type: ignore[no-untyped-def]
    for option in reversed([
        click.argument("names", nargs=-1),
        click.option("--n-train", type=COUNT, default=None,
                     help="Jets per training file (default: recommended, wjets 50000, topjets 40000)."),
        click.option("--n-eval", type=COUNT, default=None,
                     help="Jets per evaluation file (default: recommended, wjets 110000, topjets 200000)."),
        click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of every sequence of hard events of the suite."),
    ]):
        func = option(func)
    return func


@suite.command()
@_sizes
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Suite folder.")
@click.option("--workers", type=THREADS, default=1, show_default=True, help="Generator processes (the files do not depend on it).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def make(names: tuple[str, ...], n_train: int | None, n_eval: int | None, seed: int, out: Path, workers: int,
         quiet: bool) -> None:
    """Make the four files of every named case (or group: all, wjets, topjets) under OUT/NAME/.

    Files already made with the same settings are kept; an interrupted run resumes.
    """
    from sqnn.cases import suite as registry

    if workers < 1:
        raise SqnnError(f"--workers must be at least 1, got {workers}")
    folders = registry.make(names, out, n_train=n_train, n_eval=n_eval, seed=seed, workers=workers,
                            progress=not quiet, log=None if quiet else lambda line: click.echo(line, err=True))
    for name, folder in folders.items():
        click.echo(f"{name}\t{folder}")


@suite.command()
@_sizes
def plan(names: tuple[str, ...], n_train: int | None, n_eval: int | None, seed: int) -> None:
    """Print the sequences of hard events and the files the named cases need and their estimated CPU cost, as JSON."""
    from sqnn.cases import suite as registry

    click.echo(json.dumps(registry.estimate(names, n_train=n_train, n_eval=n_eval, seed=seed), indent=2))


@suite.command()
@click.argument("process", type=click.Choice(["wjets", "topjets"]))
@click.option("--setting", default="nominal", show_default=True, help="Generator setting of the suite.")
@click.option("--events", type=COUNT, default=400, show_default=True, help="Hard events per class.")
@click.option("--seed", type=SEED, default=1, show_default=True)
def measure(process: str, setting: str, events: int, seed: int) -> None:
    """Measure CPU seconds of Pythia and of each reconstruction on a small sample, as JSON."""
    from sqnn.cases import suite as registry

    click.echo(json.dumps(registry.measure(process, setting, events=events, seed=seed), indent=2))
