"""The settings of a training, one object whatever they come from: flags, a YAML file or the estimator.

A YAML config holds the same settings as the command line (flags win)::

    features: [x0, x1, x2]
    label: is_signal
    method: sqnn
    gamma: 1.0
    method_options: {region: class-conditional}
    network: {hidden: [64, 16]}
    train: {epochs: 30, seed: 0}

:func:`read_config` reads and checks the file; :meth:`Settings.from_config` merges it with
the flags and checks every value before any work starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from sqnn.data import ColumnSpec
from sqnn.errors import SqnnError
from sqnn.methods import METHODS, Objective, make_objective
from sqnn.nn import NetworkConfig
from sqnn.training import TrainConfig

__all__ = ["CONFIG_KEYS", "MODELS", "Settings", "columns_from", "read_config", "split_list", "train_config_from"]

PathLike = str | os.PathLike[str]

CONFIG_KEYS = ("features", "label", "weight", "control", "observer", "method", "gamma", "method_options", "network", "train")
# a feed-forward network on the features, or a permutation-invariant set model on an objects column
MODELS = ("dense", "set")


def split_list(text: str | None) -> tuple[str, ...] | None:
    """``"a, b,c"`` → ``("a", "b", "c")``; None or only commas → None."""
    if text is None:
        return None
    items = tuple(x.strip() for x in text.split(",") if x.strip())
    return items or None


def read_config(path: PathLike | None) -> dict[str, Any]:
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
    unknown = set(config) - set(CONFIG_KEYS)
    if unknown:
        raise SqnnError(f"{file}: unknown settings {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(CONFIG_KEYS))}")
    return config


def train_config_from(config: Mapping[str, Any], **flags: Any) -> TrainConfig:
    """The ``train`` settings of a config with the flags that are given (not None) on top."""
    settings = dict(config.get("train") or {})
    settings.update({k: v for k, v in flags.items() if v is not None})
    try:
        return TrainConfig(**settings)
    except (TypeError, ValueError) as exc:
        raise SqnnError(f"invalid training settings: {exc}") from None


def columns_from(config: Mapping[str, Any], *, features: str | None = None, **roles: str | None) -> ColumnSpec:
    """The column roles of a config with the flags on top (``features`` as a comma-separated flag)."""
    listed = split_list(features)
    if listed is None and config.get("features") is not None:
        listed = tuple(str(f) for f in config["features"])
    base = ColumnSpec(features=listed, **{r: config.get(r) for r in ("label", "weight", "control", "observer")})
    return base.with_roles(**roles)


@dataclass(frozen=True)
class Settings:
    """What one training needs: the columns, the method and its strength, the network, the loop."""

    columns: ColumnSpec = field(default_factory=ColumnSpec)
    method: str = "sqnn"
    gamma: float | None = None
    method_options: Mapping[str, Any] = field(default_factory=dict)
    network: Mapping[str, Any] | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    model: str = "dense"
    domain_column: str | None = None

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        *,
        columns: ColumnSpec,
        method: str | None = None,
        gamma: float | None = None,
        method_options: Mapping[str, Any] | None = None,
        train: TrainConfig | None = None,
        model: str = "dense",
        domain_column: str | None = None,
    ) -> "Settings":
        """A config file's settings with the flags that are given on top."""
        options = dict(config.get("method_options") or {})
        options.update(method_options or {})
        settings = cls(
            columns=columns,
            method=method or config.get("method", "sqnn"),
            gamma=gamma if gamma is not None else config.get("gamma"),
            method_options=options,
            network=config.get("network"),
            train=train or train_config_from(config),
            model=model,
            domain_column=domain_column,
        )
        settings.objective()  # every setting is checked before any work starts
        return settings

    def with_run(self, *, method: str, gamma: float | None, seed: int, **changes: Any) -> "Settings":
        """The settings of one run of a comparison: another method, strength and seed."""
        return replace(self, method=method, gamma=gamma, train=replace(self.train, seed=seed), **changes)

    def objective(self, what: str = "training settings") -> Objective:
        """A fresh objective of these settings (each training needs its own: it holds state).

        Invalid settings raise one :class:`SqnnError` saying ``invalid {what}: ...``.
        """
        if self.model not in MODELS:
            raise SqnnError(f"unknown model {self.model!r}; choose {' or '.join(MODELS)}")
        if self.method not in METHODS:
            raise SqnnError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        try:
            objective = make_objective(self.method, self.gamma, **dict(self.method_options or {}))
            if self.model == "dense" and not objective.own_trainer:
                objective.network_config(dict(self.network or {}))
        except (TypeError, ValueError) as exc:
            raise SqnnError(f"invalid {what}: {exc}") from None
        return objective

    def network_config(self, objective: Objective) -> NetworkConfig:
        """The dense network of these settings: the method's default with the ``network`` overrides."""
        try:
            return objective.network_config(dict(self.network or {}))
        except (TypeError, ValueError) as exc:
            raise SqnnError(f"invalid training settings: {exc}") from None
