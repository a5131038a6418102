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
from sqnn.data.sample import ROLES
from sqnn.errors import SqnnError, option, phrase
from sqnn.methods import METHODS, Objective, make_objective
from sqnn.nn import NetworkConfig
from sqnn.nn.model import MAX_WIDTH
from sqnn.nn.set_model import SET_FIELDS, SetConfig
from sqnn.schema import Choice, Fields, Name, Nullable, Real, SchemaError, Sequence, Unchecked, check
from sqnn.training import TrainConfig

__all__ = [
    "CONFIG_KEYS",
    "CONFIG_RULES",
    "MAX_GAMMA",
    "MODELS",
    "Settings",
    "check_method_options",
    "columns_from",
    "read_config",
    "split_list",
    "train_config_from",
]

PathLike = str | os.PathLike[str]

CONFIG_KEYS = ("features", "label", "weight", "control", "signal_control", "observer", "method", "gamma", "method_options", "network", "train")
# a feed-forward network on the features, or a permutation-invariant set model on an objects column
MODELS = ("dense", "set")
# beyond this the penalty swamps the classification loss by many orders of magnitude
MAX_GAMMA = 1e6
# a YAML config is a few lines; anything this large is not one
MAX_CONFIG_BYTES = 1 << 20
# the top level of a YAML config; method options, network and train are checked in full by Settings
CONFIG_RULES = Fields(
    {
        "features": Sequence(Name(), 1, MAX_WIDTH, unique=True),
        "label": Nullable(Name()),
        "weight": Nullable(Name()),
        "control": Nullable(Name()),
        "signal_control": Nullable(Name()),
        "observer": Nullable(Name()),
        "method": Choice(*METHODS),
        "gamma": Nullable(Real(0.0, MAX_GAMMA)),
        "method_options": Nullable(Fields({}, open=True)),
        "network": Nullable(Fields({}, open=True)),
        "train": Nullable(Fields({}, open=True)),
    }
)
# a set model's settings; the object fields and counts come from the data
_SET_OVERRIDES = Fields({**SET_FIELDS, **{k: Unchecked() for k in ("fields", "max_objects", "n_global")}})


def split_list(text: str | None) -> tuple[str, ...] | None:
    """``"a, b,c"`` → ``("a", "b", "c")``; None or only commas → None."""
    if text is None:
        return None
    items = tuple(x.strip() for x in text.split(",") if x.strip())
    return items or None


def read_config(path: PathLike | None) -> dict[str, Any]:
    """A YAML config: data columns, method, network and training settings, checked by type."""
    if path is None:
        return {}
    file = Path(path)
    try:
        if file.stat().st_size > MAX_CONFIG_BYTES:
            raise SqnnError(f"{file}: {file.stat().st_size} bytes, larger than any config ({MAX_CONFIG_BYTES} at most)")
        config = yaml.safe_load(file.read_text())
    except FileNotFoundError:
        raise SqnnError(f"{file}: no such config file") from None
    except IsADirectoryError:
        raise SqnnError(f"{file}: a directory, not a config file") from None
    except UnicodeDecodeError:
        raise SqnnError(f"{file}: not a text file") from None
    except yaml.YAMLError as exc:
        raise SqnnError(f"{file}: not valid YAML ({' '.join(str(exc).split())[:160]})") from None
    except RecursionError:
        raise SqnnError(f"{file}: nested too deeply to be a config") from None
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise SqnnError(f"{file}: the config must be a mapping of settings")
    unknown = {str(k) for k in config} - set(CONFIG_KEYS)
    if unknown:
        raise SqnnError(f"{file}: unknown settings {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(CONFIG_KEYS))}")
    try:
        return CONFIG_RULES.check(config, "")
    except SchemaError as exc:
        raise SqnnError(f"{file}: {exc}") from None


def train_config_from(config: Mapping[str, Any], **flags: Any) -> TrainConfig:
    """The ``train`` settings of a config with the flags that are given (not None) on top."""
    train = config.get("train") or {}
    if not isinstance(train, Mapping):
        raise SqnnError(f"invalid training settings: train must be a mapping of settings, got {train!r}")
    settings = dict(train)
    settings.update({k: v for k, v in flags.items() if v is not None})
    try:
        return TrainConfig.from_dict(settings)
    except (TypeError, ValueError) as exc:
        raise SqnnError(f"invalid training settings: {exc}") from None


