"""Enriched regions of data, their composition, and the scale factors measured in them without data labels.

Two kinds of region, each a boolean column present in both simulation and data:

``control`` (background-enriched)
    Any selection, e.g. the mass sidebands of a W tagger. It may cut on the jet itself, so
    simulation is compared with data *inside* the region.
``signal_control`` (signal-enriched, tag-and-probe)
    Selected by the other side of the event (e.g. the lepton and b-jet of a semileptonic tt̄
    event), so that the selection is independent of the probe jet given its class: the jets
    of each class inside the region are distributed as those of the class everywhere, and
    every simulated event of a class stands for that class inside the region.

A region's **composition** in data — its purity, the signal fraction inside it — is not
given; it is estimated from the region's selection efficiency per class in simulation
(e_S, e_B, from the simulation labels) taken to the data's signal fraction π:
f = π e_S / (π e_S + (1 − π) e_B). With a signal-enriched region π itself comes from its
share of data, r = π e_S + (1 − π) e_B, so π = (r − e_B) / (e_S − e_B): nothing of the probe
jet enters either, which is what a shifted probe cannot fool. Without one, π is the EM
estimate from the classifier (:func:`sqnn.priors.estimate_prior`). Both rest on the
simulation of the region's selection (the tag side); the purity's error (:func:`insitu_scale_factors`)
varies e_S and e_B of every region by relative amounts, by default 10 % for the class a
region is enriched in and 30 % for the other.

The **in-situ scale factors** are what an analysis quotes from such regions: at a working
point fixed on simulation, the data's efficiency in region R is modelled as
ε_R = f_R s_S ε_S(R) + (1 − f_R) s_B ε_B(R), with ε_c(R) the simulated efficiency of class c
(inside R for a control region, everywhere for a tag-and-probe region) and s_c the scale
factors, the same in every region. Two equations give s_S and s_B: the enriched region and
all data events (f = π). The tag-and-probe region is taken when there is one; the control
region only without it, because a control region cut on the jet itself (mass sidebands) is
where a tagger that reads the mass passes almost nothing, and where its background need
not behave as everywhere else (measured on the W case: sf_B 1.84 ± 0.39 from the sidebands
against the true 1.10 at 80 %).
Their statistical error comes from resampling the events (bootstrap), their purity error
from the variations of the tag side above; both are reported, and their sum in quadrature.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from sqnn.metrics import WorkingPoint

__all__ = [
    "ENRICHED_IN",
    "INDEPENDENT",
    "REGION_ROLES",
    "Composition",
    "Estimate",
    "InSitu",
    "RegionEvents",
    "compositions",
    "insitu_scale_factors",
    "prior_from_rate",
    "region_purity",
    "selection_efficiencies",
]

REGION_ROLES = ("signal_control", "control")
# the class each kind of region is enriched in (1 signal, 0 background)
ENRICHED_IN = {"signal_control": 1, "control": 0}
# whether the region's selection is independent of the jet given its class (tag-and-probe)
INDEPENDENT = {"signal_control": True, "control": False}
# relative uncertainties of a region's selection efficiency in simulation: of the class it is
# enriched in, and of the other class (a mismodelled tag side)
DEFAULT_VARIATION = (0.10, 0.30)
PRIOR_BOUNDS = (0.02, 0.98)
DEFAULT_BOOTSTRAP = 100


def _clip(value: float, low: float = PRIOR_BOUNDS[0], high: float = PRIOR_BOUNDS[1]) -> float:
    return float(min(max(value, low), high))


def selection_efficiencies(in_region: np.ndarray, label: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
    """(e_S, e_B): the fraction of each class's simulated weight that the region selects."""
    in_region = np.asarray(in_region, dtype=bool)
    result = []
    for cls in (1, 0):
        members = np.asarray(label) == cls
        total = float(np.sum(weight[members]))
        result.append(float(np.sum(weight[members & in_region])) / total if total > 0 else math.nan)
    return result[0], result[1]


def prior_from_rate(rate: float, signal_efficiency: float, background_efficiency: float) -> float:
    """π from a tag-and-probe region's share of data: r = π e_S + (1 − π) e_B, clipped into (0, 1)."""
    spread = signal_efficiency - background_efficiency
    if not (math.isfinite(rate) and math.isfinite(spread)) or abs(spread) < 1e-9:
        return math.nan
    return _clip((rate - background_efficiency) / spread)


def region_purity(prior: float, signal_efficiency: float, background_efficiency: float) -> float:
    """f = π e_S / (π e_S + (1 − π) e_B): the data's signal fraction inside the region."""
    signal, background = prior * signal_efficiency, (1 - prior) * background_efficiency
    total = signal + background
    return float(signal / total) if total > 0 else math.nan


