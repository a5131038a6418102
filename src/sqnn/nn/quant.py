"""Fixed-point grids for quantisation-aware training: ``ap_fixed<W, I>`` in torch and numpy.

A value on the grid of ``ap_fixed<W, I>`` is an integer multiple of 2^-(W-I) between
-2^(I-1) and 2^(I-1) - 2^-(W-I); on ``ap_ufixed<W, I>`` between 0 and 2^I - 2^-(W-I).
Rounding is half to even (``torch.round`` and ``np.rint`` agree, as do ONNX ``Round``
and ``AP_RND_CONV``) and values outside the range saturate. The training forward pass
sees the rounded values; the gradient passes straight through, so the firmware, the
packed engine and the Python model compute on the same numbers.

The module also holds the two other pieces of arithmetic every engine shares: the
integer bits a grid needs for observed values (:class:`RangeObserver`), and the θ table
of a Bernoulli unit scored by its expectation (:func:`theta_thresholds`): θ = σ(τz)
rounded to B bits is a staircase in z, so θ_q(z) = m / 2^B with m the number of
thresholds T_k that z reaches on its grid — comparisons, exact in every engine.

>>> grid = FixedPoint(8, 3)
>>> grid.quantize_numpy(np.array([0.01, 1.0 / 3.0, 9.0, -9.0])).tolist()
[0.0, 0.34375, 3.96875, -4.0]
>>> grid.hls_type
'ap_fixed<8,3>'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


__all__ = [
    "straight_through",
    "FixedPoint", "MAX_WIDTH", "RangeObserver", "integer_bits_for", "theta_thresholds", "theta_levels", "theta_levels_numpy",
    "round_shift",
]

MAX_WIDTH = 32
MAX_THETA_BITS = 8


def straight_through(hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """Forward the value of ``hard``, backpropagate as if it were ``soft``.

    Without a gradient to carry it is ``hard`` itself: soft + (hard − soft) can round
    away from ``hard`` (e.g. θ = 0.02 next to the level 1/16), and inference is exact.
    """
    if not (torch.is_grad_enabled() and soft.requires_grad):
        return hard
    return soft + (hard - soft).detach()


@dataclass(frozen=True)
class FixedPoint:
    """The grid of ``ap_fixed<width, integer>`` (``ap_ufixed`` when not ``signed``): ``integer`` bits before the binary point, sign included."""

    width: int
    integer: int
    signed: bool = True

    def __post_init__(self) -> None:
        if not (2 <= self.width <= MAX_WIDTH):
            raise ValueError(f"fixed-point width must lie in [2, {MAX_WIDTH}], got {self.width}")
        lowest = 1 if self.signed else 0
        if not (lowest <= self.integer <= self.width):
            raise ValueError(f"fixed-point integer bits must lie in [{lowest}, width={self.width}], got {self.integer}")

    @classmethod
    def parse(cls, value: Any, name: str, signed: bool = True) -> "FixedPoint | None":
        """``None`` or a pair ``[W, I]`` (from YAML/JSON) as a grid; anything else raises ``ValueError``."""
        if value is None or isinstance(value, FixedPoint):
            return value
        if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
            kind = "ap_fixed" if signed else "ap_ufixed"
            raise ValueError(f"{name} must be a pair [W, I] of integers ({kind}<W,I>), got {value!r}")
        try:
            return cls(int(value[0]), int(value[1]), signed)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None

    @property
    def fractional(self) -> int:
        return self.width - self.integer

    @property
    def lsb(self) -> float:
        return 2.0 ** -self.fractional

    @property
    def min_int(self) -> int:
        """Smallest value in units of the lsb."""
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_int(self) -> int:
        """Largest value in units of the lsb."""
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def max_value(self) -> float:
        return self.max_int * self.lsb

    @property
    def hls_type(self) -> str:
        return f"ap_{'' if self.signed else 'u'}fixed<{self.width},{self.integer}>"

    @property
    def hls_type_rounding(self) -> str:
        """The type whose assignment rounds half to even and saturates, as :meth:`quantize` does."""
        return f"ap_{'' if self.signed else 'u'}fixed<{self.width},{self.integer},AP_RND_CONV,AP_SAT>"

    def to_integers_numpy(self, x: np.ndarray) -> np.ndarray:
        """Rounded and saturated values in units of the lsb, in the dtype of ``x`` (float32 stays float32)."""
        x = np.asarray(x)
        scale = x.dtype.type(2.0**self.fractional) if x.dtype.kind == "f" else 2.0**self.fractional
        return np.clip(np.rint(x * scale), self.min_int, self.max_int)

    def quantize_numpy(self, x: np.ndarray) -> np.ndarray:
        return self.to_integers_numpy(x) * self.lsb

    def quantize(self, x: torch.Tensor, clip_gradient: bool = False) -> torch.Tensor:
        """Forward the grid value, backpropagate the identity (straight-through).

        With ``clip_gradient`` the gradient is zero where the value saturates (a clipped
        straight-through estimator, as for a bounded activation).
        """
        scale = 2.0**self.fractional
        hard = torch.clamp(torch.round(x * scale), self.min_int, self.max_int) / scale
        soft = torch.clamp(x, self.min_int / scale, self.max_int / scale) if clip_gradient else x
        return straight_through(hard, soft)

    def to_list(self) -> list[int]:
        return [self.width, self.integer]


def round_shift(values: np.ndarray, shift: int) -> np.ndarray:
    """Integers ``values`` / 2^shift rounded half to even (a left shift when ``shift`` < 0), exactly, in int64."""
    values = np.asarray(values, dtype=np.int64)
    if shift <= 0:
        return values << -shift
    floor = values >> shift
    rest = values - (floor << shift)
    half = np.int64(1) << (shift - 1)
    up = (rest > half) | ((rest == half) & (floor % 2 == 1))
    return floor + up


# ------------------------------------------------------------- ranges of values
_EXPONENTS = 160  # binades 2^-80 … 2^80; anything beyond is counted at the edge


class RangeObserver:
    """Counts of observed |values| per binade, to choose the integer bits of a grid.

    ``observe`` adds a tensor's values; :meth:`integer_bits` is the fewest integer bits
    whose grid saturates at most a fraction ``epsilon`` of the values seen (zeros count
    as seen and never saturate).

    >>> observer = RangeObserver()
    >>> observer.observe(torch.tensor([0.3, -1.5, 2.9, 0.0]))
    >>> observer.integer_bits(signed=True, epsilon=0.0), observer.integer_bits(signed=False, epsilon=0.0)
    (3, 2)
    """

    def __init__(self) -> None:
        self.counts = np.zeros(_EXPONENTS, dtype=np.int64)
        self.total = 0

    def observe(self, values: torch.Tensor) -> None:
        values = values.detach().reshape(-1)
        self.total += int(values.numel())
        nonzero = values[values != 0]
        if nonzero.numel() == 0:
            return
        # |v| in [2^(e-1), 2^e) for frexp exponent e
        _, exponent = torch.frexp(nonzero.abs().to(torch.float64))
        index = (exponent.to(torch.int64) + _EXPONENTS // 2).clamp(0, _EXPONENTS - 1)
        self.counts += np.bincount(index.numpy(), minlength=_EXPONENTS)

    def integer_bits(self, signed: bool, epsilon: float) -> int:
        """Integer bits (sign included when ``signed``) that hold all but a fraction ``epsilon`` of the values."""
        allowed = epsilon * self.total
        # values with frexp exponent e are ≥ 2^(e-1): a grid reaching 2^top saturates those with e - 1 ≥ top
        above = np.cumsum(self.counts[::-1])[::-1]  # above[i]: values with index ≥ i
        lowest = 1 if signed else 0
        for integer in range(lowest, MAX_WIDTH + 1):
            top = integer - 1 if signed else integer
            first_saturated = top + 1 + _EXPONENTS // 2
            if first_saturated >= _EXPONENTS or above[first_saturated] <= allowed:
                return integer
        return MAX_WIDTH


def integer_bits_for(largest: float, signed: bool, headroom: float = 1.0) -> int:
    """Fewest integer bits whose range holds ``headroom`` × ``largest`` (an absolute value)."""
    need = abs(float(largest)) * headroom
    lowest = 1 if signed else 0
    for integer in range(lowest, MAX_WIDTH + 1):
        top = 2.0 ** (integer - 1 if signed else integer)
        if need < top:
            return integer
    return MAX_WIDTH


# ------------------------------------------------------------------ the θ table
def theta_thresholds(temperature: float, bits: int, z_fractional: int) -> np.ndarray:
    """Integer thresholds T_1 ≤ … ≤ T_{2^B} (units 2^-F_z) of θ = σ(τz) rounded to ``bits`` fractional bits.

    round(2^B σ(τz)) ≥ k ⇔ σ(τz) ≥ (k - ½)/2^B ⇔ z ≥ t_k = σ⁻¹((k - ½)/2^B)/τ, and on the
    grid of z (multiples of 2^-F_z) ⇔ z_int ≥ T_k = ceil(t_k · 2^F_z). So θ_q(z) = m/2^B
    with m = #{k : z_int ≥ T_k} ∈ [0, 2^B] (a tie at exactly (k - ½)/2^B rounds up): 2^B
    thresholds, so that θ_q reaches 1 as it reaches 0 and θ_q(-z) = 1 - θ_q(z) away from
    ties. Every engine reads these integers; none evaluates σ.

    >>> theta_thresholds(6.0, 2, 4).tolist()
    [-5, -1, 2, 6]
    """
    if not (1 <= bits <= MAX_THETA_BITS):
        raise ValueError(f"theta_bits must lie in [1, {MAX_THETA_BITS}], got {bits}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    levels = 1 << bits
    k = np.arange(1, levels + 1, dtype=np.float64)
    p = (k - 0.5) / levels
    t = np.log(p / (1.0 - p)) / float(temperature)
    return np.ceil(t * 2.0**z_fractional).astype(np.int64)


def theta_levels_numpy(z_int: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """m = #{k : z_int ≥ T_k} (int64), elementwise."""
    return np.searchsorted(np.asarray(thresholds, dtype=np.int64), np.asarray(z_int, dtype=np.int64), side="right").astype(np.int64)


def theta_levels(z: torch.Tensor, thresholds: torch.Tensor, z_fractional: int) -> torch.Tensor:
    """m = #{k : z ≥ T_k · 2^-F_z} for z on (or, in training, near) its grid, as z's dtype.

    z is first rounded to its grid, so float32 training arithmetic that misses a grid
    point by a rounding error still counts as the exact value would.
    """
    z_int = torch.round(z.detach().to(torch.float64) * 2.0**z_fractional)
    return torch.searchsorted(thresholds.to(torch.float64), z_int.contiguous(), right=True).to(z.dtype)
