"""The tables a physicist reads: closure first, every number with its uncertainty.

One definition of each column, used by the terminal (:func:`terminal_summary`, at most
100 characters wide), ``summary.md`` (:func:`markdown_summary`) and ``report.html``
(:func:`summary_table`).

Uncertainties (:func:`with_error`): for one seed the statistical error of the test sample
— ``auc_*_err`` (Hanley & McNeil) and ``sf_*_err`` (binomial on weighted counts) from
``metrics.json``; the closure |1 − sf_S| + |1 − sf_B| carries √(err_S² + err_B²) of its
two scale factors. Over n seeds the standard error of the mean, spread/√n (each seed has its
own split, so that spread holds the statistical fluctuation of the test sample too).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqnn.labels import Display, strength_label, verdict

__all__ = [
    "displays",
    "COLUMNS",
    "Column",
    "column_legend",
    "error_note",
    "format_value",
    "markdown_summary",
    "method_entries",
    "rule_steps",
    "run_stats",
    "summary_table",
    "terminal_metrics",
    "terminal_summary",
    "with_error",
]

WIDTH = 100

# top-level keys of summary.json that are not method names
RESERVED_KEYS = ("selection_rule", "selection", "inputs", "train", "seeds", "order", "engine", "display", "paired")


@dataclass(frozen=True)
class Column:
    key: str
    title: str
    meaning: str
    digits: int = 4
    # the key of each term whose statistical errors add in quadrature (closure)
    error_terms: tuple[str, ...] = ()


COLUMNS: dict[str, Column] = {c.key: c for c in (
    Column("auc_source", "auc_source", "AUC on held-out simulation (what the selection may read)"),
    Column("auc_target", "auc_target", "AUC on data, from the data labels (reported, never used to choose)"),
    Column("sf_signal", "sf_S 50 %", "data/simulation signal efficiency at the cut keeping 50 % of simulated signal", 3),
    Column("sf_background", "sf_B 50 %", "the same for background", 3),
    Column("closure", "closure 50 %", "|1 − sf_S| + |1 − sf_B| at the 50 % working point (0 is perfect)", 3,
           ("sf_signal", "sf_background")),
    Column("sf_signal_80", "sf_S 80 %", "signal scale factor at the cut keeping 80 % of simulated signal", 3),
    Column("sf_background_80", "sf_B 80 %", "background scale factor at the 80 % working point", 3),
    Column("closure_80", "closure 80 %", "|1 − sf_S| + |1 − sf_B| at the 80 % working point", 3,
           ("sf_signal_80", "sf_background_80")),
    Column("ks_signal", "KS_S", "score KS distance simulation/data, signal only (data labels)", 3),
    Column("ks_background", "KS_B", "the same, background only", 3),
    Column("ks_control", "ks_control", "score KS distance simulation/data in the control region (label-free)", 4),
    Column("ks", "ks", "score KS distance simulation/data, all events (moves with the signal fraction too)", 3),
    Column("ks_reweighted", "ks_reweighted", "KS with simulation reweighted to the estimated data signal fraction", 3),
    Column("data_signal_fraction", "f_S data (EM)", "signal fraction of data estimated from the scores (EM)", 3),
    Column("domain_auc", "domain_auc", "AUC of a probe telling simulation from data on the representation (0.5 best)", 3),
    Column("mi_bits", "I(T;S) bits", "marginal factorised I(T;S) of the Bernoulli layer (a diagnostic)", 4),
    Column("rejection_at_50", "1/ε_B 50 %", "background rejection at 50 % signal efficiency, simulation", 1),
    Column("insitu_sf_signal", "in-situ sf_S 50 %", "signal scale factor measured in the enriched regions without data "
           "labels (± statistical and purity errors)", 3),
    Column("insitu_sf_background", "in-situ sf_B 50 %", "the same for background", 3),
    Column("insitu_sf_signal_80", "in-situ sf_S 80 %", "in-situ signal scale factor at the 80 % working point", 3),
    Column("insitu_sf_background_80", "in-situ sf_B 80 %", "in-situ background scale factor at the 80 % working point", 3),
    Column("insitu_closure_80", "in-situ closure 80 %", "|1 − sf_S| + |1 − sf_B| of the in-situ scale factors at 80 % "
           "(± statistical error: what the selection may read)", 3),
)}

# the full tables (summary.md, report.html): with data labels, then without
FULL_KEYS = ("auc_source", "auc_target", "sf_signal", "sf_background", "closure", "sf_signal_80", "sf_background_80",
             "closure_80", "ks_signal", "ks_background", "ks_control", "data_signal_fraction", "domain_auc")
LABEL_FREE_KEYS = ("auc_source", "ks_control", "ks", "ks_reweighted", "data_signal_fraction", "domain_auc")
# shown where the comparison had enriched regions
INSITU_KEYS = ("insitu_sf_signal", "insitu_sf_background", "insitu_sf_signal_80", "insitu_sf_background_80",
               "insitu_closure_80")


def run_stats(metrics: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """One run's ``metrics.json`` in the form of a setting's aggregated metrics (one seed)."""
    return {
        key: {"mean": float(value) if _number(value) else None, "std": None, "n": 1 if _number(value) else 0}
        for key, value in metrics.items()
    }


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))


def with_error(stats: Mapping[str, Mapping[str, Any]], key: str) -> tuple[float | None, float | None]:
    """Mean of ``key`` and its uncertainty (see the module's docstring); None where unknown."""
    entry = stats.get(key) or {}
    mean = entry.get("mean")
    if mean is None:
        return None, None
    n = entry.get("n") or 0
    if n >= 2 and entry.get("std") is not None:
        return float(mean), float(entry["std"]) / math.sqrt(n)
    column = COLUMNS.get(key)
    terms = column.error_terms if column and column.error_terms else (key,)
    errors = [(stats.get(f"{term}_err") or {}).get("mean") for term in terms]
    if any(e is None for e in errors):
        return float(mean), None
    return float(mean), math.sqrt(sum(float(e) ** 2 for e in errors))


def format_value(stats: Mapping[str, Mapping[str, Any]], key: str, digits: int | None = None) -> str:
    """``mean ± error`` of ``key`` (:func:`with_error`), to the column's digits; ``—`` where unknown."""
    digits = COLUMNS[key].digits if digits is None and key in COLUMNS else 4 if digits is None else digits
    mean, error = with_error(stats, key)
    if mean is None:
        return "—"
    return f"{mean:.{digits}f}" if error is None else f"{mean:.{digits}f} ± {error:.{digits}f}"


def _seeds(summary: Mapping[str, Any]) -> int:
    return len(summary.get("seeds") or []) or 1


def error_note(seeds: int, labelled: bool = True) -> str:
    """What ± means in a table of settings run with ``seeds`` seeds each."""
    if seeds >= 2:
        return f"± is the standard error over the {seeds} seeds (spread/√{seeds})."
    if not labelled:
        return ("± is the statistical error of the test sample (one seed; Hanley–McNeil for an AUC); the "
                "distances have none with one seed.")
    return ("± is the statistical error of the test sample (one seed): Hanley–McNeil for an AUC, binomial on "
            "weighted counts for a scale factor, √(err_S² + err_B²) for a closure; the KS distances have none "
            "with one seed.")


def rule_steps(summary: Mapping[str, Any]) -> list[str]:
    """The label-free selection rule, as three short steps with this comparison's δ and metric."""
    selection = summary.get("selection", {})
    delta = selection.get("delta", 0.005)
    metric = selection.get("disagreement_metric", "ks_control")
    return [
        f"keep the settings whose auc_source is within {delta:g} of the method's best;",
        f"among them find the smallest {metric} (data/simulation disagreement, no labels needed);",
        f"of the settings within the standard error of that smallest {metric}, take the highest auc_source.",
    ]


def displays(summary: Mapping[str, Any]) -> dict[str, Display]:
    """How each method of a comparison is named and drawn (``summary.json``, ``display``)."""
    stored = summary.get("display") or {}
    return {name: Display.from_dict(stored.get(name)) for name in method_entries(summary)}


def method_entries(summary: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-method entries of a comparison's summary, in the order they were run."""
    order = summary.get("order") or [k for k in summary if k not in RESERVED_KEYS]
    return {name: summary[name] for name in order if name in summary}


def _method_rows(summary: Mapping[str, Any], every_setting: bool) -> list[tuple[str, Mapping[str, Any], bool]]:
    rows = []
    for name, entry in method_entries(summary).items():
        chosen = entry["selected"]["gamma"]
        settings = entry["settings"] if every_setting else [entry["selected"]]
        rows += [(name, setting, setting["gamma"] == chosen) for setting in settings]
    return rows


def _has_labels(summary: Mapping[str, Any]) -> bool:
    return bool(summary.get("inputs", {}).get("data_label"))


def _keys(summary: Mapping[str, Any]) -> tuple[str, ...]:
    keys = FULL_KEYS if _has_labels(summary) else LABEL_FREE_KEYS
    in_situ = any(with_error(setting["metrics"], "insitu_sf_signal_80")[0] is not None
                  for _, setting, _ in _method_rows(summary, every_setting=True))
    return keys + INSITU_KEYS if in_situ else keys


def summary_table(summary: Mapping[str, Any], every_setting: bool = False) -> tuple[list[str], list[list[str]], list[bool]]:
    """Header, cells and whether each row is the chosen setting, for summary.md and report.html."""
    keys = _keys(summary)
    header = ["method", "setting", "seeds", *(COLUMNS[k].title for k in keys)]
    rows, chosen = [], []
    shown = displays(summary)
    for name, setting, selected in _method_rows(summary, every_setting):
        seeds = len(setting.get("seeds") or setting.get("runs") or []) or 1
        rows.append([name, strength_label(shown[name].strength, setting["gamma"]) or "—", str(seeds),
                     *(format_value(setting["metrics"], k) for k in keys)])
        chosen.append(selected)
    return header, rows, chosen


def column_legend(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    keys = _keys(summary)
    return [(COLUMNS[k].title, COLUMNS[k].meaning) for k in keys]


def markdown_summary(summary: Mapping[str, Any]) -> str:
    """``summary.md``: the chosen setting of every method, then every setting, with uncertainties."""
    lines = ["# Comparison", ""]
    inputs = summary.get("inputs", {})
    if inputs:
        lines += [f"Simulation `{inputs.get('simulation')}`, data `{inputs.get('data')}`; data labels "
                  + (f"(`{inputs['data_label']}`) used for the reported metrics only." if inputs.get("data_label")
                     else "not given."), ""]
    lines += ["Chosen without data labels, per method:", ""]
    lines += [f"{k}. {step}" for k, step in enumerate(rule_steps(summary), start=1)]
    lines += ["", error_note(_seeds(summary), _has_labels(summary)), ""]
    for title, every in (("Chosen setting per method", False), ("Every setting (✔ chosen)", True)):
        header, rows, chosen = summary_table(summary, every_setting=every)
        if every:
            header = [*header[:2], "chosen", *header[2:]]
            rows = [[*r[:2], "✔" if c else "", *r[2:]] for r, c in zip(rows, chosen)]
        lines += [f"## {title}", "", "| " + " | ".join(header) + " |",
                  "|---|---|" + "".join(":---:|" if h == "chosen" else "---:|" for h in header[2:])]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        lines.append("")
    lines += paired_lines(summary)
    lines += ["## Columns", ""] + [f"- **{title}**: {meaning}" for title, meaning in column_legend(summary)]
    return "\n".join(lines) + "\n"


def paired_rows(summary: Mapping[str, Any]) -> tuple[str | None, list[list[str]]]:
    """The reference and, per method, its paired closure differences at 50 % and 80 % with their errors and verdicts."""
    paired = summary.get("paired") or {}
    differences = paired.get("differences") or {}
    rows = []
    shown = displays(summary)
    for name, entry in method_entries(summary).items():
        if name not in differences:
            continue
        cells = [name, strength_label(shown[name].strength, entry["selected"]["gamma"]) or "—"]
        for key in ("closure", "closure_80"):
            d = differences[name][key]
            cells += [f"{d['difference']:+.3f} ± {d['error']:.3f}", verdict(d)]
        rows.append(cells)
    return paired.get("reference"), rows


def paired_lines(summary: Mapping[str, Any]) -> list[str]:
    reference, rows = paired_rows(summary)
    if not rows:
        return []
    header = ["method", "setting", "Δ closure 50 %", "", "Δ closure 80 %", ""]
    lines = [f"## Closure against {reference}, paired on the same events", "",
             *_wrap(f"Each chosen setting's closure minus {reference}'s, on the same held-out events of every seed (the "
                    "events resampled together); ± combines that with the spread over seeds. Better or worse only beyond "
                    "two errors."), "",
             "| " + " | ".join(header) + " |", "|---|---|---:|:---|---:|:---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines + [""]


def _wrap(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, WIDTH, subsequent_indent=indent) or [""]


def _compact(rows: Sequence[tuple[str, str, Mapping[str, Any]]], labelled: bool, disagreement: str | None = None) -> list[str]:
    """The compact block: closure first when data labels exist, else the label-free measures
    (``disagreement``, the selection's label-free metric: ``ks_control`` where the runs have it)."""
    if labelled:
        columns = [("auc_target", 17), ("closure", 15), ("closure_80", 15)]
        last = ("KS_S / KS_B", 13)
    else:
        if disagreement is None:
            known = all(with_error(stats, "ks_control")[0] is not None for _, _, stats in rows)
            disagreement = "ks_control" if known else "domain_auc"
        columns = [("auc_source", 17), (disagreement, 13), ("ks_reweighted", 13)]
        last = ("f_S data (EM)", 13)
    width = max([len(name) for name, _, _ in rows] + [6])
    setting_width = max([len(s) for _, s, _ in rows] + [7])
    titles = [COLUMNS[k].title if k in COLUMNS else k for k, _ in columns]
    header = f"{'method':<{width}}  {'setting':<{setting_width}}" + "".join(
        f"  {t:>{w}}" for t, (_, w) in zip(titles, columns)) + f"  {last[0]:>{last[1]}}"
    lines = [header, "─" * len(header)]
    for name, setting, stats in rows:
        cells = "".join(f"  {format_value(stats, k, 4 if k.startswith('auc') else 3):>{w}}" for k, w in columns)
        if labelled:
            ks_s, ks_b = (with_error(stats, k)[0] for k in ("ks_signal", "ks_background"))
            tail = "—" if ks_s is None or ks_b is None else f"{ks_s:.3f} / {ks_b:.3f}"
        else:
            fraction = with_error(stats, "data_signal_fraction")[0]
            tail = "—" if fraction is None else f"{fraction:.3f}"
        lines.append(f"{name:<{width}}  {setting or '—':<{setting_width}}{cells}  {tail:>{last[1]}}")
    return lines


def _legend(labelled: bool, seeds: int) -> list[str]:
    lines = []
    if labelled:
        lines += _wrap("closure = |1 − sf_S| + |1 − sf_B|, sf = data/simulation efficiency of signal (S) and "
                       "background (B) at the cut keeping 50 % / 80 % of simulated signal; 0 is perfect. "
                       "KS_S / KS_B: score KS distance simulation/data per class.")
    else:
        lines += _wrap("Without data labels: ks_control = score KS distance simulation/data in the control region; "
                       "domain_auc = AUC of a probe telling simulation from data (0.5 best); ks_reweighted = score KS "
                       "distance over all events, simulation reweighted to the data signal fraction f_S estimated "
                       "from the scores (EM).")
    return lines + _wrap(error_note(seeds, labelled))


def terminal_summary(summary: Mapping[str, Any], *, out: str | None = None, report: bool = True) -> str:
    """The chosen setting of every method in at most 100 columns, what the numbers mean, and where the rest is."""
    shown = displays(summary)
    rows = [(name, strength_label(shown[name].strength, setting["gamma"]), setting["metrics"])
            for name, setting, _ in _method_rows(summary, every_setting=False)]
    labelled = _has_labels(summary)
    seeds = _seeds(summary)
    lines = _compact(rows, labelled, summary.get("selection", {}).get("disagreement_metric")) + [""]
    lines += _legend(labelled, seeds)
    lines += _wrap("Chosen without data labels: " + " ".join(f"({k}) {s}" for k, s in enumerate(rule_steps(summary), 1)))
    if out is not None:
        lines += _wrap(f"Every setting and metric: {out}/summary.md" + (f"; plots: {out}/report.html." if report else "."))
    return "\n".join(lines)


def terminal_metrics(name: str, strength: str, metrics: Mapping[str, Any]) -> str:
    """One run's metrics as the same compact block (``sqnn train``, ``sqnn evaluate``); ``strength`` as ``γ=1``."""
    stats = run_stats(metrics)
    labelled = metrics.get("auc_target") is not None
    lines = _compact([(name, strength, stats)], labelled)
    if labelled:
        lines += [f"auc_source {format_value(stats, 'auc_source')}",
                  f"sf_S / sf_B at 50 %: {format_value(stats, 'sf_signal')} / {format_value(stats, 'sf_background')}"
                  f" · at 80 %: {format_value(stats, 'sf_signal_80')} / {format_value(stats, 'sf_background_80')}"]
    return "\n".join(lines + [""] + _legend(labelled, 1))
