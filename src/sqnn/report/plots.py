"""The report's plots. Each takes the axes to draw on (``ax=``) and returns its artists.

Histograms are :mod:`hist` objects drawn with :func:`mplhep.histplot`; the style
(mplhep's CMS style) is applied by the caller, :func:`style`, so these functions only
draw. Nothing here touches pyplot's global state: figures come from :func:`figure`,
which renders with the non-interactive Agg canvas.
"""

from __future__ import annotations

import contextlib
import io
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

__all__ = [
    "figure",
    "palette",
    "png_bytes",
    "style",
    "plot_roc",
    "plot_score_comparison",
    "plot_tradeoff",
    "plot_history",
    "plot_information_plane",
    "score_histogram",
]

METRIC_LABELS = {
    "auc_source": "AUC (simulation)",
    "auc_target": "AUC (data)",
    "ks": "KS distance sim. vs data",
    "ks_control": "KS distance, control region",
    "domain_auc": "Domain-probe AUC",
    "closure": r"$|1-sf_S| + |1-sf_B|$ (50 % working point)",
    "closure_80": r"$|1-sf_S| + |1-sf_B|$ (80 % working point)",
    "mi_bits": r"$I(T;S)$ [bits]",
    "mi_joint_bits": r"$I(T;S)$ exact [bits]",
    "loss_classification": "Classification loss (train)",
    "loss_penalty": "Penalty (train)",
    "val_loss": "Objective (validation)",
    "val_auc": "AUC (simulation validation)",
}


# the CMS style cycles through six colours; a comparison can hold more methods
_EXTRA_COLOURS = ("#2ca02c", "#17becf", "#8c564b", "#bcbd22", "#1f1f1f", "#ff7f0e")


def palette(n: int) -> list[str]:
    """``n`` distinct colours: the CMS style's own first, then further ones (repeating past 12)."""
    base = list(mplhep.style.CMS["axes.prop_cycle"].by_key()["color"]) + list(_EXTRA_COLOURS)
    return [base[i % len(base)] for i in range(n)]


def _colour(colors: Mapping[str, str] | None, name: str, index: int) -> str:
    if colors and name in colors:
        return colors[name]
    return palette(index + 1)[index]


@contextlib.contextmanager
def style() -> Iterator[None]:
    """mplhep's CMS style for the figures made inside the block."""
    with matplotlib.style.context(mplhep.style.CMS):
        yield


