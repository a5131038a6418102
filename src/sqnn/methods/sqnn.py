"""`sqnn`: cross-entropy + γ · I(T;S) of the stochastic layer, in bits.

Options (``--config`` YAML ``method_options`` or the estimator's ``method_options``):

Defaults (the closure study on the W-jet case, README "Closure study"): γ = 1,
``region: class-conditional``, ``estimator: joint``, ``condition: predicted``, the penalty
on one step in 8 (``every: 8``), and the deployable network
(:data:`~sqnn.methods.base.DEPLOYABLE_NETWORK`): a 64-unit ReLU layer before 16 Bernoulli
units trained with K = 4 samples per event, on fixed-point grids, scored with the expected
logit through the θ table.

- ``region``: which events enter the penalty —
  ``all`` (marginal I(T;S)), ``prior-corrected`` (marginal I(T;S) with simulation
  reweighted per class to the data signal fraction, which EM re-estimates before every
  epoch), ``control`` (only control-region events of both domains),
  ``class-conditional`` (I(T;S|Y), simulation reweighted as in ``prior-corrected``; the
  class in data is the classifier's own probability rescaled to the data signal fraction);
- ``condition`` (class-conditional only): the class of simulated events — ``truth`` (their
  label) or ``predicted`` (the classifier's probability, rescaled as in data). With
  ``predicted`` both domains are split by the same function of x, so without a domain
  shift I(T;S|Y) is zero even though the classifier is imperfect; with ``truth`` the
  data side is a mixture of the classes and the penalty also pulls class information out
  of T;
- ``estimator``: ``factorized`` (Σ over units, as the reference method) or ``joint``
  (exact over all 2^m codes, m ≤ 16);
- ``warmup``: epochs over which γ rises linearly from 0 (0 = constant γ);
- ``anneal``: epochs over which the temperature τ of the Bernoulli layers rises linearly
  from τ/4 to the network's τ (0 = constant); the saved network scores with its own τ;
- ``every``: the penalty is taken on one step in ``every`` and scaled by ``every`` (the same
  expected gradient per epoch at a fraction of the cost; 1 = every step);
- ``reweight``: ``none`` (default), ``control`` or ``all`` — simulation reweighted to data
  before training, as the ``reweight`` method does (``reweight_clip``: its largest ratio).
- ``regions`` (enriched regions of data, :mod:`sqnn.regions`): ``auto`` (default) — with a
  signal-enriched (tag-and-probe) region the penalty also takes, for each enriched region
  given (``signal_control``, and ``control`` when given), I(T;S) between the data inside it
  and simulation standing for it, reweighted per class to the data's purity in it; without
  one, nothing changes; ``signal`` — the signal-enriched region alone; ``none`` — no region
  term. ``region_weight`` multiplies the mean of the region terms (default 1). With a
  signal-enriched region the data's signal fraction is the one its share of data gives
  (``prior: auto``), not the EM estimate (``prior: em``), which a shifted signal fools.

In a distributed run each process holds a slice of the batch; the training loop passes
``reduce`` (a differentiable sum over processes) to the training penalty, so the penalty
and its gradient are those of the global batch (see :mod:`sqnn.info`).
"""

from __future__ import annotations

from typing import Any

import torch

from collections.abc import Mapping

from sqnn import info
from sqnn.data.splits import domain_labels
from sqnn.labels import Penalty
from sqnn.methods.base import DEPLOYABLE_NETWORK, Batch, Objective, RegionCounts
from sqnn.methods.enriched import REGION_OPTIONS, RegionTerms
from sqnn.methods.reweight import CLIP, REWEIGHT_REGIONS, reweighting_options
from sqnn.priors import estimate_prior, rescale_to_prior, reweight_to_prior
from sqnn.schema import Choice, Integer

__all__ = ["SQNNObjective", "REGIONS", "ESTIMATORS"]

