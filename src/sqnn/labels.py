"""How a method's setting and penalty are written: ``sqnn γ=1 seed 0``, ``I(T;S|Y) 0.012 bits``.

The words themselves (which letter a method's strength goes by, what its penalty measures)
belong to each method (:mod:`sqnn.methods`); a comparison stores them in its
``summary.json`` (``display``), so that tables and reports name settings as training did
without knowing the methods. Imports nothing from sqnn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["RESOLVED_SIGMA", "Display", "Penalty", "setting_label", "strength_label", "verdict"]


# a difference is a claim ("better", "worse") only beyond this many of its errors
RESOLVED_SIGMA = 2.0


def verdict(difference: Mapping[str, Any]) -> str:
    """``better`` / ``worse`` for a difference of closures beyond :data:`RESOLVED_SIGMA` errors (lower is better),
    else ``within errors``; ``difference`` has its ``sigma`` (difference / error)."""
    sigma = difference.get("sigma")
    if not isinstance(sigma, (int, float)) or sigma != sigma or abs(sigma) < RESOLVED_SIGMA:
        return "within errors"
    return "better" if sigma < 0 else "worse"


@dataclass(frozen=True)
class Penalty:
    """What a method's penalty measures (``symbol``) and its unit."""

    symbol: str
    unit: str

    @property
    def axis_label(self) -> str:
        return self.symbol if self.unit == self.symbol else f"{self.symbol} [{self.unit}]"

    def format(self, value: float) -> str:
        text = f"{self.symbol} {value:.3g}"
        return text if self.unit == self.symbol else f"{text} {self.unit}"

    def to_dict(self) -> dict[str, str]:
        return {"symbol": self.symbol, "unit": self.unit}

    @classmethod
    def from_dict(cls, stored: Any) -> "Penalty | None":
        if not isinstance(stored, Mapping) or not isinstance(stored.get("symbol"), str):
            return None
        return cls(str(stored["symbol"]), str(stored.get("unit") or stored["symbol"]))


@dataclass(frozen=True)
class Display:
    """How one method of a comparison is named and drawn (``summary.json``, ``display``)."""

    # the letter of its strength (γ, λ), or None for a method without a penalty
    strength: str | None = None
    penalty: Penalty | None = None
    colour: str | None = None
    linestyle: str = "-"

    def to_dict(self) -> dict[str, Any]:
        return {
            "strength": self.strength,
            "penalty": None if self.penalty is None else self.penalty.to_dict(),
            "colour": self.colour,
            "linestyle": self.linestyle,
        }

    @classmethod
    def from_dict(cls, stored: Any) -> "Display":
        """A stored display; a missing one (a comparison written before it existed) names any strength γ."""
        if not isinstance(stored, Mapping):
            return cls()
        colour = stored.get("colour")
        return cls(
            strength=stored.get("strength") if isinstance(stored.get("strength"), str) else None,
            penalty=Penalty.from_dict(stored.get("penalty")),
            colour=colour if isinstance(colour, str) else None,
            linestyle=str(stored.get("linestyle") or "-"),
        )

    def label(self, method: str, gamma: float | None, seed: int | None = None) -> str:
        return setting_label(method, strength_label(self.strength, gamma), seed)


def strength_label(symbol: str | None, gamma: float | None) -> str:
    """``γ=1``, ``λ=0.3``; empty for a method without a strength (``symbol`` None) unless γ > 0."""
    if gamma is None or not (gamma > 0 or symbol is not None):
        return ""
    return f"{symbol or 'γ'}={gamma:g}"


def setting_label(method: str, strength: str = "", seed: int | None = None) -> str:
    """``sqnn γ=1 seed 0`` from the method, its strength label and the seed."""
    text = " ".join(part for part in (method, strength) if part)
    return text if seed is None else f"{text} seed {seed}"
