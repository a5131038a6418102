"""Data flags shared by train, evaluate, predict and compare, and the checked number types of every flag."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from sqnn.devices import DEVICES
from sqnn.schema import Integer, Real, Rule, SchemaError
from sqnn.training.config import MAX_SEED, TRAIN_FIELDS
from sqnn.workflows.settings import MAX_GAMMA

__all__ = [
    "CHUNK",
    "COUNT",
    "EPOCHS",
    "FINITE",
    "FRACTION",
    "GAMMA",
    "SEED",
    "THREADS",
    "Checked",
    "data_options",
    "device_option",
    "engine_option",
]


class Checked(click.ParamType):
    """A number flag checked by a rule of :mod:`sqnn.schema`: its type and range, never NaN or inf.

    ``--gamma nan``, ``--seed -1`` or ``--epochs 1.5`` are one-line usage errors that name the flag.
    """

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.name = "integer" if isinstance(rule, Integer) else "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        parsed = value
        if isinstance(value, str):
            text = value.strip()
            try:
                parsed = int(text, 10) if isinstance(self.rule, Integer) else float(text)
            except ValueError:
                self.fail(f"{value!r} is not {self.rule.describe()}", param, ctx)
        try:
            return self.rule.check(parsed, "")
        except SchemaError:
            self.fail(f"{value!r} is not {self.rule.describe()}", param, ctx)


SEED = Checked(Integer(0, MAX_SEED))
EPOCHS = Checked(TRAIN_FIELDS["epochs"])
GAMMA = Checked(Real(0.0, MAX_GAMMA))
# events per chunk, events to generate, workers: positive and bounded
CHUNK = Checked(Integer(1, 1 << 30))
COUNT = Checked(Integer(1, 1 << 40))
THREADS = Checked(Integer(1, 4096))
FRACTION = Checked(Real(0.0, 1.0))
FINITE = Checked(Real())


def data_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--features, --label, --weight, --control, --signal-control, --observer, --domain."""
    for option in reversed(
        [
            click.option("--features", help="Comma-separated feature columns (default: all non-role columns)."),
            click.option("--label", help="Class column in simulation (1 signal, 0 background)."),
            click.option("--weight", help="Per-event weight column (may be negative)."),
            click.option("--control", help="Boolean column of the background-enriched control region."),
            click.option("--signal-control", "signal_control",
                         help="Boolean column of a signal-enriched region selected independently of the jet given its "
                              "class (tag-and-probe)."),
            click.option("--observer", help="Observer column (never a model input), e.g. a mass."),
            click.option("--domain", "domain_column", help="Domain column of a single mixed file (0 = simulation)."),
        ]
    ):
        func = option(func)
    return func


def device_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """--device: where the network trains or scores."""
    return click.option(
        "--device", type=click.Choice(DEVICES), default=None,
        help="cpu (the deterministic reference), cuda, or auto (a GPU when there is one) [default: cpu].",
    )(func)


def engine_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """--engine: which arithmetic computes the scores the metrics are taken from."""
    from sqnn.engines.scoring import ENGINES

    return click.option(
        "--engine", type=click.Choice(list(ENGINES)), default="torch", show_default=True,
        help="Compute the metrics from this engine's scores: torch (the Python model) or the deployed arithmetic "
             "(packed, onnx, hls4ml firmware C simulation).",
    )(func)
