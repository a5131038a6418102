"""The `Sample` type and the loader that validates a file into one.

A sample is one domain (simulation or data) of events: float features chosen by name,
a per-event weight (negative allowed), and optionally a class label, a control-region
flag and an observer. Anything wrong with the file is a one-line
:class:`~sqnn.errors.DataError` naming the file, the column and the count.

Variable-length objects (``ColumnSpec.objects``: a jagged column of records, e.g. the
``objects`` of the events case) are padded to ``max_objects`` per event and appended to
the features as flat columns, object-major: ``COL[k].FIELD`` for every record field and
``COL[k].present`` (1 for a real object, 0 for padding); events with more objects keep
their first ``max_objects`` in file order. The set models read them back per object.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from sqnn.data.io import list_columns, read_columns
from sqnn.errors import DataError, option
from sqnn.schema import Integer, Name, Nullable, SchemaError, Sequence, check_fields

__all__ = [
    "COLUMN_FIELDS",
    "ColumnSpec",
    "Domain",
    "MAX_ABS_VALUE",
    "RESERVED_COLUMNS",
    "ROLES",
    "Sample",
    "check_same_features",
    "require_same_columns",
    "default_features",
    "feature_matrix",
    "columns_of",
    "load_sample",
    "sample_from_columns",
    "load_mixed",
    "require_both_classes",
    "object_feature_names",
    "pad_objects",
]

Domain = Literal["simulation", "data"]

# the per-event roles a column can play besides being a feature
ROLES = ("label", "weight", "control", "signal_control", "observer")
# columns that `sqnn generate` writes and that are never features
RESERVED_COLUMNS = ("is_signal", "weight", "control", "tag", "event", "domain")
MAX_COLUMNS = 1 << 16
_COLUMN = Nullable(Name())
COLUMN_FIELDS = {
    "features": Nullable(Sequence(Name(), 0, MAX_COLUMNS, unique=True)),
    "label": _COLUMN,
    "weight": _COLUMN,
    "control": _COLUMN,
    "signal_control": _COLUMN,
    "observer": _COLUMN,
    "passthrough": Sequence(Name(), 0, MAX_COLUMNS),
    "objects": _COLUMN,
    "max_objects": Integer(1, 1024),
}


@dataclass(frozen=True)
class ColumnSpec:
    """Which columns play which role; ``features=None`` means every numeric non-role column."""

    features: tuple[str, ...] | None = None
    label: str | None = None
    weight: str | None = None
    control: str | None = None
    # a signal-enriched region (tag-and-probe): selected independently of the jet given its class
    signal_control: str | None = None
    observer: str | None = None
    passthrough: tuple[str, ...] = ()
    objects: str | None = None
    max_objects: int = 12

    def __post_init__(self) -> None:
        checked = check_fields(self, COLUMN_FIELDS, "")
        if checked["features"] == () and not checked["objects"]:
            raise SchemaError("features", "lists no column; name at least one (or leave it out for every non-role column)")
        for name, value in checked.items():
            object.__setattr__(self, name, value)
        self.check_roles()

    def check_roles(self, domain: str | None = None) -> None:
        """Each column plays one role: features, label, weight, control, observer, objects and domain are disjoint.

        >>> try:
        ...     ColumnSpec(features=("x", "y"), label="y")
        ... except ValueError as error:
        ...     print(error)
        column 'y' is both a feature and the label; a feature is a model input, the label never is
        """
        roles = {**{role: getattr(self, role) for role in (*ROLES, "objects")}, "domain": domain}
        taken: dict[str, str] = {}
        for role, column in roles.items():
            if column is None:
                continue
            if column in taken:
                raise SchemaError(f"column {column!r}", f"is both the {taken[column]} and the {role}; give each role its own column")
            taken[column] = role
        for column in self.features or ():
            if column in taken:
                raise SchemaError(
                    f"column {column!r}", f"is both a feature and the {taken[column]}; a feature is a model input, the {taken[column]} never is"
                )

    def roles(self) -> list[str]:
        return [c for c in (getattr(self, role) for role in ROLES) if c]

    def role_columns(self) -> dict[str, str | None]:
        """The column of each role (label, weight, control, signal_control, observer), None where there is none."""
        return {role: getattr(self, role) for role in ROLES}

    def with_roles(self, **roles: str | None) -> "ColumnSpec":
        """These role columns where given (not None or empty), this spec's own elsewhere.

        >>> ColumnSpec(label="y", weight="w").with_roles(weight="w2", control=None).role_columns()
        {'label': 'y', 'weight': 'w2', 'control': None, 'signal_control': None, 'observer': None}
        """
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown column roles: {', '.join(sorted(unknown))}")
        return replace(self, **{role: roles.get(role) or getattr(self, role) for role in ROLES})


@dataclass
class Sample:
    """Events of one domain, ready for training or evaluation."""

    features: np.ndarray
    feature_names: list[str]
    weight: np.ndarray
    domain: Domain
    source: str
    label: np.ndarray | None = None
    control: np.ndarray | None = None
    # the signal-enriched region of a tag-and-probe selection
    signal_control: np.ndarray | None = None
    observer: np.ndarray | None = None
    passthrough: dict[str, np.ndarray] = field(default_factory=dict)
    # record fields of the padded objects column, and how many columns at the end of the
    # feature matrix hold the padded objects
    object_fields: tuple[str, ...] = ()
    object_columns: int = 0

    @property
    def global_feature_names(self) -> list[str]:
        """The feature columns read as they are, without the padded object columns."""
        return list(self.feature_names[: len(self.feature_names) - self.object_columns])

    def __len__(self) -> int:
        return int(self.features.shape[0])

    @classmethod
    def joined(cls, parts: Sequence["Sample"]) -> "Sample":
        """The events of several samples of one file (chunks), one after the other."""
        first = parts[0]

        def cat(name: str) -> np.ndarray | None:
            values = [getattr(p, name) for p in parts]
            return None if values[0] is None else np.concatenate(values)

        return replace(
            first,
            features=np.concatenate([p.features for p in parts]),
            weight=np.concatenate([p.weight for p in parts]),
            label=cat("label"),
            control=cat("control"),
            signal_control=cat("signal_control"),
            observer=cat("observer"),
            passthrough={k: np.concatenate([p.passthrough[k] for p in parts]) for k in first.passthrough},
        )

    def subset(self, index: np.ndarray) -> "Sample":
        def take(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[index]

        return replace(
            self,
            features=self.features[index],
            weight=self.weight[index],
            label=take(self.label),
            control=take(self.control),
            signal_control=take(self.signal_control),
            observer=take(self.observer),
            passthrough={k: v[index] for k, v in self.passthrough.items()},
        )


def _suggest(name: str, available: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(available), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def default_features(columns: Sequence[str], spec: ColumnSpec) -> list[str]:
    excluded = set(RESERVED_COLUMNS) | set(spec.roles()) | set(spec.passthrough) | {spec.objects}
    return [c for c in columns if c not in excluded]


def _require_columns(path: str, available: Sequence[str], wanted: Sequence[str], role: str) -> None:
    for column in wanted:
        if column not in available:
            raise DataError(
                f"{path}: {role} column {column!r} not found{_suggest(column, available)} "
                f"(the file has {len(available)} columns)"
            )


# where checked values lie in their file: the whole file (None), a chunk starting at a row
# (an int), or chosen rows (an array: one domain of a mixed file)
Rows = int | np.ndarray | None


def _file_row(rows: Rows, index: int) -> int:
    if rows is None:
        return int(index)
    if isinstance(rows, np.ndarray):
        return int(rows[index])
    return int(rows) + int(index)


def _scope(n: int, rows: Rows) -> str:
    """Where the checked values lie: the whole file, rows of one chunk of it, or one domain's rows."""
    if rows is None:
        return f"out of {n} events"
    if isinstance(rows, np.ndarray):
        return f"out of the {n} events of this domain"
    return f"in rows {rows}-{rows + n - 1}"


