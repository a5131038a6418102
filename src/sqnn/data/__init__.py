"""Loading, validating, splitting and preprocessing samples."""

from sqnn.data.inputs import load_inputs
from sqnn.data.io import list_columns, read_columns
from sqnn.data.preprocessing import Standardizer
from sqnn.data.sample import (
    ColumnSpec,
    Sample,
    check_same_features,
    default_features,
    load_mixed,
    load_sample,
)
from sqnn.data.splits import DATA, SIMULATION, Splits, domain_labels, make_splits, split_indices

__all__ = [
    "DATA",
    "SIMULATION",
    "ColumnSpec",
    "Sample",
    "Splits",
    "Standardizer",
    "check_same_features",
    "default_features",
    "domain_labels",
    "list_columns",
    "load_inputs",
    "load_mixed",
    "load_sample",
    "make_splits",
    "read_columns",
    "split_indices",
]