@dataclass(frozen=True)
class Composition:
    """One region: its selection efficiency per class in simulation, its share of data, the data's purity in it."""

    role: str
    signal_efficiency: float
    background_efficiency: float
    data_fraction: float
    purity: float

    def to_dict(self) -> dict[str, float | str]:
        return {"role": self.role, "sim_signal_efficiency": self.signal_efficiency,
                "sim_background_efficiency": self.background_efficiency, "data_fraction": self.data_fraction,
                "purity": self.purity}


def compositions(
    sim_label: np.ndarray,
    sim_weight: np.ndarray,
    sim_regions: Mapping[str, np.ndarray],
    data_weight: np.ndarray,
    data_regions: Mapping[str, np.ndarray],
    fallback_prior: float,
    scale: Mapping[str, tuple[float, float]] | None = None,
) -> tuple[float, dict[str, Composition]]:
    """The data's signal fraction π and the composition of every region given in both domains.

    π comes from the signal-enriched region's share of data when there is one, else it is
    ``fallback_prior`` (the EM estimate). ``scale`` multiplies a region's simulated selection
    efficiencies (e_S, e_B) — how the purity's error is found.
    """
    roles = [role for role in REGION_ROLES if role in sim_regions and role in data_regions]
    total = float(np.sum(data_weight))
    found: dict[str, tuple[float, float, float]] = {}
    for role in roles:
        e_s, e_b = selection_efficiencies(sim_regions[role], sim_label, sim_weight)
        factor_s, factor_b = (scale or {}).get(role, (1.0, 1.0))
        rate = float(np.sum(data_weight[np.asarray(data_regions[role], dtype=bool)])) / total if total > 0 else math.nan
        found[role] = (min(e_s * factor_s, 1.0), min(e_b * factor_b, 1.0), rate)
    prior = fallback_prior
    if "signal_control" in found:
        e_s, e_b, rate = found["signal_control"]
        from_rate = prior_from_rate(rate, e_s, e_b)
        prior = from_rate if math.isfinite(from_rate) else fallback_prior
    return prior, {role: Composition(role, e_s, e_b, rate, region_purity(prior, e_s, e_b))
                   for role, (e_s, e_b, rate) in found.items()}


@dataclass
class RegionEvents:
    """What the in-situ measurement reads of one domain's held-out events: scores, weights, region flags (and labels in simulation)."""

    score: np.ndarray
    weight: np.ndarray
    regions: dict[str, np.ndarray]
    label: np.ndarray | None = None

    def take(self, index: np.ndarray) -> "RegionEvents":
        return RegionEvents(self.score[index], self.weight[index], {k: v[index] for k, v in self.regions.items()},
                            None if self.label is None else self.label[index])


@dataclass(frozen=True)
class Estimate:
    """An in-situ scale factor and its errors: statistical (bootstrap), purity (the tag side), and both."""

    value: float
    stat: float
    purity: float

    @property
    def error(self) -> float:
        return math.hypot(self.stat, self.purity) if math.isfinite(self.stat) and math.isfinite(self.purity) else math.nan


@dataclass
class InSitu:
    """The in-situ scale factors at one working point, how they were measured, and the regions' compositions."""

    signal: Estimate
    background: Estimate
    equations: tuple[str, ...]
    prior: float
    compositions: dict[str, Composition] = field(default_factory=dict)


def _efficiency(passed: np.ndarray, weight: np.ndarray) -> float:
    total = float(np.sum(weight))
    return float(np.sum(weight[passed])) / total if total > 0 else math.nan


