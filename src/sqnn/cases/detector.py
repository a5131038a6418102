"""A parametric particle-flow detector: acceptance, tracking efficiency, resolutions, energy scale.

Each final-state particle becomes at most one reconstructed particle:

* charged particles are tracked if ``|eta| < eta_max`` and ``pT > track_pt_min``, each with
  probability ``track_efficiency``; slower ones curl up in the field and are lost.
  Their momentum is smeared with ``sigma(pT)/pT = track_resolution (+) track_resolution_slope * pT``.
* photons (``pid == 22``) and neutral hadrons are calorimeter clusters with
  ``sigma(E)/E = stochastic / sqrt(E) (+) constant`` and are kept above ``neutral_pt_min``.
* every reconstructed four-momentum is finally multiplied by ``energy_scale``
  (a jet energy scale: jets built from these particles move by the same factor).

Smearing scales the whole four-vector, so directions are exact and masses scale with it.
Neutrinos are invisible and always dropped.

>>> import numpy as np
>>> particles = {"px": np.array([10.0, 5.0]), "py": np.array([0.0, 1.0]),
...              "pz": np.array([1.0, 2.0]), "e": np.array([10.06, 5.5]),
...              "pid": np.array([211, 22]), "charge": np.array([1.0, 0.0])}
>>> reco = Detector.nominal().apply(particles, np.random.default_rng(1))
>>> sorted(reco)
['charge', 'e', 'pid', 'px', 'py', 'pz']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

__all__ = ["Detector"]

NEUTRINOS = (12, 14, 16)


@dataclass(frozen=True)
class Detector:
    """Detector parameters; energies and momenta in GeV."""

    name: str = "nominal"
    eta_max: float = 2.5
    track_pt_min: float = 0.5
    track_efficiency: float = 0.95
    track_resolution: float = 0.005
    track_resolution_slope: float = 1e-4
    photon_stochastic: float = 0.10
    photon_constant: float = 0.01
    hadron_stochastic: float = 0.50
    hadron_constant: float = 0.05
    neutral_pt_min: float = 1.0
    energy_scale: float = 1.00

    @classmethod
    def nominal(cls) -> Detector:
        """The detector the simulation assumes."""
        return cls()

    @classmethod
    def shifted(cls) -> Detector:
        """The detector "data" was taken with: less efficient tracking, coarser calorimetry,
        a jet energy scale 2 % high."""
        return cls(
            name="shifted",
            track_efficiency=0.90,
            track_resolution=0.01,
            track_resolution_slope=2e-4,
            photon_stochastic=0.15,
            photon_constant=0.02,
            hadron_stochastic=0.80,
            hadron_constant=0.10,
            energy_scale=1.02,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def apply(self, particles: Mapping[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Reconstructed particles from true ones.

        ``particles`` maps names to equal-length 1-D arrays and needs ``px``, ``py``, ``pz``,
        ``e``, ``pid`` and ``charge``; any other arrays (an event index, a pileup flag) are
        filtered along. The random numbers drawn depend only on the number of particles,
        so a seeded ``rng`` makes the result reproducible.
        """
        px, py, pz, e = (np.asarray(particles[key], dtype=np.float64) for key in ("px", "py", "pz", "e"))
        pid = np.asarray(particles["pid"])
        n = len(px)
        uniform = rng.random(n)
        gauss = rng.standard_normal(n)

        pt = np.hypot(px, py)
        with np.errstate(divide="ignore", invalid="ignore"):
            abs_eta = np.abs(np.arcsinh(pz / pt))
        accepted = (pt > 0) & (abs_eta < self.eta_max) & ~np.isin(np.abs(pid), NEUTRINOS)
        charged = np.asarray(particles["charge"]) != 0
        photon = ~charged & (pid == 22)

        tracked = accepted & charged & (pt > self.track_pt_min) & (uniform < self.track_efficiency)
        energy = np.maximum(e, 1e-9)
        sigma = np.where(
            charged,
            np.hypot(self.track_resolution, self.track_resolution_slope * pt),
            np.where(
                photon,
                np.hypot(self.photon_stochastic / np.sqrt(energy), self.photon_constant),
                np.hypot(self.hadron_stochastic / np.sqrt(energy), self.hadron_constant),
            ),
        )
        factor = (1.0 + sigma * gauss) * self.energy_scale
        measured = accepted & (factor > 0)
        neutral_kept = measured & ~charged & (pt * factor > self.neutral_pt_min)
        keep = (tracked & measured) | neutral_kept

        out = {key: np.asarray(value)[keep] for key, value in particles.items()}
        scale = factor[keep]
        for key, value in (("px", px), ("py", py), ("pz", pz), ("e", e)):
            out[key] = value[keep] * scale
        return out
