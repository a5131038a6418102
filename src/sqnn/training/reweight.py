"""Simulation reweighted to data by a classifier that tells them apart (the density ratio, DCTR-style).

A gradient-boosted domain classifier is trained to tell data (1) from simulation (0) on the
training events of both, each domain carrying half of the total weight; its output p gives
the density ratio w(x) = p / (1 − p) = p_data(x) / p_sim(x). Simulated events are then
weighted by w(x), clipped to [1/clip, clip], and normalised so that each class keeps its
total weight: efficiencies per class are what the reweighting changes, not the class mix.

Where simulation and data differ in their signal fraction, a classifier on all events
learns that difference too, and the weights would move events between the classes. Two
regions avoid it:

- ``control``: the classifier sees only control-region events (background-dominated in both
  domains); its ratio is applied to every simulated event;
- ``all``: simulation is first reweighted per class to the data's signal fraction (EM on
  the output of a classifier trained on simulation, :func:`sqnn.priors.estimate_prior`),
  so the domain classifier sees the same class mix in both domains;
- ``enriched``: the classifier sees the data inside each enriched region (the signal-enriched
  tag-and-probe region, and the control region when given) against simulation standing for
  that region, reweighted per class to the data's purity in it (:mod:`sqnn.regions`), each
  region's two domains carrying equal weight: reweighting within each region.

The fitted reweighter is a tree ensemble plus a few numbers (:class:`~sqnn.runs.reweighter.Reweighter`);
a run stores it as part of its directory (:mod:`sqnn.runs.reweighter`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from sqnn import regions
from sqnn.data import Sample, Splits
from sqnn.errors import SqnnError, option
from sqnn.nn.trees import TreeEnsemble
from sqnn.priors import estimate_prior, reweight_to_prior
from sqnn.runs.reweighter import DEFAULT_CLIP, Reweighter

__all__ = ["REGIONS", "fit_reweighter"]

REGIONS = ("control", "all", "enriched")


def _trees(seed: int, max_iter: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=max_iter, learning_rate=0.1, max_leaf_nodes=31, min_samples_leaf=50, early_stopping=True,
        n_iter_no_change=10, scoring="loss", random_state=seed,
    )


def _balanced(weight: np.ndarray, domain: np.ndarray) -> np.ndarray:
    """Each domain carrying half of the total weight (so that p/(1 − p) is the density ratio)."""
    out = weight.astype(np.float64).copy()
    for code in (0, 1):
        members = domain == code
        total = float(out[members].sum())
        if total > 0:
            out[members] /= 2.0 * total
    return out * len(out)


def _data_signal_fraction(simulation: Sample, data: Sample, splits: Splits, seed: int, threads: int) -> float:
    """The data's signal fraction from a classifier trained on simulation (EM on its outputs on data)."""
    from threadpoolctl import threadpool_limits

    train = splits.simulation["train"]
    assert simulation.label is not None
    model = _trees(seed, 100)
    with threadpool_limits(limits=threads):
        model.fit(simulation.features[train], simulation.label[train], sample_weight=simulation.weight[train])
        probability = model.predict_proba(data.features[splits.data["train"]])[:, 1]
    label, weight = simulation.label[train], simulation.weight[train]
    sim_prior = float(weight[label == 1].sum() / weight.sum())
    return estimate_prior(probability, data.weight[splits.data["train"]], sim_prior)


