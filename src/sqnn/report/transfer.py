"""Report section of the transfer-learning studies: data efficiency of fine-tuning, closure of set models.

Reads the JSON of ``benchmarks/transfer_study.py`` (fits of every variant, target channel,
number N of training events and seed) and of ``benchmarks/set_closure_study.py``
(source-only, SQNN and DANN set models from simulation to data) and writes

* the curves of test AUC and background rejection at 50 % signal efficiency against N;
* a table of AUC against N per variant (mean ± standard error over seeds) and the paired
  difference to training from scratch at the same N and seed;
* the events saved: for each variant and N, the number of events with which training from
  scratch reaches the variant's AUC (:func:`scratch_events_for`), and its ratio to N;
* the closure table of the set models (scale factors at 50 % and 80 %, closure, AUC).

>>> python -m sqnn.report.transfer --study transfer_study.json --closure set_closure_study.json \\
...     --out transfer_study.html --markdown transfer_study.md  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "closure_paired_table",
    "closure_table",
    "headline_events_saved",
    "plot_curves",
    "scratch_events_for",
    "summarize",
    "transfer_markdown",
    "transfer_page",
    "transfer_section",
]

SCRATCH = "scratch"
# the variants that transfer from the main pretraining; ``frozen@zprime`` and the like are ablations
TRANSFER_VARIANTS = ("frozen", "finetune", "finetune-slow")
HEADLINE_SIZES = (100, 1000)
# the scale factors' statistical errors (data counts at the 50 % point) say whether a closure is resolved
CLOSURE_KEYS = ("auc_source", "auc_target", "sf_signal", "sf_background", "closure", "sf_signal_80",
                "sf_background_80", "closure_80", "domain_auc", "sf_signal_err", "sf_background_err")


# ------------------------------------------------------------------ numbers


def _mean_err(values: Sequence[float]) -> dict[str, float | int | None]:
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if finite.size == 0:
        return {"mean": None, "err": None, "std": None, "seeds": 0}
    std = float(finite.std(ddof=1)) if finite.size > 1 else 0.0
    return {"mean": float(finite.mean()), "err": std / math.sqrt(finite.size), "std": std, "seeds": int(finite.size)}


def scratch_events_for(auc: float, sizes: Sequence[int], scratch_auc: Sequence[float]) -> dict[str, Any]:
    """The number of events with which training from scratch reaches ``auc``.

    The scratch curve (mean AUC at ``sizes``) is made non-decreasing (running maximum) and
    interpolated linearly in log N. ``bound`` says when the answer lies outside the curve:
    ``at_most`` (scratch reaches ``auc`` already with the fewest events measured) or
    ``beyond`` (scratch never reaches it within the largest N measured).

    >>> round(scratch_events_for(0.85, [100, 1000], [0.80, 0.90])["events"], 1)
    316.2
    """
    order = np.argsort(sizes)
    n = np.asarray(sizes, dtype=np.float64)[order]
    curve = np.maximum.accumulate(np.asarray(scratch_auc, dtype=np.float64)[order])
    if auc <= curve[0]:
        return {"events": float(n[0]), "bound": "at_most"}
    if auc > curve[-1]:
        return {"events": float(n[-1]), "bound": "beyond"}
    i = int(np.argmax(curve >= auc))
    t = (auc - curve[i - 1]) / (curve[i] - curve[i - 1])
    return {"events": float(math.exp(math.log(n[i - 1]) + t * (math.log(n[i]) - math.log(n[i - 1])))), "bound": None}


def summarize(results: Mapping[str, Any]) -> dict[str, Any]:
    """Per target channel: every cell's mean ± error, the paired difference to scratch, the events saved."""
    summary: dict[str, Any] = {}
    for channel, entry in results["channels"].items():
        cells: dict[str, dict[str, Any]] = {}
        for variant, by_size in entry["runs"].items():
            for size, by_seed in by_size.items():
                if not by_seed:
                    continue
                runs = list(by_seed.values())
                cell = {
                    "auc": _mean_err([r["auc"] for r in runs]),
                    "rejection_50": _mean_err([r["rejection_50"] for r in runs]),
                    "cpu_seconds": float(sum(r["cpu_seconds"] for r in runs)),
                }
                scratch = entry["runs"].get(SCRATCH, {}).get(size, {})
                paired = [by_seed[s]["auc"] - scratch[s]["auc"] for s in by_seed if s in scratch]
                if variant != SCRATCH and paired:
                    cell["delta_auc_vs_scratch"] = _mean_err(paired)
                cells.setdefault(variant, {})[size] = cell
        saved: dict[str, dict[str, Any]] = {}
        scratch_cells = cells.get(SCRATCH, {})
        sizes = sorted(int(s) for s, c in scratch_cells.items() if c["auc"]["mean"] is not None)
        if len(sizes) >= 2:
            curve = [scratch_cells[str(s)]["auc"]["mean"] for s in sizes]
            for variant, by_size in cells.items():
                if variant == SCRATCH:
                    continue
                for size, cell in by_size.items():
                    auc = cell["auc"]
                    if auc["mean"] is None:
                        continue
                    central = scratch_events_for(auc["mean"], sizes, curve)
                    low = scratch_events_for(auc["mean"] - auc["err"], sizes, curve)
                    high = scratch_events_for(auc["mean"] + auc["err"], sizes, curve)
                    saved.setdefault(variant, {})[size] = {
                        "auc": auc["mean"],
                        "scratch_events": central["events"],
                        "bound": central["bound"],
                        "ratio": central["events"] / int(size),
                        "ratio_range": [low["events"] / int(size), high["events"] / int(size)],
                        "range_bounds": [low["bound"], high["bound"]],
                    }
        summary[channel] = {"cells": cells, "events_saved": saved}
    return summary


