"""The shipped W-jet case study (see README.md in this folder for how it was generated)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["wjets_path", "WJETS_FEATURES"]

# every high-level feature except pT, which is the observer of the demo (flatness check)
WJETS_FEATURES = (
    "eta", "mass", "n_constituents", "n_charged", "girth", "ptd",
    "tau1", "tau2", "tau3", "tau21", "tau32", "d2", "c2",
)


def wjets_path(domain: str) -> Path:
    """Path of the shipped `sim` or `data` sample."""
    if domain not in ("sim", "data"):
        raise ValueError(f"domain must be 'sim' or 'data', got {domain!r}")
    return Path(str(resources.files("sqnn") / "datasets" / f"wjets_{domain}.parquet"))
