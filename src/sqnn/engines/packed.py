"""The packed CPU engine: numba kernels for networks with binary (step) hidden layers.

(Fixed-point networks — ReLU layers and Bernoulli units scored by their mean on grids —
run in :mod:`sqnn.engines.packed_fixed`; :func:`sqnn.engines.arithmetic.packed_engine` picks the engine.)

Events are processed 64 at a time:

1. **Standardisation** in float64, then float32, as :class:`sqnn.data.Standardizer` does
   it (with the reciprocal of the scale, see :func:`_stage`), and with quantisation-aware
   training the rounding to the input grid. It is *not* folded into the first layer's
   weights: folding changes the rounding (for a feature with |mean| ≫ scale it cancels
   digits), so a decision near z = 0 could flip.
2. **First layer**: a register-blocked float32 kernel (4 events × 64 outputs in 16
   vector accumulators of 16 lanes, one FMA per weight) whose result goes straight to
   bits with a vector compare. A quantisation-aware first layer runs the same kernel on
   integer-valued floats, which is exact while every partial sum stays below 2^24
   (checked when the engine is built; otherwise an int64 kernel runs).
3. **Binary layers**: activations packed into uint64 words; c = Σ s_j t_j =
   2·popcount(t AND P) − popcount(t), compared with an integer threshold that holds the
   scale and the bias, 8 units per vector popcount. Float-weight step layers add integer
   weight rows for the set bits.
4. **Head**: the logit is the bias plus one table entry per byte of the last layer's
   bits (256 partial sums per byte, exact integers on the head's grid).

Stochastic inference follows :mod:`sqnn.engines.lfsr` bit for bit (z in float64 or exact
integers, LFSR registers advanced by a byte-table jump). The registers live in the
engine: one engine per thread for stochastic inference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from sqnn.engines.network import BinaryLayer, DeployedNetwork, unpack_bits
from sqnn.errors import SqnnError, option

from sqnn.engines import lfsr
from sqnn.engines._simd import LANES, binary_mask8, popcount, prefetch, vfma, vload, vmask_gt0, vsplat
from sqnn.engines.staging import (
    CHUNK,
    INPUT_FLOAT,
    INPUT_GRID_INTEGERS,
    INPUT_GRID_VALUES,
    TILE,
    _inline,
    _jit,
    _stage,
)

__all__ = ["PackedEngine"]

BLOCK = 64
Inference = Literal["deterministic", "stochastic"]

# meta: fixed header, then one record per layer after the first
(N_IN, N1, N1_PAD, FIRST_MODE, INPUT_MODE, N_HIDDEN, TOTAL_WORDS, HEAD_N_IN, HEAD_BYTES, HEAD_WORD_OFF,
 F64_MEAN, F64_SCALE, F64_W1, F64_B1, F64_HEAD_LSB, F32_W1, F32_B1, F32_INQ, I64_W1, I64_B1,
 I64_HEAD_TABLES, I64_HEAD_BIAS, MAX_UNITS, N_UNITS_TOTAL, Z1_FRAC) = range(25)
HEADER = 32
RECORD = 8
(L_KIND, L_N_IN, L_N_OUT, L_IN_OFF, L_OUT_OFF, L_PARAM_A, L_PARAM_B, L_UNIT_OFF) = range(RECORD)
KIND_BINARY, KIND_GRID = 0, 1
FIRST_FLOAT32, FIRST_INT64 = 0, 2
# stochastic tables: per step layer (first layer first) a record in `theta_meta`
(T_SHIFT, T_ZFRAC, T_OFFSET, T_LENGTH, T_ROWS, T_VALUES) = range(6)
T_RECORD = 6


def _words(n: int) -> int:
    return max(1, -(-n // 64))


class PackedEngine:
    """Bit-packed inference of a :class:`DeployedNetwork` (build with :meth:`from_run` or :meth:`load`).

    >>> engine = PackedEngine.from_run(run)            # doctest: +SKIP
    >>> logits = engine.logit(features)                # deterministic, float64
    >>> votes = engine.logit(features, inference="stochastic", samples=8, seed=3)  # (N, 8)
    """

    def __init__(self, network: DeployedNetwork) -> None:
        self.network = network
        self._n_inputs = network.n_inputs
        self._pool: Any = None  # threads for large deterministic batches, created on first use
        self._pool_threads = 0
        self._build()
        self.reset(0)

    @classmethod
    def from_run(cls, run: "object") -> "PackedEngine":
        """The engine of a step network (:func:`sqnn.engines.arithmetic.packed_engine` picks the engine for any network)."""
        from sqnn.runs import Run

        assert isinstance(run, Run)
        return cls(DeployedNetwork.from_run(run))

    @classmethod
    def load(cls, directory: str | Path) -> "PackedEngine":
        """A step network's export read back (:func:`sqnn.engines.arithmetic.load_packed` reads either kind)."""
        return cls(DeployedNetwork.load(directory))

    def save(self, directory: str | Path) -> None:
        self.network.save(directory)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        net = self.network
        first = net.first
        n_in, n1 = net.n_inputs, first.n_out
        n1_pad = -(-n1 // LANES) * LANES
        meta = [0] * HEADER
        f64: list[np.ndarray] = []
        f32: list[np.ndarray] = []
        i64: list[np.ndarray] = []
        u64: list[np.ndarray] = []
        # the int64 array starts with ``meta`` (header and layer records): one array argument fewer
        sizes = {"f64": 0, "f32": 0, "i64": HEADER + RECORD * len(net.hidden), "u64": 0}
        store = {"f64": f64, "f32": f32, "i64": i64, "u64": u64}

        def put(kind: str, array: np.ndarray) -> int:
            offset = sizes[kind]
            flat = np.ascontiguousarray(array).ravel()
            store[kind].append(flat)
            sizes[kind] += flat.size
            return offset

        meta[N_IN], meta[N1], meta[N1_PAD] = n_in, n1, n1_pad
        meta[F64_MEAN] = put("f64", net.mean.astype(np.float64))
        meta[F64_SCALE] = put("f64", 1.0 / net.scale.astype(np.float64))
        grid = first.input_grid
        if grid is None:
            meta[INPUT_MODE] = INPUT_FLOAT
            inq = np.array([1.0, 0.0, 0.0], dtype=np.float32)
        else:
            meta[INPUT_MODE] = INPUT_GRID_INTEGERS if first.is_integer else INPUT_GRID_VALUES
            inq = np.array([2.0**grid.fractional, grid.min_int, grid.max_int], dtype=np.float32)
        meta[F32_INQ] = put("f32", inq)
        # first layer: float32 (n_in, n1_pad) with padding units that never fire (bias -1, weights 0)
        if first.is_integer:
            w_int, b_int = first.integer_weights()
            w_values, b_values = w_int.astype(np.float64), b_int.astype(np.float64)
            meta[FIRST_MODE] = FIRST_FLOAT32 if first.float32_exact else FIRST_INT64
            meta[Z1_FRAC] = first.z_fractional
        else:
            w_values, b_values = first.weight.astype(np.float64), first.bias.astype(np.float64)
            meta[FIRST_MODE] = FIRST_FLOAT32
            meta[Z1_FRAC] = -1
        w_pad = np.zeros((n_in, n1_pad))
        w_pad[:, :n1] = w_values.T
        b_pad = np.full(n1_pad, -1.0)
        b_pad[:n1] = b_values
        meta[F32_W1] = put("f32", w_pad.astype(np.float32))
        meta[F32_B1] = put("f32", b_pad.astype(np.float32))
        meta[F64_W1] = put("f64", w_pad)
        meta[F64_B1] = put("f64", b_pad)
        meta[I64_W1] = put("i64", np.rint(w_pad).astype(np.int64) if first.is_integer else np.zeros(w_pad.shape, np.int64))
        meta[I64_B1] = put("i64", np.rint(b_pad).astype(np.int64) if first.is_integer else np.zeros(b_pad.shape, np.int64))
        # later layers
        records: list[list[int]] = []
        word = _words(n1)
        in_off, unit_off = 0, n1
        for layer in net.hidden:
            record = [0] * RECORD
            record[L_N_IN], record[L_N_OUT] = layer.n_in, layer.n_out
            record[L_IN_OFF], record[L_OUT_OFF], record[L_UNIT_OFF] = in_off, word, unit_off
            in_words = _words(layer.n_in)
            if isinstance(layer, BinaryLayer):
                record[L_KIND] = KIND_BINARY
                bits = np.zeros((layer.n_out, in_words * 64), dtype=bool)
                bits[:, : layer.n_in] = layer.positive
                record[L_PARAM_A] = put("u64", np.packbits(bits, axis=1, bitorder="little").view(np.uint64))
                record[L_PARAM_B] = put("i64", layer.threshold.astype(np.int64))
            else:
                record[L_KIND] = KIND_GRID
                record[L_PARAM_A] = put("i64", np.ascontiguousarray(layer.weight_int.T))
                record[L_PARAM_B] = put("i64", layer.bias_int)
            records.append(record)
            in_off, word, unit_off = word, word + _words(layer.n_out), unit_off + layer.n_out
        meta[N_HIDDEN] = len(net.hidden)
        meta[TOTAL_WORDS] = word
        meta[HEAD_WORD_OFF] = in_off
        head = net.head
        meta[HEAD_N_IN] = head.n_in
        n_bytes = -(-head.n_in // 8)
        meta[HEAD_BYTES] = n_bytes
        weights = np.zeros(n_bytes * 8, dtype=np.int64)
        weights[: head.n_in] = head.weight_int[0]
        patterns = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1, bitorder="little").astype(np.int64)
        tables = np.stack([patterns @ weights[8 * b : 8 * b + 8] for b in range(n_bytes)])
        meta[I64_HEAD_TABLES] = put("i64", tables)
        meta[I64_HEAD_BIAS] = put("i64", head.bias_int.astype(np.int64))
        meta[F64_HEAD_LSB] = put("f64", np.array([head.lsb]))
        meta[MAX_UNITS] = max(net.widths)
        meta[N_UNITS_TOTAL] = sum(net.widths)
        meta_all = meta + [v for record in records for v in record]
        self._meta = np.asarray(meta_all, dtype=np.int64)
        self._f64 = np.concatenate(f64)
        self._f32 = np.concatenate(f32).astype(np.float32)
        # padding so that a 16-lane load at the last offset stays inside the array
        self._f32 = np.concatenate([self._f32, np.zeros(LANES, np.float32)])
        self._i64 = np.concatenate([self._meta] + i64 + [np.zeros(8, np.int64)])
        self._u64 = np.concatenate(u64 + [np.zeros(8, np.uint64)])
        # stochastic inference
        tables_theta = lfsr.theta_tables(net)
        theta_meta, values = [], []
        offset = 0
        for table in tables_theta:
            theta_meta += [table.shift, -1 if table.z_fractional is None else table.z_fractional, table.offset,
                           table.length, table.values.shape[0], offset]
            values.append(table.values.ravel().astype(np.int64))
            offset += table.values.size
        self._params = (self._f64, self._f32, self._i64, self._u64)
        self._theta_meta = np.asarray(theta_meta, dtype=np.int64)
        self._theta_values = np.concatenate(values)
        self._jump = lfsr.jump_tables(1)

    @property
    def model_bytes(self) -> int:
        """Bytes of the parameters the deterministic kernel reads (sign words, thresholds, first-layer float32, head tables)."""
        net = self.network
        n1_pad = int(self._meta[N1_PAD])
        total = net.n_inputs * 8 * 2 + (net.n_inputs + 1) * n1_pad * 4
        for layer in net.hidden:
            if isinstance(layer, BinaryLayer):
                total += layer.n_out * _words(layer.n_in) * 8 + layer.n_out * 8
            else:
                total += (layer.n_in + 1) * layer.n_out * 8
        total += int(self._meta[HEAD_BYTES]) * 256 * 8 + 8
        return total

    # --------------------------------------------------------------- inference
    def _features(self, features: np.ndarray) -> np.ndarray:
        x = features
        if type(x) is not np.ndarray or (x.dtype is not _FLOAT64 and x.dtype is not _FLOAT32):
            x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self._n_inputs:
            raise SqnnError(f"expected events with {self._n_inputs} features, got an array of shape {x.shape}")
        return x

    def logit(
        self, features: np.ndarray, *, inference: Inference = "deterministic", samples: int = 1, seed: int | None = None, threads: int = 1
    ) -> np.ndarray:
        """Logits (float64): shape (N,) deterministic, (N, samples) stochastic.

        Stochastic draws continue the engine's LFSR sequence across calls; pass ``seed``
        to restart it (as :meth:`reset` does). ``threads > 1`` splits a deterministic
        batch over threads (the kernel releases the GIL).
        """
        x = features
        if type(x) is not np.ndarray or (x.dtype is not _FLOAT64 and x.dtype is not _FLOAT32) or x.ndim != 2 or x.shape[1] != self._n_inputs:
            x = self._features(x)
        if inference == "deterministic":
            out = np.empty(x.shape[0], dtype=np.float64)
            if threads > 1 and len(x) >= _EVENTS_PER_THREAD * threads:
                self._threaded(x, out, threads)
            else:
                _deterministic(x, *self._params, out, _NO_BITS)
            return out
        if inference != "stochastic":
            raise SqnnError(f"inference must be 'deterministic' or 'stochastic', got {inference!r}")
        return self._stochastic(x, samples, seed, want_bits=False)[0]

    def _threaded(self, x: np.ndarray, out: np.ndarray, threads: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        if self._pool is None or self._pool_threads != threads:
            if self._pool is not None:
                self._pool.shutdown()
            self._pool, self._pool_threads = ThreadPoolExecutor(threads), threads
        bounds = np.linspace(0, len(x), threads + 1).astype(int)
        bounds = (bounds // CHUNK) * CHUNK
        bounds[-1] = len(x)
        futures = [
            self._pool.submit(_deterministic, x[a:b], *self._params, out[a:b], _NO_BITS)
            for a, b in zip(bounds[:-1], bounds[1:]) if b > a
        ]
        for future in futures:
            future.result()

    def hidden_bits(self, features: np.ndarray) -> list[np.ndarray]:
        """Deterministic bits of every step layer, bool (N, units) each."""
        x = self._features(features)
        out = np.empty(len(x), dtype=np.float64)
        words = np.zeros((len(x), int(self._meta[TOTAL_WORDS])), dtype=np.uint64)
        _deterministic(x, *self._params, out, words)
        return self._split(words)

    def _split(self, words: np.ndarray) -> list[np.ndarray]:
        layers, offset = [], 0
        for width in self.network.widths:
            n_words = _words(width)
            layers.append(unpack_bits(words[..., offset : offset + n_words].reshape(-1, n_words), width).reshape(*words.shape[:-1], width))
            offset += n_words
        return layers

    def reset(self, seed: int) -> None:
        """Restart the LFSR registers from ``seed``."""
        self.seed = int(seed)
        self._states = lfsr.unit_seeds(seed, int(self._meta[N_UNITS_TOTAL]))

    def stochastic(self, features: np.ndarray, samples: int, seed: int | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
        """Logits (N, K) and the bits of every step layer, bool (N, K, units)."""
        logits, words = self._stochastic(self._features(features), samples, seed, want_bits=True)
        return logits, self._split(words)

    def _stochastic(self, x: np.ndarray, samples: int, seed: int | None, want_bits: bool) -> tuple[np.ndarray, np.ndarray]:
        if samples < 1:
            raise SqnnError(f"{option('samples')} must be at least 1, got {samples}")
        if seed is not None:
            self.reset(seed)
        out = np.empty((len(x), samples), dtype=np.float64)
        words = np.zeros((len(x), samples, int(self._meta[TOTAL_WORDS])) if want_bits else (0, 1, 1), dtype=np.uint64)
        _stochastic(x, *self._params, self._theta_meta, self._theta_values, self._jump, self._states, out, words)
        return out, words


_NO_BITS = np.zeros((0, 1), dtype=np.uint64)
_EVENTS_PER_THREAD = 8192  # below this a thread costs more than it saves
_FLOAT64 = np.dtype(np.float64)
_FLOAT32 = np.dtype(np.float32)


# ---------------------------------------------------------------------- kernels
# Kernel conventions: parameter slices are taken once per call, scratch arrays are 2-D
# and indexed by loop counters, so numba knows indices are non-negative (no wraparound
# selects, no gathers) and creates no array views (reference counting) per event.
# Events are staged CHUNK at a time; the first-layer kernel takes them TILE by TILE.


@_inline
def _first_float32(xt, e0, n_in, n1_pad, f32, w_off, b_off, h):  # type: ignore[no-untyped-def]
    """Bits of the first layer for events e0 … e0 + 3 of the chunk (float32, 4 × 64 register block)."""
    e1, e2, e3 = e0 + 1, e0 + 2, e0 + 3
    col = 0
    while col + BLOCK <= n1_pad:
        b0 = vload(f32, b_off + col)
        b1 = vload(f32, b_off + col + 16)
        b2 = vload(f32, b_off + col + 32)
        b3 = vload(f32, b_off + col + 48)
        a00, a01, a02, a03 = b0, b1, b2, b3
        a10, a11, a12, a13 = b0, b1, b2, b3
        a20, a21, a22, a23 = b0, b1, b2, b3
        a30, a31, a32, a33 = b0, b1, b2, b3
        w = w_off + col
        for k in range(n_in):
            w0 = vload(f32, w)
            w1 = vload(f32, w + 16)
            w2 = vload(f32, w + 32)
            w3 = vload(f32, w + 48)
            s = vsplat(xt[e0, k])
            a00 = vfma(s, w0, a00)
            a01 = vfma(s, w1, a01)
            a02 = vfma(s, w2, a02)
            a03 = vfma(s, w3, a03)
            s = vsplat(xt[e1, k])
            a10 = vfma(s, w0, a10)
            a11 = vfma(s, w1, a11)
            a12 = vfma(s, w2, a12)
            a13 = vfma(s, w3, a13)
            s = vsplat(xt[e2, k])
            a20 = vfma(s, w0, a20)
            a21 = vfma(s, w1, a21)
            a22 = vfma(s, w2, a22)
            a23 = vfma(s, w3, a23)
            s = vsplat(xt[e3, k])
            a30 = vfma(s, w0, a30)
            a31 = vfma(s, w1, a31)
            a32 = vfma(s, w2, a32)
            a33 = vfma(s, w3, a33)
            w += n1_pad
        word = col // 64
        h[e0, word] = vmask_gt0(a00) | (vmask_gt0(a01) << 16) | (vmask_gt0(a02) << 32) | (vmask_gt0(a03) << 48)
        h[e1, word] = vmask_gt0(a10) | (vmask_gt0(a11) << 16) | (vmask_gt0(a12) << 32) | (vmask_gt0(a13) << 48)
        h[e2, word] = vmask_gt0(a20) | (vmask_gt0(a21) << 16) | (vmask_gt0(a22) << 32) | (vmask_gt0(a23) << 48)
        h[e3, word] = vmask_gt0(a30) | (vmask_gt0(a31) << 16) | (vmask_gt0(a32) << 32) | (vmask_gt0(a33) << 48)
        col += BLOCK
    if col < n1_pad:
        word = col // 64
        h[e0, word] = 0
        h[e1, word] = 0
        h[e2, word] = 0
        h[e3, word] = 0
    while col < n1_pad:
        b0 = vload(f32, b_off + col)
        a0, a1, a2, a3 = b0, b0, b0, b0
        w = w_off + col
        for k in range(n_in):
            w0 = vload(f32, w)
            a0 = vfma(vsplat(xt[e0, k]), w0, a0)
            a1 = vfma(vsplat(xt[e1, k]), w0, a1)
            a2 = vfma(vsplat(xt[e2, k]), w0, a2)
            a3 = vfma(vsplat(xt[e3, k]), w0, a3)
            w += n1_pad
        word, shift = col // 64, col % 64
        h[e0, word] |= vmask_gt0(a0) << shift
        h[e1, word] |= vmask_gt0(a1) << shift
        h[e2, word] |= vmask_gt0(a2) << shift
        h[e3, word] |= vmask_gt0(a3) << shift
        col += LANES


@_inline
def _first_z(xt, e, w64, b64, wi, bi, is_int, z, zi):  # type: ignore[no-untyped-def]
    """z of the first layer for chunk row ``e``: float64 (``z``) or exact int64 (``zi``); weights are (n_in, n_out)."""
    n_in, n_out = w64.shape
    if is_int:
        for j in range(n_out):
            zi[j] = bi[j]
        for k in range(n_in):
            v = np.int64(xt[e, k])
            if v != 0:
                for j in range(n_out):
                    zi[j] += v * wi[k, j]
    else:
        for j in range(n_out):
            z[j] = b64[j]
        for k in range(n_in):
            v = np.float64(xt[e, k])
            for j in range(n_out):
                z[j] += v * w64[k, j]


@_inline
def _binary_layer(h, e, in_off, n_in, n_out, signs, thresholds, counts):  # type: ignore[no-untyped-def]
    """c − T of every unit of a binary layer into ``counts``: c = 2·popcount(t AND P) − popcount(t)."""
    in_words = signs.shape[1]
    if in_words == 1:
        t = h[e, in_off]
        pc = popcount(t)
        for i in range(n_out):
            counts[i] = 2 * popcount(t & signs[i, 0]) - pc - thresholds[i]
    else:
        pc = np.int64(0)
        for w in range(in_words):
            pc += popcount(h[e, in_off + w])
        for i in range(n_out):
            ones = np.int64(0)
            for w in range(in_words):
                ones += popcount(h[e, in_off + w] & signs[i, w])
            counts[i] = 2 * ones - pc - thresholds[i]


@_inline
def _grid_layer(h, e, in_off, n_in, n_out, weights, bias, counts):  # type: ignore[no-untyped-def]
    """z_int of a grid layer (bias plus the weight rows of the set input bits) into ``counts``."""
    for i in range(n_out):
        counts[i] = bias[i]
    for j in range(n_in):
        if (h[e, in_off + j // 64] >> np.uint64(j % 64)) & np.uint64(1):
            for i in range(n_out):
                counts[i] += weights[j, i]


@_inline
def _pack(values, n_out, h, e, out_off):  # type: ignore[no-untyped-def]
    """Bit i of the layer's words set where values[i] ≥ 0."""
    for w in range((n_out + 63) // 64):
        word = np.uint64(0)
        for i in range(min(64, n_out - 64 * w)):
            word |= np.uint64(values[64 * w + i] >= 0) << np.uint64(i)
        h[e, out_off + w] = word


@_inline
def _head(h, e, word_off, tables, bias, lsb):  # type: ignore[no-untyped-def]
    """Logit from the last layer's bits: one table entry per byte."""
    total = bias
    for b in range(tables.shape[0]):
        byte = (h[e, word_off + b // 8] >> np.uint64(8 * (b % 8))) & np.uint64(0xFF)
        total += tables[b, byte]
    return np.float64(total) * lsb


@_inline
def _params(meta, f64, f32, i64):  # type: ignore[no-untyped-def]
    n_in, n1_pad = meta[N_IN], meta[N1_PAD]
    mean = f64[meta[F64_MEAN] : meta[F64_MEAN] + n_in]
    rscale = f64[meta[F64_SCALE] : meta[F64_SCALE] + n_in]
    w64 = f64[meta[F64_W1] : meta[F64_W1] + n_in * n1_pad].reshape((n_in, n1_pad))
    b64 = f64[meta[F64_B1] : meta[F64_B1] + n1_pad]
    wi = i64[meta[I64_W1] : meta[I64_W1] + n_in * n1_pad].reshape((n_in, n1_pad))
    bi = i64[meta[I64_B1] : meta[I64_B1] + n1_pad]
    n_bytes = meta[HEAD_BYTES]
    head_tables = i64[meta[I64_HEAD_TABLES] : meta[I64_HEAD_TABLES] + n_bytes * 256].reshape((n_bytes, 256))
    return mean, rscale, w64, b64, wi, bi, head_tables


@_jit
def _deterministic(x, f64, f32, i64, u64, out, bits_out):  # type: ignore[no-untyped-def]
    meta = i64
    want_bits = bits_out.shape[0] > 0
    n = x.shape[0]
    n_in, n1, n1_pad = meta[N_IN], meta[N1], meta[N1_PAD]
    n_hidden = meta[N_HIDDEN]
    total_words = meta[TOTAL_WORDS]
    mean = f64[meta[F64_MEAN] : meta[F64_MEAN] + n_in]
    rscale = f64[meta[F64_SCALE] : meta[F64_SCALE] + n_in]
    n_bytes = meta[HEAD_BYTES]
    head_tables = i64[meta[I64_HEAD_TABLES] : meta[I64_HEAD_TABLES] + n_bytes * 256]
    mode = meta[INPUT_MODE]
    q = meta[F32_INQ]
    qscale, qlo, qhi = f32[q], f32[q + 1], f32[q + 2]
    first_mode = meta[FIRST_MODE]
    head_bias, head_lsb, head_word = i64[meta[I64_HEAD_BIAS]], f64[meta[F64_HEAD_LSB]], meta[HEAD_WORD_OFF]
    rows = min(CHUNK, -(-n // TILE) * TILE)
    xt = np.empty((rows, n_in), dtype=np.float32)
    h = np.empty((rows, total_words), dtype=np.uint64)
    for base in range(0, n, CHUNK):
        count = min(CHUNK, n - base)
        _stage(x, base, count, mean, rscale, mode, qscale, qlo, qhi, xt)
        if first_mode == FIRST_FLOAT32:
            row_bytes = n_in * x.itemsize
            for e0 in range(0, count, TILE):
                # the next chunk's rows are read while this one computes (a large batch streams from memory)
                ahead = base + CHUNK + e0
                if ahead + TILE <= n:
                    for line in range(0, TILE * row_bytes, 64):
                        prefetch(x, ahead, line)
                _first_float32(xt, e0, n_in, n1_pad, f32, meta[F32_W1], meta[F32_B1], h)
        else:
            _, _, w64, b64, wi, bi, _ = _params(meta, f64, f32, i64)
            z = np.empty(n1_pad, dtype=np.float64)
            zi = np.empty(n1_pad, dtype=np.int64)
            counts = np.empty(n1_pad, dtype=np.int64)
            for e in range(count):
                _first_z(xt, e, w64, b64, wi, bi, True, z, zi)
                for j in range(n1):
                    counts[j] = zi[j] - 1  # fires when z_int > 0
                _pack(counts, n1, h, e, 0)
        for layer in range(n_hidden):
            r = HEADER + layer * RECORD
            n_in_l, n_out = meta[r + L_N_IN], meta[r + L_N_OUT]
            in_off, out_off = meta[r + L_IN_OFF], meta[r + L_OUT_OFF]
            a, b = meta[r + L_PARAM_A], meta[r + L_PARAM_B]
            # written out rather than calling the inline helpers: each inlined call
            # increments and decrements the reference counts of its array arguments
            if meta[r + L_KIND] == KIND_BINARY:
                in_words = (n_in_l + 63) // 64
                # 8 units per vector step; the arrays are padded so that the last step stays inside
                signs = u64[a : a + n_out * in_words + 8]
                thresholds = i64[b : b + n_out + 8]
                if in_words == 1:
                    for e in range(count):
                        t = h[e, in_off]
                        pc = popcount(t)
                        for w in range((n_out + 63) // 64):
                            top = min(64, n_out - 64 * w)
                            word = np.uint64(0)
                            for g in range(0, top, 8):
                                word |= binary_mask8(signs, thresholds, 64 * w + g, t, pc) << np.uint64(g)
                            if top < 64:
                                word &= (np.uint64(1) << np.uint64(top)) - np.uint64(1)
                            h[e, out_off + w] = word
                else:
                    counts = np.empty(n_out, dtype=np.int64)
                    for e in range(count):
                        pc = np.int64(0)
                        for w in range(in_words):
                            pc += popcount(h[e, in_off + w])
                        for i in range(n_out):
                            ones = np.int64(0)
                            for w in range(in_words):
                                ones += popcount(h[e, in_off + w] & signs[i * in_words + w])
                            counts[i] = 2 * ones - pc - thresholds[i]
                        for w in range((n_out + 63) // 64):
                            word = np.uint64(0)
                            for i in range(min(64, n_out - 64 * w)):
                                word |= np.uint64(counts[64 * w + i] >= 0) << np.uint64(i)
                            h[e, out_off + w] = word
            else:
                weights = i64[a : a + n_in_l * n_out].reshape((n_in_l, n_out))
                params = i64[b : b + n_out]
                counts = np.empty(n_out, dtype=np.int64)
                for e in range(count):
                    for i in range(n_out):
                        counts[i] = params[i] - 1  # fires when z_int > 0, i.e. z_int − 1 ≥ 0
                    for j in range(n_in_l):
                        if (h[e, in_off + j // 64] >> np.uint64(j % 64)) & np.uint64(1):
                            for i in range(n_out):
                                counts[i] += weights[j, i]
                    for w in range((n_out + 63) // 64):
                        word = np.uint64(0)
                        for i in range(min(64, n_out - 64 * w)):
                            word |= np.uint64(counts[64 * w + i] >= 0) << np.uint64(i)
                        h[e, out_off + w] = word
        for e in range(count):
            total = head_bias
            if n_bytes <= 8:
                # shifting t each step keeps this a scalar loop (vectorised, it would gather)
                t = h[e, head_word]
                for b in range(n_bytes):
                    total += head_tables[256 * b + np.int64(t & np.uint64(0xFF))]
                    t = t >> np.uint64(8)
            else:
                for b in range(n_bytes):
                    byte = (h[e, head_word + b // 8] >> np.uint64(8 * (b % 8))) & np.uint64(0xFF)
                    total += head_tables[256 * b + np.int64(byte)]
            out[base + e] = np.float64(total) * head_lsb
        if want_bits:
            for e in range(count):
                for w in range(total_words):
                    bits_out[base + e, w] = h[e, w]


@_inline
def _draw(states, unit, jump):  # type: ignore[no-untyped-def]
    """Advance one register by one draw (16 steps) and return its low 16 bits."""
    s = states[unit]
    s = (jump[0, s & np.uint32(0xFF)] ^ jump[1, (s >> np.uint32(8)) & np.uint32(0xFF)]
         ^ jump[2, (s >> np.uint32(16)) & np.uint32(0xFF)] ^ jump[3, s >> np.uint32(24)])
    states[unit] = s
    return np.int64(s & np.uint32(0xFFFF))


@_inline
def _column(theta_meta, layer, z_float, z_int, is_int):  # type: ignore[no-untyped-def]
    """Index into a layer's θ table (see :class:`sqnn.engines.lfsr.ThetaTable`)."""
    t = layer * T_RECORD
    shift, zfrac, offset, length = theta_meta[t + T_SHIFT], theta_meta[t + T_ZFRAC], theta_meta[t + T_OFFSET], theta_meta[t + T_LENGTH]
    if is_int:
        column = (z_int >> (zfrac - shift)) + offset
    else:
        scaled = np.floor(z_float * 2.0**shift)
        scaled = min(max(scaled, -1099511627776.0), 1099511627776.0)
        column = np.int64(scaled) + offset
    return min(max(column, 0), length - 1)


@_inline
def _theta(theta_meta, theta_values, layer, unit, column):  # type: ignore[no-untyped-def]
    t = layer * T_RECORD
    row = unit if theta_meta[t + T_ROWS] > 1 else 0
    return theta_values[theta_meta[t + T_VALUES] + row * theta_meta[t + T_LENGTH] + column]


@_jit
def _stochastic(x, f64, f32, i64, u64, theta_meta, theta_values, jump, states, out, bits_out):  # type: ignore[no-untyped-def]
    meta = i64
    want_bits = bits_out.shape[0] > 0
    n = x.shape[0]
    samples = out.shape[1]
    n_in, n1, n1_pad = meta[N_IN], meta[N1], meta[N1_PAD]
    n_hidden = meta[N_HIDDEN]
    total_words = meta[TOTAL_WORDS]
    mean, rscale, w64, b64, wi, bi, head_tables = _params(meta, f64, f32, i64)
    q = meta[F32_INQ]
    qscale, qlo, qhi = f32[q], f32[q + 1], f32[q + 2]
    head_bias, head_lsb, head_word = i64[meta[I64_HEAD_BIAS]], f64[meta[F64_HEAD_LSB]], meta[HEAD_WORD_OFF]
    first_int = meta[Z1_FRAC] >= 0
    xt = np.zeros((CHUNK, n_in), dtype=np.float32)
    h = np.zeros((1, total_words + 1), dtype=np.uint64)
    z = np.zeros(n1_pad, dtype=np.float64)
    zi = np.zeros(n1_pad, dtype=np.int64)
    columns = np.empty(n1_pad, dtype=np.int64)
    counts = np.empty(meta[MAX_UNITS] + 64, dtype=np.int64)
    draws = np.empty(meta[MAX_UNITS] + 64, dtype=np.int64)
    no_threshold = np.zeros(meta[MAX_UNITS] + 64, dtype=np.int64)
    for base in range(0, n, CHUNK):
        count = min(CHUNK, n - base)
        _stage(x, base, count, mean, rscale, meta[INPUT_MODE], qscale, qlo, qhi, xt)
        for e in range(count):
            _first_z(xt, e, w64, b64, wi, bi, first_int, z, zi)
            for j in range(n1):
                columns[j] = _column(theta_meta, 0, z[j], zi[j], first_int)
            for k in range(samples):
                # a unit fires when u < θ_q, i.e. θ_q − 1 − u ≥ 0
                for j in range(n1):
                    draws[j] = _theta(theta_meta, theta_values, 0, j, columns[j]) - 1 - _draw(states, j, jump)
                _pack(draws, n1, h, 0, 0)
                for layer in range(n_hidden):
                    r = HEADER + layer * RECORD
                    n_in_l, n_out = meta[r + L_N_IN], meta[r + L_N_OUT]
                    in_off, out_off, unit_off = meta[r + L_IN_OFF], meta[r + L_OUT_OFF], meta[r + L_UNIT_OFF]
                    a, b = meta[r + L_PARAM_A], meta[r + L_PARAM_B]
                    in_words = (n_in_l + 63) // 64
                    if meta[r + L_KIND] == KIND_BINARY:
                        signs = u64[a : a + n_out * in_words].reshape((n_out, in_words))
                        _binary_layer(h, 0, in_off, n_in_l, n_out, signs, no_threshold, counts)
                    else:
                        weights = i64[a : a + n_in_l * n_out].reshape((n_in_l, n_out))
                        _grid_layer(h, 0, in_off, n_in_l, n_out, weights, i64[b : b + n_out], counts)
                    for i in range(n_out):
                        column = _column(theta_meta, layer + 1, 0.0, counts[i], True)
                        draws[i] = _theta(theta_meta, theta_values, layer + 1, i, column) - 1 - _draw(states, unit_off + i, jump)
                    _pack(draws, n_out, h, 0, out_off)
                out[base + e, k] = _head(h, 0, head_word, head_tables, head_bias, head_lsb)
                if want_bits:
                    for w in range(total_words):
                        bits_out[base + e, k, w] = h[0, w]
