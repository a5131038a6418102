"""Stochastic inference with a linear-feedback shift register (LFSR): the numpy emulation.

The firmware cannot call ``torch.rand``; it draws from LFSRs, and so does this emulation,
bit for bit. The definition, shared with the C++ layer in :mod:`sqnn.engines.hls` and
the packed engine:

- **Register**: 32-bit Galois LFSR shifting right, feedback polynomial
  x^32 + x^22 + x^2 + x + 1 (taps 32, 22, 2, 1; toggle mask ``0x80200003``). The
  polynomial is primitive, so every non-zero state runs through all 2^32 − 1 states
  (:func:`is_maximal_length` proves it from the step matrix).
- **One register per hidden unit**, seeded from the user's seed by splitmix64
  (:func:`unit_seeds`; a zero seed becomes 1). Every draw advances every register by
  16 steps; the uniform is the low 16 bits of the state, u ∈ [0, 65535].
- **Draw order**: draw d = n·K + k for event n and sample k (K samples per event), the
  same for every unit; the firmware makes one draw per call, so K samples of an event are
  K consecutive calls with that event.
- **Firing**: θ = σ(τz) is quantised to 16 bits through a table, θ_q ∈ [0, 65536], and
  the unit fires when u < θ_q (P = θ_q / 65536). The table index comes from z exactly:
  ``idx = clip(floor(z · 2^S) + offset, 0, length − 1)``; for a binary layer z is the
  integer c = Σ s_j t_j and each unit has its own row θ_q[c] = round(65536 σ(τ(αc + b))).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sqnn.engines.network import BinaryLayer, DeployedNetwork, hidden_preactivation

__all__ = [
    "WIDTH", "TAPS", "MASK", "STEPS_PER_DRAW", "UNIFORM_BITS", "THETA_ONE",
    "step", "advance", "is_maximal_length", "unit_seeds", "jump_tables", "states_after_draws",
    "LFSRSource", "ThetaTable", "theta_tables", "Emulation", "emulate",
]

WIDTH = 32
TAPS = (32, 22, 2, 1)
MASK = 0x80200003
STEPS_PER_DRAW = 16
UNIFORM_BITS = 16
THETA_ONE = 1 << UNIFORM_BITS
_FULL = (1 << WIDTH) - 1
_PERIOD = _FULL  # 2^32 - 1 = 3 · 5 · 17 · 257 · 65537
_PERIOD_PRIMES = (3, 5, 17, 257, 65537)
_TABLE_RANGE = 12.0  # |τz| beyond which θ_q is 0 or 65536: 65536·σ(-12) < 0.5


def step(state: int) -> int:
    """One step of the Galois register."""
    return (state >> 1) ^ (MASK if state & 1 else 0)


def advance(state: int, steps: int) -> int:
    for _ in range(steps):
        state = step(state)
    return state


# The register is linear over GF(2): a matrix is the tuple of the images of the 32 unit vectors.
def _apply(matrix: tuple[int, ...], state: int) -> int:
    out = 0
    for j in range(WIDTH):
        if (state >> j) & 1:
            out ^= matrix[j]
    return out


def _matmul(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(_apply(a, column) for column in b)


def _matpow(matrix: tuple[int, ...], power: int) -> tuple[int, ...]:
    result = tuple(1 << j for j in range(WIDTH))
    while power:
        if power & 1:
            result = _matmul(matrix, result)
        matrix = _matmul(matrix, matrix)
        power >>= 1
    return result


def step_matrix(steps: int = 1) -> tuple[int, ...]:
    return _matpow(tuple(step(1 << j) for j in range(WIDTH)), steps)


def is_maximal_length() -> bool:
    """The step matrix has order exactly 2^32 − 1 (⇔ the feedback polynomial is primitive)."""
    matrix = step_matrix(1)
    identity = tuple(1 << j for j in range(WIDTH))
    if _matpow(matrix, _PERIOD) != identity:
        return False
    return all(_matpow(matrix, _PERIOD // p) != identity for p in _PERIOD_PRIMES)


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return x ^ (x >> 31)


def unit_seeds(seed: int, n_units: int) -> np.ndarray:
    """Non-zero 32-bit start states of the ``n_units`` registers for a user seed."""
    seeds = []
    for unit in range(n_units):
        value = _splitmix64((int(seed) & 0xFFFFFFFFFFFFFFFF) ^ _splitmix64(unit + 1)) & _FULL
        seeds.append(value or 1)
    return np.asarray(seeds, dtype=np.uint32)


def jump_tables(draws: int = 1) -> np.ndarray:
    """(4, 256) uint32: the state after ``draws`` draws is the XOR of one entry per byte of the state."""
    matrix = step_matrix(STEPS_PER_DRAW * draws)
    tables = np.zeros((4, 256), dtype=np.uint32)
    for byte in range(4):
        for value in range(256):
            tables[byte, value] = _apply(matrix, value << (8 * byte))
    return tables


def _jump(tables: np.ndarray, states: np.ndarray) -> np.ndarray:
    return (
        tables[0][states & 0xFF]
        ^ tables[1][(states >> 8) & 0xFF]
        ^ tables[2][(states >> 16) & 0xFF]
        ^ tables[3][states >> 24]
    )


def states_after_draws(start: np.ndarray, n: int) -> np.ndarray:
    """(n, U) uint32: the states after draws 1 … n from the start states (U registers).

    Computed by doubling: rows [m, 2m) are rows [0, m) advanced by m draws, so the work
    is vectorised over events as well as units.
    """
    start = np.asarray(start, dtype=np.uint32)
    out = np.empty((n, len(start)), dtype=np.uint32)
    if n == 0:
        return out
    out[0] = _jump(jump_tables(1), start)
    filled, draws = 1, 1
    while filled < n:
        take = min(filled, n - filled)
        out[filled : filled + take] = _jump(jump_tables(draws), out[:take])
        filled += take
        draws *= 2
    return out


class LFSRSource:
    """The registers of all hidden units, advanced draw by draw across calls.

    >>> source = LFSRSource(seed=1, n_units=3)
    >>> a = source.uniforms(5); b = source.uniforms(2)
    >>> bool((LFSRSource(1, 3).uniforms(7) == np.concatenate([a, b])).all())
    True
    """

    def __init__(self, seed: int, n_units: int) -> None:
        self.seed = int(seed)
        self.states = unit_seeds(seed, n_units)

    def uniforms(self, n_draws: int) -> np.ndarray:
        """(n_draws, U) uniforms in [0, 65535] (uint32), advancing the registers."""
        states = states_after_draws(self.states, n_draws)
        if n_draws:
            self.states = states[-1].copy()
        return states & np.uint32(THETA_ONE - 1)


@dataclass(frozen=True)
class ThetaTable:
    """θ quantised to 16 bits as a function of a layer's z (see the module docstring)."""

    shift: int  # S: index = floor(z · 2^S) + offset
    z_fractional: int | None  # z as integers in units of 2^-F_z (None: z is a float64)
    offset: int
    values: np.ndarray  # uint32 (rows, length): one row per unit (binary layer) or one shared row

    @property
    def length(self) -> int:
        return int(self.values.shape[1])

    @property
    def per_unit(self) -> bool:
        return self.values.shape[0] > 1

    def index(self, z: np.ndarray) -> np.ndarray:
        """Table column for z (int64 in units of 2^-F_z, or float64)."""
        if self.z_fractional is None:
            scaled = np.floor(np.asarray(z, dtype=np.float64) * 2.0**self.shift)
            scaled = np.clip(scaled, -(1 << 40), 1 << 40).astype(np.int64)
        else:
            scaled = np.asarray(z, dtype=np.int64) >> (self.z_fractional - self.shift)
        return np.clip(scaled + self.offset, 0, self.length - 1)

    def theta(self, z: np.ndarray) -> np.ndarray:
        """θ_q (uint32) for z of shape (N, units)."""
        columns = self.index(z)
        if self.per_unit:
            return self.values[np.arange(columns.shape[-1]), columns]
        return self.values[0][columns]