def _not_a_number(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_, int, float, np.integer, np.floating)):
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return True
    return False


def _flat_numeric(path: str, column: str, values: object, n: int, role: str, rows: Rows = None) -> np.ndarray:
    array = values
    if not isinstance(array, np.ndarray):
        raise DataError(
            f"{path}: {role} column {column!r} is jagged (variable length per event); "
            f"expected one number per event for all {n} events"
        )
    if array.ndim != 1:
        raise DataError(f"{path}: {role} column {column!r} has shape {array.shape}; expected one value per event")
    if array.dtype == bool:
        return array.astype(np.float64)
    if not np.issubdtype(array.dtype, np.number):
        bad = np.fromiter((_not_a_number(v) for v in array), dtype=bool, count=array.size)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{path}: {role} column {column!r} has non-numeric type {array.dtype}: {int(bad.sum())} values "
                f"{_scope(array.size, rows)} are not numbers (first at row {_file_row(rows, first)}: {str(array[first])[:40]!r}); "
                "fix or remove them"
            )
        raise DataError(f"{path}: {role} column {column!r} has non-numeric type {array.dtype} ({n} events); store it as numbers")
    return array.astype(np.float64, copy=False)


def _check_finite(path: str, column: str, values: np.ndarray, role: str, rows: Rows = None) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        first = _file_row(rows, int(np.flatnonzero(bad)[0]))
        raise DataError(
            f"{path}: {role} column {column!r} has {int(bad.sum())} NaN/inf values {_scope(values.size, rows)} "
            f"(first at row {first}); remove or impute them"
        )


