"""Read columns from parquet, ROOT (uproot), HDF5 and CSV files.

Every reader returns ``{column: numpy array}`` for the requested columns and raises
:class:`sqnn.errors.DataError` with one line naming the file when it cannot.
A ROOT file (TTree or RNTuple) may name its tree as ``file.root:tree``; an HDF5 file its group as
``file.h5:group`` (one 1-D dataset per column).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sqnn.errors import DataError

__all__ = [
    "FORMATS",
    "arrow_column",
    "check_exists",
    "file_format",
    "from_awkward",
    "hdf5_group",
    "list_columns",
    "read_columns",
    "root_tree",
    "split_path",
]

FORMATS = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".root": "root",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".hdf": "hdf5",
    ".csv": "csv",
}


def split_path(path: str | os.PathLike[str]) -> tuple[Path, str | None]:
    """``file.root:tree`` → (file.root, "tree"); plain paths have no object name."""
    text = str(path)
    head, sep, tail = text.rpartition(":")
    if sep and Path(head).suffix.lower() in FORMATS and "/" not in tail:
        return Path(head), tail
    return Path(text), None


def file_format(path: str | os.PathLike[str]) -> str:
    file, _ = split_path(path)
    fmt = FORMATS.get(file.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{file}: unknown file type {file.suffix!r}; use one of {', '.join(sorted(FORMATS))}"
        )
    return fmt


def check_exists(file: Path) -> None:
    if not file.exists():
        raise DataError(f"{file}: no such file")
    if file.is_dir():
        raise DataError(f"{file}: is a directory, expected a file")
    if file.stat().st_size == 0:
        raise DataError(f"{file}: the file is empty (0 bytes)")


def root_tree(file: Path, name: str | None):  # noqa: ANN202 - uproot type
    import uproot

    try:
        handle = uproot.open(file)
    except Exception as exc:  # uproot raises many types for corrupt files
        raise DataError(f"{file}: not a readable ROOT file ({type(exc).__name__}: {exc})") from None
    if name is not None:
        try:
            return handle[name]
        except Exception:
            raise DataError(f"{file}: no tree named {name!r}; trees: {', '.join(_root_trees(handle))}") from None
    trees = _root_trees(handle)
    if len(trees) != 1:
        listed = ", ".join(trees) or "none"
        raise DataError(f"{file}: found {len(trees)} TTrees ({listed}); name one as {file}:TREE")
    return handle[trees[0]]


_ROOT_TABLES = ("TTree", "ROOT::RNTuple")


def _root_trees(handle) -> list[str]:  # noqa: ANN001
    return sorted({k.split(";")[0] for k, v in handle.classnames().items() if v in _ROOT_TABLES})


def hdf5_group(file: Path, name: str | None):  # noqa: ANN202 - h5py type
    import h5py

    try:
        handle = h5py.File(file, "r")
    except Exception as exc:
        raise DataError(f"{file}: not a readable HDF5 file ({type(exc).__name__})") from None
    if name is None:
        return handle
    if name not in handle:
        raise DataError(f"{file}: no group named {name!r}")
    return handle[name]


def list_columns(path: str | os.PathLike[str]) -> list[str]:
    """Column names of a file, in file order."""
    fmt = file_format(path)
    file, name = split_path(path)
    check_exists(file)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(file).names)
        if fmt == "root":
            return [str(k) for k in root_tree(file, name).keys()]
        if fmt == "hdf5":
            group = hdf5_group(file, name)
            return [k for k in group.keys() if hasattr(group[k], "shape")]
        import pandas as pd

        return list(pd.read_csv(file, nrows=0).columns)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{file}: cannot read the {fmt} header ({type(exc).__name__}: {_short(exc)})") from None


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:160]


def read_columns(path: str | os.PathLike[str], columns: Sequence[str]) -> dict[str, np.ndarray]:
    """Read ``columns`` from ``path``; jagged columns come back as awkward arrays."""
    fmt = file_format(path)
    file, name = split_path(path)
    check_exists(file)
    columns = list(dict.fromkeys(columns))
    try:
        if fmt == "parquet":
            return _read_parquet(file, columns)
        if fmt == "root":
            tree = root_tree(file, name)
            arrays = tree.arrays(columns, library="ak")
            return {c: from_awkward(arrays[c]) for c in columns}
        if fmt == "hdf5":
            group = hdf5_group(file, name)
            return {c: np.asarray(group[c][...]) for c in columns}
        import pandas as pd

        frame = pd.read_csv(file, usecols=columns)
        return {c: frame[c].to_numpy() for c in columns}
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{file}: cannot read the {fmt} data ({type(exc).__name__}: {_short(exc)})") from None


def _read_parquet(file: Path, columns: list[str]) -> dict[str, np.ndarray]:
    import pyarrow.parquet as pq

    table = pq.read_table(file, columns=columns)
    return {c: arrow_column(table.column(c)) for c in columns}


def arrow_column(column: Any) -> Any:
    """An Arrow column as numpy, or as an awkward array when it is jagged or holds records."""
    import pyarrow as pa

    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type) or pa.types.is_struct(column.type):
        import awkward as ak

        return ak.from_arrow(column, highlevel=True)
    return column.to_numpy(zero_copy_only=False)


def from_awkward(array):  # noqa: ANN001, ANN202
    """A flat awkward column as numpy; jagged columns and records stay awkward."""
    import awkward as ak

    if array.ndim == 1 and not isinstance(array.layout, ak.contents.RecordArray):
        try:
            return ak.to_numpy(array)
        except Exception:
            return array
    return array
