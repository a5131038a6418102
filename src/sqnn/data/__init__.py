"""Loading, validating and preprocessing samples."""

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

__all__ = [
    "ColumnSpec",
    "Sample",
    "Standardizer",
    "check_same_features",
    "default_features",
    "list_columns",
    "load_mixed",
    "load_sample",
    "read_columns",
]
