"""Metrics of the contract (docs/DESIGN.md), all weighted: AUC, rejection, KS, scale factors, CvM, domain probe.

Scores are "higher = more signal-like". Weights may be negative; every function stays
finite and returns NaN only where a quantity is undefined (e.g. an AUC without both
classes), never raises on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "roc_curve",
    "roc_auc",
    "roc_auc_error",
    "rejection_at",
    "ks_distance",
    "ks_resolution",
    "efficiency",
    "scale_factor",
    "scale_factor_curve",
    "ScaleFactorCurve",
    "cvm_flatness",
    "domain_probe_auc",
    "WorkingPoint",
]


def _weights(weight: np.ndarray | None, n: int) -> np.ndarray:
    return np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64)


def roc_curve(
    score: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted (ε_background, ε_signal, threshold) for cuts ``score >= threshold``, from the tightest cut."""
    score = np.asarray(score, dtype=np.float64)
    label = np.asarray(label).astype(bool)
    w = _weights(weight, score.size)
    order = np.argsort(-score, kind="mergesort")
    s, y, w = score[order], label[order], w[order]
    signal = np.cumsum(np.where(y, w, 0.0))
    background = np.cumsum(np.where(y, 0.0, w))
    # one point per distinct score (ties move together)
    last = np.r_[np.flatnonzero(np.diff(s)), s.size - 1] if s.size else np.array([], dtype=int)
    total_s, total_b = signal[-1] if s.size else 0.0, background[-1] if s.size else 0.0
    eff_s = np.r_[0.0, signal[last] / total_s] if total_s > 0 else np.full(last.size + 1, np.nan)
    eff_b = np.r_[0.0, background[last] / total_b] if total_b > 0 else np.full(last.size + 1, np.nan)
    return eff_b, eff_s, np.r_[np.inf, s[last]]


