"""The report's plots. Each takes the axes to draw on (``ax=``) and returns its artists.

Histograms are :mod:`hist` objects drawn with :func:`mplhep.histplot`; the style
(mplhep's CMS style, with fonts sized for panels a few hundred pixels wide) is applied by
the caller, :func:`style`, so these functions only draw. Nothing here touches pyplot's
global state: figures come from :func:`figure`, which renders with the non-interactive
Agg canvas. Every method keeps one colour (:func:`method_colours`) in every figure.

Axes are set by the points that matter (:func:`core_limits`): a setting far off the others
(a strength that over-corrects) is drawn at the edge of the axes as an open triangle with
its value, rather than squeezing everything else into a corner.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import hist
import matplotlib
import matplotlib.style
import mplhep
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from sqnn import metrics
from sqnn.labels import strength_label
from sqnn.workflows.tables import with_error

__all__ = [
    "DPI",
    "METRIC_LABELS",
    "ScaleFactorCurve",
    "core_limits",
    "figure",
    "method_colours",
    "palette",
    "png_bytes",
    "style",
    "plot_roc",
    "plot_scale_factors",
    "plot_score_comparison",
    "plot_tradeoff",
    "plot_history",
    "plot_information_plane",
    "roc_from_scores",
    "scale_factor_curve",
    "score_histogram",
]

# figures are drawn at this resolution; a figure 13 inches wide is 1300 pixels, inside a 1400-pixel page
DPI = 100
MAX_WIDTH_INCHES = 13.0

METRIC_LABELS = {
    "auc_source": "AUC, simulation (test)",
    "auc_target": "AUC, data (test)",
    "ks": "KS distance sim. vs data",
    "ks_control": "KS sim. vs data, control region",
    "ks_reweighted": "KS sim. (reweighted) vs data",
    "domain_auc": "Domain-probe AUC",
    "closure": r"closure $|1-sf_S| + |1-sf_B|$, 50 % WP",
    "closure_80": r"closure $|1-sf_S| + |1-sf_B|$, 80 % WP",
    "mi_bits": r"$I(T;S)$ [bits]",
    "mi_joint_bits": r"$I(T;S)$ exact [bits]",
    "val_classification": "Cross-entropy, validation [nats]",
    "val_auc": "AUC, simulation validation",
}

# Okabe & Ito's colour-blind-safe set, then further distinct colours: each method brings its own
# (sqnn.methods, stored in a comparison's display); these are for the rest
PALETTE = ("#000000", "#D55E00", "#0072B2", "#CC79A7", "#009E73", "#E69F00", "#56B4E9", "#7F7F7F",
           "#A6761D", "#6A3D9A", "#B15928", "#1B9E77", "#E7298A")


def method_colours(names: Sequence[str], known: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """A distinct colour for each method: its own (``known``, by name) where it has one, further ones in order."""
    known = {name: colour for name, colour in (known or {}).items() if colour}
    spare = iter(c for c in PALETTE + tuple(mplhep.style.CMS["axes.prop_cycle"].by_key()["color"])
                 if c not in known.values())
    colours = {}
    for name in names:
        base = name.split(" ")[0]
        colours[name] = known.get(name) or known.get(base) or next(spare, "#444444")
    return colours


def palette(n: int) -> list[str]:
    """``n`` distinct colours (repeating past the 13 known)."""
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def _colour(colors: Mapping[str, str] | None, name: str, index: int) -> str:
    if colors and name in colors:
        return colors[name]
    return palette(index + 1)[index]


def _linestyle(linestyles: Mapping[str, str] | None, name: str) -> str:
    styles = linestyles or {}
    return styles.get(name) or styles.get(name.split(" ")[0]) or "-"


@contextlib.contextmanager
def style() -> Iterator[None]:
    """mplhep's CMS style with fonts for panels a few hundred pixels wide."""
    with matplotlib.style.context(mplhep.style.CMS), matplotlib.rc_context({
        "font.size": 11, "axes.labelsize": 11, "axes.titlesize": 11, "legend.fontsize": 9,
        "xtick.labelsize": 10, "ytick.labelsize": 10, "xtick.major.size": 6, "ytick.major.size": 6,
        "xtick.minor.size": 3, "ytick.minor.size": 3, "lines.linewidth": 1.6, "legend.frameon": False,
    }):
        yield


