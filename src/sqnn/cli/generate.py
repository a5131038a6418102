"""`sqnn generate CASE`: write a case-study sample."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from sqnn.cases import CASES, get_generator
from sqnn.cli.options import COUNT, FINITE, FRACTION, SEED, THREADS, Checked
from sqnn.errors import SqnnError
from sqnn.schema import Real

__all__ = ["generate", "knob_options", "knobs_from"]

BOOSTED = ("wjets", "topjets")
TUNES = {"monash": 14, "a14": 21}


def _tune(text: str | None) -> int | None:
    if text is None:
        return None
    if text.lower() in TUNES:
        return TUNES[text.lower()]
    try:
        return int(text)
    except ValueError:
        raise SqnnError(f"--tune must be monash, a14 or a Pythia Tune:pp number, got {text!r}") from None


# (option, knob, type, help): the shifts of `sqnn.cases.boosted.resolve` and the tag efficiencies of
# `sqnn.cases.boosted.generate_file`, unset = the domain's default
KNOB_OPTIONS: list[tuple[str, str, Any, str]] = [
    ("--tune", "tune", str, "Pythia tune: monash, a14 or a Tune:pp number (default: monash sim, a14 data)."),
    ("--fsr-alpha-s", "fsr_alpha_s", float, "Final-state shower alpha_s, TimeShower:alphaSvalue (Monash 0.1365)."),
    ("--isr-alpha-s", "isr_alpha_s", float, "Initial-state shower alpha_s, SpaceShower:alphaSvalue (Monash 0.1365)."),
    ("--lund-a", "lund_a", float, "Lund fragmentation a, StringZ:aLund (Monash 0.68)."),
    ("--lund-b", "lund_b", float, "Lund fragmentation b, StringZ:bLund (Monash 0.98)."),
    ("--string-pt-sigma", "string_pt_sigma", float, "Hadron pT width in string breaks, StringPT:sigma (Monash 0.335)."),
    ("--mpi-pt0-ref", "mpi_pt0_ref", float, "Multiple-interaction regulator, MultipartonInteractions:pT0Ref "
                                            "(Monash 2.28; lower = more underlying event)."),
    ("--detector", "detector", click.Choice(["nominal", "shifted"]), "Detector (default: nominal sim, shifted data)."),
    ("--jes", "jes", float, "Jet energy scale: every reconstructed four-momentum times this (nominal 1, shifted 1.02)."),
    ("--track-efficiency", "track_efficiency", float, "Tracking efficiency (nominal 0.95, shifted 0.90)."),
    ("--calo-resolution", "calo_resolution", float, "Factor on every calorimeter resolution term of the detector."),
    ("--pileup-mu", "pileup_mu", float, "Mean pileup interactions; 0 = none (default: 0 sim, 10 data)."),
    ("--tag-signal", "tag_signal", float, "Tag efficiency of signal jets: the probability that the other side of the "
                                          "event passes the tag selection, column `tag` (default: 0.30 sim, 0.27 data)."),
    ("--tag-background", "tag_background", float, "Tag efficiency of background jets, column `tag` "
                                                  "(default: 0.02 sim, 0.025 data)."),
]


EVENTS_KNOBS = ("pileup_mu", "chs")


def knob_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The generator and reconstruction knobs of the boosted-jet cases, as click options."""
    options = [
        click.option(flag, name, type=FINITE if kind is float else kind, default=None, help=text) for flag, name, kind, text in KNOB_OPTIONS
    ] + [
        click.option("--chs/--no-chs", "chs", default=None,
                     help="Charged-hadron subtraction of pileup (default on)."),
        click.option("--pythia", "pythia", multiple=True, metavar="'KEY = VALUE'",
                     help="Extra Pythia setting, after the tune (repeatable)."),
        click.option("--jet-radius", "jet_radius", type=FINITE, default=None,
                     help="Anti-kT radius (default 0.8)."),
        click.option("--pt-min", "pt_min", type=FINITE, default=None, help="Lower end of the jet pT window [GeV]."),
        click.option("--pt-max", "pt_max", type=FINITE, default=None, help="Upper end of the jet pT window [GeV]."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def knobs_from(case: str, values: dict[str, Any]) -> dict[str, Any]:
    """The knobs that were given, as keyword arguments of the case's ``generate``."""
    knobs = {name: value for name, value in values.items() if value is not None and value != ()}
    # the events case takes the pileup knobs only: its domains keep their tune and detector
    foreign = [name for name in knobs if not (case in BOOSTED or (case == "events" and name in EVENTS_KNOBS))]
    if foreign:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in foreign)
        raise SqnnError(f"{flags} belong to the wjets and topjets cases, not {case!r}")
    if "tune" in knobs:
        knobs["tune"] = _tune(knobs["tune"])
    if "pt_min" in knobs or "pt_max" in knobs:
        from sqnn.cases.boosted import process_named

        low, high = process_named(case).pt_range
        knobs["pt_range"] = (knobs.pop("pt_min", low), knobs.pop("pt_max", high))
    return knobs


@click.command()
@click.argument("case", type=click.Choice(sorted(CASES)))
@click.option("--domain", type=click.Choice(["sim", "data"]), help="Simulation or (pseudo-)data.  [required]")
@click.option("--n", "n", type=COUNT, help="Number of rows (events or jets) to write.  [required]")
@click.option("--seed", type=SEED, default=0, show_default=True, help="Random seed; sim and data streams differ.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Output parquet file.  [required]")
@click.option("--workers", type=THREADS, default=1, show_default=True, help="Generator processes (physics cases).")
@click.option("--constituents", is_flag=True, help="Add the leading constituents as a jagged column (wjets, topjets).")
@click.option("--signal-fraction", type=FRACTION, default=None,
              help="Signal fraction (default: toy 0.5 in both domains; wjets, topjets, events 0.5 sim, 0.3 data).")
@click.option("--shift", type=Checked(Real(-1e3, 1e3)), default=1.0, show_default=True, help="Size of the simulation/data shift (toy).")
@click.option("--channel", help="Analysis channel (events); see --list.")
@click.option("--list", "list_channels", is_flag=True, help="Print the channels of the case, NAME<TAB>signal|background (events).")
@knob_options
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
    **knob_values: Any,
) -> None:
    """Write a case study: `toy` (fast, for tests), `wjets`, `topjets` or `events` (Pythia 8 + FastJet).

    The knobs (--tune ... --pt-max) change one setting of the chosen domain each, for the
    wjets and topjets cases; `sqnn suite` makes whole simulation/data pairs.
    """
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
    knobs = knobs_from(case, knob_values)
    options: dict[str, object] = {"signal_fraction": signal_fraction}
    if case == "toy":
        options["shift"] = shift
    else:
        options.update(workers=workers, constituents=constituents, progress=not quiet)
    if case == "events":
        if constituents:
            raise SqnnError("--constituents belongs to the wjets and topjets cases; events store objects, "
                            "not constituents")
        options.pop("constituents")
        options["channel"] = channel
    try:
        generator = get_generator(case)
    except ImportError as exc:
        raise SqnnError(f"case {case!r} needs the physics extra: pip install 'sqnn[physics]' ({exc})") from None
    path = generator(domain, n, seed, out, **options, **knobs)
    click.echo(f"wrote {path}")
