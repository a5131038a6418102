"""Which events train, validate and test: the fixed, seeded splits of each domain.

Simulation and data are split independently, each by its own random sequence, seeded by
the run's seed and a fixed key per domain (:data:`SPLIT_KEYS`), so the split of one domain
never depends on the other's size. The keys are fixed: they are part of every run's record
(a run's test split is found again from its seed), so they must never change, whatever
else does. The domain codes used wherever the two domains are put side by side (penalties,
probes, information measures) live here too — simulation is 0, data is 1 — and have
nothing to do with the keys.

>>> split = split_indices(10, seed=0, domain="simulation", validation=0.2, test=0.2)
>>> sorted(len(v) for v in split.values())
[2, 2, 6]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "DATA",
    "SIMULATION",
    "SPLIT_KEYS",
    "TEST",
    "TRAIN",
    "VALIDATION",
    "Splits",
    "domain_labels",
    "make_splits",
    "split_indices",
    "split_roles",
    "held_out_rows",
]

# the code of each domain wherever simulation and data are put side by side
SIMULATION = 0
DATA = 1
# the key of the random sequence each domain's split is drawn from: fixed forever (runs find their test split by them)
SPLIT_KEYS = {"simulation": 0, "data": 1}
# where an event goes
TRAIN, VALIDATION, TEST = 0, 1, 2


def domain_labels(n_simulation: int, n_data: int) -> np.ndarray:
    """The domain code (int64) of ``n_simulation`` simulated events followed by ``n_data`` data events."""
    return np.r_[np.full(n_simulation, SIMULATION, dtype=np.int64), np.full(n_data, DATA, dtype=np.int64)]


def _split_key(domain: str) -> int:
    if domain not in SPLIT_KEYS:
        raise ValueError(f"a split is drawn for one of {', '.join(SPLIT_KEYS)}, got {domain!r}")
    return SPLIT_KEYS[domain]


def split_roles(n: int, seed: int, domain: str, validation: float, test: float) -> np.ndarray:
    """Deterministic split of ``n`` events of ``domain`` (``simulation`` or ``data``): per event,
    :data:`TRAIN`, :data:`VALIDATION` or :data:`TEST` (int8)."""
    order = np.random.default_rng([int(seed), 7919, _split_key(domain)]).permutation(n)
    n_test = int(round(n * test))
    n_val = max(1, int(round(n * validation)))
    roles = np.full(n, TRAIN, dtype=np.int8)
    roles[order[:n_test]] = TEST
    roles[order[n_test : n_test + n_val]] = VALIDATION
    return roles


def split_indices(n: int, seed: int, domain: str, validation: float, test: float) -> dict[str, np.ndarray]:
    """Deterministic split of ``n`` events of ``domain`` into test, validation and train indices (sorted)."""
    roles = split_roles(n, seed, domain, validation, test)
    return {name: np.flatnonzero(roles == code) for name, code in (("test", TEST), ("validation", VALIDATION), ("train", TRAIN))}


def held_out_rows(n: int, seed: int, domain: str, validation: float, test: float) -> np.ndarray:
    """The held-out (test) rows of ``n`` events of ``domain`` that a training with these settings never saw."""
    return np.flatnonzero(split_roles(n, seed, domain, validation, test) == TEST)


@dataclass
class Splits:
    """Indices of the train / validation / test events of each domain."""

    simulation: dict[str, np.ndarray]
    data: dict[str, np.ndarray]


def make_splits(n_simulation: int, n_data: int, seed: int, validation: float, test: float) -> Splits:
    """The splits of both domains, each from its own random sequence."""
    return Splits(
        simulation=split_indices(n_simulation, seed, "simulation", validation, test),
        data=split_indices(n_data, seed, "data", validation, test),
    )