def columns_from(config: Mapping[str, Any], *, features: str | None = None, **roles: str | None) -> ColumnSpec:
    """The column roles of a config with the flags on top (``features`` as a comma-separated flag)."""
    listed = split_list(features)
    if features is not None and listed is None:
        given, listing = option("features", repr(features), repr(features)), option("features", "a,b,c", repr("a,b,c"))
        raise SqnnError(f"{given} names no column; list them as {listing} or {phrase('leave it None', 'leave the flag out')}")
    if listed is None and config.get("features") is not None:
        listed = tuple(config["features"])
    try:
        base = ColumnSpec(features=listed, **{r: config.get(r) for r in ROLES})
        return base.with_roles(**roles)
    except ValueError as exc:
        raise SqnnError(f"invalid columns: {exc}") from None


def check_method_options(method: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``options`` of ``method``, each checked by type and range; :class:`SchemaError` names the first wrong one."""
    if method not in METHODS:
        raise SchemaError("method", f"must be one of {', '.join(METHODS)}, got {method!r}")
    return METHODS[method].check_options(options)


@dataclass(frozen=True)
class Settings:
    """What one training needs: the columns, the method and its strength, the network, the loop.

    Every field is checked by type and range when the settings are made (and again for
    every run of a comparison); a wrong one is one :class:`SqnnError` naming it.
    """

    columns: ColumnSpec = field(default_factory=ColumnSpec)
    method: str = "sqnn"
    gamma: float | None = None
    method_options: Mapping[str, Any] = field(default_factory=dict)
    network: Mapping[str, Any] | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    model: str = "dense"
    domain_column: str | None = None

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise SqnnError(f"unknown model {self.model!r}; choose {' or '.join(MODELS)}")
        if self.method not in METHODS:
            raise SqnnError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        try:
            object.__setattr__(self, "gamma", check(self.gamma, Nullable(Real(0.0, MAX_GAMMA)), "gamma"))
            object.__setattr__(self, "method_options", check_method_options(self.method, self.method_options))
            if self.network is not None:
                check(self.network, Fields({}, open=True), "network")
            if self.model == "set" and self.network is not None:
                _SET_OVERRIDES.check(dict(self.network), "network")
            if not isinstance(self.train, TrainConfig):
                raise SchemaError("train", f"must be a TrainConfig, got {type(self.train).__name__}")
            if not isinstance(self.columns, ColumnSpec):
                raise SchemaError("columns", f"must be a ColumnSpec, got {type(self.columns).__name__}")
            object.__setattr__(self, "domain_column", check(self.domain_column, Nullable(Name()), "domain"))
            self.columns.check_roles(domain=self.domain_column)
        except (SchemaError, ValueError) as exc:
            raise SqnnError(f"invalid settings for {self.method}: {exc}") from None

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
        options = config.get("method_options") or {}
        if not isinstance(options, Mapping):
            raise SqnnError(f"invalid training settings: method_options must be a mapping, got {options!r}")
        options = {**options, **(method_options or {})}
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
        try:
            objective = make_objective(self.method, self.gamma, **dict(self.method_options or {}))
            if self.model == "dense" and not objective.own_trainer:
                network = objective.network_config(dict(self.network or {}))
                objective.check_representation(network.hidden[network.representation_index()])
            if self.model == "set":
                objective.check_representation(int((self.network or {}).get("bottleneck", SetConfig.bottleneck)))
        except (TypeError, ValueError) as exc:
            raise SqnnError(f"invalid {what}: {exc}") from None
        return objective

    def network_config(self, objective: Objective) -> NetworkConfig:
        """The dense network of these settings: the method's default with the ``network`` overrides."""
        try:
            return objective.network_config(dict(self.network or {}))
        except (TypeError, ValueError) as exc:
            raise SqnnError(f"invalid training settings: {exc}") from None