def fit_reweighter(
    simulation: Sample,
    data: Sample,
    splits: Splits,
    *,
    region: str = "control",
    clip: float = DEFAULT_CLIP,
    seed: int = 0,
    threads: int = 1,
    max_iter: int = 200,
) -> tuple[Reweighter, float]:
    """Learn the density ratio on the training splits (early-stopped on the validation splits); returns it and its CPU seconds."""
    from threadpoolctl import threadpool_limits

    if region not in REGIONS:
        raise SqnnError(f"reweighting region must be one of {', '.join(REGIONS)}, got {region!r}")
    if not clip > 1:
        raise SqnnError(f"the reweighting clip must be above 1, got {clip}")
    assert simulation.label is not None
    started = time.process_time()
    sim_weight = simulation.weight.astype(np.float64)
    fraction = None
    if region == "all":
        fraction = _data_signal_fraction(simulation, data, splits, seed, threads)
        label = simulation.label
        sim_prior = float(sim_weight[label == 1].sum() / sim_weight.sum())
        sim_weight = sim_weight * np.where(label == 1, fraction / sim_prior, (1 - fraction) / (1 - sim_prior))

    if region == "enriched":
        return _fit_enriched(simulation, data, splits, clip, seed, threads, max_iter, started)

    def events(split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sim_index, data_index = splits.simulation[split], splits.data[split]
        if region == "control":
            if simulation.control is None or data.control is None:
                raise SqnnError(f"reweighting in the control region needs {option('control', 'COL')} in both simulation and data")
            sim_index = sim_index[simulation.control[sim_index]]
            data_index = data_index[data.control[data_index]]
        x = np.concatenate([simulation.features[sim_index], data.features[data_index]]).astype(np.float64)
        domain = np.r_[np.zeros(len(sim_index), dtype=np.int8), np.ones(len(data_index), dtype=np.int8)]
        weight = _balanced(np.r_[sim_weight[sim_index], data.weight[data_index]], domain)
        return x, domain, weight

    x, domain, weight = events("train")
    if (domain == 0).sum() < 20 or (domain == 1).sum() < 20:
        raise SqnnError(f"too few events to learn the reweighting in region {region!r} "
                        f"({int((domain == 0).sum())} simulated, {int((domain == 1).sum())} data)")
    x_val, domain_val, weight_val = events("validation")
    model = _trees(seed, max_iter)
    with threadpool_limits(limits=threads):
        model.fit(x, domain, sample_weight=weight, X_val=x_val, y_val=domain_val, sample_weight_val=weight_val)
    reweighter = Reweighter(TreeEnsemble.from_hist_gradient_boosting(model), region, float(clip), fraction)
    return reweighter, time.process_time() - started


def _fit_enriched(
    simulation: Sample, data: Sample, splits: Splits, clip: float, seed: int, threads: int, max_iter: int, started: float
) -> tuple[Reweighter, float]:
    """The density ratio learnt within the enriched regions (see the module docstring, ``enriched``)."""
    from threadpoolctl import threadpool_limits

    if simulation.signal_control is None or data.signal_control is None:
        raise SqnnError(f"reweighting within the enriched regions needs a signal-enriched region "
                        f"({option('signal_control', 'COL')}) in both simulation and data")
    assert simulation.label is not None
    label, weight = simulation.label, simulation.weight.astype(np.float64)
    train_sim, train_data = splits.simulation["train"], splits.data["train"]
    flags = {role: (getattr(simulation, role), getattr(data, role)) for role in regions.REGION_ROLES
             if getattr(simulation, role) is not None and getattr(data, role) is not None}
    sim_prior = float(weight[train_sim][label[train_sim] == 1].sum() / weight[train_sim].sum())
    prior, found = regions.compositions(label[train_sim], weight[train_sim], {r: f[0][train_sim] for r, f in flags.items()},
                                        data.weight[train_data], {r: f[1][train_data] for r, f in flags.items()}, sim_prior)

    def events(split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        xs, domains, weights = [], [], []
        for role, (sim_flag, data_flag) in flags.items():
            sim_index = splits.simulation[split]
            if not regions.INDEPENDENT[role]:
                sim_index = sim_index[sim_flag[sim_index]]
            data_index = splits.data[split][data_flag[splits.data[split]]]
            pool_prior = sim_prior if regions.INDEPENDENT[role] else regions.region_purity(
                sim_prior, found[role].signal_efficiency, found[role].background_efficiency)
            sim_w = reweight_to_prior(weight[sim_index], label[sim_index] == 1, pool_prior, found[role].purity)
            data_w = data.weight[data_index].astype(np.float64)
            # each region: its two domains with equal weight, the regions in proportion to their data
            share = float(data_w.sum())
            sim_w = sim_w / max(float(sim_w.sum()), 1e-12) * share
            xs += [simulation.features[sim_index], data.features[data_index]]
            domains += [np.zeros(len(sim_index), dtype=np.int8), np.ones(len(data_index), dtype=np.int8)]
            weights += [sim_w, data_w]
        domain = np.concatenate(domains)
        return np.concatenate(xs).astype(np.float64), domain, _balanced(np.concatenate(weights), domain)

    x, domain, fit_weight = events("train")
    if (domain == 0).sum() < 20 or (domain == 1).sum() < 20:
        raise SqnnError(f"too few events to learn the reweighting within the enriched regions "
                        f"({int((domain == 0).sum())} simulated, {int((domain == 1).sum())} data)")
    x_val, domain_val, weight_val = events("validation")
    model = _trees(seed, max_iter)
    with threadpool_limits(limits=threads):
        model.fit(x, domain, sample_weight=fit_weight, X_val=x_val, y_val=domain_val, sample_weight_val=weight_val)
    reweighter = Reweighter(TreeEnsemble.from_hist_gradient_boosting(model), "enriched", float(clip), prior)
    return reweighter, time.process_time() - started
