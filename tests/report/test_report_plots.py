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


def test_every_method_keeps_one_distinct_colour() -> None:
    names = ["source-only", "sqnn", "dann", "disco", "mmd", "mlp", "bdt", "idea"]
    from sqnn.methods import METHODS

    own = {name: cls.colour for name, cls in METHODS.items()}
    colours = plots.method_colours(names, own)
    assert len(set(colours.values())) == len(names)
    assert colours["sqnn"] == METHODS["sqnn"].colour and colours["idea"] not in own.values()
    assert plots.method_colours(["bdt", "sqnn"], own) == {"bdt": colours["bdt"], "sqnn": colours["sqnn"]}
    assert len(set(own.values())) == len(own)
    assert len(set(plots.palette(7))) == 7


def test_roc_ratio_panel_divides_by_the_baseline() -> None:
    fig, axes = plots.figure(2, 1, gridspec_kw={"height_ratios": [3, 1]})
    rng = np.random.default_rng(0)
    label = rng.integers(0, 2, 4000)
    better, worse = label * 1.5 + rng.normal(size=4000), label + rng.normal(size=4000)
    curves = {"base": plots.roc_from_scores(worse, label, np.ones(4000)),
              "better": plots.roc_from_scores(better, label, np.ones(4000))}
    artists = plots.plot_roc(curves, ax=axes[0][0], ratio_ax=axes[1][0], baseline="base")
    ratio_lines = [a for a in artists if isinstance(a, Line2D) and a.axes is axes[1][0]]
    assert len(ratio_lines) == 2
    np.testing.assert_allclose(ratio_lines[0].get_ydata(), 1.0)
    grid = ratio_lines[1].get_xdata()
    at_half = np.interp(0.5, grid, ratio_lines[1].get_ydata())
    expected = metrics.rejection_at(better, label, None, 0.5) / metrics.rejection_at(worse, label, None, 0.5)
    assert at_half == pytest.approx(expected, rel=0.05) and at_half > 1.2


def test_scale_factor_curve_is_the_metrics_scale_factor_at_each_working_point() -> None:
    rng = np.random.default_rng(3)
    n = 6000
    sim_label, data_label = rng.integers(0, 2, n), rng.integers(0, 2, n)
    sim_score = 1 / (1 + np.exp(-(2 * sim_label - 1 + rng.normal(size=n))))
    data_score = 1 / (1 + np.exp(-(1.6 * data_label - 0.8 + 0.2 + rng.normal(size=n))))
    sim_weight, data_weight = rng.uniform(0.5, 1.5, n), np.ones(n)
    curve = plots.scale_factor_curve(sim_score, sim_label, sim_weight, data_score, data_label, data_weight)
    assert curve.efficiency[0] == pytest.approx(0.10) and curve.efficiency[-1] == pytest.approx(0.95)
    for efficiency in (0.5, 0.8):
        point = metrics.WorkingPoint.from_simulation(sim_score, sim_label, sim_weight, efficiency)
        for cls, values, errors in ((1, curve.signal, curve.signal_err), (0, curve.background, curve.background_err)):
            sf, err = metrics.scale_factor(point, sim_score, sim_label, sim_weight, data_score, data_label, data_weight, cls)
            index = int(np.argmin(np.abs(curve.efficiency - efficiency)))
            assert values[index] == pytest.approx(sf) and errors[index] == pytest.approx(err)
    # the data scores move up: more of both classes pass a cut fixed on simulation
    assert curve.at(0.5)[1] > 1.1
    fig, axes = plots.figure(1, 1)
    artists = plots.plot_scale_factors(curve, ax=axes[0][0], reference=curve, ylim=(0.8, 1.2))
    bands = [a for a in artists if not isinstance(a, Line2D)]
    assert bands and axes[0][0].get_ylim() == (0.8, 1.2)
    assert any("off scale" in t.get_text() for t in axes[0][0].texts)