def headline_events_saved(summary: Mapping[str, Any], sizes: Sequence[int] = HEADLINE_SIZES,
                          variants: Sequence[str] | None = TRANSFER_VARIANTS) -> list[dict[str, Any]]:
    """Per target channel and N: the best transfer variant's mean AUC and the events scratch needs for it.

    ``variants`` are the candidates (``None``: every variant but scratch and the MLP, ablations
    included). Choosing the best of several on the test AUC favours transfer a little; the
    row says which won. ``bound`` is ``beyond`` when scratch never reaches the AUC within the
    largest N measured, ``at_most`` when it does with the fewest.
    """
    rows = []
    for channel, entry in summary.items():
        cells = entry["cells"]
        scratch = cells.get(SCRATCH, {})
        curve_sizes = sorted(int(n) for n, c in scratch.items() if c["auc"]["mean"] is not None)
        curve = [scratch[str(n)]["auc"]["mean"] for n in curve_sizes]
        for size in sizes:
            candidates = [(cells[v][str(size)]["auc"], v) for v in cells
                          if v not in (SCRATCH, "mlp") and (variants is None or v in variants)
                          and cells[v].get(str(size), {}).get("auc", {}).get("mean") is not None]
            if not candidates or len(curve) < 2:
                continue
            auc, variant = max(candidates, key=lambda c: c[0]["mean"])
            reached = scratch_events_for(auc["mean"], curve_sizes, curve)
            rows.append({"channel": channel, "events": size, "variant": variant, "auc": auc,
                         "scratch_auc": scratch.get(str(size), {}).get("auc"),
                         "scratch_events": reached["events"], "bound": reached["bound"],
                         "ratio": reached["events"] / size})
    return rows


def _headline_text(row: Mapping[str, Any]) -> str:
    if row["bound"] == "beyond":
        return f"not reached (> {row['scratch_events']:.0f})"
    if row["bound"] == "at_most":
        return f"≤ {row['scratch_events']:.0f}"
    return f"{row['scratch_events']:.0f} ({row['ratio']:.2g}×)"


def headline_table(summary: Mapping[str, Any], variants: Sequence[str] | None = TRANSFER_VARIANTS
                   ) -> tuple[list[str], list[list[str]]]:
    """The events-saved headline as a table: channel, N, best variant, its AUC, scratch's, scratch's N for it."""
    head = ["channel", "N", "best transfer variant", "its AUC", "scratch AUC at N", "scratch reaches it at N ="]
    rows = [[r["channel"], str(r["events"]), r["variant"], _value(r["auc"]), _value(r["scratch_auc"]),
             _headline_text(r)] for r in headline_events_saved(summary, variants=variants)]
    return head, rows


# ------------------------------------------------------------------ figures


def _sizes(cells: Mapping[str, Any]) -> list[int]:
    return sorted(int(s) for s in cells)


