"""``report.html``: one self-contained page (no scripts, no external files) for a comparison directory.

It reads ``summary.json`` and, for every method, the first seed of its selected
setting: that run's scores on the held-out simulation and data, and its
``history.json``. Images are PNG files embedded as base64 ``data:`` URIs.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqnn.data import ColumnSpec, load_inputs
from sqnn.data.sample import ROLES
from sqnn.errors import SqnnError
from sqnn.evaluation import held_out
from sqnn.files import write_text
from sqnn.report import plots
from sqnn.runs import Run, load_run
from sqnn.workflows.compare import TABLE_KEYS, format_cell, method_entries

__all__ = ["CSS", "build_report", "image_html", "page", "render_html"]

PathLike = str | os.PathLike[str]

CSS = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
h1, h2 { font-weight: 600; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9em; margin-top: 0.3em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
tr.selected { background: #eef6ee; font-weight: 600; }
.scroll { overflow-x: auto; }
.rule { background: #f6f6f6; padding: 0.8em; border-left: 4px solid #888; }
"""


class _Selected:
    """What the report needs from one method's selected run."""

    def __init__(self, name: str, run: Run, history: list[dict[str, Any]], gamma: float) -> None:
        self.name, self.run, self.history, self.gamma = name, run, history, gamma


def _label(item: _Selected) -> str:
    return f"{item.name} (γ={item.gamma:g})"


def _load_selected(directory: Path, entries: Mapping[str, Mapping[str, Any]]) -> list[_Selected]:
    selected = []
    for name, entry in entries.items():
        runs = entry["selected"].get("runs") or []
        if not runs:
            continue
        run_dir = directory / runs[0]
        history_path = run_dir / "history.json"
        history = json.loads(history_path.read_text()) if history_path.exists() else []
        selected.append(_Selected(name, load_run(run_dir), history, float(entry["selected"]["gamma"])))
    return selected