# beyond this a float32 network input overflows once standardised and multiplied
MAX_ABS_VALUE = 1e15


def _check_magnitude(path: str, column: str, values: np.ndarray, role: str, rows: Rows = None) -> None:
    big = np.abs(values) > MAX_ABS_VALUE
    if big.any():
        first = int(np.flatnonzero(big)[0])
        raise DataError(
            f"{path}: {role} column {column!r} has {int(big.sum())} values beyond ±{MAX_ABS_VALUE:g} "
            f"{_scope(values.size, rows)} (first at row {_file_row(rows, first)}, {values[first]:g}); fix the units or remove them"
        )


def _region(path: str, column: str | None, raw: Mapping[str, Any], n: int, role: str, rows: Rows) -> np.ndarray | None:
    """A region flag (control or signal_control): true where the value is not 0."""
    if not column:
        return None
    values = _flat_numeric(path, column, raw[column], n, role, rows)
    _check_finite(path, column, values, role, rows)
    return values != 0


def feature_matrix(path: str, names: Sequence[str], raw: Mapping[str, Any], n: int, first_row: Rows = None) -> np.ndarray:
    """The validated float32 feature matrix (events × ``names``) of columns read from ``path``.

    ``first_row`` is where a chunk of the file starts, or the file rows of the values (one
    domain of a mixed file), so that errors name rows of the file; ``None`` means ``raw``
    holds the whole file.
    """
    matrix = np.empty((n, len(names)), dtype=np.float32)
    for j, name in enumerate(names):
        column = _flat_numeric(path, name, raw[name], n, "feature", first_row)
        _check_finite(path, name, column, "feature", first_row)
        _check_magnitude(path, name, column, "feature", first_row)
        matrix[:, j] = column
    return matrix


PRESENT = "present"


def object_feature_names(column: str, fields: Sequence[str], max_objects: int) -> list[str]:
    """Names of the padded object columns: ``COL[k].FIELD`` and ``COL[k].present``, object-major."""
    return [f"{column}[{k}].{name}" for k in range(max_objects) for name in (*fields, PRESENT)]


def pad_objects(path: str, column: str, values: object, max_objects: int) -> tuple[list[str], list[str], np.ndarray]:
    """Pad a jagged column of records to ``max_objects`` per event.

    Returns the record fields, the flat column names and an (events, max_objects · (fields + 1))
    float32 matrix with zeros in padded slots and the presence flag after each object's fields.
    """
    import awkward as ak

    if max_objects < 1:
        raise DataError(f"{path}: objects column {column!r}: the number of objects kept must be at least 1")
    if isinstance(values, np.ndarray) or not isinstance(values, ak.Array) or values.ndim != 2:
        raise DataError(
            f"{path}: objects column {column!r} is not a jagged list of objects per event; "
            "expected a list of records such as (pt, eta, phi, e, type, btag)"
        )
    fields = list(ak.fields(values))
    n = len(values)
    if not fields:
        raise DataError(f"{path}: objects column {column!r} holds plain numbers, not records with named fields ({n} events)")
    if PRESENT in fields:
        raise DataError(f"{path}: objects column {column!r} has a field named {PRESENT!r}, which is reserved for padding")
    counts = ak.to_numpy(ak.fill_none(ak.num(values, axis=1), 0)).astype(np.int64)
    present = np.arange(max_objects)[None, :] < counts[:, None]
    block = np.zeros((n, max_objects, len(fields) + 1), dtype=np.float32)
    for j, name in enumerate(fields):
        padded = ak.fill_none(ak.pad_none(values[name], max_objects, axis=1, clip=True), 0)
        try:
            array = ak.to_numpy(padded)
        except Exception:  # noqa: BLE001 - awkward raises several types for nested data
            raise DataError(f"{path}: field {name!r} of objects column {column!r} is not one number per object") from None
        if array.dtype == bool:
            array = array.astype(np.float64)
        if not np.issubdtype(array.dtype, np.number):
            raise DataError(f"{path}: field {name!r} of objects column {column!r} has non-numeric type {array.dtype}")
        array = array.astype(np.float64)
        bad = present & ~np.isfinite(array)
        if bad.any():
            row = int(np.flatnonzero(bad.any(axis=1))[0])
            raise DataError(
                f"{path}: field {name!r} of objects column {column!r} has {int(bad.sum())} NaN/inf values "
                f"in {n} events (first in row {row}); remove or impute them"
            )
        big = present & (np.abs(array) > MAX_ABS_VALUE)
        if big.any():
            raise DataError(
                f"{path}: field {name!r} of objects column {column!r} has {int(big.sum())} values beyond "
                f"±{MAX_ABS_VALUE:g} in {n} events; fix the units or remove them"
            )
        block[:, :, j] = np.where(present, array, 0.0)
    block[:, :, -1] = present
    names = object_feature_names(column, fields, max_objects)
    return fields, names, block.reshape(n, -1)