def plot_curves(results: Mapping[str, Any], channel: str, metric: str = "auc", ax: Any = None) -> list[Any]:
    """``metric`` (``auc`` or ``rejection_50``) against N for every variant of ``channel``; returns the artists."""
    if ax is None:
        from sqnn.report import plots

        _, axes = plots.figure()
        ax = axes[0][0]
    summary = results.get("summary") or summarize(results)
    artists = []
    for variant, cells in summary[channel]["cells"].items():
        sizes = _sizes(cells)
        mean = [cells[str(n)][metric]["mean"] for n in sizes]
        err = [cells[str(n)][metric]["err"] for n in sizes]
        style = "--" if "@" in variant else "-"
        # the reference every other curve is read against; the colour cycle has fewer colours than variants
        colour = {"color": "black", "zorder": 3} if variant == SCRATCH else {}
        artists.append(ax.errorbar(sizes, mean, yerr=err, marker="o", capsize=3, linestyle=style, label=variant,
                                   **colour))
    ax.set_xscale("log")
    if metric == "rejection_50":
        ax.set_yscale("log")
    ax.set_xlabel(f"training events of {channel}")
    ax.set_ylabel({"auc": "test AUC", "rejection_50": "background rejection at 50 % signal"}.get(metric, metric))
    pre = results.get("settings", {}).get("pretrain_files", {})
    ax.set_title(f"{' + '.join(pre)} → {channel}" if pre else channel, fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return artists


# ------------------------------------------------------------------ tables


def _value(stats: Mapping[str, Any] | None, digits: int = 4) -> str:
    if not stats or stats.get("mean") is None:
        return "—"
    if stats.get("seeds") == 1:  # no spread to quote
        return f"{stats['mean']:.{digits}f} (1 seed)"
    return f"{stats['mean']:.{digits}f} ± {stats['err']:.{digits}f}"


def _signed(stats: Mapping[str, Any] | None) -> str:
    if not stats or stats.get("mean") is None:
        return "—"
    if stats.get("seeds") == 1:
        return f"{stats['mean']:+.4f} (1 seed)"
    return f"{stats['mean']:+.4f} ± {stats['err']:.4f}"


def _saved(entry: Mapping[str, Any] | None) -> str:
    if not entry:
        return "—"
    low, high = entry["ratio_range"]
    if entry["bound"] == "beyond":
        return f"> {entry['ratio']:.3g}×"
    if entry["bound"] == "at_most":
        return f"≤ {entry['ratio']:.3g}×"
    marks = ["≤ " if b == "at_most" else "> " if b == "beyond" else "" for b in entry["range_bounds"]]
    return f"{entry['ratio']:.2g}× ({marks[0]}{low:.2g} to {marks[1]}{high:.2g})"


def _rows(summary: Mapping[str, Any], channel: str, cell_text: Any, variants: Sequence[str] | None = None,
          source: str = "cells") -> tuple[list[str], list[list[str]]]:
    cells = summary[channel]["cells"]
    sizes = sorted({int(n) for by_size in cells.values() for n in by_size})
    table = summary[channel][source]
    rows = []
    for variant in variants or list(table):
        if variant not in table:
            continue
        rows.append([variant, *(cell_text(table[variant].get(str(n))) for n in sizes)])
    return ["variant", *(f"N = {n}" for n in sizes)], rows


def _markdown_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head_html = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head_html}</tr></thead><tbody>{body}</tbody></table></div>'


