"""`sqnn generate CASE`: write a case-study sample."""

from __future__ import annotations

from pathlib import Path

import click

from sqnn.cases import CASES, get_generator
from sqnn.errors import SqnnError

__all__ = ["generate"]


@click.command()
@click.argument("case", type=click.Choice(sorted(CASES)))
@click.option("--domain", type=click.Choice(["sim", "data"]), required=True, help="Simulation or (pseudo-)data.")
@click.option("--n", "n", type=int, required=True, help="Number of rows (events or jets) to write.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed; sim and data streams differ.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output parquet file.")
@click.option("--workers", type=int, default=1, show_default=True, help="Generator processes (physics cases).")
@click.option("--constituents", is_flag=True, help="Add the leading constituents as a jagged column (wjets).")
@click.option("--signal-fraction", type=float, default=None, help="Signal fraction (default 0.5 sim, 0.3 data).")
@click.option("--shift", type=float, default=1.0, show_default=True, help="Size of the simulation/data shift (toy).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def generate(
    case: str,
    domain: str,
    n: int,
    seed: int,
    out: Path,
    workers: int,
    constituents: bool,
    signal_fraction: float | None,
    shift: float,
    quiet: bool,
) -> None:
    """Write a case study: `toy` (fast, for tests) or `wjets` (Pythia 8 + FastJet)."""
    if n <= 0:
        raise SqnnError(f"--n must be positive, got {n}")
    if workers < 1:
        raise SqnnError(f"--workers must be at least 1, got {workers}")
    options: dict[str, object] = {"signal_fraction": signal_fraction}
    if case == "toy":
        options["shift"] = shift
    else:
        options.update(workers=workers, constituents=constituents, progress=not quiet)
    try:
        generator = get_generator(case)
    except ImportError as exc:
        raise SqnnError(f"case {case!r} needs the physics extra: pip install 'sqnn[physics]' ({exc})") from None
    path = generator(domain, n, seed, out, **options)
    click.echo(f"wrote {path}")