def columns_of(path: str | os.PathLike[str], spec: ColumnSpec, *, require_label: bool = False) -> tuple[list[str], list[str]]:
    """The feature columns of ``spec`` in ``path`` and every column to read; a missing one is a one-line error."""
    path_text = str(path)
    available = list_columns(path)
    features = list(spec.features) if spec.features is not None else default_features(available, spec)
    if not features and not spec.objects:
        raise DataError(f"{path_text}: no feature columns (columns: {', '.join(available) or 'none'})")
    if require_label and spec.label is None:
        raise DataError(f"{path_text}: simulation needs a label column ({option('label', 'COL')})")
    _require_columns(path_text, available, features, "feature")
    for role in ROLES:
        column = getattr(spec, role)
        if column:
            _require_columns(path_text, available, [column], role)
    _require_columns(path_text, available, spec.passthrough, "passthrough")
    if spec.objects:
        _require_columns(path_text, available, [spec.objects], "objects")
    wanted = features + spec.roles() + list(spec.passthrough) + ([spec.objects] if spec.objects else [])
    return features, list(dict.fromkeys(wanted))


def load_sample(
    path: str | os.PathLike[str],
    spec: ColumnSpec,
    domain: Domain,
    *,
    require_label: bool = False,
) -> Sample:
    """Read and validate one file into a :class:`Sample`."""
    features, wanted = columns_of(path, spec, require_label=require_label)
    raw = read_columns(path, wanted)
    n = len(raw[wanted[0]])
    if n == 0:
        raise DataError(f"{path}: 0 events in the {domain} sample; an empty domain cannot be used")
    sample = sample_from_columns(str(path), spec, features, raw, domain)
    if require_label:
        require_both_classes(str(path), spec.label, sample)
    return sample


def require_both_classes(path: str, label: str | None, sample: Sample, where: str = "") -> None:
    """Simulation needs signal and background events."""
    if sample.label is None:
        return
    for cls, name in ((1, "signal"), (0, "background")):
        if not (sample.label == cls).any():
            raise DataError(
                f"{path}: label column {label!r} has no {name} events{where} ({len(sample)} events, "
                f"all {1 - cls}); simulation needs both classes"
            )


def sample_from_columns(
    path: str,
    spec: ColumnSpec,
    features: list[str],
    raw: Mapping[str, Any],
    domain: Domain,
    first_row: Rows = None,
) -> Sample:
    """Validate columns read from ``path`` into a Sample.

    ``raw`` holds the whole file (``first_row=None``), the chunk starting at row
    ``first_row``, or the rows ``first_row`` (an array) of the file: one domain of a mixed file.
    """
    n = len(raw[features[0]]) if features else len(raw[spec.objects]) if spec.objects else 0
    matrix = feature_matrix(path, features, raw, n, first_row)
    # a chunk is part of a file; the whole file, or all events of one domain, must have a positive total weight
    whole = first_row is None or isinstance(first_row, np.ndarray)

    weight = np.ones(n, dtype=np.float64)
    if spec.weight:
        weight = _flat_numeric(path, spec.weight, raw[spec.weight], n, "weight", first_row)
        _check_finite(path, spec.weight, weight, "weight", first_row)
        _check_magnitude(path, spec.weight, weight, "weight", first_row)
        total = float(weight.sum())
        if whole and not (math.isfinite(total) and total > 0):
            raise DataError(
                f"{path}: weight column {spec.weight!r} sums to {total:g} over {n} events"
                f"{'' if first_row is None else ' of this domain'}; the total weight must be positive"
            )

    label = None
    if spec.label:
        values = _flat_numeric(path, spec.label, raw[spec.label], n, "label", first_row)
        _check_finite(path, spec.label, values, "label", first_row)
        bad = (values != 0) & (values != 1)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{path}: label column {spec.label!r} has {int(bad.sum())} values other than 0/1 "
                f"{_scope(n, first_row)} (e.g. {values[first]:g} at row {_file_row(first_row, first)})"
            )
        label = values.astype(np.int8)

    control, signal_control = (
        _region(path, column, raw, n, role, first_row) for column, role in ((spec.control, "control"),
                                                                        (spec.signal_control, "signal_control"))
    )

    observer = None
    if spec.observer:
        observer = _flat_numeric(path, spec.observer, raw[spec.observer], n, "observer", first_row)
        _check_finite(path, spec.observer, observer, "observer", first_row)

    object_fields: tuple[str, ...] = ()
    n_global = matrix.shape[1]
    names = list(features)
    if spec.objects:
        fields, object_names, block = pad_objects(path, spec.objects, raw[spec.objects], spec.max_objects)
        matrix = np.hstack([matrix, block])
        names = names + object_names
        object_fields = tuple(fields)

    passthrough = {c: np.asarray(raw[c]) for c in spec.passthrough}
    return Sample(
        features=matrix,
        feature_names=names,
        object_fields=object_fields,
        object_columns=matrix.shape[1] - n_global,
        weight=weight,
        domain=domain,
        source=path,
        label=label,
        control=control,
        signal_control=signal_control,
        observer=observer,
        passthrough=passthrough,
    )