def roc_auc(score: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Area under the weighted ROC curve; NaN without both classes."""
    eff_b, eff_s, _ = roc_curve(score, label, weight)
    if eff_b.size < 2 or np.isnan(eff_b).any() or np.isnan(eff_s).any():
        return math.nan
    return float(np.trapezoid(eff_s, eff_b))


def _effective_count(weight: np.ndarray) -> float:
    total, squares = float(weight.sum()), float((weight**2).sum())
    return total * total / squares if squares > 0 else 0.0


def roc_auc_error(auc: float, label: np.ndarray, weight: np.ndarray | None = None) -> float:
    """Statistical error of an AUC from the test sample alone (Hanley & McNeil 1982).

    The class sizes are the effective numbers of events (Σw)²/Σw²; NaN without both classes.
    """
    label = np.asarray(label)
    w = np.ones(label.shape, dtype=np.float64) if weight is None else np.asarray(weight, dtype=np.float64)
    n_s, n_b = _effective_count(w[label == 1]), _effective_count(w[label == 0])
    if not (math.isfinite(auc) and n_s >= 1 and n_b >= 1):
        return math.nan
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (n_s - 1) * (q1 - auc * auc) + (n_b - 1) * (q2 - auc * auc)) / (n_s * n_b)
    return math.sqrt(max(variance, 0.0))


def rejection_at(
    score: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None, signal_efficiency: float = 0.5
) -> float:
    """1/ε_B at the cut that keeps ``signal_efficiency`` of the signal (interpolated); inf if ε_B = 0."""
    eff_b, eff_s, _ = roc_curve(score, label, weight)
    if eff_b.size < 2 or np.isnan(eff_s).any() or np.isnan(eff_b).any():
        return math.nan
    # ε_S is non-decreasing only for non-negative weights; take its running maximum
    eff_s = np.maximum.accumulate(eff_s)
    background = float(np.interp(signal_efficiency, eff_s, eff_b))
    return math.inf if background <= 0 else 1.0 / background


def _weighted_cdf(values: np.ndarray, weight: np.ndarray, grid: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    v, w = values[order], weight[order]
    cumulative = np.cumsum(w)
    total = cumulative[-1] if cumulative.size else 0.0
    if not total > 0:
        return np.full(grid.shape, np.nan)
    position = np.searchsorted(v, grid, side="right")
    return np.where(position > 0, cumulative[np.maximum(position - 1, 0)], 0.0) / total


def ks_distance(
    a: np.ndarray, b: np.ndarray, weight_a: np.ndarray | None = None, weight_b: np.ndarray | None = None
) -> float:
    """Weighted two-sample Kolmogorov–Smirnov distance sup |F_a − F_b|; NaN if a sample is empty."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size == 0 or b.size == 0:
        return math.nan
    wa, wb = _weights(weight_a, a.size), _weights(weight_b, b.size)
    grid = np.union1d(a, b)
    diff = np.abs(_weighted_cdf(a, wa, grid) - _weighted_cdf(b, wb, grid))
    return float(np.nanmax(diff)) if np.isfinite(diff).any() else math.nan


# the standard deviation of √n · D for two samples of one distribution (Kolmogorov's limit law)
KOLMOGOROV_SD = 0.2603


def ks_resolution(weight_a: np.ndarray, weight_b: np.ndarray) -> float:
    """The statistical resolution of a KS distance between samples of these weights: 0.26 · √(1/n_a + 1/n_b).

    The spread of the distance between two samples of one distribution with the effective
    numbers of events n = (Σw)²/Σw² (Kolmogorov's limit law): two distances closer than this
    are not told apart by the samples. NaN for an empty sample.
    """
    n_a, n_b = _effective_count(np.asarray(weight_a, dtype=np.float64)), _effective_count(np.asarray(weight_b, dtype=np.float64))
    if not (n_a > 0 and n_b > 0):
        return math.nan
    return KOLMOGOROV_SD * math.sqrt(1.0 / n_a + 1.0 / n_b)


def efficiency(passed: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
    """Weighted efficiency and its binomial error with the effective number of events."""
    weight = np.asarray(weight, dtype=np.float64)
    total = weight.sum()
    if not total > 0:
        return math.nan, math.nan
    eff = float(weight[passed].sum() / total)
    n_eff = total**2 / float((weight**2).sum())
    clipped = min(max(eff, 0.0), 1.0)
    return eff, math.sqrt(clipped * (1 - clipped) / n_eff) if n_eff > 0 else math.nan


@dataclass(frozen=True)
class WorkingPoint:
    """A cut ``score >= threshold`` fixed on simulation to keep a fraction of its signal."""

    threshold: float
    signal_efficiency: float

    @classmethod
    def from_simulation(
        cls, score: np.ndarray, label: np.ndarray, weight: np.ndarray, signal_efficiency: float
    ) -> "WorkingPoint":
        signal = np.asarray(label).astype(bool)
        s, w = np.asarray(score)[signal], np.asarray(weight, dtype=np.float64)[signal]
        if s.size == 0 or not w.sum() > 0:
            return cls(threshold=math.nan, signal_efficiency=signal_efficiency)
        order = np.argsort(-s, kind="mergesort")
        ranked = s[order]
        cumulative = np.cumsum(w[order]) / w.sum()
        # a cut keeps every event of its score: only the last event of each distinct score is a cut; the
        # tightest that keeps enough (negative weights make the sum go down as well as up, so search, not bisect)
        ends = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]
        enough = ends[cumulative[ends] >= signal_efficiency]
        index = int(enough[0]) if enough.size else ranked.size - 1
        return cls(threshold=float(ranked[index]), signal_efficiency=signal_efficiency)


def scale_factor(
    working_point: WorkingPoint,
    sim_score: np.ndarray,
    sim_label: np.ndarray,
    sim_weight: np.ndarray,
    data_score: np.ndarray,
    data_label: np.ndarray,
    data_weight: np.ndarray,
    cls: int,
) -> tuple[float, float]:
    """ε_data / ε_sim of class ``cls`` at the working point, with its statistical error."""
    if math.isnan(working_point.threshold):
        return math.nan, math.nan
    sim_mask = np.asarray(sim_label) == cls
    data_mask = np.asarray(data_label) == cls
    eff_sim, err_sim = efficiency(sim_score[sim_mask] >= working_point.threshold, sim_weight[sim_mask])
    eff_data, err_data = efficiency(data_score[data_mask] >= working_point.threshold, data_weight[data_mask])
    if not (eff_sim > 0) or math.isnan(eff_data):
        return math.nan, math.nan
    sf = eff_data / eff_sim
    relative = math.hypot(err_data / eff_data if eff_data > 0 else 0.0, err_sim / eff_sim)
    return sf, abs(sf) * relative


@dataclass(frozen=True)
class ScaleFactorCurve:
    """sf = ε_data / ε_sim of signal and background at cuts keeping ``efficiency`` of simulated signal."""

    efficiency: np.ndarray
    signal: np.ndarray
    signal_err: np.ndarray
    background: np.ndarray
    background_err: np.ndarray

    def at(self, efficiency: float) -> tuple[float, float]:
        """(sf_S, sf_B) at the working point nearest ``efficiency``."""
        index = int(np.argmin(np.abs(self.efficiency - efficiency)))
        return float(self.signal[index]), float(self.background[index])


def scale_factor_curve(
    sim_score: np.ndarray,
    sim_label: np.ndarray,
    sim_weight: np.ndarray,
    data_score: np.ndarray,
    data_label: np.ndarray,
    data_weight: np.ndarray,
    efficiencies: Sequence[float] | np.ndarray = tuple(np.round(np.arange(0.10, 0.9501, 0.025), 3)),
) -> ScaleFactorCurve:
    """The scale factors and their statistical errors (:func:`scale_factor`) at each working point."""
    rows = []
    for efficiency in efficiencies:
        point = WorkingPoint.from_simulation(sim_score, sim_label, sim_weight, float(efficiency))
        rows.append([
            *scale_factor(point, sim_score, sim_label, sim_weight, data_score, data_label, data_weight, 1),
            *scale_factor(point, sim_score, sim_label, sim_weight, data_score, data_label, data_weight, 0),
        ])
    table = np.asarray(rows, dtype=float).reshape(-1, 4)
    return ScaleFactorCurve(np.asarray(efficiencies, dtype=float), table[:, 0], table[:, 1], table[:, 2], table[:, 3])


def cvm_flatness(
    score: np.ndarray, observer: np.ndarray, weight: np.ndarray | None = None, bins: int = 10
) -> float:
    """Cramér–von Mises flatness of the score against an observer (Flavours of Physics).

    Events are binned in quantiles of the observer; for each bin the squared difference
    between the bin's score CDF and the global score CDF is averaged over the bin's
    events, and the bins are combined with their weight fractions. 0 = flat.
    """
    score, observer = np.asarray(score, dtype=np.float64), np.asarray(observer, dtype=np.float64)
    w = _weights(weight, score.size)
    if score.size < bins * 2:
        return math.nan
    edges = np.quantile(observer, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, observer, side="right") - 1, 0, bins - 1)
    total = w.sum()
    if not total > 0:
        return math.nan
    result = 0.0
    for b in range(bins):
        mask = which == b
        wb = w[mask]
        if not wb.sum() > 0:
            continue
        global_cdf = _weighted_cdf(score, w, score[mask])
        local_cdf = _weighted_cdf(score[mask], wb, score[mask])
        result += float(wb.sum() / total) * float(np.average((local_cdf - global_cdf) ** 2, weights=np.abs(wb)))
    return result


