"""Plot functions draw on the axes they are given and return what they drew."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.lines import Line2D

from sqnn import metrics
from sqnn.report import plots


@pytest.fixture
def ax():
    fig, axes = plots.figure(1, 1)
    return axes[0][0]


def test_figure_renders_png_with_the_agg_canvas() -> None:
    fig, axes = plots.figure(1, 2)
    assert axes.shape == (1, 2)
    assert type(fig.canvas).__name__ == "FigureCanvasAgg"
    assert plots.png_bytes(fig).startswith(b"\x89PNG\r\n\x1a\n")


def test_roc(ax) -> None:
    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, 500)
    score = label + rng.normal(size=500)
    eff_b, eff_s, _ = metrics.roc_curve(score, label)
    artists = plots.plot_roc({"a": (eff_b, eff_s), "b": (eff_b**0.5, eff_s)}, ax=ax)
    lines = [a for a in artists if isinstance(a, Line2D)]
    assert [line.get_label() for line in lines] == ["a", "b"]
    keep = (eff_b > 0) & (eff_s > 0)
    np.testing.assert_allclose(lines[0].get_xdata(), eff_s[keep])
    np.testing.assert_allclose(lines[0].get_ydata(), 1 / eff_b[keep])
    assert ax.get_yscale() == "log" and lines[0].axes is ax
    fig, axes = plots.figure(1, 1)
    coloured = plots.plot_roc({"a": (eff_b, eff_s)}, ax=axes[0][0], colors={"a": "#123456"})
    assert coloured[0].get_color() == "#123456"


def test_palette_has_a_distinct_colour_per_method() -> None:
    colours = plots.palette(7)
    assert len(set(colours)) == 7
    assert colours[:6] == plots.mplhep.style.CMS["axes.prop_cycle"].by_key()["color"][:6]


def test_score_comparison_ratio_is_data_over_simulation() -> None:
    fig, axes = plots.figure(2, 1, gridspec_kw={"height_ratios": [3, 1]})
    rng = np.random.default_rng(1)
    sim, data = rng.uniform(size=4000), rng.uniform(size=3000) ** 1.3
    sim_weight, data_weight = np.full(4000, 2.0), np.ones(3000)
    artists = plots.plot_score_comparison(sim, data, sim_weight, data_weight, ax=axes[0][0], ratio_ax=axes[1][0], bins=10)
    assert {"simulation", "data", "ratio", "unity"} <= set(artists)
    expected = (np.histogram(data, bins=10, range=(0, 1))[0] / 3000) / (np.histogram(sim, bins=10, range=(0, 1))[0] / 4000)
    points = artists["ratio"].lines[0]
    np.testing.assert_allclose(points.get_ydata(), expected, rtol=1e-10)
    np.testing.assert_allclose(points.get_xdata(), np.linspace(0.05, 0.95, 10))
    assert points.axes is axes[1][0]


def _entry(points, selected):
    return {
        "selected": {"gamma": selected},
        "settings": [
            {"gamma": g, "metrics": {"ks": {"mean": x, "std": 0.01}, "auc_target": {"mean": y, "std": None}}}
            for g, x, y in points
        ],
    }


def test_tradeoff_marks_the_selected_setting(ax) -> None:
    entries = {
        "sqnn": _entry([(3.0, 0.05, 0.80), (0.3, 0.10, 0.85), (1.0, 0.07, 0.84)], selected=1.0),
        "bdt": _entry([(0.0, 0.12, 0.86)], selected=0.0),
    }
    artists = plots.plot_tradeoff(entries, x="ks", y="auc_target", ax=ax)
    curve = artists[0].lines[0]
    np.testing.assert_allclose(curve.get_xdata(), [0.10, 0.07, 0.05])  # ordered by gamma
    stars = [a for a in artists if isinstance(a, PathCollection)]
    np.testing.assert_allclose(stars[0].get_offsets(), [[0.07, 0.84]])
    np.testing.assert_allclose(stars[1].get_offsets(), [[0.12, 0.86]])
    assert ax.get_xlabel() == plots.METRIC_LABELS["ks"]


def test_history_and_information_plane(ax) -> None:
    history = [{"epoch": e, "mi_bits": 0.1 / (e + 1), "i_tx_bits": 2.0 + e, "i_ty_bits": 0.3 + 0.1 * e} for e in range(4)]
    without_plane = [{"epoch": e, "mi_bits": 0.2} for e in range(3)]
    lines = plots.plot_history({"sqnn": history, "mlp": without_plane, "empty": []}, "mi_bits", ax=ax)
    drawn = [a for a in lines if isinstance(a, Line2D)]
    assert len(drawn) == 2
    np.testing.assert_allclose(drawn[0].get_xdata(), [1, 2, 3, 4])
    np.testing.assert_allclose(drawn[0].get_ydata(), [0.1, 0.05, 0.1 / 3, 0.025])
    fig, axes = plots.figure(1, 1)
    plane = plots.plot_information_plane({"sqnn": history, "mlp": without_plane}, ax=axes[0][0])
    line = [a for a in plane if isinstance(a, Line2D)]
    assert len(line) == 1
    np.testing.assert_allclose(line[0].get_xdata(), [2, 3, 4, 5])
    np.testing.assert_allclose(line[0].get_ydata(), [0.3, 0.4, 0.5, 0.6])
