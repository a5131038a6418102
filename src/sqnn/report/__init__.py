"""The comparison report: plots (matplotlib with mplhep styling, `hist` histograms) and report.html.

>>> from sqnn.report import build_report
>>> build_report("compare-out")  # doctest: +SKIP
PosixPath('compare-out/report.html')
"""

from sqnn.report.html import build_report, render_html
from sqnn.report.plots import (
    plot_history,
    plot_information_plane,
    plot_roc,
    plot_scale_factors,
    plot_score_comparison,
    plot_tradeoff,
    scale_factor_curve,
)

__all__ = [
    "build_report",
    "render_html",
    "plot_history",
    "plot_information_plane",
    "plot_roc",
    "plot_scale_factors",
    "plot_score_comparison",
    "plot_tradeoff",
    "scale_factor_curve",
]