def _bin_thresholds(values: np.ndarray, weight: np.ndarray, max_bins: int) -> np.ndarray:
    """Upper edges of at most ``max_bins`` bins of one feature, as gradient-boosted trees choose them.

    Midpoints between distinct values when there are few, else the weighted quantiles at
    1/max_bins … (max_bins − 1)/max_bins by the averaged inverted CDF: the thresholds of
    scikit-learn's histogram binning, found with one sort and one search instead of one
    weighted percentile (a sort each) per bin edge.
    """
    keep = weight != 0
    values, weight = values[keep].astype(np.float64), weight[keep].astype(np.float64)
    order = np.argsort(values)
    values, weight = values[order], weight[order]
    distinct = np.unique(values)
    if distinct.size <= 1:
        return np.zeros(0)
    if distinct.size <= max_bins:
        return (distinct[:-1] + distinct[1:]) / 2
    cumulative = np.cumsum(weight)
    ranks = np.linspace(0, 100, num=max_bins + 1)[1:-1] / 100 * cumulative[-1]
    index = np.clip(np.searchsorted(cumulative, ranks), 0, values.size - 1)
    above = cumulative[index] - ranks > np.finfo(np.float64).eps
    thresholds = np.where(above, values[index], (values[index] + values[np.minimum(index + 1, values.size - 1)]) / 2)
    return np.unique(thresholds)


def _binned(x: np.ndarray, train: np.ndarray, weight: np.ndarray, max_bins: int = 255) -> np.ndarray:
    """Bin index of every event and feature, with the edges of the training events."""
    codes = np.empty(x.shape, dtype=np.uint8)
    for j in range(x.shape[1]):
        edges = _bin_thresholds(x[train, j], weight[train], max_bins)
        codes[:, j] = np.searchsorted(edges, x[:, j].astype(np.float64), side="left")
    return codes