def check_same_features(simulation: Sample, data: Sample) -> None:
    """Simulation and data must describe events with the same feature columns, in the same order."""
    require_same_columns(simulation.source, simulation.feature_names, data.source, data.feature_names)


def require_same_columns(sim_source: str, sim_names: Sequence[str], data_source: str, data_names: Sequence[str]) -> None:
    if list(sim_names) == list(data_names):
        return
    sim_only = [c for c in sim_names if c not in data_names]
    data_only = [c for c in data_names if c not in sim_names]
    detail = []
    if sim_only:
        detail.append(f"only in simulation: {', '.join(sim_only)}")
    if data_only:
        detail.append(f"only in data: {', '.join(data_only)}")
    if not detail:
        detail.append("same columns in a different order")
    raise DataError(
        f"{sim_source} and {data_source}: simulation and data have different feature columns "
        f"({'; '.join(detail)}); choose them with {option('features')}"
    )


def load_mixed(
    path: str | os.PathLike[str], spec: ColumnSpec, domain_column: str, data_label: str | None = None
) -> tuple[Sample, Sample]:
    """Split one file with a domain column (0 = simulation, anything else = data) into two samples.

    The label is read and checked on the simulation rows only (both classes there); the
    data rows' label is read only when ``data_label`` asks for it (evaluation), never for
    training. Each domain is validated on its own rows, and errors name rows of the file.
    """
    path_text = str(path)
    available = list_columns(path)
    _require_columns(path_text, available, [domain_column], "domain")
    spec = replace(spec, passthrough=tuple(c for c in spec.passthrough if c != domain_column))
    spec.check_roles(domain=domain_column)
    if data_label is not None:
        replace(spec, label=data_label).check_roles(domain=domain_column)
    if spec.features is None:
        excluded = {domain_column, data_label}
        spec = replace(spec, features=tuple(c for c in default_features(available, spec) if c not in excluded))
    features, wanted = columns_of(path, spec, require_label=True)
    if data_label is not None:
        _require_columns(path_text, available, [data_label], "label")
    extra = [domain_column] + ([data_label] if data_label is not None else [])
    raw = read_columns(path, list(dict.fromkeys(wanted + extra)))
    n = len(raw[domain_column])
    if n == 0:
        raise DataError(f"{path}: 0 events in the mixed sample; an empty domain cannot be used")
    codes = _flat_numeric(path_text, domain_column, raw[domain_column], n, "domain")
    _check_finite(path_text, domain_column, codes, "domain")
    is_data = codes != 0
    for flag, name in ((False, "simulation"), (True, "data")):
        if not (is_data == flag).any():
            raise DataError(f"{path}: domain column {domain_column!r} has no {name} events ({n} events)")

    def rows_of(mask: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        index = np.flatnonzero(mask)
        return index, {column: values[index] for column, values in raw.items()}

    sim_rows, sim_raw = rows_of(~is_data)
    simulation = sample_from_columns(path_text, spec, features, sim_raw, "simulation", sim_rows)
    require_both_classes(path_text, spec.label, simulation, where=" among the simulation rows")
    data_rows, data_raw = rows_of(is_data)
    data = sample_from_columns(path_text, replace(spec, label=data_label), features, data_raw, "data", data_rows)
    return simulation, data
