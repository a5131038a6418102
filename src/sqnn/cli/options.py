"""Data flags shared by train, evaluate, predict and compare."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from sqnn.devices import DEVICES

__all__ = ["data_options", "device_option", "engine_option"]


def data_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--features, --label, --weight, --control, --observer, --domain."""
    for option in reversed(
        [
            click.option("--features", help="Comma-separated feature columns (default: all non-role columns)."),
            click.option("--label", help="Class column in simulation (1 signal, 0 background)."),
            click.option("--weight", help="Per-event weight column (may be negative)."),
            click.option("--control", help="Boolean control-region column."),
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
        "--engine", type=click.Choice(ENGINES), default="torch", show_default=True,
        help="Compute the metrics from this engine's scores: torch (the Python model) or the deployed arithmetic "
             "(packed, onnx, hls4ml firmware C simulation).",
    )(func)