@dataclass
class _Tree:
    """A fitted regression tree on binned features: node arrays, leaves have feature −1."""

    feature: list[int]
    threshold: list[int]
    left: list[int]
    right: list[int]
    value: list[float]

    def predict(self, codes: np.ndarray) -> np.ndarray:
        node = np.zeros(len(codes), dtype=np.int64)
        feature, threshold = np.asarray(self.feature), np.asarray(self.threshold)
        left, right = np.asarray(self.left), np.asarray(self.right)
        active = feature[node] >= 0
        while active.any():
            at = node[active]
            goes_left = codes[np.flatnonzero(active), feature[at]] <= threshold[at]
            node[active] = np.where(goes_left, left[at], right[at])
            active = feature[node] >= 0
        return np.asarray(self.value)[node]


def _histograms(cells: np.ndarray, gradient: np.ndarray, hessian: np.ndarray, n_bins: int) -> np.ndarray:
    """Σ gradient, Σ hessian and the count per (feature, bin), shape (3, features, bins).

    ``cells`` (events, features) holds feature · n_bins + bin of every event and feature.
    """
    n_features = cells.shape[1]
    flat = cells.ravel()
    size = n_features * n_bins
    histogram = np.empty((3, size))
    histogram[0] = np.bincount(flat, weights=np.repeat(gradient, n_features), minlength=size)
    histogram[1] = np.bincount(flat, weights=np.repeat(hessian, n_features), minlength=size)
    histogram[2] = np.bincount(flat, minlength=size)
    return histogram.reshape(3, n_features, n_bins)


def _best_split(histogram: np.ndarray, min_leaf: int, min_hessian: float) -> tuple[float, int, int]:
    """(gain, feature, bin) of the best split ``bin ≤ b`` of a node, or gain 0 when none is allowed.

    Gain G_L²/H_L + G_R²/H_R − G²/H (no L2 term; H + 1e-15 as scikit-learn has it), the first
    best in (feature, bin) order.
    """
    left = np.cumsum(histogram, axis=2)[:, :, :-1]
    total = histogram[:, 0, :].sum(1)  # (3,): every feature holds every event
    right = total[:, None, None] - left
    allowed = (left[2] >= min_leaf) & (right[2] >= min_leaf) & (left[1] >= min_hessian) & (right[1] >= min_hessian)
    if not allowed.any():
        return 0.0, 0, 0
    gain = np.square(left[0]) / (left[1] + 1e-15)
    gain += np.square(right[0]) / (right[1] + 1e-15)
    gain -= total[0] ** 2 / (total[1] + 1e-15)
    gain[~allowed] = -np.inf
    best = int(np.argmax(gain))
    feature, threshold = divmod(best, gain.shape[1])
    return float(gain[feature, threshold]), feature, threshold


def _grow_tree(
    codes: np.ndarray, gradient: np.ndarray, hessian: np.ndarray, n_bins: int, leaves: int, min_leaf: int, rate: float
) -> tuple[_Tree, np.ndarray]:
    """One tree grown best-first (the leaf with the largest gain splits next); also its value per event."""
    min_hessian = 1e-3
    tree = _Tree([-1], [0], [-1], [-1], [0.0])
    cells = codes.astype(np.int64) + np.arange(codes.shape[1]) * n_bins
    events = {0: np.arange(len(codes))}
    histograms = {0: _histograms(cells, gradient, hessian, n_bins)}
    candidates: list[tuple[float, int, int, int]] = []  # (gain, node, feature, bin)

    def consider(node: int) -> None:
        if len(events[node]) >= 2 * min_leaf and histograms[node][1, 0].sum() >= 2 * min_hessian:
            gain, feature, threshold = _best_split(histograms[node], min_leaf, min_hessian)
            if gain > 0:
                candidates.append((gain, node, feature, threshold))

    consider(0)
    n_leaves = 1
    while candidates and n_leaves < leaves:
        # the largest gain; among equal gains the node split first
        best = max(range(len(candidates)), key=lambda i: (candidates[i][0], -candidates[i][1]))
        _, node, feature, threshold = candidates.pop(best)
        index = events.pop(node)
        goes_left = codes[index, feature] <= threshold
        children = []
        for side in (index[goes_left], index[~goes_left]):
            children.append(len(tree.feature))
            tree.feature.append(-1)
            tree.threshold.append(0)
            tree.left.append(-1)
            tree.right.append(-1)
            tree.value.append(0.0)
            events[children[-1]] = side
        tree.feature[node], tree.threshold[node] = feature, threshold
        tree.left[node], tree.right[node] = children
        # the smaller child's histogram from its events, the larger one's by subtraction
        parent = histograms.pop(node)
        small, large = sorted(children, key=lambda c: len(events[c]))
        histograms[small] = _histograms(cells[events[small]], gradient[events[small]], hessian[events[small]], n_bins)
        histograms[large] = parent - histograms[small]
        consider(children[0])
        consider(children[1])
        n_leaves += 1
    per_event = np.zeros(len(codes))
    for node, index in events.items():
        sums = histograms[node][:, 0].sum(1)
        tree.value[node] = -rate * sums[0] / (sums[1] + 1e-15)
        per_event[index] = tree.value[node]
    return tree, per_event


