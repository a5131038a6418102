"""The main job: every method of the demo on a case study, the label-free choice, the table and the report.

:func:`run_demo` is what ``sqnn demo`` does: the comparison of :func:`sqnn.workflows.compare.run_compare`
on the shipped W-jet data (or the toy) with the methods the demo shows (each method says
whether it is in the demo, :mod:`sqnn.methods`), one seed, data labels for the reported
metrics only, then ``report.html``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqnn.cases import get_generator
from sqnn.cases.toy import FEATURES as TOY_FEATURES
from sqnn.data import ColumnSpec
from sqnn.datasets import WJETS_FEATURES, wjets_path
from sqnn.errors import SqnnError
from sqnn.methods import METHODS, demo_methods
from sqnn.training import TrainConfig
from sqnn.workflows.compare import run_compare
from sqnn.workflows.settings import Settings

__all__ = ["CASES", "DEMO_GAMMAS", "DEMO_METHODS", "QUICK_METHODS", "TOY_FEATURES", "run_demo"]

# what the demo can run on
CASES = ("wjets", "toy")
# the SQNN sweep of the closure study, around its default strength
DEMO_GAMMAS = METHODS["sqnn"].strengths
DEMO_METHODS = demo_methods("full")
QUICK_METHODS = demo_methods("quick")
# the toy's events per domain, and the epochs, of the full and the quick demo
TOY_EVENTS = {False: 40000, True: 8000}
EPOCHS = {False: 30, True: 8}


def _inputs(case: str, out: Path, quick: bool) -> tuple[Path, Path, ColumnSpec]:
    if case == "wjets":
        sim, data = wjets_path("sim"), wjets_path("data")
        if not (sim.exists() and data.exists()):
            raise SqnnError(f"{sim.parent}: the shipped W-jet dataset is missing; reinstall sqnn or use case='toy'")
        return sim, data, ColumnSpec(features=WJETS_FEATURES, label="is_signal", control="control", observer="pt")
    if case != "toy":
        raise SqnnError(f"the demo runs on one of {', '.join(CASES)}, not {case!r}")
    generate = get_generator("toy")
    n = TOY_EVENTS[quick]
    sim = generate("sim", n, 1, out / "toy_sim.parquet")
    data = generate("data", n, 2, out / "toy_data.parquet")
    return sim, data, ColumnSpec(features=TOY_FEATURES, label="is_signal", weight="weight", control="control", observer="mass")


def run_demo(
    out: Path,
    *,
    case: str = "wjets",
    quick: bool = False,
    methods: tuple[str, ...] | None = None,
    gammas: tuple[float, ...] = DEMO_GAMMAS,
    seeds: int = 1,
    report: bool = True,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Compare the methods on a case study (data labels for evaluation only) and write the report; returns the summary."""
    sim_file, data_file, spec = _inputs(case, out, quick)
    summary = run_compare(
        sim_file,
        data_file,
        Settings(columns=spec, train=TrainConfig(epochs=EPOCHS[quick], seed=0)),
        out,
        methods=methods or (QUICK_METHODS if quick else DEMO_METHODS),
        gammas={"sqnn": gammas},
        seeds=seeds,
        data_label="is_signal",
        progress=progress,
    )
    if report:
        from sqnn.report import build_report

        if echo is not None:
            echo("writing report.html (drawing the figures from the stored scores)")
        build_report(out)
    return summary
