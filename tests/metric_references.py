"""Independent references for the metrics: each written from its definition, by brute force.

Slow (quadratic or worse) and plain on purpose, so that they share no code and no trick
with ``sqnn.metrics`` and ``sqnn.priors``; the tests compare the two on small samples.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq


def pairwise_auc(score: np.ndarray, label: np.ndarray, weight: np.ndarray) -> float:
    """Weighted Mann–Whitney: Σ over (signal, background) pairs of w_s w_b (1[s > b] + ½ 1[s = b]) / (W_S W_B)."""
    signal, background = label == 1, label == 0
    total = 0.0
    for s, ws in zip(score[signal], weight[signal]):
        for b, wb in zip(score[background], weight[background]):
            total += ws * wb * (1.0 if s > b else 0.5 if s == b else 0.0)
    return total / (weight[signal].sum() * weight[background].sum())


def effective_count(weight: np.ndarray) -> float:
    """(Σw)² / Σw²."""
    return float(weight.sum()) ** 2 / float(np.sum(weight * weight))


def hanley_mcneil_error(auc: float, n_signal: float, n_background: float) -> float:
    """Hanley & McNeil (1982), eq. 2: Q1 = A/(2 − A) pairs with the signal (higher-scored) class."""
    q1 = auc / (2 - auc)
    q2 = 2 * auc**2 / (1 + auc)
    variance = auc * (1 - auc) + (n_signal - 1) * (q1 - auc**2) + (n_background - 1) * (q2 - auc**2)
    return math.sqrt(variance / (n_signal * n_background))


def cdf(values: np.ndarray, weight: np.ndarray, t: float) -> float:
    """Weighted F(t) = Σ w 1[v ≤ t] / Σ w."""
    return float(weight[values <= t].sum() / weight.sum())


def brute_force_ks(a: np.ndarray, b: np.ndarray, weight_a: np.ndarray, weight_b: np.ndarray) -> float:
    """sup_t |F_a(t) − F_b(t)| over every value either sample takes (where the step functions jump)."""
    return max(abs(cdf(a, weight_a, t) - cdf(b, weight_b, t)) for t in np.r_[a, b])


def cut_efficiency(score: np.ndarray, weight: np.ndarray, threshold: float) -> float:
    """Σ w 1[score ≥ threshold] / Σ w."""
    return float(weight[score >= threshold].sum() / weight.sum())


def binomial_error(efficiency: float, weight: np.ndarray) -> float:
    """sqrt(ε (1 − ε) / N_eff), ε clipped to [0, 1], N_eff = (Σw)²/Σw²."""
    clipped = min(max(efficiency, 0.0), 1.0)
    return math.sqrt(clipped * (1 - clipped) / effective_count(weight))


def tightest_cut(score: np.ndarray, weight: np.ndarray, signal_efficiency: float) -> float:
    """The largest score value t whose cut ``score ≥ t`` keeps at least ``signal_efficiency`` of the weight."""
    passing = [t for t in np.unique(score) if cut_efficiency(score, weight, t) >= signal_efficiency]
    return float(max(passing)) if passing else float(score.min())


def posterior_at(probability: np.ndarray, train_prior: float, prior: float) -> np.ndarray:
    """Bayes' rule: P(signal|x) at signal fraction ``prior`` from its value at ``train_prior``."""
    signal = probability * prior / train_prior
    background = (1 - probability) * (1 - prior) / (1 - train_prior)
    return signal / (signal + background)


def em_fixed_point(probability: np.ndarray, weight: np.ndarray, train_prior: float) -> float:
    """The root of Σ w P_π(signal|x) / Σ w = π in (0, 1), solved by Brent's method to machine precision.

    0 or 1 when the weighted posterior mean stays below or above π everywhere inside.
    """
    def excess(prior: float) -> float:
        return float(np.sum(weight * posterior_at(probability, train_prior, prior)) / weight.sum() - prior)

    low, high = 1e-9, 1 - 1e-9
    if excess(low) <= 0:
        return 0.0
    if excess(high) >= 0:
        return 1.0
    return brentq(excess, low, high, xtol=1e-15, rtol=4 * np.finfo(float).eps)


def mixture_log_likelihood(prior: float, probability: np.ndarray, weight: np.ndarray, train_prior: float) -> float:
    """Σ w log p(x | π) up to a constant: p(x|π) ∝ π P(s|x)/π_train + (1 − π) P(b|x)/(1 − π_train)."""
    density = prior * probability / train_prior + (1 - prior) * (1 - probability) / (1 - train_prior)
    return float(np.sum(weight * np.log(density)))


def cvm_flatness(score: np.ndarray, observer: np.ndarray, weight: np.ndarray, bins: int) -> float:
    """Σ_bins (W_bin / W) · Σ_bin |w| (F_bin(s) − F(s))² / Σ_bin |w|, bins between quantiles of the observer."""
    edges = np.quantile(observer, np.linspace(0, 1, bins + 1))
    result = 0.0
    for b in range(bins):
        inside = (observer >= edges[b]) & ((observer < edges[b + 1]) | (b == bins - 1))
        squares = [(cdf(score[inside], weight[inside], s) - cdf(score, weight, s)) ** 2 for s in score[inside]]
        average = float(np.sum(np.abs(weight[inside]) * squares) / np.abs(weight[inside]).sum())
        result += float(weight[inside].sum() / weight.sum()) * average
    return result