def figure(nrows: int = 1, ncols: int = 1, *, size: tuple[float, float] | None = None, **kwargs: Any) -> tuple[Figure, Any]:
    """A figure on the Agg canvas and its axes (as ``Figure.subplots`` returns them), at most 13 inches wide."""
    width, height = size or (min(MAX_WIDTH_INCHES, 4.3 * ncols), 3.6 * nrows)
    if width > MAX_WIDTH_INCHES:
        width, height = MAX_WIDTH_INCHES, height * MAX_WIDTH_INCHES / width
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def png_bytes(fig: Figure, dpi: int = DPI) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


# ROC


def roc_from_scores(score: np.ndarray, label: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    eff_b, eff_s, _ = metrics.roc_curve(score, label, weight)
    return eff_b, eff_s


def _rejection_on(grid: np.ndarray, eff_b: np.ndarray, eff_s: np.ndarray) -> np.ndarray:
    """1/ε_B at the signal efficiencies ``grid`` (ε_S made monotonic, as :func:`metrics.rejection_at` does)."""
    eff_s = np.maximum.accumulate(np.asarray(eff_s, dtype=float))
    background = np.interp(grid, eff_s, np.asarray(eff_b, dtype=float))
    return np.divide(1.0, background, out=np.full_like(grid, np.nan), where=background > 0)


def plot_roc(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    ax: Axes,
    ratio_ax: Axes | None = None,
    baseline: str | None = None,
    title: str | None = None,
    colors: Mapping[str, str] | None = None,
    linestyles: Mapping[str, str] | None = None,
) -> list[Any]:
    """Background rejection 1/ε_B against signal efficiency ε_S, one line per entry.

    ``curves`` maps a label to (ε_B, ε_S) as :func:`sqnn.metrics.roc_curve` returns them.
    With ``ratio_ax`` and ``baseline`` (one of the labels) the lower panel shows each
    rejection divided by the baseline's at the same ε_S.
    """
    artists = []
    for index, (name, (eff_b, eff_s)) in enumerate(curves.items()):
        eff_b, eff_s = np.asarray(eff_b, dtype=float), np.asarray(eff_s, dtype=float)
        keep = np.isfinite(eff_b) & np.isfinite(eff_s) & (eff_b > 0) & (eff_s > 0)
        (line,) = ax.plot(eff_s[keep], 1.0 / eff_b[keep], label=name, color=_colour(colors, name, index),
                          linestyle=_linestyle(linestyles, name))
        artists.append(line)
    ax.set_yscale("log")
    ax.set_xlim(0.1, 1.0)
    ax.set_ylabel(r"Background rejection $1/\varepsilon_B$")
    if title:
        artists.append(ax.set_title(title))
    if artists:
        artists.append(ax.legend(loc="upper right"))
    if ratio_ax is None or baseline not in curves:
        ax.set_xlabel(r"Signal efficiency $\varepsilon_S$")
        return artists
    grid = np.linspace(0.1, 0.99, 90)
    reference = _rejection_on(grid, *curves[baseline])
    ratios = []
    for index, (name, (eff_b, eff_s)) in enumerate(curves.items()):
        ratio = _rejection_on(grid, eff_b, eff_s) / reference
        ratios.append(ratio)
        (line,) = ratio_ax.plot(grid, ratio, color=_colour(colors, name, index), linestyle=_linestyle(linestyles, name))
        artists.append(line)
    finite = np.concatenate([r[np.isfinite(r)] for r in ratios] or [np.ones(1)])
    low, high = np.quantile(finite, [0.02, 0.98]) if finite.size else (0.9, 1.1)
    spread = max(0.05, 1.15 * max(1 - low, high - 1))
    ratio_ax.set_ylim(1 - spread, 1 + spread)
    ratio_ax.axhline(1.0, color="grey", linewidth=0.8)
    ratio_ax.set_xlim(0.1, 1.0)
    ratio_ax.set_ylabel(f"ratio to\n{baseline}")
    ratio_ax.set_xlabel(r"Signal efficiency $\varepsilon_S$")
    return artists


# scale factors across working points: :class:`sqnn.metrics.ScaleFactorCurve`

ScaleFactorCurve = metrics.ScaleFactorCurve
scale_factor_curve = metrics.scale_factor_curve

SIGNAL_COLOUR, BACKGROUND_COLOUR = "#0072B2", "#D55E00"


def plot_scale_factors(
    curve: ScaleFactorCurve,
    *,
    ax: Axes,
    reference: ScaleFactorCurve | None = None,
    ylim: tuple[float, float] | None = None,
    title: str | None = None,
) -> list[Any]:
    """sf_S and sf_B against the simulated signal efficiency of the cut, each with its ±1σ statistical band.

    ``reference`` (e.g. source-only) is drawn as thin dashed lines; the 50 % and 80 %
    working points of the tables are marked. A curve leaving ``ylim`` gets a note of how far.
    """
    artists: list[Any] = []
    for values, errors, colour, name in ((curve.signal, curve.signal_err, SIGNAL_COLOUR, "signal"),
                                         (curve.background, curve.background_err, BACKGROUND_COLOUR, "background")):
        finite = np.isfinite(values) & np.isfinite(errors)
        artists.append(ax.fill_between(curve.efficiency[finite], (values - errors)[finite], (values + errors)[finite],
                                       color=colour, alpha=0.25, linewidth=0))
        (line,) = ax.plot(curve.efficiency[finite], values[finite], color=colour, label=r"$sf_S$" if name == "signal" else r"$sf_B$")
        artists.append(line)
    if reference is not None:
        for values, colour, name in ((reference.signal, SIGNAL_COLOUR, "source-only"),
                                     (reference.background, BACKGROUND_COLOUR, None)):
            (line,) = ax.plot(reference.efficiency, values, color=colour, linestyle="--", linewidth=0.9, alpha=0.7,
                              label=name)
            artists.append(line)
    artists.append(ax.axhline(1.0, color="grey", linewidth=0.8))
    for point in (0.5, 0.8):
        artists.append(ax.axvline(point, color="grey", linestyle=":", linewidth=0.8))
    ax.set_xlim(float(curve.efficiency.min()), float(curve.efficiency.max()))
    if ylim is not None:
        ax.set_ylim(*ylim)
        _note_off_scale(ax, curve, ylim)
    ax.set_xlabel(r"$\varepsilon_S$ of the cut in simulation")
    ax.set_ylabel(r"$\varepsilon_{data} / \varepsilon_{sim}$")
    if title:
        artists.append(ax.set_title(title))
    return artists


def _note_off_scale(ax: Axes, curve: ScaleFactorCurve, ylim: tuple[float, float]) -> None:
    values = np.concatenate([curve.signal, curve.background])
    values = values[np.isfinite(values)]
    if values.size and (values.max() > ylim[1] or values.min() < ylim[0]):
        ax.text(0.03, 0.95, f"off scale: {values.min():.2f} to {values.max():.2f}", transform=ax.transAxes,
                fontsize=9, va="top", color="#444444")


def _measured(curve: ScaleFactorCurve, precision: float) -> np.ndarray:
    """The scale factors of a curve known to a relative ``precision`` (tight cuts keep few background events)."""
    values = np.concatenate([curve.signal, curve.background])
    errors = np.concatenate([curve.signal_err, curve.background_err])
    return values[np.isfinite(values) & np.isfinite(errors) & (errors <= precision * np.abs(values))]


def scale_factor_limits(curves: Sequence[ScaleFactorCurve], precision: float = 0.1) -> tuple[float, float]:
    """One y range for every method's scale-factor panel, set by the well-measured points of the methods
    that do not run away (a method whose deviation from 1 is over 3 times the typical one goes off scale)."""
    measured = [_measured(curve, precision) for curve in curves]
    deviations = [float(np.max(np.abs(v - 1))) if v.size else 0.0 for v in measured]
    typical = float(np.median(deviations)) if deviations else 0.1
    kept = [v for v, d in zip(measured, deviations) if d <= max(3 * typical, 0.15)] or measured
    values = np.concatenate(kept) if kept else np.ones(1)
    low, high = (float(values.min()), float(values.max())) if values.size else (1.0, 1.0)
    low, high = min(low, 0.9), max(high, 1.1)
    pad = 0.08 * (high - low)
    return max(0.0, low - pad), high + pad


# score distributions


def score_histogram(score: np.ndarray, weight: np.ndarray, bins: int = 25) -> hist.Hist:
    """Weighted histogram of a score in [0, 1]."""
    h = hist.Hist(hist.axis.Regular(bins, 0.0, 1.0, name="score", label="Classifier score"), storage=hist.storage.Weight())
    h.fill(score=np.clip(np.asarray(score, dtype=float), 0.0, 1.0 - 1e-12), weight=np.asarray(weight, dtype=float))
    return h


def _normalised(h: hist.Hist) -> tuple[np.ndarray, np.ndarray]:
    values, variances = h.values(), h.variances()
    assert variances is not None
    total = values.sum()
    if not total > 0:
        return np.zeros_like(values), np.zeros_like(values)
    return values / total, np.sqrt(np.clip(variances, 0.0, None)) / total


def plot_score_comparison(
    sim_score: np.ndarray,
    data_score: np.ndarray,
    sim_weight: np.ndarray,
    data_weight: np.ndarray,
    *,
    ax: Axes,
    ratio_ax: Axes | None = None,
    bins: int = 25,
    title: str | None = None,
    colour: str = "#0072B2",
    labels: tuple[str, str] = ("Simulation", "Data"),
) -> dict[str, Any]:
    """Unit-area score distributions of simulation (line) and data (points), and data/simulation below."""
    h_sim, h_data = score_histogram(sim_score, sim_weight, bins), score_histogram(data_score, data_weight, bins)
    sim_values, sim_errors = _normalised(h_sim)
    data_values, data_errors = _normalised(h_data)
    edges = h_sim.axes[0].edges
    artists: dict[str, Any] = {
        "simulation": mplhep.histplot(sim_values, edges, yerr=sim_errors, ax=ax, histtype="step", color=colour,
                                      label=labels[0]),
        "data": mplhep.histplot(
            data_values, edges, yerr=data_errors, ax=ax, histtype="errorbar", color="black", label=labels[1],
            markersize=3,
        ),
    }
    ax.set_ylabel("Fraction of events")
    ax.set_xlim(0.0, 1.0)
    artists["legend"] = ax.legend(loc="upper center")
    if title:
        artists["title"] = ax.set_title(title)
    if ratio_ax is not None:
        centres = h_sim.axes[0].centers
        filled = (sim_values > 0) & (data_values > 0)
        ratio = np.divide(data_values, sim_values, out=np.full_like(data_values, np.nan), where=filled)
        relative = np.hypot(
            np.divide(data_errors, data_values, out=np.zeros_like(data_values), where=filled),
            np.divide(sim_errors, sim_values, out=np.zeros_like(sim_values), where=filled),
        )
        artists["ratio"] = ratio_ax.errorbar(
            centres[filled], ratio[filled], yerr=(ratio * relative)[filled], fmt="o", color="black", markersize=2.5
        )
        artists["unity"] = ratio_ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
        ratio_ax.set_ylim(0.5, 1.5)
        ratio_ax.set_xlim(0.0, 1.0)
        ratio_ax.set_ylabel("Data / Sim.")
        ratio_ax.set_xlabel("Classifier score")
        above, below = ratio[filled] > 1.5, ratio[filled] < 0.5
        for outside, y, marker in ((above, 1.47, "^"), (below, 0.53, "v")):
            if outside.any():
                artists[f"off_{marker}"] = ratio_ax.plot(centres[filled][outside], np.full(outside.sum(), y), marker,
                                                         color="#D55E00", markersize=4, linestyle="none")
        ax.set_xlabel("")
    else:
        ax.set_xlabel("Classifier score")
    return artists


# the trade-off across each method's sweep


def core_limits(values: Sequence[float], *, floor: float | None = None, spread: float = 3.0) -> tuple[float, float]:
    """An axis range holding the values that matter: those within ``spread`` times the typical
    distance from the median (at least a tenth of the median); ``floor`` (e.g. 0) is always inside."""
    array = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if array.size == 0:
        return (0.0, 1.0)
    centre = float(np.median(array))
    scale = max(float(np.median(np.abs(array - centre))), 0.1 * abs(centre), 1e-4)
    kept = array[np.abs(array - centre) <= spread * scale]
    low, high = float(kept.min()), float(kept.max())
    if floor is not None:
        low = min(low, floor)
    pad = 0.08 * ((high - low) or max(abs(high), 1e-3))
    # from a floor, a sliver below it, so that points on it stay visible
    lower = floor - 0.02 * (high + pad - floor) if floor is not None else low - pad
    return lower, high + pad


def _points(entry: Mapping[str, Any], x: str, y: str) -> list[tuple[float, float, float, float, float]]:
    points = []
    for setting in entry["settings"]:
        xv, xe = with_error(setting.get("metrics", {}), x)
        yv, ye = with_error(setting.get("metrics", {}), y)
        if xv is not None and yv is not None:
            points.append((float(setting["gamma"]), xv, xe or 0.0, yv, ye or 0.0))
    return sorted(points)


def plot_tradeoff(
    entries: Mapping[str, Mapping[str, Any]],
    *,
    x: str,
    y: str,
    ax: Axes,
    annotate: bool = True,
    colors: Mapping[str, str] | None = None,
    limits: bool = True,
    legend: bool = True,
    linestyles: Mapping[str, str] | None = None,
    strengths: Mapping[str, str | None] | None = None,
) -> list[Any]:
    """``y`` against ``x`` across each method's sweep (mean ± uncertainty); the selected setting is a star.

    ``entries`` are the per-method entries of ``summary.json`` (``settings`` and ``selected``);
    ``strengths`` the letter each method's strength goes by (``display`` of the summary).
    With ``limits`` the axes hold the points that matter (:func:`core_limits`: x from 0 for a
    distance; y within a few statistical errors of the best) and the others sit on the edge as
    open triangles, listed with their values in the lower right corner.
    """
    artists: list[Any] = []
    series = {name: _points(entry, x, y) for name, entry in entries.items()}
    everything = [p for points in series.values() for p in points]
    if limits and everything:
        distance = not x.startswith("auc") and x != "domain_auc"
        xlim = core_limits([p[1] for p in everything], floor=0.0 if distance else None)
        # the accuracy axis: from the best down by a few statistical errors, never stretched by a
        # setting that gave up accuracy
        best = max(p[3] for p in everything)
        window = max(0.01, 5 * float(np.median([p[4] for p in everything])))
        near = [p[3] + sign * p[4] for p in everything if p[3] >= best - window for sign in (-1, 1)]
        pad = 0.08 * (max(near) - min(near) or window)
        ylim = (min(near) - pad, max(near) + pad)
    outside: list[tuple[str, str]] = []
    for index, (name, points) in enumerate(series.items()):
        if not points:
            continue
        color = _colour(colors, name, index)
        gammas, xs, x_err, ys, y_err = (np.array(v, dtype=float) for v in zip(*points))
        artists.append(ax.errorbar(xs, ys, xerr=x_err, yerr=y_err, fmt="o", linestyle=_linestyle(linestyles, name), color=color,
                                   markersize=4, label=name, capsize=2, elinewidth=0.8))
        selected = entries[name].get("selected", {}).get("gamma")
        chosen = [i for i, g in enumerate(gammas) if g == selected]
        if chosen:
            artists.append(ax.scatter(xs[chosen], ys[chosen], marker="*", s=180, color=color, edgecolor="black", zorder=5))
        if annotate and len(gammas) > 1:
            for g, xv, yv in zip(gammas, xs, ys):
                artists.append(ax.annotate(f"{g:g}", (xv, yv), textcoords="offset points", xytext=(4, 3), fontsize=8,
                                           color=color, clip_on=True))
        if limits:
            artists += _edge_markers(ax, xs, ys, xlim, ylim, color)
            symbol = (strengths or {}).get(name)
            outside += [(color, f"{' '.join(p for p in (name, strength_label(symbol, g)) if p)}: {xv:.3g}, {yv:.4f}")
                        for g, xv, yv in zip(gammas, xs, ys) if not (xlim[0] <= xv <= xlim[1] and ylim[0] <= yv <= ylim[1])]
    if limits and everything:
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
    if outside:
        # one list of what lies beyond the axes, in the corner a good setting never reaches
        lines = [("#444444", "beyond the axes (x, y):")] + outside
        for k, (color, text) in enumerate(lines):
            artists.append(ax.text(0.98, 0.03 + 0.055 * (len(lines) - 1 - k), text, transform=ax.transAxes, fontsize=7,
                                   color=color, ha="right", va="bottom", zorder=7,
                                   bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none", "pad": 0.6}))
    ax.set_xlabel(METRIC_LABELS.get(x, x))
    ax.set_ylabel(METRIC_LABELS.get(y, y))
    if artists and legend:
        artists.append(ax.legend(loc="lower right"))
    return artists


def _edge_markers(ax: Axes, xs: np.ndarray, ys: np.ndarray, xlim: tuple[float, float], ylim: tuple[float, float],
                  color: str) -> list[Any]:
    """Points outside the axes, drawn as open triangles on the edge they lie beyond."""
    artists = []
    for xv, yv in zip(xs, ys):
        marker = ">" if xv > xlim[1] else "<" if xv < xlim[0] else "v" if yv < ylim[0] else "^" if yv > ylim[1] else None
        if marker is None:
            continue
        edge_x = min(max(xv, xlim[0]), xlim[1])
        edge_y = min(max(yv, ylim[0]), ylim[1])
        inset_x = (xlim[1] - xlim[0]) * 0.015 * (-1 if marker == ">" else 1 if marker == "<" else 0)
        inset_y = (ylim[1] - ylim[0]) * 0.02 * (1 if marker == "v" else -1 if marker == "^" else 0)
        artists.append(ax.scatter([edge_x + inset_x], [edge_y + inset_y], marker=marker, s=50, facecolor="none",
                                  edgecolor=color, zorder=6, clip_on=False))
    return artists


# training history


def _series(history: Sequence[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [(r.get("epoch", i), r.get(key)) for i, r in enumerate(history)]
    rows = [(e, v) for e, v in rows if isinstance(v, (int, float)) and np.isfinite(v)]
    if not rows:
        return np.zeros(0), np.zeros(0)
    epochs, values = zip(*rows)
    return np.asarray(epochs, dtype=float) + 1, np.asarray(values, dtype=float)


def plot_history(
    histories: Mapping[str, Sequence[Mapping[str, Any]]],
    key: str,
    *,
    ax: Axes,
    colors: Mapping[str, str] | None = None,
    kept: Mapping[str, int] | None = None,
    train_key: str | None = None,
    ylabel: str | None = None,
    linestyles: Mapping[str, str] | None = None,
) -> list[Any]:
    """``key`` of ``history.json`` per epoch (1-based), one line per run; runs without the key are left out.

    ``kept`` maps a run to its kept epoch (``best_epoch`` of ``model.json``, 0-based), marked
    with a star; ``train_key`` adds the same quantity on the training events, dotted.
    """
    artists = []
    for index, (name, history) in enumerate(histories.items()):
        epochs, values = _series(history, key)
        if not len(values):
            continue
        color = _colour(colors, name, index)
        (line,) = ax.plot(epochs, values, marker="o", markersize=2.5, color=color, label=name,
                          linestyle=_linestyle(linestyles, name))
        artists.append(line)
        if train_key is not None:
            train_epochs, train_values = _series(history, train_key)
            if len(train_values):
                (dotted,) = ax.plot(train_epochs, train_values, ":", color=color, linewidth=1.0, alpha=0.7)
                artists.append(dotted)
        best = (kept or {}).get(name)
        if best is not None and best + 1 in epochs:
            value = values[list(epochs).index(best + 1)]
            artists.append(ax.scatter([best + 1], [value], marker="*", s=140, color=color, edgecolor="black", zorder=5))
    ax.set_xlabel("Epoch")
    ax.set_ylabel(ylabel or METRIC_LABELS.get(key, key))
    if artists:
        artists.append(ax.legend(loc="best"))
    return artists


def plot_information_plane(
    histories: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    ax: Axes,
    colors: Mapping[str, str] | None = None,
) -> list[Any]:
    """I(T;Y) against I(T;X) of the stochastic layer per epoch; colour runs from light (first) to dark (last) epoch."""
    artists: list[Any] = []
    for index, (name, history) in enumerate(histories.items()):
        rows = [r for r in history if isinstance(r.get("i_tx_bits"), (int, float)) and isinstance(r.get("i_ty_bits"), (int, float))]
        if not rows:
            continue
        i_tx = np.array([r["i_tx_bits"] for r in rows], dtype=float)
        i_ty = np.array([r["i_ty_bits"] for r in rows], dtype=float)
        color = _colour(colors, name, index)
        (line,) = ax.plot(i_tx, i_ty, "-", color=color, alpha=0.6, label=name)
        shade = np.linspace(0.25, 1.0, len(rows))
        colours = matplotlib.colors.to_rgba_array([color] * len(rows))
        colours[:, 3] = shade
        artists += [line, ax.scatter(i_tx, i_ty, color=colours, s=25, edgecolor="none", zorder=3)]
    ax.set_xlabel(r"$I(T;X)$ [bits]")
    ax.set_ylabel(r"$I(T;Y)$ [bits]")
    if artists:
        artists.append(ax.legend(loc="best"))
    return artists