def _study_tables(results: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    summary = results.get("summary") or summarize(results)
    tables = [
        ("events saved: the N with which scratch reaches the best transfer variant's mean AUC "
         f"({', '.join(TRANSFER_VARIANTS)}; log-N interpolation of scratch's mean AUC)",
         *headline_table(summary)),
        ("events saved, ablations included (every pretraining; the best of more candidates)",
         *headline_table(summary, variants=None)),
    ]
    for channel in summary:
        tables.append((f"{channel}: test AUC (mean ± standard error over seeds)",
                       *_rows(summary, channel, lambda c: _value(c and c["auc"]))))
        tables.append((f"{channel}: background rejection 1/ε_B at 50 % signal efficiency",
                       *_rows(summary, channel, lambda c: _value(c and c["rejection_50"], 1))))
        compared = [v for v in summary[channel]["cells"] if v != SCRATCH]
        tables.append((f"{channel}: AUC minus scratch's at the same N and seed (paired)",
                       *_rows(summary, channel, lambda c: _signed(c and c.get("delta_auc_vs_scratch")), compared)))
        tables.append((f"{channel}: events saved — the events scratch needs for the variant's AUC, over N "
                       "(range: AUC ± its standard error)",
                       *_rows(summary, channel, _saved, source="events_saved")))
    return tables


def closure_table(closure: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The set-model closure table: one row per method, mean ± standard error over seeds."""
    head = ["method", "seeds", *CLOSURE_KEYS]
    rows = []
    for method, stats in closure["summary"].items():
        seeds = max((s.get("seeds", 0) for s in stats.values()), default=0)
        rows.append([method, str(seeds), *(_value(stats.get(k), 3) for k in CLOSURE_KEYS)])
    return head, rows


def closure_paired_table(closure: Mapping[str, Any]) -> tuple[list[str], list[list[str]]] | None:
    """Each method minus source-only at the same seed: data AUC and closure errors (mean ± standard error)."""
    paired = closure.get("paired_vs_source_only")
    if not paired:
        return None
    keys = sorted({k for stats in paired.values() for k in stats}, key=lambda k: (k != "auc_target", k))
    rows = [[method, *(_signed(stats.get(k)) for k in keys)] for method, stats in paired.items()]
    return ["method", *(f"Δ {k}" for k in keys)], rows


def _pretraining_lines(results: Mapping[str, Any]) -> list[str]:
    lines = []
    for key, info in results.get("pretraining", {}).items():
        aucs = ", ".join(f"{name} {auc:.4f}" for name, auc in info.get("test_auc", {}).items())
        lines.append(f"pretraining `{key}` ({info.get('task')}; {info.get('events', {}).get('train')} training events, "
                     f"{info.get('cpu_seconds', 0):.0f} CPU-s): test AUC per channel {aucs}")
    return lines


def transfer_markdown(results: Mapping[str, Any], closure: Mapping[str, Any] | None = None) -> str:
    """The study as Markdown: pretraining, the tables of every target channel, the closure table."""
    parts = ["# Transfer learning across channels", ""]
    parts += [f"- {line}" for line in _pretraining_lines(results)]
    for title, head, rows in _study_tables(results):
        parts += ["", f"## {title}", "", _markdown_table(head, rows)]
    if closure is not None:
        parts += ["", f"## Set models from simulation to data: {closure.get('title', '')}".rstrip(": "), "",
                  _markdown_table(*closure_table(closure))]
        paired = closure_paired_table(closure)
        if paired:
            parts += ["", "## Set models: minus source-only at the same seed", "", _markdown_table(*paired)]
    return "\n".join(parts) + "\n"


def transfer_section(results: Mapping[str, Any], closure: Mapping[str, Any] | None = None) -> str:
    """The study as one HTML report section (figures inline)."""
    from sqnn.report import plots
    from sqnn.report.html import image_html

    channels = list(results["channels"])
    with plots.style():
        fig, axes = plots.figure(2, len(channels), size=(7.5 * len(channels), 12.0))
        for column, channel in enumerate(channels):
            plot_curves(results, channel, "auc", ax=axes[0][column])
            plot_curves(results, channel, "rejection_50", ax=axes[1][column])
    body = ["<h2>Transfer learning across channels</h2>"]
    body += [f'<p class="rule">{html.escape(line)}</p>' for line in _pretraining_lines(results)]
    body.append(image_html(fig, "AUC and rejection against training events",
                           "Test AUC (top) and background rejection at 50 % signal efficiency (bottom) against the "
                           "number of training events of the target channel; mean ± standard error over seeds."))
    for title, head, rows in _study_tables(results):
        body += [f"<h3>{html.escape(title)}</h3>", _html_table(head, rows)]
    if closure is not None:
        body += ["<h2>Set models from simulation to data</h2>",
                 f'<p class="rule">{html.escape(closure.get("description", ""))}</p>',
                 _html_table(*closure_table(closure))]
        paired = closure_paired_table(closure)
        if paired:
            body += ["<h3>Minus source-only at the same seed</h3>", _html_table(*paired)]
    return "".join(body)


def transfer_page(results: Mapping[str, Any], closure: Mapping[str, Any] | None = None) -> str:
    from sqnn.report.html import page

    return page("sqnn transfer learning", "<h1>sqnn: transfer learning across channels</h1>"
                + transfer_section(results, closure))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Report section of the transfer-learning studies.")
    parser.add_argument("--study", required=True, help="JSON of benchmarks/transfer_study.py")
    parser.add_argument("--closure", default=None, help="JSON of benchmarks/set_closure_study.py")
    parser.add_argument("--out", required=True, help="HTML page to write")
    parser.add_argument("--markdown", default=None, help="Markdown to write")
    args = parser.parse_args(argv)
    from sqnn.files import write_text

    results = json.loads(Path(args.study).read_text())
    closure = json.loads(Path(args.closure).read_text()) if args.closure and Path(args.closure).exists() else None
    write_text(args.out, transfer_page(results, closure))
    if args.markdown:
        write_text(args.markdown, transfer_markdown(results, closure))


if __name__ == "__main__":
    main()