def _quantized_sigmoid(x: np.ndarray) -> np.ndarray:
    theta = 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))
    return np.rint(theta * THETA_ONE).astype(np.uint32)


def _dense_table(temperature: float, z_fractional: int | None) -> ThetaTable:
    shift = math.ceil(math.log2(64 * temperature)) if temperature > 0 else 0
    shift = max(0, shift)
    if z_fractional is not None:
        shift = min(shift, z_fractional)
    half = math.ceil(_TABLE_RANGE / temperature * 2.0**shift)
    columns = np.arange(2 * half, dtype=np.float64) - half
    # the representative z of a column is the middle of the grid points it holds
    width = 2.0**-shift
    lsb = 0.0 if z_fractional is None else 2.0**-z_fractional
    z = columns * width + 0.5 * (width - lsb)
    return ThetaTable(shift=shift, z_fractional=z_fractional, offset=half, values=_quantized_sigmoid(temperature * z)[None, :])


def _binary_table(layer: BinaryLayer, temperature: float) -> ThetaTable:
    c = np.arange(-layer.n_in, layer.n_in + 1, dtype=np.float64)
    z = layer.alpha * c[None, :] + layer.bias.astype(np.float64)[:, None]
    return ThetaTable(shift=0, z_fractional=0, offset=layer.n_in, values=_quantized_sigmoid(temperature * z))


def theta_tables(network: DeployedNetwork) -> list[ThetaTable]:
    """One table per step layer, first layer first."""
    tau = network.temperature
    tables = [_dense_table(tau, network.first.z_fractional if network.first.is_integer else None)]
    for layer in network.hidden:
        tables.append(_binary_table(layer, tau) if isinstance(layer, BinaryLayer) else _dense_table(tau, layer.fractional))
    return tables


@dataclass
class Emulation:
    """Stochastic inference on N events × K samples."""

    hidden: list[np.ndarray]  # bool (N, K, units) per step layer
    logit: np.ndarray  # float64 (N, K)


def emulate(network: DeployedNetwork, features: np.ndarray, seed: int, samples: int = 1, source: LFSRSource | None = None) -> Emulation:
    """Stochastic inference with the LFSR definition above, in numpy.

    Pass a ``source`` to continue a sequence across calls (it is advanced); otherwise the
    registers start from ``seed``.
    """
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    n_units = sum(network.widths)
    source = source or LFSRSource(seed, n_units)
    standardized = network.standardize(features)
    n = len(standardized)
    u = source.uniforms(n * samples).reshape(n, samples, n_units)
    tables = theta_tables(network)
    z_float, z_int = network.first_layer_z(standardized)
    first_z = z_int if z_int is not None else z_float
    offset = 0
    width = network.first.n_out
    bits = u[:, :, offset : offset + width] < tables[0].theta(first_z)[:, None, :]
    hidden = [bits]
    offset += width
    for layer, table in zip(network.hidden, tables[1:]):
        z = hidden_preactivation(layer, bits.reshape(n * samples, -1)).reshape(n, samples, layer.n_out)
        bits = u[:, :, offset : offset + layer.n_out] < table.theta(z)
        hidden.append(bits)
        offset += layer.n_out
    head = network.head
    logit = (bits.astype(np.int64) @ head.weight_int[0] + head.bias_int[0]) * head.lsb
    return Emulation(hidden=hidden, logit=logit)

