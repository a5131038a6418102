"""What the packed engines share: how events are staged into a kernel, and how kernels are compiled.

Events are standardised (and, for a quantisation-aware network, put on the input grid)
``CHUNK`` at a time into a float32 scratch block; the first-layer kernels then take them
``TILE`` by ``TILE``. Kernel conventions: parameter slices are taken once per call,
scratch arrays are 2-D and indexed by loop counters, so numba knows indices are
non-negative (no wraparound selects, no gathers) and creates no array views (reference
counting) per event.
"""

from __future__ import annotations

import numpy as np

from sqnn.errors import SqnnError

try:
    from numba import njit
except ImportError as _exc:  # pragma: no cover - exercised only without the deploy extra
    raise SqnnError("the packed engine needs numba: pip install 'sqnn[deploy]'") from _exc

__all__ = ["CHUNK", "INPUT_FLOAT", "INPUT_GRID_INTEGERS", "INPUT_GRID_VALUES", "TILE"]

TILE = 4
CHUNK = 64
# how the inputs reach the first layer: float, fixed-point values, or their integers
INPUT_FLOAT, INPUT_GRID_VALUES, INPUT_GRID_INTEGERS = 0, 1, 2

_jit = njit(cache=True, boundscheck=False, nogil=True)
_inline = njit(cache=True, boundscheck=False, nogil=True, inline="always")


@_inline
def _stage(x, base, count, mean, rscale, mode, qscale, qlo, qhi, xt):  # type: ignore[no-untyped-def]
    """Standardised (and quantised) float32 inputs of events base … base + count into xt rows; zero rows after.

    (x − mean) · (1/scale) in float64, then float32: the same float32 as the division of
    :class:`sqnn.data.Standardizer` except when the quotient lies within a float64 ulp of
    a float32 rounding boundary (about 1e-9 of values); the division would cost as much
    as the first layer. One loop per mode, so that each vectorises.
    """
    n_in = mean.size
    if mode == INPUT_FLOAT:
        for e in range(count):
            for k in range(n_in):
                xt[e, k] = np.float32((np.float64(x[base + e, k]) - mean[k]) * rscale[k])
    elif mode == INPUT_GRID_INTEGERS:
        for e in range(count):
            for k in range(n_in):
                v = np.float32((np.float64(x[base + e, k]) - mean[k]) * rscale[k])
                xt[e, k] = min(max(np.rint(v * qscale), qlo), qhi)
    else:
        lsb = np.float32(1.0) / qscale
        for e in range(count):
            for k in range(n_in):
                v = np.float32((np.float64(x[base + e, k]) - mean[k]) * rscale[k])
                xt[e, k] = min(max(np.rint(v * qscale), qlo), qhi) * lsb
    for e in range(count, -(-count // TILE) * TILE):
        for k in range(n_in):
            xt[e, k] = np.float32(0.0)
