"""Case studies that `sqnn generate` writes: a fast toy and Pythia 8 + FastJet physics
(boosted W and top jets against QCD, and multi-channel events).

Every generator has the signature ``generate(domain, n, seed, out, **options) -> Path``
and writes one parquet file atomically with the columns ``is_signal``, ``weight``,
``control`` and ``event`` next to its features and observers.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from pathlib import Path

__all__ = ["CASES", "get_generator"]

# name -> module path; imported lazily so that the toy needs no Pythia installation
CASES: dict[str, str] = {
    "toy": "sqnn.cases.toy",
    "wjets": "sqnn.cases.wjets",
    "topjets": "sqnn.cases.topjets",
    "events": "sqnn.cases.events",
}


def get_generator(name: str) -> Callable[..., Path]:
    if name not in CASES:
        raise KeyError(f"unknown case {name!r}; choose one of {', '.join(CASES)}")
    return import_module(CASES[name]).generate