def _boosted_trees(
    codes: np.ndarray,
    label: np.ndarray,
    weight: np.ndarray,
    *,
    iterations: int = 60,
    leaves: int = 15,
    min_leaf: int = 20,
    rate: float = 0.1,
) -> tuple[float, list[_Tree]]:
    """Gradient-boosted trees with the binomial log loss on binned features (bin indices < 256).

    The algorithm of scikit-learn's HistGradientBoostingClassifier with the settings the
    domain probe uses (no L2 term, no early stopping, which it never reached on ≤ 10 000
    events per fold): start from the weighted log-odds, then each tree fits the weighted
    gradient and hessian of the loss, grown best-first to ``leaves`` leaves of at least
    ``min_leaf`` events, its leaves valued −rate · Σg / Σh. Returns (start, trees).
    """
    n_bins = int(codes.max()) + 1 if codes.size else 1
    eps = 10 * np.finfo(np.float64).eps
    mean = float(np.clip(np.average(label, weights=weight), eps, 1 - eps))
    start = math.log(mean / (1 - mean))
    raw = np.full(len(codes), start)
    trees = []
    for _ in range(iterations):
        probability = 1.0 / (1.0 + np.exp(-raw))
        # float32 gradients and hessians, summed in float64, as scikit-learn keeps them
        gradient = (weight * (probability - label)).astype(np.float32).astype(np.float64)
        hessian = (weight * probability * (1 - probability)).astype(np.float32).astype(np.float64)
        tree, values = _grow_tree(codes, gradient, hessian, n_bins, leaves, min_leaf, rate)
        trees.append(tree)
        raw += values
    return start, trees


def domain_probe_auc(
    representation_sim: np.ndarray,
    representation_data: np.ndarray,
    weight_sim: np.ndarray | None = None,
    weight_data: np.ndarray | None = None,
    *,
    seed: int = 0,
    max_events: int = 20000,
) -> float:
    """AUC of a probe that tells simulation from data on a representation (0.5 = invariant).

    A gradient-boosted-tree probe, 2-fold cross-validated, with both domains given equal
    total weight; reported as max(AUC, 1 − AUC) averaged over folds. The trees are those of
    scikit-learn's HistGradientBoostingClassifier(max_iter=60, max_leaf_nodes=15) on
    features binned at its weighted quantile edges (:func:`_boosted_trees`), written here
    with numpy: the same probe without the import of scikit-learn and scipy, which cost
    more than the rest of an evaluation.
    """
    rng = np.random.default_rng(seed)
    parts = []
    for rep, weight in ((representation_sim, weight_sim), (representation_data, weight_data)):
        rep = np.asarray(rep, dtype=np.float32).reshape(len(rep), -1)
        w = _weights(weight, len(rep))
        pick = rng.permutation(len(rep))[: max_events // 2]
        parts.append((rep[pick], w[pick]))
    x = np.concatenate([parts[0][0], parts[1][0]])
    y = np.r_[np.zeros(len(parts[0][0])), np.ones(len(parts[1][0]))]
    w = np.concatenate([parts[0][1] / parts[0][1].sum(), parts[1][1] / parts[1][1].sum()])
    if len(parts[0][0]) < 10 or len(parts[1][0]) < 10:
        return math.nan
    fold = rng.permutation(len(x)) % 2
    aucs = []
    for k in range(2):
        train, test = fold != k, fold == k
        # trees need non-negative weights; the sign is kept where the AUC is measured
        fit_weight = np.abs(w) * len(x)
        codes = _binned(x, train, fit_weight)
        start, trees = _boosted_trees(codes[train], y[train], fit_weight[train])
        raw = start + sum(tree.predict(codes[test]) for tree in trees)
        auc = roc_auc(raw, y[test], w[test])
        aucs.append(max(auc, 1 - auc))
    return float(np.mean(aucs))
