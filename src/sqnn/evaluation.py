"""Compute the `metrics.json` of the contract (docs/DESIGN.md) for a trained run on simulation and data.

:func:`evaluate_scores` also returns the held-out scores it computed them from
(:class:`~sqnn.runs.scores.Scores`), which a run directory stores next to its metrics so
that reports read them instead of scoring again.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from sqnn import info, metrics, regions
from sqnn.data import Sample, domain_labels
from sqnn.data.splits import held_out_rows
from sqnn.errors import SqnnError
from sqnn.priors import estimate_prior, reweight_to_prior, signal_fraction
from sqnn.runs import Run, input_fingerprint
from sqnn.runs.reweighter import load_reweighter, reweighted
from sqnn.runs.scores import HeldOut, Scores

__all__ = ["METRIC_KEYS", "evaluate", "evaluate_scores", "evaluate_simulation", "held_out", "scorer_of"]

METRIC_KEYS = (
    "auc_source",
    "auc_source_err",
    "auc_target",
    "auc_target_err",
    "rejection_at_50",
    "rejection_at_30",
    "ks",
    "ks_control",
    "ks_control_err",
    "ks_signal",
    "ks_background",
    "sf_signal",
    "sf_signal_err",
    "sf_background",
    "sf_background_err",
    "sf_signal_80",
    "sf_signal_80_err",
    "sf_background_80",
    "sf_background_80_err",
    "closure",
    "closure_80",
    "insitu_sf_signal",
    "insitu_sf_signal_err",
    "insitu_sf_background",
    "insitu_sf_background_err",
    "insitu_sf_signal_80",
    "insitu_sf_signal_80_err",
    "insitu_sf_background_80",
    "insitu_sf_background_80_err",
    "insitu_closure",
    "insitu_closure_err",
    "insitu_closure_80",
    "insitu_closure_80_err",
    "domain_auc",
    "domain_auc_err",
    "mi_bits",
    "mi_joint_bits",
    "cvm",
    "data_signal_fraction",
    "ks_reweighted",
    "ks_reweighted_err",
    "n_params",
    "model_bytes",
    "train_seconds",
)

# the exact joint enumerates 2^m codes per event; this many events keep it to seconds
_JOINT_EVENTS = 8000


def held_out(run: Run, sample: Sample, role: str) -> Sample:
    """The test split when ``sample`` is the file the run was trained on, else every event."""
    trained = run.meta.get("inputs", {}).get(role)
    here = input_fingerprint(sample)
    if trained and trained.get("path") == here["path"] and trained.get("events") == here["events"]:
        train = run.meta["train"]
        return sample.subset(held_out_rows(len(sample), train["seed"], role, train["validation_fraction"], train["test_fraction"]))
    return sample


def scorer_of(
    run: Run, *, inference: str | None = None, engine: str = "torch", device: str | None = None, draws: int = 1, seed: int = 0
) -> Callable[[np.ndarray], np.ndarray]:
    """features → P(signal|x) as ``engine`` computes it for the run scored ``inference``.

    ``torch`` (on ``device``) is the Python model; ``packed``, ``onnx`` and ``hls4ml`` are the
    deployed arithmetic (:func:`sqnn.engines.scoring.make_scorer`), which refuses a scoring
    it cannot reproduce. ``inference="stochastic"`` averages ``draws`` seeded draws of every
    Bernoulli unit (torch only).
    """
    if engine == "torch":
        return lambda features: run.score(features, inference=inference, device=device, draws=draws, seed=seed)
    if inference == "stochastic":
        raise SqnnError(f"stochastic scoring of the metrics runs on the torch engine, not {engine}")
    from sqnn.engines.scoring import make_scorer

    scorer = make_scorer(run, engine, inference)
    return lambda features: 1.0 / (1.0 + np.exp(-scorer(features)["logit"].astype(np.float64)))


def evaluate(
    run: Run, simulation: Sample, data: Sample, *, seed: int = 0, inference: str | None = None, device: str | None = None,
    engine: str = "torch", draws: int = 1,
) -> dict[str, Any]:
    """All metrics (see :func:`evaluate_scores`)."""
    return evaluate_scores(run, simulation, data, seed=seed, inference=inference, device=device, engine=engine,
                           draws=draws)[0]


def evaluate_scores(
    run: Run, simulation: Sample, data: Sample, *, seed: int = 0, inference: str | None = None, device: str | None = None,
    engine: str = "torch", draws: int = 1,
) -> tuple[dict[str, Any], Scores]:
    """All metrics and the held-out scores they come from; per-class keys only when ``data.label`` is present
    (never used for training).

    ``inference`` scores with another mode than the network's own (``mean``, ``deterministic``,
    or ``stochastic`` with ``draws`` draws per unit); ``engine`` computes the scores with a
    deployment engine instead of torch, so that closure is measured on the arithmetic that
    runs in the trigger (the representation metrics stay torch's); ``device`` scores on
    another device than the CPU.
    """
    sim = held_out(run, simulation, "simulation")
    dat = held_out(run, data, "data")
    if sim.label is None:
        raise ValueError("evaluation needs labelled simulation")
    # a run trained on reweighted simulation is compared with the reweighted simulation, as an analysis using it would
    sim = reweighted(sim, load_reweighter(run.path, run.meta))
    score = scorer_of(run, inference=inference, engine=engine, device=device, draws=draws, seed=seed)
    sim_score, data_score = score(sim.features), score(dat.features)
    result: dict[str, Any] = {key: None for key in METRIC_KEYS}
    result["n_events_simulation"] = len(sim)
    result["n_events_data"] = len(dat)
    result["auc_source"] = metrics.roc_auc(sim_score, sim.label, sim.weight)
    result["auc_source_err"] = metrics.roc_auc_error(result["auc_source"], sim.label, sim.weight)
    result["rejection_at_50"] = metrics.rejection_at(sim_score, sim.label, sim.weight, 0.5)
    result["rejection_at_30"] = metrics.rejection_at(sim_score, sim.label, sim.weight, 0.3)
    result["ks"] = metrics.ks_distance(sim_score, data_score, sim.weight, dat.weight)
    if sim.control is not None and dat.control is not None and sim.control.any() and dat.control.any():
        result["ks_control"] = metrics.ks_distance(
            sim_score[sim.control], data_score[dat.control], sim.weight[sim.control], dat.weight[dat.control]
        )
        # the label-free quantities the selection reads carry their statistical resolution, with one seed too
        result["ks_control_err"] = metrics.ks_resolution(sim.weight[sim.control], dat.weight[dat.control])
    # label-free closure: simulation reweighted per class to the EM estimate of the data signal fraction
    sim_prior = signal_fraction(sim.label, sim.weight)
    data_prior = estimate_prior(data_score, dat.weight, sim_prior)
    result["data_signal_fraction"] = data_prior
    reweighted_weight = reweight_to_prior(sim.weight, sim.label == 1, sim_prior, data_prior)
    result["ks_reweighted"] = metrics.ks_distance(sim_score, data_score, reweighted_weight, dat.weight)
    result["ks_reweighted_err"] = metrics.ks_resolution(reweighted_weight, dat.weight)
    if dat.label is not None:
        result["auc_target"] = metrics.roc_auc(data_score, dat.label, dat.weight)
        result["auc_target_err"] = metrics.roc_auc_error(result["auc_target"], dat.label, dat.weight)
        for cls, name in ((1, "signal"), (0, "background")):
            s_mask, d_mask = sim.label == cls, dat.label == cls
            result[f"ks_{name}"] = metrics.ks_distance(
                sim_score[s_mask], data_score[d_mask], sim.weight[s_mask], dat.weight[d_mask]
            )
        for efficiency, suffix in ((0.5, ""), (0.8, "_80")):
            point = metrics.WorkingPoint.from_simulation(sim_score, sim.label, sim.weight, efficiency)
            for cls, name in ((1, "signal"), (0, "background")):
                sf, err = metrics.scale_factor(
                    point, sim_score, sim.label, sim.weight, data_score, dat.label, dat.weight, cls
                )
                result[f"sf_{name}{suffix}"] = sf
                result[f"sf_{name}{suffix}_err"] = err
        # how far the cut fixed on simulation is from transferring: 0 is perfect closure
        for suffix in ("", "_80"):
            result[f"closure{suffix}"] = abs(1 - result[f"sf_signal{suffix}"]) + abs(1 - result[f"sf_background{suffix}"])
    result.update(insitu_metrics(sim, sim_score, dat, data_score, data_prior, seed=seed))
    sim_rep, data_rep = run.representation(sim.features, device=device), run.representation(dat.features, device=device)
    result["domain_auc"] = metrics.domain_probe_auc(sim_rep, data_rep, sim.weight, dat.weight, seed=seed)
    # the probe sees at most 10 000 events of each domain: its AUC's error with those counts (Hanley & McNeil)
    probed = min(len(sim_rep), 10_000), min(len(data_rep), 10_000)
    result["domain_auc_err"] = metrics.roc_auc_error(result["domain_auc"], np.r_[np.zeros(probed[0]), np.ones(probed[1])])
    if run.representation_is_stochastic:
        theta = np.concatenate([sim_rep, data_rep]).astype(np.float64)
        domain = domain_labels(len(sim_rep), len(data_rep))
        weight = np.r_[sim.weight, dat.weight]
        result["mi_bits"] = info.factorized_mi(theta, domain, weight, n_values=2, prior="balanced")
        if theta.shape[1] <= info.MAX_JOINT_UNITS:
            rng = np.random.default_rng(seed)
            pick = np.r_[
                rng.permutation(len(sim_rep))[:_JOINT_EVENTS],
                len(sim_rep) + rng.permutation(len(data_rep))[:_JOINT_EVENTS],
            ]
            result["mi_joint_bits"] = info.joint_mi(
                theta[pick], domain[pick], weight[pick], n_values=2, prior="balanced"
            )
    if sim.observer is not None:
        background = sim.label == 0
        result["cvm"] = metrics.cvm_flatness(sim_score[background], sim.observer[background], sim.weight[background])
    result["n_params"] = run.n_params
    result["model_bytes"] = run.meta.get("model_bytes")
    result["train_seconds"] = run.meta.get("train_seconds")
    scores = Scores(
        simulation=HeldOut(sim_score, sim.weight, sim.label, sim.control, sim.signal_control),
        data=HeldOut(data_score, dat.weight, dat.label, dat.control, dat.signal_control),
    )
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in result.items()}, scores


def _region_flags(sample: Sample) -> dict[str, np.ndarray]:
    return {role: getattr(sample, role) for role in regions.REGION_ROLES if getattr(sample, role) is not None}


def insitu_metrics(
    sim: Sample, sim_score: np.ndarray, data: Sample, data_score: np.ndarray, data_prior: float, *, seed: int = 0
) -> dict[str, Any]:
    """The in-situ scale factors from the enriched regions (no data labels), with their errors.

    Measured with a signal-enriched (tag-and-probe) region only: a control region alone gives
    the background side through all data events at the EM estimate of the signal fraction, which
    a shifted signal fools, and is cut on the jet itself (see :mod:`sqnn.regions`); without one
    the result is empty.

    Besides the keys of :data:`METRIC_KEYS`: each error's statistical and purity parts
    (``…_err_stat``, ``…_err_purity``), the data's signal fraction the regions give
    (``insitu_data_signal_fraction``), each region's estimated purity (``purity_<role>``) and
    which equations measured them (``insitu_equations``).
    """
    assert sim.label is not None
    sim_regions, data_regions = _region_flags(sim), _region_flags(data)
    if "signal_control" not in sim_regions or "signal_control" not in data_regions:
        return {}
    measured = regions.insitu_scale_factors(
        regions.RegionEvents(sim_score, sim.weight, sim_regions, sim.label),
        regions.RegionEvents(data_score, data.weight, data_regions),
        fallback_prior=data_prior, seed=seed,
    )
    if measured is None:
        return {}
    out: dict[str, Any] = {}
    for efficiency, suffix in ((0.5, ""), (0.8, "_80")):
        point = measured[efficiency]
        for name, estimate in (("signal", point.signal), ("background", point.background)):
            key = f"insitu_sf_{name}{suffix}"
            out[key], out[f"{key}_err"] = estimate.value, estimate.error
            out[f"{key}_err_stat"], out[f"{key}_err_purity"] = estimate.stat, estimate.purity
        out[f"insitu_closure{suffix}"] = abs(1 - point.signal.value) + abs(1 - point.background.value)
        # its statistical resolution: what tells two settings of one comparison apart (the purity's error is common)
        out[f"insitu_closure{suffix}_err"] = math.hypot(point.signal.stat, point.background.stat)
        out["insitu_equations"] = list(point.equations)
        out["insitu_data_signal_fraction"] = point.prior
        for role, composition in point.compositions.items():
            out[f"purity_{role}"] = composition.purity
    return out


def evaluate_simulation(run: Run, simulation: Sample) -> dict[str, Any]:
    """The classification metrics on held-out simulation alone (no data): the other keys stay None."""
    assert simulation.label is not None
    score = run.score(simulation.features)
    result: dict[str, Any] = dict.fromkeys(METRIC_KEYS)
    result["n_events_simulation"] = len(simulation)
    result["n_events_data"] = 0
    result["auc_source"] = metrics.roc_auc(score, simulation.label, simulation.weight)
    result["rejection_at_50"] = metrics.rejection_at(score, simulation.label, simulation.weight, 0.5)
    result["rejection_at_30"] = metrics.rejection_at(score, simulation.label, simulation.weight, 0.3)
    result["n_params"] = run.n_params
    result["model_bytes"] = run.meta.get("model_bytes")
    result["train_seconds"] = run.meta.get("train_seconds")
    return result
