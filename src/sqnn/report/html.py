"""``report.html``: one self-contained page (no scripts, no external files) for a comparison directory.

It reads results only: ``summary.json`` and, for every method, the first seed of its chosen
setting: that run's stored held-out scores (``scores.parquet``, written by its evaluation),
its ``metrics.json``, ``history.json`` and ``model.json``. It never loads the inputs,
scores a model or builds a method: how each method is named and drawn comes from the
summary's ``display``. The page is built for closure: the tables of the
chosen settings with their uncertainties, the scale factors across working points, the
trade-off between accuracy and closure, the score distributions per class, in the control
region and reweighted to the data's signal fraction, the ROC curves against source-only,
and the training history per unit of each penalty. Images are PNG files embedded as
base64 ``data:`` URIs, each at most 1300 pixels wide.
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

import numpy as np

from sqnn.errors import SqnnError
from sqnn.files import write_text
from sqnn.labels import Display, Penalty
from sqnn.priors import reweight_to_prior, signal_fraction
from sqnn.report import plots
from sqnn.runs.format import read_meta
from sqnn.runs.scores import HeldOut, read_scores
from sqnn.workflows.tables import column_legend, displays, error_note, method_entries, rule_steps, summary_table

__all__ = ["CSS", "build_report", "image_html", "page", "render_html", "table_html"]

PathLike = str | os.PathLike[str]

CSS = """
body { font-family: sans-serif; margin: 1.5em auto; max-width: 1340px; padding: 0 1em; color: #222; }
h1, h2, h3 { font-weight: 600; }
h2 { margin-top: 1.8em; border-bottom: 1px solid #ddd; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { color: #444; font-size: 0.9em; margin-top: 0.3em; max-width: 1300px; }
table { border-collapse: collapse; font-size: 0.8em; margin: 0.8em 0; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.4em; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; }
th:first-child, td:first-child { text-align: left; }
td .err { color: #666; font-size: 0.9em; }
tr.selected { background: #eef6ee; font-weight: 600; }
.scroll { overflow-x: auto; max-width: 100%; }
.rule { background: #f6f6f6; padding: 0.6em 1em; border-left: 4px solid #888; }
.rule ol { margin: 0.3em 0; }
details { margin: 0.5em 0; font-size: 0.9em; }
"""


class _Selected:
    """What the report needs from one method's chosen run: its description, history, metrics and held-out scores."""

    def __init__(self, name: str, run_dir: Path, gamma: float, display: Display) -> None:
        self.name, self.gamma, self.display = name, gamma, display
        self.meta = read_meta(run_dir)
        history_path, metrics_path = run_dir / "history.json", run_dir / "metrics.json"
        self.history: list[dict[str, Any]] = json.loads(history_path.read_text()) if history_path.exists() else []
        self.metrics: dict[str, Any] = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
        self.seed = self.meta.get("train", {}).get("seed")
        best = self.meta.get("best_epoch")
        self.best_epoch = int(best) if isinstance(best, int) and best >= 0 else None
        self.label = display.label(name, gamma)
        self.penalty: Penalty | None = display.penalty
        scores = read_scores(run_dir)
        self.sim, self.data = scores.simulation, scores.data

    @property
    def is_network(self) -> bool:
        # boosting iterations are not epochs: tree runs stay out of the per-epoch plots
        return self.meta.get("model_kind") != "trees"


def _load_selected(directory: Path, summary: Mapping[str, Any]) -> list[_Selected]:
    shown = displays(summary)
    selected = []
    for name, entry in method_entries(summary).items():
        runs = entry["selected"].get("runs") or []
        if not runs:
            continue
        selected.append(_Selected(name, directory / runs[0], float(entry["selected"]["gamma"]), shown[name]))
    return selected


def image_html(fig: Any, alt: str, caption: str) -> str:
    encoded = base64.b64encode(plots.png_bytes(fig)).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _cell_html(text: str) -> str:
    value, _, error = text.partition(" ± ")
    if not error:
        return html.escape(text)
    return f'{html.escape(value)}<br><span class="err">± {html.escape(error)}</span>'


def table_html(header: Sequence[str], rows: Sequence[Sequence[str]], chosen: Sequence[bool] | None = None) -> str:
    """A table with each uncertainty under its value; ``chosen`` rows highlighted."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for index, row in enumerate(rows):
        css = ' class="selected"' if chosen is not None and chosen[index] else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{_cell_html(c)}</td>" for c in row) + "</tr>")
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _scale_factor_section(scored: list[_Selected]) -> str:
    labelled = [s for s in scored if s.data.label is not None]
    if not labelled:
        return ("<h2>Scale factors across working points</h2><p>The data have no labels here (no "
                "<code>--data-label</code>), so the data/simulation efficiencies per class cannot be measured.</p>")
    curves = {s.label: plots.scale_factor_curve(s.sim.score, s.sim.label, s.sim.weight, s.data.score, s.data.label,
                                                s.data.weight) for s in labelled}
    reference = next((curves[s.label] for s in labelled if s.name == "source-only"), None)
    columns = min(4, len(curves))
    rows = math.ceil(len(curves) / columns)
    fig, axes = plots.figure(rows, columns, size=(3.25 * columns, 3.5 * rows + 0.4), sharey=True)
    ylim = plots.scale_factor_limits(list(curves.values()))
    for k, (label, curve) in enumerate(curves.items()):
        ax = axes[k // columns][k % columns]
        s50, b50 = curve.at(0.5)
        s80, b80 = curve.at(0.8)
        plots.plot_scale_factors(curve, ax=ax, reference=None if label.startswith("source-only") else reference, ylim=ylim,
                                 title=f"{label}\n50 %: {s50:.3f} / {b50:.3f}   80 %: {s80:.3f} / {b80:.3f}")
        if k % columns:
            ax.set_ylabel("")
    for k in range(len(curves), rows * columns):
        axes[k // columns][k % columns].set_visible(False)
    handles: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(name, handle)
    fig.legend(list(handles.values()), list(handles), loc="outside upper center", ncols=len(handles))
    caption = (
        "Data/simulation efficiency of signal (sf_S, blue) and background (sf_B, red) for cuts on the score that keep "
        "10–95 % of the simulated signal, for the chosen setting of each method (first seed, held-out events); "
        "1 is perfect closure. Bands: ±1σ statistical error (binomial on weighted counts, as sf_*_err in metrics.json). "
        "Dashed: source-only, for reference. Dotted verticals: the 50 % and 80 % working points of the tables; the "
        "panel titles give sf_S / sf_B there. One y range for all panels, set by the methods that stay near 1."
    )
    return "<h2>Scale factors across working points</h2>" + image_html(fig, "Scale factors", caption)


def _insitu_section(selected: list[_Selected]) -> str:
    """The scale factors measured in the enriched regions without data labels, next to the true ones where labels exist."""
    measured = [s for s in selected if isinstance(s.metrics.get("insitu_sf_signal_80"), (int, float))]
    if not measured:
        return ""
    header = ["method", "working point", "in-situ sf_S", "true sf_S", "in-situ sf_B", "true sf_B", "purity", "from"]
    rows = []
    for s in measured:
        m = s.metrics
        purity = ", ".join(f"{k.removeprefix('purity_')} {v:.3f}" for k, v in m.items() if k.startswith("purity_")
                           and isinstance(v, (int, float)))
        for suffix, point in (("", "50 %"), ("_80", "80 %")):
            cells = []
            for name in ("signal", "background"):
                value, error = m.get(f"insitu_sf_{name}{suffix}"), m.get(f"insitu_sf_{name}{suffix}_err")
                stat, pure = m.get(f"insitu_sf_{name}{suffix}_err_stat"), m.get(f"insitu_sf_{name}{suffix}_err_purity")
                cells.append("—" if not isinstance(value, (int, float)) else
                             f"{value:.3f} ± {error:.3f}" + (f" ({stat:.3f} stat, {pure:.3f} purity)"
                                                               if isinstance(stat, (int, float)) and isinstance(pure, (int, float)) else ""))
                true, true_err = m.get(f"sf_{name}{suffix}"), m.get(f"sf_{name}{suffix}_err")
                cells.append("—" if not isinstance(true, (int, float)) else f"{true:.3f} ± {true_err:.3f}")
            rows.append([s.label, point, *cells, purity, " + ".join(m.get("insitu_equations") or [])])
    text = (
        "Data/simulation efficiency of each class measured as an analysis would, without data labels: in the "
        "signal-enriched (tag-and-probe) region and in all data events, each a mixture whose purity is estimated from "
        "the simulated composition of the region at the data's signal fraction (sqnn.regions). Errors: statistical "
        "(resampling the events) and purity (the region's simulated selection efficiencies varied), in quadrature. "
        "The true scale factors, where data labels were given, come from the labels and are never used to choose."
    )
    return ("<h2>Scale factors measured in the enriched regions</h2>" + f"<p>{html.escape(text)}</p>"
            + table_html(header, rows))


def _tradeoff_section(summary: Mapping[str, Any], entries: Mapping[str, Any], colours: Mapping[str, str],
                      has_labels: bool) -> str:
    shown = displays(summary)
    selection = summary.get("selection", {})
    metric = selection.get("disagreement_metric") or "ks_control"
    panels = [(metric, "auc_source")] + ([("closure", "auc_target"), ("closure_80", "auc_target")] if has_labels else [])
    fig, axes = plots.figure(1, len(panels), size=(4.3 * len(panels), 4.8))
    for ax, (x, y) in zip(axes[0], panels):
        plots.plot_tradeoff(entries, x=x, y=y, ax=ax, colors=colours, legend=False,
                            linestyles={name: d.linestyle for name, d in shown.items()},
                            strengths={name: d.strength for name, d in shown.items()})
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside upper center", ncols=len(names))
    caption = (
        f"Left: what the selection rule sees, without data labels — auc_source against {metric}; among the settings "
        f"within δ = {selection.get('delta', 0.005):g} of a method's best auc_source the rule takes the smallest "
        f"{metric}. "
        + ("Middle and right: what an analysis gets — auc_target against the closure |1 − sf_S| + |1 − sf_B| at the 50 % "
           "and 80 % working points (top left is best). " if has_labels else "")
        + "Each point is a setting of a method's sweep, labelled with its strength; the star is the chosen one. "
        "Error bars: ± as in the tables. The axes hold the settings that matter; a setting beyond them sits on the "
        "edge as an open triangle and is listed with its values in the lower right corner."
    )
    return "<h2>Closure and accuracy across each sweep</h2>" + image_html(fig, "Trade-off", caption)


def _reweighted(item: _Selected) -> tuple[np.ndarray, float | None]:
    """Simulation weights reweighted per class to the EM estimate of the data signal fraction."""
    fraction = item.metrics.get("data_signal_fraction")
    sim = item.sim
    if not isinstance(fraction, (int, float)) or sim.label is None:
        return sim.weight, None
    sim_fraction = signal_fraction(sim.label, sim.weight) if float(sim.weight.sum()) > 0 else 0.5
    return reweight_to_prior(sim.weight, sim.label == 1, sim_fraction, float(fraction)), float(fraction)


def _score_section(scored: list[_Selected], colours: Mapping[str, str]) -> str:
    figures = []
    for s in scored:
        sim, data = s.sim, s.data
        panels: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        if data.label is not None and sim.label is not None:
            for cls, name in ((1, "Signal"), (0, "Background")):
                sm, dm = sim.label == cls, data.label == cls
                panels.append((name, sim.score[sm], data.score[dm], sim.weight[sm], data.weight[dm]))
        if sim.control is not None and data.control is not None and sim.control.any() and data.control.any():
            sc, dc = sim.control.astype(bool), data.control.astype(bool)
            panels.append(("Control region", sim.score[sc], data.score[dc], sim.weight[sc], data.weight[dc]))
        weight, fraction = _reweighted(s)
        title = "All events" if fraction is None else f"All, sim. reweighted to\nf_S = {fraction:.3f} (EM)"
        panels.append((title, sim.score, data.score, weight, data.weight))
        fig, axes = plots.figure(2, len(panels), size=(3.25 * len(panels), 3.9), gridspec_kw={"height_ratios": [3, 1]},
                                 sharex="col")
        for c, (name, sim_score, data_score, sim_weight, data_weight) in enumerate(panels):
            plots.plot_score_comparison(sim_score, data_score, sim_weight, data_weight, ax=axes[0][c], ratio_ax=axes[1][c],
                                        title=name, colour=colours.get(s.name, "#0072B2"))
        fig.suptitle(f"{s.label} (seed {s.seed})", fontsize=12)
        figures.append(image_html(fig, f"Score distributions: {s.label}", ""))
    caption = (
        "Unit-area score distributions of held-out simulation (line) and data (points), data/simulation below "
        "(triangles: beyond the panel). Per class (with data labels: the modelling of signal and of background on its "
        "own), in the control region (no labels needed), and all events with the simulation reweighted per class to "
        "the data's signal fraction estimated from the scores (EM, data_signal_fraction in metrics.json), so that a "
        "different signal fraction in data does not show as mismodelling."
    )
    return ("<h2>Score distributions per class</h2>" + f"<p>{html.escape(caption)}</p>"
            + "".join(f.replace("<figcaption></figcaption>", "") for f in figures))


def _roc_section(scored: list[_Selected], colours: Mapping[str, str], linestyles: Mapping[str, str]) -> str:
    labelled_data = all(s.data.label is not None for s in scored)
    panels = [("Simulation (held out)", "sim")] + ([("Data (labels used for this plot only)", "data")] if labelled_data else [])
    fig, axes = plots.figure(2, len(panels), size=(6.2 * len(panels), 6.0), gridspec_kw={"height_ratios": [3, 1.2]},
                             sharex="col")
    baseline = next((s.label for s in scored if s.name == "source-only"), scored[0].label)
    labelled = {s.label: colours[s.name] for s in scored}
    styles = {s.label: linestyles.get(s.name, "-") for s in scored}
    for c, (title, domain) in enumerate(panels):
        curves = {}
        for s in scored:
            held: HeldOut = s.sim if domain == "sim" else s.data
            curves[s.label] = plots.roc_from_scores(held.score, held.label, held.weight)
        plots.plot_roc(curves, ax=axes[0][c], ratio_ax=axes[1][c], baseline=baseline, title=title, colors=labelled,
                       linestyles=styles)
    caption = (f"Background rejection against signal efficiency for the chosen setting of each method (first seed, "
               f"held-out events); below, each rejection divided by that of {baseline} at the same signal efficiency.")
    return "<h2>ROC curves</h2>" + image_html(fig, "ROC curves", caption)


def _history_section(selected: list[_Selected], colours: Mapping[str, str], linestyles: Mapping[str, str]) -> str:
    networks = [i for i in selected if i.is_network and i.history]
    kept = {i.label: i.best_epoch for i in networks if i.best_epoch is not None}
    labelled = {i.label: colours[i.name] for i in networks}
    styles = {i.label: linestyles.get(i.name, "-") for i in networks}
    panels: list[tuple[str, str | None, str, dict[str, Any]]] = [
        ("val_classification", "loss_classification", "Cross-entropy [nats]", {i.label: i.history for i in networks}),
        ("val_auc", None, "AUC, simulation validation", {i.label: i.history for i in networks}),
    ]
    by_unit: dict[str, list[_Selected]] = {}
    for item in networks:
        if item.penalty is not None:
            by_unit.setdefault(item.penalty.unit, []).append(item)
    for unit, items in by_unit.items():
        symbols = list(dict.fromkeys(i.penalty.symbol for i in items if i.penalty is not None))
        label = ", ".join(symbols) if symbols == [unit] else f"{', '.join(symbols)} [{unit}]"
        panels.append(("val_penalty", "loss_penalty", f"Penalty: {label}", {i.label: i.history for i in items}))
    columns = 3 if len(panels) > 4 else 2
    rows = math.ceil(len(panels) / columns)
    fig, axes = plots.figure(rows, columns, size=(4.3 * columns if columns == 3 else 12.0, 3.6 * rows))
    for k, (key, train_key, ylabel, histories) in enumerate(panels):
        plots.plot_history(histories, key, ax=axes[k // columns][k % columns], colors=labelled, kept=kept,
                           train_key=train_key, ylabel=ylabel, linestyles=styles)
    for k in range(len(panels), rows * columns):
        axes[k // columns][k % columns].set_visible(False)
    caption = (
        "Per epoch, for the chosen setting of each network (first seed): solid on the validation split, dotted on the "
        "training events; the star marks the kept epoch (best_epoch in model.json: the lowest validation objective, "
        "cross-entropy + γ·penalty). Each penalty is drawn in its own unit, as the method minimises it: bits (sqnn, "
        "the information measure of its region — I(T;S|Y) for the default class-conditional one), nats (dann: the "
        "domain head's advantage over guessing), dCor² (disco), MMD² (mmd). Trees (bdt) have no epochs."
    )
    return "<h2>Training history</h2>" + image_html(fig, "Training history", caption)


def _plane_section(selected: list[_Selected], colours: Mapping[str, str]) -> str:
    # the information-plane measures exist only for a stochastic penalised layer
    stochastic = {i.label: i.history for i in selected if any("i_tx_bits" in record for record in i.history)}
    fig, axes = plots.figure(1, 1, size=(6.5, 4.8))
    artists = plots.plot_information_plane(stochastic, ax=axes[0][0], colors={i.label: colours[i.name] for i in selected})
    caption = "Per epoch on the validation split, light to dark; only runs with a stochastic layer."
    if not artists:
        caption = "No run in this comparison has a stochastic layer with the information-plane measures."
    return "<h2>Information plane of the stochastic layer</h2>" + image_html(fig, "Information plane", caption)


def _figures(summary: Mapping[str, Any], selected: list[_Selected]) -> list[str]:
    entries = method_entries(summary)
    shown = displays(summary)
    colours = plots.method_colours(list(entries), {name: d.colour for name, d in shown.items()})
    linestyles = {name: d.linestyle for name, d in shown.items()}
    has_labels = bool(summary.get("inputs", {}).get("data_label"))
    with plots.style():
        return [
            _scale_factor_section(selected),
            _insitu_section(selected),
            _tradeoff_section(summary, entries, colours, has_labels),
            _score_section(selected, colours),
            _roc_section(selected, colours, linestyles),
            _history_section(selected, colours, linestyles),
            _plane_section(selected, colours),
        ]


def render_html(summary: Mapping[str, Any], sections: Sequence[str]) -> str:
    inputs = summary.get("inputs", {})
    seeds = len(summary.get("seeds") or []) or 1
    steps = "".join(f"<li>{html.escape(step)}</li>" for step in rule_steps(summary))
    rule = (
        '<div class="rule">Each method\'s setting is chosen without data labels:'
        f"<ol>{steps}</ol>{html.escape(error_note(seeds, bool(inputs.get('data_label'))))} Figures show the first seed of each chosen setting.</div>"
    )
    source = (
        f"<p>Simulation: <code>{html.escape(str(inputs.get('simulation')))}</code>; data: "
        f"<code>{html.escape(str(inputs.get('data')))}</code>; data labels, for the reported metrics only: "
        f"<code>{html.escape(str(inputs.get('data_label')))}</code>; {seeds} seed{'s' if seeds != 1 else ''} per setting.</p>"
    )
    legend = "".join(f"<li><b>{html.escape(t)}</b>: {html.escape(m)}</li>" for t, m in column_legend(summary))
    chosen_table = table_html(*summary_table(summary, every_setting=False)[:2])
    header, rows, chosen = summary_table(summary, every_setting=True)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>sqnn comparison</title>"
        f"<style>{CSS}</style></head><body>"
        "<h1>sqnn: closure of each method between simulation and data</h1>"
        + source
        + rule
        + "<h2>Chosen setting per method</h2>"
        + chosen_table
        + f"<details><summary>What the columns mean</summary><ul>{legend}</ul></details>"
        + "".join(sections)
        + "<h2>Every setting</h2><p>The chosen setting of each method is highlighted.</p>"
        + table_html(header, rows, chosen)
        + "</body></html>\n"
    )


def build_report(directory: PathLike, *, out: PathLike | None = None) -> Path:
    """Write ``report.html`` for the comparison in ``directory`` (or to ``out``); returns its path."""
    directory = Path(directory)
    summary_path = directory / "summary.json"
    if not summary_path.exists():
        raise SqnnError(f"{summary_path}: missing; run `sqnn compare` first")
    summary = json.loads(summary_path.read_text())
    selected = _load_selected(directory, summary)
    if not selected:
        raise SqnnError(f"{summary_path}: no method has a selected run to show")
    text = render_html(summary, _figures(summary, selected))
    return write_text(Path(out) if out is not None else directory / "report.html", text)


def page(title: str, body: str) -> str:
    """A self-contained HTML page in the report's style."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head><body>{body}</body></html>\n"
    )
