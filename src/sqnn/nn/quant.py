"""Fixed-point grids for quantisation-aware training: ``ap_fixed<W, I>`` in torch and numpy.

A value on the grid of ``ap_fixed<W, I>`` is an integer multiple of 2^-(W-I) between
-2^(I-1) and 2^(I-1) - 2^-(W-I). Rounding is half to even (``torch.round`` and
``np.rint`` agree) and values outside the range saturate. The training forward pass
sees the rounded values; the gradient passes straight through, so the firmware, the
packed engine and the Python model compute on the same numbers.

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

from sqnn.nn.layers import straight_through

__all__ = ["FixedPoint", "MAX_WIDTH"]

MAX_WIDTH = 32


@dataclass(frozen=True)
class FixedPoint:
    """The grid of ``ap_fixed<width, integer>``: ``integer`` bits before the binary point, sign included."""

    width: int
    integer: int

    def __post_init__(self) -> None:
        if not (2 <= self.width <= MAX_WIDTH):
            raise ValueError(f"fixed-point width must lie in [2, {MAX_WIDTH}], got {self.width}")
        if not (1 <= self.integer <= self.width):
            raise ValueError(f"fixed-point integer bits must lie in [1, width={self.width}], got {self.integer}")

    @classmethod
    def parse(cls, value: Any, name: str) -> "FixedPoint | None":
        """``None`` or a pair ``[W, I]`` (from YAML/JSON) as a grid; anything else raises ``ValueError``."""
        if value is None or isinstance(value, FixedPoint):
            return value
        if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
            raise ValueError(f"{name} must be a pair [W, I] of integers (ap_fixed<W,I>), got {value!r}")
        try:
            return cls(int(value[0]), int(value[1]))
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
        return -(1 << (self.width - 1))

    @property
    def max_int(self) -> int:
        """Largest value in units of the lsb."""
        return (1 << (self.width - 1)) - 1

    @property
    def hls_type(self) -> str:
        return f"ap_fixed<{self.width},{self.integer}>"

    def to_integers_numpy(self, x: np.ndarray) -> np.ndarray:
        """Rounded and saturated values in units of the lsb, in the dtype of ``x`` (float32 stays float32)."""
        x = np.asarray(x)
        scale = x.dtype.type(2.0**self.fractional) if x.dtype.kind == "f" else 2.0**self.fractional
        return np.clip(np.rint(x * scale), self.min_int, self.max_int)

    def quantize_numpy(self, x: np.ndarray) -> np.ndarray:
        return self.to_integers_numpy(x) * self.lsb

    def quantize(self, x: torch.Tensor) -> torch.Tensor:
        """Forward the grid value, backpropagate the identity (straight-through)."""
        scale = 2.0**self.fractional
        hard = torch.clamp(torch.round(x * scale), self.min_int, self.max_int) / scale
        return straight_through(hard, x)

    def to_list(self) -> list[int]:
        return [self.width, self.integer]
