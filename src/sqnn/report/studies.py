"""Report sections of the studies in ``benchmarks/``: the closure study's trade-off between accuracy and closure."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

from sqnn.report import plots
from sqnn.report.html import image_html, page
from sqnn.workflows.tables import format_value

__all__ = ["closure_study_page", "closure_study_section"]

_STUDY_KEYS = ("auc_source", "auc_target", "sf_signal", "sf_background", "closure", "sf_signal_80", "sf_background_80",
               "closure_80", "ks_signal", "ks_background", "ks_control")


def closure_study_section(
    study: Mapping[str, Any], min_seeds: int = 3, families: Sequence[str] | None = None,
    zoom: tuple[float, float] | None = None,
) -> str:
    """The closure study (``benchmarks/closure_study.py`` output) as one report section.

    Panels of ``auc_target`` against the closure error at the 50 % and 80 % working points,
    across each family's sweep (mean ± standard error over seeds, the label-free choice a star), for
    ``families`` (default: those run with at least ``min_seeds`` seeds); with ``zoom``
    (closure up to ``zoom[0]``, AUC from ``zoom[1]``) a second row shows that corner. Then
    every setting in a table, the chosen ones highlighted.
    """
    settings, selected = study["settings"], study["selected"]
    grouped: dict[str, dict[str, Any]] = {}
    for setting in settings:
        grouped.setdefault(setting["family"], {"settings": [], "selected": selected[setting["family"]]})["settings"].append(setting)
    if families is None:
        shown = {f: e for f, e in grouped.items() if min(s["seeds"] for s in e["settings"]) >= min_seeds}
    else:
        shown = {f: grouped[f] for f in families if f in grouped}
    rows = 2 if zoom is not None else 1
    with plots.style():
        fig, axes = plots.figure(rows, 2, size=(13.0, 5.4 * rows))
        for row in range(rows):
            for ax, x in zip(axes[row], ("closure", "closure_80")):
                plots.plot_tradeoff(shown, x=x, y="auc_target", ax=ax, annotate=True, limits=row == 0)
                if row == 1 and zoom is not None:
                    ax.set_xlim(0.0, zoom[0])
                    ax.set_ylim(bottom=zoom[1])
    caption = (
        "auc_target against |1 − sf_S| + |1 − sf_B| at a cut fixed on simulation (left 50 %, right 80 % signal efficiency); "
        "numbers are the strengths, stars the setting the label-free rule picks; closer to the top left is better"
        + ("; the lower row zooms into the top left." if zoom is not None else ".")
    )
    head = "".join(f"<th>{html.escape(k)}</th>" for k in ("family", "setting", "seeds", *_STUDY_KEYS))
    rows_html = []
    for setting in settings:
        chosen = selected[setting["family"]]["setting"] == setting["setting"]
        cells = "".join(f"<td>{html.escape(format_value(setting['metrics'], k))}</td>" for k in _STUDY_KEYS)
        css = ' class="selected"' if chosen else ""
        rows_html.append(f"<tr{css}><td>{html.escape(setting['family'])}</td><td>{html.escape(setting['setting'])}</td>"
                         f"<td>{setting['seeds']}</td>{cells}</tr>")
    table = f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows_html)}</tbody></table></div>'
    rule = html.escape(f"Selection per family without data labels: {study.get('select_by', 'ks_control')} among the settings "
                       "within δ of the family's best auc_source, up to its standard error, then the most accurate; "
                       "values are mean ± standard error over seeds (spread/√n), with one seed ± the statistical "
                       "error of the test sample.")
    return "<h2>Closure study</h2>" + f'<p class="rule">{rule}</p>' + image_html(fig, "Closure study", caption) + table


def closure_study_page(study: Mapping[str, Any], **options: Any) -> str:
    """A self-contained page holding only :func:`closure_study_section` (``options`` go to it)."""
    return page("sqnn closure study", "<h1>sqnn: closure on the W-jet case</h1>" + closure_study_section(study, **options))
