"""A fast toy with a known, tunable simulation/data shift.

Six Gaussian features and a mass-like observer per event:

- ``x0``, ``x1``, ``x2``: discriminating, modelled perfectly (same in both domains);
- ``x3``: discriminating, but mismodelled: in data its separation shrinks by
  ``0.5·shift`` and every event moves by ``+0.6·shift``, so a classifier trained on
  simulation over-trusts it;
- ``x4``: no discrimination; in data shifted by ``shift`` and widened by ``1 + 0.3·shift``;
- ``x5``: a weak discriminant modelled perfectly;
- ``mass``: the observer; signal a peak at 80, background falling. ``control`` is the
  sideband ``mass < 60 or mass > 100`` (background-dominated in both domains).

``shift = 0`` makes simulation and data identically distributed per class. The signal
fraction is 0.5 in both domains by default, so the toy isolates the feature shift;
``signal_fraction`` adds a label shift on top (the physics case has 0.5 vs 0.3).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sqnn.files import atomic_path
from sqnn.errors import SqnnError, option

__all__ = ["FEATURES", "generate", "make_toy"]

# the six features of the toy
FEATURES = ("x0", "x1", "x2", "x3", "x4", "x5")

DEFAULT_SIGNAL_FRACTION = {"sim": 0.5, "data": 0.5}


def make_toy(
    domain: str, n: int, seed: int, *, shift: float = 1.0, signal_fraction: float | None = None
) -> dict[str, np.ndarray]:
    """Columns of a toy sample as numpy arrays."""
    if domain not in DEFAULT_SIGNAL_FRACTION:
        raise SqnnError(f"toy: domain must be 'sim' or 'data', got {domain!r}")
    if n <= 0:
        raise SqnnError(f"toy: {option('n')} must be positive, got {n}")
    fraction = DEFAULT_SIGNAL_FRACTION[domain] if signal_fraction is None else float(signal_fraction)
    if not 0.0 <= fraction <= 1.0:
        raise SqnnError(f"toy: signal fraction must be within [0, 1], got {fraction}")
    # one independent random sequence per (seed, domain), so sim and data never share events
    rng = np.random.default_rng([int(seed), 0 if domain == "sim" else 1])
    is_signal = np.zeros(n, dtype=np.int8)
    is_signal[: int(round(n * fraction))] = 1
    rng.shuffle(is_signal)
    y = is_signal.astype(np.float64)
    s = float(shift) if domain == "data" else 0.0

    x0 = rng.normal(1.0 * y, 1.0)
    x1 = rng.normal(0.8 * y, 1.0)
    x2 = 0.5 * x0 + rng.normal(0.5 * y, 1.0)
    x3 = rng.normal((1.2 - 0.5 * s) * y, 1.0) + 0.6 * s
    x4 = rng.normal(s, 1.0 + 0.3 * s, size=n)
    x5 = rng.normal(0.3 * y, 1.0)
    mass = np.where(is_signal == 1, rng.normal(80.0, 10.0, size=n), 20.0 + rng.exponential(45.0, size=n))
    control = (mass < 60.0) | (mass > 100.0)
    return {
        "x0": x0.astype(np.float32),
        "x1": x1.astype(np.float32),
        "x2": x2.astype(np.float32),
        "x3": x3.astype(np.float32),
        "x4": x4.astype(np.float32),
        "x5": x5.astype(np.float32),
        "mass": mass.astype(np.float32),
        "is_signal": is_signal,
        "weight": np.ones(n, dtype=np.float32),
        "control": control,
        "event": np.arange(n, dtype=np.int64),
    }


def generate(
    domain: str,
    n: int,
    seed: int,
    out: str | os.PathLike[str],
    *,
    shift: float = 1.0,
    signal_fraction: float | None = None,
    **_: object,
) -> Path:
    """Write a toy sample to ``out`` (parquet) atomically and return its path."""
    columns = make_toy(domain, n, seed, shift=shift, signal_fraction=signal_fraction)
    table = pa.table(columns)
    settings = {
        "case": "toy",
        "domain": domain,
        "n": n,
        "seed": seed,
        "shift": shift,
        "signal_fraction": DEFAULT_SIGNAL_FRACTION[domain] if signal_fraction is None else signal_fraction,
        "control": "mass < 60 or mass > 100",
        "observer": "mass",
    }
    table = table.replace_schema_metadata({"sqnn": json.dumps(settings)})
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp)
    return Path(out)