def test_scale_factor_limits_leave_a_runaway_method_off_scale() -> None:
    grid = np.linspace(0.1, 0.95, 10)
    near = plots.ScaleFactorCurve(grid, np.full(10, 0.95), np.full(10, 0.01), np.full(10, 1.05), np.full(10, 0.02))
    other = plots.ScaleFactorCurve(grid, np.full(10, 0.9), np.full(10, 0.01), np.full(10, 1.1), np.full(10, 0.02))
    runaway = plots.ScaleFactorCurve(grid, np.full(10, 1.0), np.full(10, 0.01), np.full(10, 3.5), np.full(10, 0.05))
    low, high = plots.scale_factor_limits([near, other, runaway])
    assert low < 0.9 and 1.1 < high < 1.3


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
            {"gamma": g, "metrics": {key: {"mean": x, "std": 0.01, "n": 2} for key in ("ks", "closure")}
             | {"auc_target": {"mean": y, "std": None, "n": 1}}}
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
    stars = [a for a in artists if isinstance(a, PathCollection) and a.get_paths() and len(a.get_offsets()) == 1]
    np.testing.assert_allclose(stars[0].get_offsets(), [[0.07, 0.84]])
    assert ax.get_xlabel() == plots.METRIC_LABELS["ks"]
    assert ax.get_xlim()[0] <= 0.0  # a distance: its axis starts at 0


def test_tradeoff_axes_hold_the_settings_that_matter_and_mark_the_outlier_on_the_edge(ax) -> None:
    entries = {
        "sqnn": _entry([(0.6, 0.12, 0.903), (1.0, 0.10, 0.902), (2.0, 0.09, 0.901)], selected=1.0),
        "dann": _entry([(0.1, 0.15, 0.903), (0.3, 0.13, 0.904)], selected=0.3),
        "disco": _entry([(1.0, 0.70, 0.890), (30.0, 3.5, 0.85)], selected=1.0),
    }
    artists = plots.plot_tradeoff(entries, x="closure", y="auc_target", ax=ax,
                                  strengths={"sqnn": "γ", "dann": "λ", "disco": "λ"})
    low, high = ax.get_xlim()
    assert low <= 0 and 0.15 < high < 0.7
    assert ax.get_ylim()[0] > 0.86
    texts = [a.get_text() for a in artists if hasattr(a, "get_text")]
    assert "disco λ=30: 3.5, 0.8500" in texts and "disco λ=1: 0.7, 0.8900" in texts
    assert not any(t.startswith(("sqnn", "dann")) for t in texts)
    triangles = [a for a in artists if isinstance(a, PathCollection) and a.get_facecolor().size == 0]
    assert len(triangles) == 2


def test_history_marks_the_kept_epoch_and_the_information_plane(ax) -> None:
    history = [{"epoch": e, "val_penalty": 0.1 / (e + 1), "loss_penalty": 0.12 / (e + 1), "i_tx_bits": 2.0 + e,
                "i_ty_bits": 0.3 + 0.1 * e} for e in range(4)]
    without_plane = [{"epoch": e, "val_penalty": 0.2} for e in range(3)]
    lines = plots.plot_history({"sqnn": history, "mlp": without_plane, "empty": []}, "val_penalty", ax=ax,
                               kept={"sqnn": 2}, train_key="loss_penalty", ylabel="I(T;S|Y) [bits]")
    drawn = [a for a in lines if isinstance(a, Line2D)]
    assert len(drawn) == 3  # sqnn validation and training, mlp validation
    np.testing.assert_allclose(drawn[0].get_xdata(), [1, 2, 3, 4])
    np.testing.assert_allclose(drawn[0].get_ydata(), [0.1, 0.05, 0.1 / 3, 0.025])
    np.testing.assert_allclose(drawn[1].get_ydata(), [0.12, 0.06, 0.04, 0.03])
    star = [a for a in lines if isinstance(a, PathCollection)]
    np.testing.assert_allclose(star[0].get_offsets(), [[3, 0.1 / 3]])
    assert ax.get_ylabel() == "I(T;S|Y) [bits]"
    fig, axes = plots.figure(1, 1)
    plane = plots.plot_information_plane({"sqnn": history, "mlp": without_plane}, ax=axes[0][0])
    line = [a for a in plane if isinstance(a, Line2D)]
    assert len(line) == 1
    np.testing.assert_allclose(line[0].get_xdata(), [2, 3, 4, 5])
    np.testing.assert_allclose(line[0].get_ydata(), [0.3, 0.4, 0.5, 0.6])


def test_figures_fit_a_1400_pixel_page() -> None:
    fig, _ = plots.figure(1, 6)
    assert fig.get_figwidth() * plots.DPI <= 1300
