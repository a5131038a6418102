"""How close the packed engine is to this machine's limits, part by part, in CPU time.

Measures, on one thread: the peak rate of 16-lane float32 FMAs (16 independent chains of
the engine's own ``vfma``), the rate at which a float64 input stream can be read, the
first-layer kernel alone on inputs already standardised (in cache), and the whole
engine on the 57-64-32-1 reference network. Writes JSON.

    python benchmarks/packed_limits.py --out packed_limits.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
from deploy_bench import REFERENCE, cpu_model, reference_run
from numba import njit

from sqnn.engines._simd import vfma, vload, vsplat, vstore
from sqnn.engines import packed
from sqnn.engines.packed import PackedEngine

FMA_ROUNDS = 2_000_000


@njit(cache=False)
def _fma_peak(values, rounds):  # type: ignore[no-untyped-def]
    """16 independent FMA chains of 16 lanes each (latency hidden), ``rounds`` times."""
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = vload(values, 0)
    a8 = a9 = a10 = a11 = a12 = a13 = a14 = a15 = vload(values, 16)
    m = vsplat(np.float32(0.999999))
    c = vsplat(np.float32(1e-7))
    for _ in range(rounds):
        a0 = vfma(a0, m, c)
        a1 = vfma(a1, m, c)
        a2 = vfma(a2, m, c)
        a3 = vfma(a3, m, c)
        a4 = vfma(a4, m, c)
        a5 = vfma(a5, m, c)
        a6 = vfma(a6, m, c)
        a7 = vfma(a7, m, c)
        a8 = vfma(a8, m, c)
        a9 = vfma(a9, m, c)
        a10 = vfma(a10, m, c)
        a11 = vfma(a11, m, c)
        a12 = vfma(a12, m, c)
        a13 = vfma(a13, m, c)
        a14 = vfma(a14, m, c)
        a15 = vfma(a15, m, c)
    one = vsplat(np.float32(1.0))
    # every chain feeds the stored result, so none of them is dead code
    total = a0
    for v in (a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15):
        total = vfma(total, one, v)
    vstore(values, 0, total)


@njit(cache=False)
def _first_layer_only(xt, n_in, n1_pad, f32, w_off, b_off, h, repeats):  # type: ignore[no-untyped-def]
    for _ in range(repeats):
        for e0 in range(0, xt.shape[0], packed.TILE):
            packed._first_float32(xt, e0, n_in, n1_pad, f32, w_off, b_off, h)


@njit(cache=False, fastmath=True)
def _read(x):  # type: ignore[no-untyped-def]
    total = 0.0
    for v in x.ravel():
        total += v
    return total


def cpu_seconds(fn, repeats: int = 9) -> float:  # type: ignore[no-untyped-def]
    fn()
    times = []
    for _ in range(repeats):
        start = time.thread_time_ns()
        fn()
        times.append(time.thread_time_ns() - start)
    return float(np.min(times)) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--events", type=int, default=65536)
    args = parser.parse_args()
    n = args.events

    values = np.ones(32, dtype=np.float32)
    fma_per_ns = 16 * 16 * FMA_ROUNDS / cpu_seconds(lambda: _fma_peak(values, FMA_ROUNDS)) / 1e9
    x = np.random.default_rng(0).normal(size=(n, 57))
    read_gb_s = x.nbytes / cpu_seconds(lambda: _read(x)) / 1e9
    first_layer_fmas = 57 * 64
    with tempfile.TemporaryDirectory() as tmp:
        engine = PackedEngine.from_run(reference_run(Path(tmp) / "run", REFERENCE))
        engine_rate = n / cpu_seconds(lambda: engine.logit(x))
        meta = engine._i64
        xt = np.random.default_rng(1).normal(size=(packed.CHUNK, 57)).astype(np.float32)
        h = np.zeros((packed.CHUNK, 2), dtype=np.uint64)
        repeats = max(1, n // packed.CHUNK)
        first_rate = repeats * packed.CHUNK / cpu_seconds(
            lambda: _first_layer_only(xt, 57, int(meta[packed.N1_PAD]), engine._f32, int(meta[packed.F32_W1]), int(meta[packed.F32_B1]), h, repeats)
        )
    results = {
        "machine": {"platform": platform.platform(), "cpu": cpu_model(), "cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "clock": "CPU time of the calling thread, best of 9",
        "fma_lanes_per_ns": round(fma_per_ns, 1),
        "first_layer_bound_events_per_s": round(fma_per_ns * 1e9 / first_layer_fmas),
        "float64_read_gb_per_s": round(read_gb_s, 2),
        "input_read_bound_events_per_s": round(read_gb_s * 1e9 / (57 * 8)),
        "first_layer_kernel_events_per_s": round(first_rate),
        "first_layer_kernel_fraction_of_bound": round(first_rate / (fma_per_ns * 1e9 / first_layer_fmas), 3),
        "engine_events_per_s": round(engine_rate),
        "engine_fraction_of_first_layer_bound": round(engine_rate / (fma_per_ns * 1e9 / first_layer_fmas), 3),
    }
    print(json.dumps(results, indent=2))
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