REGIONS = ("all", "prior-corrected", "control", "class-conditional")
# the configuration that won the closure study on the W-jet case (README, "Closure study")
DEFAULT_GAMMA = 1.0
DEFAULT_REGION = "class-conditional"
DEFAULT_ESTIMATOR = "joint"
ESTIMATORS = ("factorized", "joint")
CONDITIONS = ("truth", "predicted")
DEFAULT_CONDITION = "predicted"
# the penalty on one step in 8, scaled by 8: the closure of every step at a fraction of the cost
DEFAULT_EVERY = 8
EPOCHS = Integer(0, 100_000)
# what the penalty of each region measures
_MEASURES = {
    "all": "I(T;S)",
    "class-conditional": "I(T;S|Y)",
    "prior-corrected": "I(T;S) reweighted",
    "control": "I(T;S) control region",
}


class SQNNObjective(Objective):
    name = "sqnn"
    summary = "cross-entropy + γ · I(T;S) of the Bernoulli layer, in bits"
    uses_data = True
    option_rules = {
        "region": Choice(*REGIONS),
        "estimator": Choice(*ESTIMATORS),
        "condition": Choice(*CONDITIONS),
        "warmup": EPOCHS,
        "anneal": EPOCHS,
        "every": Integer(1, 100_000),
        "reweight": Choice("none", *REWEIGHT_REGIONS),
        "reweight_clip": CLIP,
        **REGION_OPTIONS,
    }
    default_network: dict[str, Any] = DEPLOYABLE_NETWORK
    # the sweep of the closure study, around the default strength
    strengths = tuple(sorted({0.6, DEFAULT_GAMMA, 2.0}))
    colour = "#D55E00"
    demo = ("full", "quick")

    def __init__(self, gamma: float = DEFAULT_GAMMA, **options: Any) -> None:
        super().__init__(gamma, **options)
        self.region = str(self.options.get("region", DEFAULT_REGION))
        self.estimator = str(self.options.get("estimator", DEFAULT_ESTIMATOR))
        self.warmup = int(self.options.get("warmup", 0))
        self.condition = str(self.options.get("condition", DEFAULT_CONDITION))
        self.anneal = int(self.options.get("anneal", 0))
        self.every = int(self.options.get("every", DEFAULT_EVERY))
        self.reweighting = reweighting_options(self.options.get("reweight", "none"), self.options.get("reweight_clip", 10.0))
        self.enriched = RegionTerms(self.options)
        self.sim_prior: float | None = None
        self.data_prior: float | None = None

    @classmethod
    def penalty_for(cls, options: Mapping[str, Any]) -> Penalty:
        return Penalty(_MEASURES[str(options.get("region", DEFAULT_REGION))], "bits")

    @classmethod
    def needs(cls, options: Mapping[str, Any]) -> frozenset[str]:
        control = options.get("region", DEFAULT_REGION) == "control" or options.get("reweight", "none") == "control"
        tagged = options.get("reweight", "none") == "enriched"
        return frozenset({"control"} if control else ()) | frozenset({"signal_control"} if tagged else ())

    def region_roles(self) -> tuple[str, ...]:
        return self.enriched.roles

    def set_regions(self, counts: Mapping[str, RegionCounts], sim_prior: float) -> None:
        self.enriched.set_counts(counts, sim_prior)

    def check_representation(self, width: int) -> None:
        if self.estimator == "joint" and width > info.MAX_JOINT_UNITS:
            raise ValueError(
                f"method_options.estimator: 'joint' handles at most {info.MAX_JOINT_UNITS} units in the penalised layer, "
                f"the network gives it {width}; use estimator: factorized or a narrower layer"
            )

    def temperature_at(self, epoch: int, final: float) -> float:
        """τ of the Bernoulli layers in ``epoch``: from τ/4 up to τ over ``anneal`` epochs, then τ."""
        if self.anneal <= 0:
            return final
        return final * (0.25 + 0.75 * min(1.0, epoch / self.anneal))

    def start_epoch(self, epoch: int, data_probability: torch.Tensor, data_weight: torch.Tensor, sim_prior: float) -> dict[str, float]:
        """Re-estimate the data signal fraction (EM on the whole data training set) once per epoch; set τ."""
        self.sim_prior = sim_prior
        em = estimate_prior(data_probability, data_weight, sim_prior)
        self.data_prior = self.enriched.data_prior(em)
        log = {"data_prior": self.data_prior, **self.enriched.update(self.data_prior)}
        if self.data_prior != em:
            log["data_prior_em"] = em
        if self.anneal > 0 and self.bernoulli_layers and self.network is not None:
            for layer in self.bernoulli_layers:
                layer.temperature = self.temperature_at(epoch, self.network.temperature)
            log["temperature"] = self.bernoulli_layers[0].temperature
        return log

    def penalty_scale(self, step: int) -> float:
        return float(self.every) if step % self.every == 0 else 0.0

    def gamma_at(self, epoch: int) -> float:
        if self.warmup <= 0:
            return self.gamma
        return self.gamma * min(1.0, (epoch + 1) / self.warmup)

    def penalty(self, batch: Batch, reduce: info.Reduce | None = None) -> dict[str, torch.Tensor]:
        theta, domain, weight = batch.theta, batch.domain, batch.weight
        joint = self.estimator == "joint"
        if self.region == "control":
            if batch.sim_control is None or batch.data_control is None:
                raise ValueError("region 'control' needs the control-region flags of both domains (the batch's sim_control and data_control)")
            weight = weight * torch.cat([batch.sim_control, batch.data_control]).to(weight.dtype)
        if self.region in ("class-conditional", "prior-corrected"):
            sim_truth = batch.sim_label.to(theta.dtype)
            train_prior = self.sim_prior if self.sim_prior is not None else 0.5
            prior = self.data_prior if self.data_prior is not None else train_prior
            # simulation reweighted per class to the data's estimated signal fraction
            n = batch.n_simulation
            weight = torch.cat([reweight_to_prior(weight[:n], sim_truth > 0.5, train_prior, prior), weight[n:]])
        if self.region == "class-conditional":
            data_signal = rescale_to_prior(torch.sigmoid(batch.data_logit.detach()).to(theta.dtype), train_prior, prior)
            if self.condition == "truth":
                sim_signal = sim_truth
            else:
                sim_signal = rescale_to_prior(torch.sigmoid(batch.sim_logit.detach()).to(theta.dtype), train_prior, prior)
            signal = torch.cat([sim_signal, data_signal])
            condition = torch.stack([1 - signal, signal], dim=1)
            value = info.conditional_mi(
                theta, domain, condition, weight, joint=joint, n_values=2, prior="balanced", reduce=reduce
            )
            return self._with_regions(value, batch, joint)
        value = info.mutual_information(
            theta, domain, weight, joint=joint, n_values=2, prior="balanced", reduce=reduce
        )
        return self._with_regions(value, batch, joint)

    def _with_regions(self, value: torch.Tensor, batch: Batch, joint: bool) -> dict[str, torch.Tensor]:
        """The penalty plus ``region_weight`` × the mean of I(T;S) inside each enriched region of the batch."""
        terms = {"mi_bits": value.detach()}
        inside = []
        for role, events in batch.regions.items():
            sim_weight = self.enriched.sim_weight(role, events)
            theta = torch.cat([events.sim_theta, events.data_theta])
            domain = torch.from_numpy(domain_labels(len(sim_weight), len(events.data_weight))).to(theta.device)
            term = info.mutual_information(theta, domain, torch.cat([sim_weight, events.data_weight]), joint=joint,
                                           n_values=2, prior="balanced")
            terms[f"mi_{role}_bits"] = term.detach()
            inside.append(term)
        penalty = value if not inside else value + self.enriched.weight * torch.stack(inside).mean()
        return {"penalty": penalty, **terms}