def _solve(threshold: float, sim: RegionEvents, data: RegionEvents, prior: float,
           found: Mapping[str, Composition]) -> tuple[float, float, tuple[str, ...]]:
    """(s_S, s_B) from two equations ε_R = f_R s_S ε_S(R) + (1 − f_R) s_B ε_B(R): one region's and all data's."""
    assert sim.label is not None
    sim_pass, data_pass = sim.score >= threshold, data.score >= threshold
    rows, names = [], []
    for role in REGION_ROLES[:1] if REGION_ROLES[0] in found else REGION_ROLES[1:]:
        if role not in found:
            continue
        inside = np.asarray(sim.regions[role], dtype=bool)
        templates = np.ones(len(sim.score), dtype=bool) if INDEPENDENT[role] else inside
        eff = [_efficiency(sim_pass[templates & (sim.label == cls)], sim.weight[templates & (sim.label == cls)]) for cls in (1, 0)]
        data_in = np.asarray(data.regions[role], dtype=bool)
        purity = found[role].purity
        rows.append(([purity * eff[0], (1 - purity) * eff[1]], _efficiency(data_pass[data_in], data.weight[data_in])))
        names.append(role)
    if len(rows) < 2:
        # all data events give the second equation, at the data's signal fraction
        eff = [_efficiency(sim_pass[sim.label == cls], sim.weight[sim.label == cls]) for cls in (1, 0)]
        rows.append(([prior * eff[0], (1 - prior) * eff[1]], _efficiency(data_pass, data.weight)))
        names.append("all")
    matrix = np.array([r[0] for r in rows[:2]], dtype=np.float64)
    target = np.array([r[1] for r in rows[:2]], dtype=np.float64)
    if not (np.isfinite(matrix).all() and np.isfinite(target).all()) or abs(np.linalg.det(matrix)) < 1e-12:
        return math.nan, math.nan, tuple(names[:2])
    solution = np.linalg.solve(matrix, target)
    return float(solution[0]), float(solution[1]), tuple(names[:2])


def _spread(resampled: np.ndarray) -> np.ndarray:
    """The standard deviation over bootstrap replicas (axis 0), NaN where fewer than two are finite."""
    out = np.full(resampled.shape[1:], math.nan)
    for index in np.ndindex(*resampled.shape[1:]):
        values = resampled[(slice(None), *index)]
        values = values[np.isfinite(values)]
        if len(values) > 1:
            out[index] = float(np.std(values, ddof=1))
    return out


def insitu_scale_factors(
    sim: RegionEvents,
    data: RegionEvents,
    efficiencies: Sequence[float] = (0.5, 0.8),
    *,
    fallback_prior: float,
    variation: tuple[float, float] = DEFAULT_VARIATION,
    bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict[float, InSitu] | None:
    """The in-situ scale factors of signal and background at the working points keeping ``efficiencies`` of simulated signal.

    ``sim`` holds the held-out simulation with its labels (they fix the working points and
    the regions' composition), ``data`` the held-out data without labels. None without an
    enriched region in both domains. ``fallback_prior`` is the data's signal fraction used
    when no signal-enriched region gives it (the EM estimate).
    """
    assert sim.label is not None
    roles = [r for r in REGION_ROLES if r in sim.regions and r in data.regions]
    if not roles:
        return None
    points = [WorkingPoint.from_simulation(sim.score, sim.label, sim.weight, e) for e in efficiencies]

    def measure(s: RegionEvents, d: RegionEvents, scale: Mapping[str, tuple[float, float]] | None = None
                ) -> tuple[float, dict[str, Composition], list[tuple[float, float, tuple[str, ...]]]]:
        assert s.label is not None
        prior, found = compositions(s.label, s.weight, s.regions, d.weight, d.regions, fallback_prior, scale)
        return prior, found, [_solve(p.threshold, s, d, prior, found) for p in points]

    prior, found, nominal = measure(sim, data)
    rng = np.random.default_rng(seed)
    resampled = []
    for _ in range(bootstrap):
        s = sim.take(rng.integers(0, len(sim.score), len(sim.score)))
        d = data.take(rng.integers(0, len(data.score), len(data.score)))
        resampled.append([r[:2] for r in measure(s, d)[2]])
    spread = _spread(np.asarray(resampled, dtype=np.float64).reshape(-1, len(points), 2))
    # the purity's error: each region's simulated selection efficiency of each class moved up and down
    shifts = np.zeros((len(points), 2))
    for role in found:
        majority = ENRICHED_IN[role]
        for cls, relative in ((majority, variation[0]), (1 - majority, variation[1])):
            worst = np.zeros((len(points), 2))
            for sign in (1.0, -1.0):
                factor = 1.0 + sign * relative
                scale = {role: (factor, 1.0) if cls == 1 else (1.0, factor)}
                moved = measure(sim, data, scale)[2]
                worst = np.maximum(worst, np.abs(np.array([m[:2] for m in moved]) - np.array([n[:2] for n in nominal])))
            shifts = np.sqrt(shifts**2 + worst**2)
    result = {}
    for k, efficiency in enumerate(efficiencies):
        s_signal, s_background, equations = nominal[k]
        result[float(efficiency)] = InSitu(
            signal=Estimate(s_signal, float(spread[k, 0]), float(shifts[k, 0])),
            background=Estimate(s_background, float(spread[k, 1]), float(shifts[k, 1])),
            equations=equations,
            prior=prior,
            compositions=found,
        )
    return result
