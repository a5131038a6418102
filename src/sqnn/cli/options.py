"""Data flags shared by train, evaluate, predict and compare."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import yaml

from sqnn.data import ColumnSpec
from sqnn.errors import SqnnError

__all__ = ["data_options", "column_spec", "read_config", "split_list"]


def split_list(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    items = tuple(x.strip() for x in text.split(",") if x.strip())
    return items or None


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


def read_config(path: str | None) -> dict[str, Any]:
    """A YAML config: data columns, method, network and training settings."""
    if path is None:
        return {}
    file = Path(path)
    try:
        config = yaml.safe_load(file.read_text())
    except FileNotFoundError:
        raise SqnnError(f"{file}: no such config file") from None
    except yaml.YAMLError as exc:
        raise SqnnError(f"{file}: not valid YAML ({' '.join(str(exc).split())[:160]})") from None
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise SqnnError(f"{file}: the config must be a mapping of settings")
    allowed = {"features", "label", "weight", "control", "observer", "method", "gamma", "method_options", "network", "train"}
    unknown = set(config) - allowed
    if unknown:
        raise SqnnError(f"{file}: unknown settings {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}")
    return config


def column_spec(
    config: dict[str, Any],
    *,
    features: str | None,
    label: str | None,
    weight: str | None,
    control: str | None,
    observer: str | None,
    passthrough: tuple[str, ...] = (),
) -> ColumnSpec:
    """Flags win over the config file."""
    listed = split_list(features)
    if listed is None and config.get("features") is not None:
        listed = tuple(str(f) for f in config["features"])
    return ColumnSpec(
        features=listed,
        label=label or config.get("label"),
        weight=weight or config.get("weight"),
        control=control or config.get("control"),
        observer=observer or config.get("observer"),
        passthrough=passthrough,
    )
