"""`sqnn generate CASE`: write a case-study sample."""

from __future__ import annotations

from pathlib import Path

import click

from sqnn.cases import CASES, get_generator
from sqnn.errors import SqnnError

__all__ = ["generate"]


@click.command()
@click.argument("case", type=click.Choice(sorted(CASES)))
@click.option("--domain", type=click.Choice(["sim", "data"]), help="Simulation or (pseudo-)data.  [required]")
@click.option("--n", "n", type=int, help="Number of rows (events or jets) to write.  [required]")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed; sim and data streams differ.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Output parquet file.  [required]")
@click.option("--workers", type=int, default=1, show_default=True, help="Generator processes (physics cases).")
@click.option("--constituents", is_flag=True, help="Add the leading constituents as a jagged column (wjets).")
@click.option("--signal-fraction", type=float, default=None, help="Signal fraction (default 0.5 sim, 0.3 data).")
@click.option("--shift", type=float, default=1.0, show_default=True, help="Size of the simulation/data shift (toy).")
@click.option("--channel", help="Analysis channel (events); see --list.")
@click.option("--list", "list_channels", is_flag=True, help="Print the channels of the case, NAME<TAB>signal|background (events).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def generate(
    case: str,
    domain: str | None,
    n: int | None,
    seed: int,
    out: Path | None,
    workers: int,
    constituents: bool,
    signal_fraction: float | None,
    shift: float,
    channel: str | None,
    list_channels: bool,
    quiet: bool,
) -> None:
    """Write a case study: `toy` (fast, for tests), `wjets` or `events` (Pythia 8 + FastJet)."""
    if list_channels or channel is not None:
        if case != "events":
            raise SqnnError(f"--list and --channel belong to the events case, not {case!r}")
    if list_channels:
        from sqnn.cases.events import channel_lines

        click.echo("\n".join(channel_lines()))
        return
    for value, flag in ((domain, "--domain"), (n, "--n"), (out, "--out")):
        if value is None:
            raise click.UsageError(f"Missing option '{flag}'.")
    assert domain is not None and n is not None and out is not None
    if n <= 0:
        raise SqnnError(f"--n must be positive, got {n}")
    if workers < 1:
        raise SqnnError(f"--workers must be at least 1, got {workers}")
    options: dict[str, object] = {"signal_fraction": signal_fraction}
    if case == "toy":
        options["shift"] = shift
    else:
        options.update(workers=workers, constituents=constituents, progress=not quiet)
    if case == "events":
        if constituents:
            raise SqnnError("--constituents belongs to the wjets case; events store objects, not constituents")
        options.pop("constituents")
        options["channel"] = channel
    try:
        generator = get_generator(case)
    except ImportError as exc:
        raise SqnnError(f"case {case!r} needs the physics extra: pip install 'sqnn[physics]' ({exc})") from None
    path = generator(domain, n, seed, out, **options)
    click.echo(f"wrote {path}")