def figure(nrows: int = 1, ncols: int = 1, *, size: tuple[float, float] | None = None, **kwargs: Any) -> tuple[Figure, Any]:
    """A figure on the Agg canvas and its axes (as ``Figure.subplots`` returns them)."""
    fig = Figure(figsize=size or (7.0 * ncols, 6.0 * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def png_bytes(fig: Figure, dpi: int = 72) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def plot_roc(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    ax: Axes,
    title: str | None = None,
    colors: Mapping[str, str] | None = None,
) -> list[Any]:
    """Background rejection 1/ε_B against signal efficiency ε_S, one line per entry.

    ``curves`` maps a label to (ε_B, ε_S) as :func:`sqnn.metrics.roc_curve` returns them.
    """
    artists = []
    for index, (name, (eff_b, eff_s)) in enumerate(curves.items()):
        eff_b, eff_s = np.asarray(eff_b, dtype=float), np.asarray(eff_s, dtype=float)
        keep = np.isfinite(eff_b) & np.isfinite(eff_s) & (eff_b > 0) & (eff_s > 0)
        (line,) = ax.plot(eff_s[keep], 1.0 / eff_b[keep], label=name, color=_colour(colors, name, index))
        artists.append(line)
    ax.set_yscale("log")
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel(r"Signal efficiency $\varepsilon_S$")
    ax.set_ylabel(r"Background rejection $1/\varepsilon_B$")
    if title:
        artists.append(ax.set_title(title))
    if artists:
        artists.append(ax.legend(loc="upper right", fontsize="x-small"))
    return artists


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
) -> dict[str, Any]:
    """Unit-area score distributions of simulation (line) and data (points), and data/simulation below."""
    h_sim, h_data = score_histogram(sim_score, sim_weight, bins), score_histogram(data_score, data_weight, bins)
    sim_values, sim_errors = _normalised(h_sim)
    data_values, data_errors = _normalised(h_data)
    edges = h_sim.axes[0].edges
    artists: dict[str, Any] = {
        "simulation": mplhep.histplot(sim_values, edges, yerr=sim_errors, ax=ax, histtype="step", label="Simulation"),
        "data": mplhep.histplot(
            data_values, edges, yerr=data_errors, ax=ax, histtype="errorbar", color="black", label="Data"
        ),
    }
    ax.set_ylabel("Fraction of events")
    ax.set_xlim(0.0, 1.0)
    artists["legend"] = ax.legend(loc="best", fontsize="x-small")
    if title:
        artists["title"] = ax.set_title(title, fontsize="small")
    if ratio_ax is not None:
        centres = h_sim.axes[0].centers
        filled = (sim_values > 0) & (data_values > 0)
        ratio = np.divide(data_values, sim_values, out=np.full_like(data_values, np.nan), where=filled)
        relative = np.hypot(
            np.divide(data_errors, data_values, out=np.zeros_like(data_values), where=filled),
            np.divide(sim_errors, sim_values, out=np.zeros_like(sim_values), where=filled),
        )
        artists["ratio"] = ratio_ax.errorbar(
            centres[filled], ratio[filled], yerr=(ratio * relative)[filled], fmt="o", color="black", markersize=3
        )
        artists["unity"] = ratio_ax.axhline(1.0, color="grey", linestyle="--", linewidth=1)
        ratio_ax.set_ylim(0.0, 2.0)
        ratio_ax.set_xlim(0.0, 1.0)
        ratio_ax.set_ylabel("Data / Sim.")
        ratio_ax.set_xlabel("Classifier score")
        ax.set_xlabel("")
    else:
        ax.set_xlabel("Classifier score")
    return artists


def _stat(setting: Mapping[str, Any], key: str) -> tuple[float, float]:
    stats = setting.get("metrics", {}).get(key) or {}
    mean = stats.get("mean")
    std = stats.get("std")
    return (np.nan if mean is None else float(mean), 0.0 if std is None else float(std))


def plot_tradeoff(
    entries: Mapping[str, Mapping[str, Any]],
    *,
    x: str,
    y: str,
    ax: Axes,
    annotate: bool = True,
    colors: Mapping[str, str] | None = None,
) -> list[Any]:
    """``y`` against ``x`` across each method's sweep (mean ± std over seeds); the selected setting is a star.

    ``entries`` are the per-method entries of ``summary.json`` (``settings`` and ``selected``).
    """
    artists: list[Any] = []
    for index, (name, entry) in enumerate(entries.items()):
        color = _colour(colors, name, index)
        points = [(s["gamma"], *_stat(s, x), *_stat(s, y)) for s in entry["settings"]]
        points = [p for p in points if np.isfinite(p[1]) and np.isfinite(p[3])]
        if not points:
            continue
        points.sort()
        gammas, xs, x_err, ys, y_err = (np.array(v, dtype=float) for v in zip(*points))
        artists.append(
            ax.errorbar(xs, ys, xerr=x_err, yerr=y_err, fmt="o-", color=color, markersize=4, label=name, capsize=2)
        )
        selected = entry.get("selected", {}).get("gamma")
        chosen = [i for i, g in enumerate(gammas) if g == selected]
        if chosen:
            artists.append(ax.scatter(xs[chosen], ys[chosen], marker="*", s=250, color=color, edgecolor="black", zorder=5))
        if annotate and len(gammas) > 1:
            for g, xv, yv in zip(gammas, xs, ys):
                artists.append(ax.annotate(f"{g:g}", (xv, yv), textcoords="offset points", xytext=(4, 4), fontsize=9))
    ax.set_xlabel(METRIC_LABELS.get(x, x))
    ax.set_ylabel(METRIC_LABELS.get(y, y))
    if artists:
        artists.append(ax.legend(fontsize="x-small", loc="best"))
    return artists


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
) -> list[Any]:
    """``key`` of ``history.json`` per epoch, one line per run; runs without the key are left out."""
    artists = []
    for index, (name, history) in enumerate(histories.items()):
        epochs, values = _series(history, key)
        if len(values):
            (line,) = ax.plot(epochs, values, "o-", markersize=3, color=_colour(colors, name, index), label=name)
            artists.append(line)
    ax.set_xlabel("Epoch")
    ax.set_ylabel(METRIC_LABELS.get(key, key))
    if artists:
        artists.append(ax.legend(fontsize="x-small", loc="best"))
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
        artists.append(ax.legend(fontsize="x-small", loc="best"))
    return artists


def roc_from_scores(score: np.ndarray, label: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    eff_b, eff_s, _ = metrics.roc_curve(score, label, weight)
    return eff_b, eff_s
