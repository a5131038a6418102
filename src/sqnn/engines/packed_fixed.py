"""The packed CPU engine for fixed-point networks (:mod:`sqnn.engines.fixed_network`): numba kernels.

Events are processed 64 at a time, every layer on 4 events at once:

1. **Standardisation** as in the step-network engine (float64, then float32), and the
   rounding onto the input grid: integer-valued float32 x_int.
2. **Each hidden layer**: z_int = W_int · c + b_int with 16-lane float32 FMAs on
   integer-valued floats (4 events × 64 outputs in 16 vector accumulators, or 4 × 16 for
   a narrow layer). Every partial sum is an integer below 2^24 — checked when the engine
   is built, from the weights and the largest codes — so float32 is exact here; a
   network beyond that bound runs a scalar float64 kernel instead (exact below 2^53).
3. **Activation**, on the vectors: ReLU codes = min(max(roundeven(z · 2^-shift), 0), max);
   θ levels = Σ_k [z ≥ T_k] (one compare and one blend per threshold, 16 units at once),
   times the level of a step (2^B for a thresholded unit).
4. **Head**: the logit in int64 from the last codes, times its lsb.

The results equal :meth:`FixedNetwork.reference` bit for bit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sqnn.engines.fixed_network import RELU, FixedNetwork
from sqnn.engines.network import FLOAT32_EXACT
from sqnn.errors import SqnnError, option, phrase

try:
    from numba import njit  # noqa: F401  (the engine needs the deploy extra)
except ImportError as _exc:  # pragma: no cover
    raise SqnnError("the packed engine needs numba: pip install 'sqnn[deploy]'") from _exc

from sqnn.engines._simd import vadd, vfma, vge_one, vload, vmax, vmin, vmul, vroundeven, vsplat, vstore
from sqnn.engines._simd import LANES
from sqnn.engines.staging import CHUNK, INPUT_GRID_INTEGERS, TILE, _inline, _jit, _stage

__all__ = ["FixedPackedEngine", "KERNEL_FLOAT32", "KERNEL_FLOAT64"]

KERNEL_FLOAT32, KERNEL_FLOAT64 = 0, 1
BLOCK = 64
(N_IN, N_LAYERS, STRIDE, HEAD_N_IN, KERNEL, F64_MEAN, F64_SCALE, F32_INQ, I64_HEAD_W, HEAD_BIAS, F64_LSB,
 CODES_TOTAL) = range(12)
HEADER = 16
RECORD = 10
(L_KIND, L_N_IN, L_N_OUT, L_N_PAD, L_W, L_B, L_P, L_N_T, L_LEVEL, L_CODE_OFF) = range(RECORD)
KIND_RELU, KIND_THETA = 0, 1
_EVENTS_PER_THREAD = 8192
_FLOAT64 = np.dtype(np.float64)
_FLOAT32 = np.dtype(np.float32)


def _pad(n: int) -> int:
    return -(-n // LANES) * LANES


class FixedPackedEngine:
    """Packed inference of a :class:`FixedNetwork` (build with :meth:`from_run` or :meth:`load`).

    >>> engine = FixedPackedEngine.from_run(run)      # doctest: +SKIP
    >>> logits = engine.logit(features)               # float64, the network's own scoring
    """

    def __init__(self, network: FixedNetwork) -> None:
        self.network = network
        self._n_inputs = network.n_inputs
        self._pool: Any = None
        self._pool_threads = 0
        self._build()

    @classmethod
    def from_run(cls, run: Any, inference: str | None = None) -> "FixedPackedEngine":
        return cls(FixedNetwork.from_run(run, inference))

    @classmethod
    def load(cls, directory: str | Path) -> "FixedPackedEngine":
        return cls(FixedNetwork.load(directory))

    def save(self, directory: str | Path) -> None:
        self.network.save(directory)

    @property
    def scoring(self) -> str:
        return self.network.scoring

    @property
    def exact_in_float32(self) -> bool:
        """Every hidden layer's partial sums stay below 2^24, so the float32 vector kernel is exact."""
        return max(self.network.bounds()[:-1]) < FLOAT32_EXACT

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        net = self.network
        meta = [0] * HEADER
        f64: list[np.ndarray] = []
        i64: list[np.ndarray] = []
        sizes = {"f64": 0, "i64": HEADER + RECORD * len(net.layers)}

        def put(kind: str, array: np.ndarray) -> int:
            offset = sizes[kind]
            flat = np.ascontiguousarray(array).ravel()
            (f64 if kind == "f64" else i64).append(flat)
            sizes[kind] += flat.size
            return offset

        meta[N_IN], meta[N_LAYERS] = net.n_inputs, len(net.layers)
        meta[STRIDE] = max(_pad(layer.n_out) for layer in net.layers)
        meta[KERNEL] = KERNEL_FLOAT32 if self.exact_in_float32 else KERNEL_FLOAT64
        meta[F64_MEAN] = put("f64", net.mean.astype(np.float64))
        meta[F64_SCALE] = put("f64", 1.0 / net.scale.astype(np.float64))
        grid = net.input_grid
        meta[F32_INQ] = put("f64", np.array([2.0**grid.fractional, grid.min_int, grid.max_int]))
        records = []
        code_off = 0
        for layer in net.layers:
            n_pad = _pad(layer.n_out)
            record = [0] * RECORD
            record[L_N_IN], record[L_N_OUT], record[L_N_PAD] = layer.n_in, layer.n_out, n_pad
            # (n_in, n_pad) with padding outputs of zero weight and bias: their codes are never read
            weight = np.zeros((layer.n_in, n_pad))
            weight[:, : layer.n_out] = layer.weight_int.T
            bias = np.zeros(n_pad)
            bias[: layer.n_out] = layer.bias_int
            record[L_W] = put("f64", weight)
            record[L_B] = put("f64", bias)
            if layer.activation == RELU:
                record[L_KIND] = KIND_RELU
                record[L_P] = put("f64", np.array([2.0**-layer.relu_shift, float(layer.max_code)]))
            else:
                assert layer.thresholds is not None
                record[L_KIND] = KIND_THETA
                record[L_P] = put("f64", layer.thresholds.astype(np.float64))
                record[L_N_T] = len(layer.thresholds)
            record[L_LEVEL] = layer.level
            record[L_CODE_OFF] = code_off
            code_off += layer.n_out
            records.append(record)
        meta[CODES_TOTAL] = code_off
        meta[HEAD_N_IN] = len(net.head_weight_int)
        meta[I64_HEAD_W] = put("i64", net.head_weight_int.astype(np.int64))
        meta[HEAD_BIAS] = net.head_bias_int
        meta[F64_LSB] = put("f64", np.array([net.logit_lsb]))
        self._meta = np.asarray(meta + [v for r in records for v in r], dtype=np.int64)
        self._f64 = np.concatenate(f64)
        # float32 copy (same offsets) for the vector kernel, padded so that a 16-lane load at the last offset stays inside
        self._f32 = np.concatenate([self._f64.astype(np.float32), np.zeros(LANES, np.float32)])
        self._i64 = np.concatenate([self._meta] + i64 + [np.zeros(8, np.int64)])
        self._params = (self._f64, self._f32, self._i64)

    @property
    def model_bytes(self) -> int:
        """Bytes of the parameters the kernel reads (float32 weights, biases and tables, standardisation, head)."""
        net = self.network
        total = net.n_inputs * 8 * 2 + 3 * 4
        for layer in net.layers:
            total += (layer.n_in + 1) * _pad(layer.n_out) * 4 + (len(layer.thresholds) if layer.thresholds is not None else 2) * 4
        return total + (len(net.head_weight_int) + 2) * 8

    # --------------------------------------------------------------- inference
    def _features(self, features: np.ndarray) -> np.ndarray:
        x = features
        if type(x) is not np.ndarray or (x.dtype is not _FLOAT64 and x.dtype is not _FLOAT32):
            x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self._n_inputs:
            raise SqnnError(f"expected events with {self._n_inputs} features, got an array of shape {x.shape}")
        return x

    def _check_inference(self, inference: str | None) -> None:
        if inference is not None and inference != self.network.scoring:
            build = phrase(f"export_run(..., inference={inference!r})", f"sqnn export --inference {inference}")
            raise SqnnError(
                f"this packed network scores {self.network.scoring!r}, not {inference!r}: "
                f"build it with that inference ({build})"
            )

    def logit(self, features: np.ndarray, *, inference: str | None = None, threads: int = 1) -> np.ndarray:
        """Logits (float64, exact on the logit's grid) in the network's scoring."""
        x = features
        if type(x) is not np.ndarray or (x.dtype is not _FLOAT64 and x.dtype is not _FLOAT32) or x.ndim != 2 or x.shape[1] != self._n_inputs:
            x = self._features(x)
        if inference is not None:
            self._check_inference(inference)
        out = np.empty(x.shape[0], dtype=np.float64)
        if threads > 1 and len(x) >= _EVENTS_PER_THREAD * threads:
            self._threaded(x, out, threads)
        else:
            self._kernel()(x, *self._params, out, _NO_CODES)
        return out

    def _kernel(self):  # type: ignore[no-untyped-def]
        return _fixed_float32 if self._meta[KERNEL] == KERNEL_FLOAT32 else _fixed_float64

    def _threaded(self, x: np.ndarray, out: np.ndarray, threads: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        if self._pool is None or self._pool_threads != threads:
            if self._pool is not None:
                self._pool.shutdown()
            self._pool, self._pool_threads = ThreadPoolExecutor(threads), threads
        bounds = np.linspace(0, len(x), threads + 1).astype(int)
        bounds = (bounds // CHUNK) * CHUNK
        bounds[-1] = len(x)
        kernel = self._kernel()
        futures = [
            self._pool.submit(kernel, x[a:b], *self._params, out[a:b], _NO_CODES)
            for a, b in zip(bounds[:-1], bounds[1:]) if b > a
        ]
        for future in futures:
            future.result()

    def hidden_codes(self, features: np.ndarray) -> list[np.ndarray]:
        """Codes of every hidden layer (int64 (N, units) each): ReLU outputs in units of their lsb, θ levels m."""
        x = self._features(features)
        out = np.empty(len(x), dtype=np.float64)
        codes = np.zeros((len(x), int(self._meta[CODES_TOTAL])), dtype=np.float32)
        self._kernel()(x, *self._params, out, codes)
        split = np.cumsum([0] + self.network.widths)
        return [codes[:, a:b].astype(np.int64) for a, b in zip(split[:-1], split[1:])]


_NO_CODES = np.zeros((0, 1), dtype=np.float32)


# ---------------------------------------------------------------------- kernels
@_inline
def _activate(v, kind, f32, p, n_t, level):  # type: ignore[no-untyped-def]
    """Codes of 16 pre-activations (integer-valued float32)."""
    if kind == KIND_RELU:
        shifted = vroundeven(vmul(v, vsplat(f32[p])))
        return vmin(vmax(shifted, vsplat(np.float32(0.0))), vsplat(f32[p + 1]))
    m = vsplat(np.float32(0.0))
    for k in range(n_t):
        m = vadd(m, vge_one(v, vsplat(f32[p + k])))
    return vmul(m, vsplat(level))


@_inline
def _dense4(src, e0, n_in, f32, w_off, b_off, n_pad, kind, p, n_t, level, dst, stride):  # type: ignore[no-untyped-def]
    """Codes of one layer for events e0 … e0 + 3 (rows of ``src``) into the flat row-major ``dst``."""
    e1, e2, e3 = e0 + 1, e0 + 2, e0 + 3
    r0, r1, r2, r3 = e0 * stride, e1 * stride, e2 * stride, e3 * stride
    col = 0
    while col + BLOCK <= n_pad:
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
            s = vsplat(src[e0, k])
            a00 = vfma(s, w0, a00)
            a01 = vfma(s, w1, a01)
            a02 = vfma(s, w2, a02)
            a03 = vfma(s, w3, a03)
            s = vsplat(src[e1, k])
            a10 = vfma(s, w0, a10)
            a11 = vfma(s, w1, a11)
            a12 = vfma(s, w2, a12)
            a13 = vfma(s, w3, a13)
            s = vsplat(src[e2, k])
            a20 = vfma(s, w0, a20)
            a21 = vfma(s, w1, a21)
            a22 = vfma(s, w2, a22)
            a23 = vfma(s, w3, a23)
            s = vsplat(src[e3, k])
            a30 = vfma(s, w0, a30)
            a31 = vfma(s, w1, a31)
            a32 = vfma(s, w2, a32)
            a33 = vfma(s, w3, a33)
            w += n_pad
        vstore(dst, r0 + col, _activate(a00, kind, f32, p, n_t, level))
        vstore(dst, r0 + col + 16, _activate(a01, kind, f32, p, n_t, level))
        vstore(dst, r0 + col + 32, _activate(a02, kind, f32, p, n_t, level))
        vstore(dst, r0 + col + 48, _activate(a03, kind, f32, p, n_t, level))
        vstore(dst, r1 + col, _activate(a10, kind, f32, p, n_t, level))
        vstore(dst, r1 + col + 16, _activate(a11, kind, f32, p, n_t, level))
        vstore(dst, r1 + col + 32, _activate(a12, kind, f32, p, n_t, level))
        vstore(dst, r1 + col + 48, _activate(a13, kind, f32, p, n_t, level))
        vstore(dst, r2 + col, _activate(a20, kind, f32, p, n_t, level))
        vstore(dst, r2 + col + 16, _activate(a21, kind, f32, p, n_t, level))
        vstore(dst, r2 + col + 32, _activate(a22, kind, f32, p, n_t, level))
        vstore(dst, r2 + col + 48, _activate(a23, kind, f32, p, n_t, level))
        vstore(dst, r3 + col, _activate(a30, kind, f32, p, n_t, level))
        vstore(dst, r3 + col + 16, _activate(a31, kind, f32, p, n_t, level))
        vstore(dst, r3 + col + 32, _activate(a32, kind, f32, p, n_t, level))
        vstore(dst, r3 + col + 48, _activate(a33, kind, f32, p, n_t, level))
        col += BLOCK
    while col < n_pad:
        # a narrow block: two accumulators per event (even and odd inputs) keep 8 FMA chains in flight
        b0 = vload(f32, b_off + col)
        zero = vsplat(np.float32(0.0))
        a0, a1, a2, a3 = b0, b0, b0, b0
        c0, c1, c2, c3 = zero, zero, zero, zero
        w = w_off + col
        k = 0
        while k + 1 < n_in:
            w0 = vload(f32, w)
            w1 = vload(f32, w + n_pad)
            a0 = vfma(vsplat(src[e0, k]), w0, a0)
            a1 = vfma(vsplat(src[e1, k]), w0, a1)
            a2 = vfma(vsplat(src[e2, k]), w0, a2)
            a3 = vfma(vsplat(src[e3, k]), w0, a3)
            c0 = vfma(vsplat(src[e0, k + 1]), w1, c0)
            c1 = vfma(vsplat(src[e1, k + 1]), w1, c1)
            c2 = vfma(vsplat(src[e2, k + 1]), w1, c2)
            c3 = vfma(vsplat(src[e3, k + 1]), w1, c3)
            w += 2 * n_pad
            k += 2
        if k < n_in:
            w0 = vload(f32, w)
            a0 = vfma(vsplat(src[e0, k]), w0, a0)
            a1 = vfma(vsplat(src[e1, k]), w0, a1)
            a2 = vfma(vsplat(src[e2, k]), w0, a2)
            a3 = vfma(vsplat(src[e3, k]), w0, a3)
        vstore(dst, r0 + col, _activate(vadd(a0, c0), kind, f32, p, n_t, level))
        vstore(dst, r1 + col, _activate(vadd(a1, c1), kind, f32, p, n_t, level))
        vstore(dst, r2 + col, _activate(vadd(a2, c2), kind, f32, p, n_t, level))
        vstore(dst, r3 + col, _activate(vadd(a3, c3), kind, f32, p, n_t, level))
        col += LANES


@_jit
def _fixed_float32(x, f64, f32, i64, out, codes):  # type: ignore[no-untyped-def]
    meta = i64
    want_codes = codes.shape[0] > 0
    n = x.shape[0]
    n_in, n_layers, stride = meta[N_IN], meta[N_LAYERS], meta[STRIDE]
    mean = f64[meta[F64_MEAN] : meta[F64_MEAN] + n_in]
    rscale = f64[meta[F64_SCALE] : meta[F64_SCALE] + n_in]
    q = meta[F32_INQ]
    qscale, qlo, qhi = f32[q], f32[q + 1], f32[q + 2]
    head_n = meta[HEAD_N_IN]
    head_w = i64[meta[I64_HEAD_W] : meta[I64_HEAD_W] + head_n]
    head_bias, lsb = meta[HEAD_BIAS], f64[meta[F64_LSB]]
    rows = min(CHUNK, -(-n // TILE) * TILE)
    xt = np.empty((rows, n_in), dtype=np.float32)
    even = np.empty((rows, stride), dtype=np.float32)
    odd = np.empty((rows, stride), dtype=np.float32)
    even_flat = even.reshape(rows * stride)
    odd_flat = odd.reshape(rows * stride)
    for base in range(0, n, CHUNK):
        count = min(CHUNK, n - base)
        _stage(x, base, count, mean, rscale, INPUT_GRID_INTEGERS, qscale, qlo, qhi, xt)
        for layer in range(n_layers):
            r = HEADER + layer * RECORD
            kind, n_in_l, n_pad = meta[r + L_KIND], meta[r + L_N_IN], meta[r + L_N_PAD]
            w_off, b_off, p, n_t = meta[r + L_W], meta[r + L_B], meta[r + L_P], meta[r + L_N_T]
            level = np.float32(meta[r + L_LEVEL])
            # layer l writes `even` (l even) or `odd` (l odd) and reads the other (the inputs for l = 0)
            for e0 in range(0, count, TILE):
                if layer == 0:
                    _dense4(xt, e0, n_in_l, f32, w_off, b_off, n_pad, kind, p, n_t, level, even_flat, stride)
                elif layer % 2 == 1:
                    _dense4(even, e0, n_in_l, f32, w_off, b_off, n_pad, kind, p, n_t, level, odd_flat, stride)
                else:
                    _dense4(odd, e0, n_in_l, f32, w_off, b_off, n_pad, kind, p, n_t, level, even_flat, stride)
            if want_codes:
                n_out, code_off = meta[r + L_N_OUT], meta[r + L_CODE_OFF]
                for e in range(count):
                    for j in range(n_out):
                        codes[base + e, code_off + j] = even[e, j] if layer % 2 == 0 else odd[e, j]
        last_even = (n_layers - 1) % 2 == 0
        for e in range(count):
            total = head_bias
            if last_even:
                for j in range(head_n):
                    total += np.int64(even[e, j]) * head_w[j]
            else:
                for j in range(head_n):
                    total += np.int64(odd[e, j]) * head_w[j]
            out[base + e] = np.float64(total) * lsb


@_jit
def _fixed_float64(x, f64, f32, i64, out, codes):  # type: ignore[no-untyped-def]
    """The same network in scalar float64 (exact below 2^53), for grids whose sums pass 2^24."""
    meta = i64
    want_codes = codes.shape[0] > 0
    n = x.shape[0]
    n_in, n_layers, stride = meta[N_IN], meta[N_LAYERS], meta[STRIDE]
    mean = f64[meta[F64_MEAN] : meta[F64_MEAN] + n_in]
    rscale = f64[meta[F64_SCALE] : meta[F64_SCALE] + n_in]
    q = meta[F32_INQ]
    qscale, qlo, qhi = f32[q], f32[q + 1], f32[q + 2]
    head_n = meta[HEAD_N_IN]
    head_w = i64[meta[I64_HEAD_W] : meta[I64_HEAD_W] + head_n]
    head_bias, lsb = meta[HEAD_BIAS], f64[meta[F64_LSB]]
    xt = np.empty((CHUNK, n_in), dtype=np.float32)
    src = np.empty(max(stride, n_in), dtype=np.float64)
    dst = np.empty(stride, dtype=np.float64)
    for base in range(0, n, CHUNK):
        count = min(CHUNK, n - base)
        _stage(x, base, count, mean, rscale, INPUT_GRID_INTEGERS, qscale, qlo, qhi, xt)
        for e in range(count):
            for k in range(n_in):
                src[k] = xt[e, k]
            for layer in range(n_layers):
                r = HEADER + layer * RECORD
                kind, n_in_l, n_out, n_pad = meta[r + L_KIND], meta[r + L_N_IN], meta[r + L_N_OUT], meta[r + L_N_PAD]
                w_off, b_off, p, n_t = meta[r + L_W], meta[r + L_B], meta[r + L_P], meta[r + L_N_T]
                for j in range(n_out):
                    dst[j] = f64[b_off + j]
                for k in range(n_in_l):
                    v = src[k]
                    if v != 0.0:
                        row = w_off + k * n_pad
                        for j in range(n_out):
                            dst[j] += v * f64[row + j]
                for j in range(n_out):
                    z = dst[j]
                    if kind == KIND_RELU:
                        dst[j] = min(max(np.rint(z * f64[p]), 0.0), f64[p + 1])
                    else:
                        m = 0.0
                        for t in range(n_t):
                            if z >= f64[p + t]:
                                m += 1.0
                        dst[j] = m * meta[r + L_LEVEL]
                if want_codes:
                    for j in range(n_out):
                        codes[base + e, meta[r + L_CODE_OFF] + j] = dst[j]
                for j in range(n_out):
                    src[j] = dst[j]
            total = head_bias
            for j in range(head_n):
                total += np.int64(src[j]) * head_w[j]
            out[base + e] = np.float64(total) * lsb
