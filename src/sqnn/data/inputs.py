"""Simulation and data loaded as one pair, checked against each other."""

from __future__ import annotations

import os
from dataclasses import replace

from sqnn.data.io import list_columns
from sqnn.data.sample import (
    ColumnSpec,
    Sample,
    check_same_features,
    default_features,
    load_mixed,
    load_sample,
    require_same_columns,
)
from sqnn.errors import SqnnError, option

__all__ = ["load_inputs"]

PathLike = str | os.PathLike[str]


def load_inputs(
    simulation: PathLike,
    data: PathLike | None,
    spec: ColumnSpec,
    *,
    domain_column: str | None = None,
    data_label: str | None = None,
) -> tuple[Sample, Sample]:
    """Load simulation (labelled) and data; the data label is read only when asked for (evaluation)."""
    if domain_column is not None:
        sim, dat = load_mixed(simulation, spec, domain_column, data_label=data_label)
    else:
        if data is None:
            raise SqnnError(
                f"give the data sample with {option('data', 'FILE')} "
                f"(or one mixed file with {option('domain_column', 'COL', flag='--domain')})"
            )
        sim = load_sample(simulation, spec, "simulation", require_label=True)
        if spec.features is None:
            data_features = [c for c in default_features(list_columns(data), spec) if c != data_label]
            require_same_columns(sim.source, sim.global_feature_names, str(data), data_features)
        dat = load_sample(data, replace(spec, label=data_label, features=tuple(sim.global_feature_names)), "data")
    check_same_features(sim, dat)
    return sim, dat
