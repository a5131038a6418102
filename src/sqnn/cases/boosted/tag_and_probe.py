"""An emulated tag-and-probe selection: the ``tag`` column of every boosted-jet file.

Analyses measure a tagger's signal efficiency in data in a region enriched in signal by the
*other side* of the event (the tag: in semileptonic tt̄, the lepton and b-jet of the other
top), while the jet on this side (the probe) is left free, so that the selection does not
bias the probe given its class. ``tag`` emulates that selection:

``tag`` (bool) is true when "the other side of the jet's event passes the tag selection",
drawn for every jet as a Bernoulli variable with probability ``t_signal`` for signal jets
and ``t_background`` for background jets (:class:`TagEfficiencies`).

The draw
    ``u = splitmix64`` chained over the integers (:data:`TAG_CODE`, seed, domain code, event,
    position): ``h = mix(TAG_CODE); h = mix(h ^ seed); h = mix(h ^ domain); h = mix(h ^ event);
    h = mix(h ^ position)`` with splitmix64's ``mix(z)`` (add 0x9E3779B97F4A7C15, then its two
    xor-shift-multiply rounds and the final xor-shift, all modulo 2^64); ``u = (h >> 11) / 2^53``
    and ``tag = u < t`` of the jet's class. ``seed`` and ``domain`` (0 sim, 1 data) are the
    file's, ``event`` its ``event`` column, ``position`` the jet's rank by descending ``pt``
    (ties by ascending ``eta``) among the jets of the file with the same ``event``. No other
    random number is consumed, so the other columns, the seeds and the sequences are what they
    are without the tag, and the column of a file does not depend on how many workers made it
    nor on whether it was drawn at generation or added later (:func:`add_tag`). Two files
    with the same seed, domain and events (the suite's variants of one sequence) draw the same
    ``u`` for the same jet: a lower efficiency tags a subset of the jets a higher one tags.

What it assumes
    * independence of the tag and the probe jet given its class: the tag carries no
      information on the jet's features beyond its class;
    * one efficiency per class, the same for every jet of that class (no dependence on pT,
      eta, pileup or the event's kinematics);
    * one draw per jet: the two jets of one event (QCD dijets) get independent tags.

What real tag-and-probe has that this lacks
    * kinematic correlations through the event: the tag side's acceptance depends on the
      event's boost, its pT balance, ISR and pileup, which also shape the probe jet, so the
      tag is independent of the probe only approximately, and differently per region;
    * one event-level decision: both jets of an event see the same other side (and either
      jet can be the other's tag), so per-event tags are correlated between the event's jets;
    * contamination with a composition of its own (tt̄ dilepton, single top, W+jets, QCD
      with a fake lepton), whose probe jets are neither pure signal nor QCD-like background;
    * an efficiency that is itself measured with an uncertainty, and a mismodelling that
      moves with the tag-side kinematics rather than a constant factor per class.

A file made before this column existed gets it from :func:`add_tag`, exactly as a fresh
generation with the same seed would have drawn it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from sqnn.cases.boosted.physics import DOMAIN_CODE, DOMAIN_DEFAULTS, DOMAINS
from sqnn.errors import SqnnError, option

__all__ = ["TAG_CODE", "TagEfficiencies", "describe", "positions", "tag_column", "uniforms", "with_tag"]

# the first key of the tag draw: says what the hash is for (the sequence seeds use 2-6, the suite 7)
TAG_CODE = 8
COLUMN = "tag"

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MULTIPLY_1 = np.uint64(0xBF58476D1CE4E5B9)
_MULTIPLY_2 = np.uint64(0x94D049BB133111EB)


@dataclass(frozen=True)
class TagEfficiencies:
    """The probability that the other side of a jet's event passes the tag selection, per class."""

    signal: float = 0.30
    background: float = 0.02

    def __post_init__(self) -> None:
        for name in ("signal", "background"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
                    or not math.isfinite(value) or not 0.0 <= value <= 1.0:
                raise SqnnError(f"{option('tag_' + name)} (the tag efficiency of {name} jets) must lie in [0, 1], got {value!r}")
            object.__setattr__(self, name, float(value))

    @classmethod
    def of_domain(cls, domain: str, signal: float | None = None, background: float | None = None) -> TagEfficiencies:
        """The efficiencies of a domain of ``sqnn generate``, with either one replaced."""
        if domain not in DOMAINS:
            raise SqnnError(f"unknown domain {domain!r}; choose sim or data")
        defaults = DOMAIN_DEFAULTS[domain]
        return cls(defaults["tag_signal"] if signal is None else signal,
                   defaults["tag_background"] if background is None else background)

    def to_dict(self) -> dict[str, float]:
        return {"signal": self.signal, "background": self.background}


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's step: the golden-ratio increment, then its finaliser (uint64, modulo 2^64)."""
    z = z + _GAMMA
    z = (z ^ (z >> np.uint64(30))) * _MULTIPLY_1
    z = (z ^ (z >> np.uint64(27))) * _MULTIPLY_2
    return z ^ (z >> np.uint64(31))


def _unsigned(values: Any, n: int, what: str) -> np.ndarray:
    array = np.broadcast_to(np.asarray(values), (n,))
    if array.dtype.kind not in "iu" or (array.dtype.kind == "i" and n and array.min() < 0):
        raise ValueError(f"the tag draw needs non-negative integers for {what}")
    return array.astype(np.uint64)


def uniforms(seed: int, domain: str, event: np.ndarray, position: np.ndarray) -> np.ndarray:
    """The uniform number in [0, 1) of each jet, from the file's seed and domain, its event and position."""
    event = np.asarray(event)
    n = len(event)
    h = _mix(np.full(n, TAG_CODE, dtype=np.uint64))
    for values, what in ((seed, "the seed"), (DOMAIN_CODE[domain], "the domain"), (event, "the event ids"),
                         (position, "the positions")):
        h = _mix(h ^ _unsigned(values, n, what))
    return (h >> np.uint64(11)).astype(np.float64) * 2.0**-53


def positions(event: np.ndarray, pt: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Each jet's rank by descending pT (ties: ascending eta) among the jets with the same event id."""
    event = np.asarray(event)
    n = len(event)
    order = np.lexsort((np.asarray(eta), -np.asarray(pt, dtype=np.float64), event))
    ordered = event[order]
    first_of_event = np.ones(n, dtype=bool)
    first_of_event[1:] = ordered[1:] != ordered[:-1]
    event_start = np.maximum.accumulate(np.where(first_of_event, np.arange(n), 0))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - event_start
    return rank


def draw(seed: int, domain: str, event: np.ndarray, position: np.ndarray, is_signal: np.ndarray,
         efficiencies: TagEfficiencies) -> np.ndarray:
    """The tag of each jet: its uniform number below the efficiency of its class."""
    probability = np.where(np.asarray(is_signal) == 1, efficiencies.signal, efficiencies.background)
    return uniforms(seed, domain, event, position) < probability


def tag_column(table: pa.Table, seed: int, domain: str, efficiencies: TagEfficiencies) -> np.ndarray:
    """The ``tag`` column of a boosted-jet table (columns ``event``, ``pt``, ``eta``, ``is_signal``)."""
    columns = {name: table.column(name).to_numpy() for name in ("event", "pt", "eta", "is_signal")}
    position = positions(columns["event"], columns["pt"], columns["eta"])
    return draw(seed, domain, columns["event"], position, columns["is_signal"], efficiencies)


def describe(seed: int, domain: str, efficiencies: TagEfficiencies) -> dict[str, Any]:
    """What the ``tag`` column is and how it was drawn, for the file's ``sqnn`` metadata."""
    return {
        "column": COLUMN,
        "meaning": "the other side of the jet's event passes the tag selection (emulated tag-and-probe)",
        "efficiency": efficiencies.to_dict(),
        "seed_key": [TAG_CODE, int(seed), DOMAIN_CODE[domain]],
        "draw": "h = mix(8); h = mix(h ^ k) for k in (seed, domain code, event, position), mix = splitmix64 "
                "(uint64); u = (h >> 11) / 2^53; tag = u < efficiency[class]",
        "position": "rank of the jet by descending pt (ties: ascending eta) among the file's jets of its event",
        "assumes": "tag independent of the jet given its class; one constant efficiency per class; "
                   "independent draws for the jets of one event",
    }


def with_tag(table: pa.Table, seed: int, domain: str, efficiencies: TagEfficiencies,
             metadata: dict[str, Any]) -> tuple[pa.Table, dict[str, Any]]:
    """``table`` with its ``tag`` column (after ``event``; replaced if present) and ``metadata`` with its description."""
    tag = pa.array(tag_column(table, seed, domain, efficiencies))
    if COLUMN in table.column_names:
        table = table.drop_columns([COLUMN])
    table = table.add_column(table.column_names.index("event") + 1, COLUMN, tag)
    described = {key: value for key, value in metadata.items() if key != COLUMN}
    described[COLUMN] = describe(seed, domain, efficiencies)
    return table, described