def image_html(fig: Any, alt: str, caption: str) -> str:
    encoded = base64.b64encode(plots.png_bytes(fig)).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _table(entries: Mapping[str, Mapping[str, Any]], keys: Sequence[str], every_setting: bool) -> str:
    head = "".join(f"<th>{html.escape(k)}</th>" for k in ("method", "gamma", *keys))
    rows = []
    for name, entry in entries.items():
        settings = entry["settings"] if every_setting else [entry["selected"]]
        for setting in settings:
            chosen = setting["gamma"] == entry["selected"]["gamma"]
            cells = "".join(f"<td>{html.escape(format_cell(setting['metrics'].get(k)))}</td>" for k in keys)
            css = ' class="selected"' if every_setting and chosen else ""
            rows.append(f"<tr{css}><td>{html.escape(name)}</td><td>{setting['gamma']:g}</td>{cells}</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _figures(summary: Mapping[str, Any], selected: list[_Selected], simulation: Any, data: Any) -> list[str]:
    entries = method_entries(summary)
    has_labels = data.label is not None
    sections: list[str] = []
    scored = []
    for item in selected:
        sim, dat = held_out(item.run, simulation, "simulation"), held_out(item.run, data, "data")
        scored.append((item, sim, dat, item.run.score(sim.features), item.run.score(dat.features)))

    # one colour per method in every figure
    colour = dict(zip(entries, plots.palette(len(entries))))
    labelled = {_label(i): colour[i.name] for i in selected}
    with plots.style():
        panels = 2 if has_labels else 1
        fig, axes = plots.figure(1, panels, size=(7.5 * panels, 6.5))
        plots.plot_roc(
            {_label(i): plots.roc_from_scores(s_score, sim.label, sim.weight) for i, sim, _, s_score, _ in scored},
            ax=axes[0][0],
            title="Simulation (held out)",
            colors=labelled,
        )
        if has_labels:
            plots.plot_roc(
                {_label(i): plots.roc_from_scores(d_score, dat.label, dat.weight) for i, _, dat, _, d_score in scored},
                ax=axes[0][1],
                title="Data (labels used for this plot only)",
                colors=labelled,
            )
        sections.append(
            "<h2>ROC curves</h2>"
            + image_html(fig, "ROC curves", "Selected setting of each method, first seed; held-out events.")
        )

        columns = min(4, max(1, len(scored)))
        rows = math.ceil(len(scored) / columns)
        fig, axes = plots.figure(
            2 * rows, columns, size=(5.5 * columns, 6.0 * rows), gridspec_kw={"height_ratios": [3, 1] * rows}
        )
        for k, (item, sim, dat, s_score, d_score) in enumerate(scored):
            r, c = divmod(k, columns)
            plots.plot_score_comparison(
                s_score, d_score, sim.weight, dat.weight, ax=axes[2 * r][c], ratio_ax=axes[2 * r + 1][c],
                title=_label(item),
            )
        for k in range(len(scored), rows * columns):
            r, c = divmod(k, columns)
            axes[2 * r][c].set_visible(False)
            axes[2 * r + 1][c].set_visible(False)
        sections.append(
            "<h2>Score distributions: simulation against data</h2>"
            + image_html(fig, "Score distributions", "Unit area; the lower panels show data / simulation.")
        )

        ys = ["auc_source"] + (["auc_target"] if has_labels else [])
        # with data labels, the closure an analysis cares about: |1 − sf_S| + |1 − sf_B| at 50 % signal efficiency
        xs = ["ks", "domain_auc"] + (["closure"] if has_labels else [])
        fig, axes = plots.figure(len(ys), len(xs), size=(7.5 * len(xs), 6.0 * len(ys)))
        for r, y in enumerate(ys):
            for c, x in enumerate(xs):
                plots.plot_tradeoff(entries, x=x, y=y, ax=axes[r][c], colors=colour)
        sections.append(
            "<h2>Trade-off across each method's sweep</h2>"
            + image_html(
                fig,
                "Trade-off",
                "Mean ± standard deviation over seeds, labelled with γ; the star is the setting the selection rule chose.",
            )
        )

        # boosting iterations are not epochs: tree runs stay out of the per-epoch plots
        histories = {_label(i): i.history for i in selected if i.run.meta.get("model_kind") != "trees"}
        # I(T;S) in bits is defined for a stochastic (Bernoulli) layer only
        stochastic = {_label(i): i.history for i in selected if i.run.representation_is_stochastic}
        keys = ["mi_bits", "loss_classification", "loss_penalty", "val_loss"]
        fig, axes = plots.figure(2, 2, size=(15.0, 12.0))
        for k, key in enumerate(keys):
            plots.plot_history(stochastic if key == "mi_bits" else histories, key, ax=axes[k // 2][k % 2], colors=labelled)
        sections.append(
            "<h2>Training history</h2>"
            + image_html(
                fig,
                "Training history",
                "I(T;S) of the penalised layer on the validation split and the loss terms per epoch "
                "(networks only). The penalty is each method's own: bits (sqnn), the domain "
                "head's advantage over guessing in nats (dann), dCor² (disco), MMD² (mmd).",
            )
        )

        fig, axes = plots.figure(1, 1, size=(8.0, 7.0))
        artists = plots.plot_information_plane(stochastic, ax=axes[0][0], colors=labelled)
        caption = "Per epoch on the validation split, light to dark; only runs with a stochastic layer."
        if not artists:
            caption = "No run in this comparison has a stochastic layer with the information-plane measures."
        sections.append("<h2>Information plane of the stochastic layer</h2>" + image_html(fig, "Information plane", caption))
    return sections


def render_html(summary: Mapping[str, Any], sections: Sequence[str]) -> str:
    entries = method_entries(summary)
    selection = summary.get("selection", {})
    inputs = summary.get("inputs", {})
    keys = list(TABLE_KEYS)
    rule = (
        f'<p class="rule">{html.escape(str(summary.get("selection_rule", "")))}<br>'
        f"δ = {selection.get('delta')}, disagreement metric: <code>{html.escape(str(selection.get('disagreement_metric')))}</code>; "
        f"{len(summary.get('seeds', []))} seeds; values are mean ± standard deviation over seeds.</p>"
    )
    source = (
        f"<p>Simulation: <code>{html.escape(str(inputs.get('simulation')))}</code>; data: "
        f"<code>{html.escape(str(inputs.get('data')))}</code>; data labels for evaluation: "
        f"<code>{html.escape(str(inputs.get('data_label')))}</code>.</p>"
    )
    tables = (
        "<h2>Comparison</h2><h3>Selected setting per method</h3>"
        + _table(entries, keys, every_setting=False)
        + "<h3>Every setting</h3>"
        + _table(entries, keys, every_setting=True)
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>sqnn comparison</title>"
        f"<style>{CSS}</style></head><body>"
        "<h1>sqnn: methods compared on simulation and data</h1>"
        + source
        + rule
        + tables
        + "".join(sections)
        + "</body></html>\n"
    )


def build_report(directory: PathLike, *, out: PathLike | None = None) -> Path:
    """Write ``report.html`` for the comparison in ``directory`` (or to ``out``); returns its path."""
    directory = Path(directory)
    summary_path = directory / "summary.json"
    if not summary_path.exists():
        raise SqnnError(f"{summary_path}: missing; run `sqnn compare` first")
    summary = json.loads(summary_path.read_text())
    inputs = summary["inputs"]
    columns = inputs["columns"]
    spec = ColumnSpec(features=None if columns.get("features") is None else tuple(columns["features"])).with_roles(
        **{role: columns.get(role) for role in ROLES}
    )
    simulation, data = load_inputs(
        inputs["simulation"],
        inputs.get("data"),
        spec,
        domain_column=inputs.get("domain_column"),
        data_label=inputs.get("data_label"),
    )
    selected = _load_selected(directory, method_entries(summary))
    if not selected:
        raise SqnnError(f"{summary_path}: no method has a selected run to show")
    text = render_html(summary, _figures(summary, selected, simulation, data))
    return write_text(Path(out) if out is not None else directory / "report.html", text)


def page(title: str, body: str) -> str:
    """A self-contained HTML page in the report's style."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head><body>{body}</body></html>\n"
    )
