"""Deployment artefacts of a trained run and the proof that they compute what the run computes.

:func:`export_run` is what ``sqnn export`` does: it writes one format (:data:`FORMATS`) of a
run, in the run's own scoring unless told otherwise, and with ``check`` events runs the
artefact against the Python model (or the LFSR emulation for stochastic firmware) and
writes ``check.json`` next to it. A scoring a format cannot compute exactly is refused in
one line, before anything is written.

- ``onnx``: ``OUT/model.onnx`` — raw float64 features in, logit out;
- ``packed``: ``OUT/network.safetensors`` and ``OUT/network.json`` for the packed CPU engine;
- ``hls4ml``: ``OUT/hls4ml/`` (an hls4ml project) and, for a fixed-point network,
  ``OUT/resources.json`` (what the firmware computes, layer by layer).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sqnn.errors import SqnnError
from sqnn.files import write_json
from sqnn.runs import Run, load_run

__all__ = ["FORMATS", "Exported", "export_run"]

PathLike = str | os.PathLike[str]


@dataclass
class Exported:
    """What an export wrote (one line each, for a person) and its parity check, if one was asked for."""

    format: str
    inference: str
    written: list[str] = field(default_factory=list)
    check: Any = None  # sqnn.engines.checks.Parity
    check_file: Path | None = None

    @property
    def passed(self) -> bool:
        return self.check is None or bool(self.check.passed)


@dataclass(frozen=True)
class _Request:
    run: Run
    out: Path
    mode: str
    events: np.ndarray | None
    samples: int
    lfsr_seed: int
    part: str | None
    verbose: bool


def _onnx(request: _Request, result: Exported) -> None:
    from sqnn.engines import checks
    from sqnn.engines.onnx_export import export_onnx

    path = export_onnx(request.run, request.out / "model.onnx", inference=request.mode)
    result.written.append(f"wrote {path} ({request.mode})")
    if request.events is not None:
        result.check = checks.check_onnx(request.run, path, request.events, request.mode)


def _packed(request: _Request, result: Exported) -> None:
    from sqnn.engines import checks
    from sqnn.engines.arithmetic import network_for

    network = network_for(request.run, request.mode)
    network.save(request.out)
    result.written.append(f"wrote {request.out / 'network.safetensors'} and {request.out / 'network.json'} ({request.mode})")
    if request.events is not None:
        result.check = checks.check_packed(request.run, request.out, request.events, inference=request.mode,
                                           samples=request.samples, seed=request.lfsr_seed)


def _hls4ml(request: _Request, result: Exported) -> None:
    from sqnn.engines import checks
    from sqnn.engines.arithmetic import network_for
    from sqnn.engines.fixed_network import FixedNetwork
    from sqnn.engines.hls import DEFAULT_PART, check_hls, export_hls
    from sqnn.engines.resources import firmware_resources

    run, mode, events = request.run, request.mode, request.events
    network = network_for(run, mode)
    exported = export_hls(network, request.out, inference=mode, seed=request.lfsr_seed, part=request.part or DEFAULT_PART,
                          trace=events is not None, verbose=request.verbose)
    result.written.append(f"wrote {exported.directory} ({mode} firmware)")
    fixed = isinstance(network, FixedNetwork)
    if fixed:
        write_json(request.out / "resources.json", firmware_resources(network))
        result.written.append(f"wrote {request.out / 'resources.json'}")
    if events is None:
        return
    python_logit, python_hidden = (None, None) if mode == "stochastic" else checks.torch_outputs(run, events, mode)
    hls = check_hls(exported, events, samples=request.samples, python_hidden=python_hidden, python_logit=python_logit,
                    verbose=request.verbose)
    result.check = checks.Parity(
        format="hls4ml C simulation",
        reference="LFSR emulation (numpy)" if mode == "stochastic" else ("torch" if mode == "deterministic" else f"torch ({mode})"),
        events=hls.events, samples=hls.samples if mode == "stochastic" else 1,
        decision_agreement=hls.decision_agreement, hidden_agreement=hls.hidden_agreement,
        logit_max_abs_diff=hls.logit_max_abs_diff,
        logit_reference="" if mode == "stochastic" else "exact fixed-point reference",
        hidden="codes" if fixed else "bits",
    )


# each format: how it is written and checked
FORMATS: dict[str, Callable[[_Request, Exported], None]] = {"onnx": _onnx, "packed": _packed, "hls4ml": _hls4ml}


def export_run(
    run_dir: PathLike,
    fmt: str,
    out: PathLike,
    *,
    check: int = 0,
    events_file: PathLike | None = None,
    inference: str | None = None,
    samples: int = 1,
    lfsr_seed: int = 0,
    part: str | None = None,
    verbose: bool = False,
    echo: Callable[[str], None] | None = None,
) -> Exported:
    """Write format ``fmt`` of the run in ``run_dir`` into ``out``; with ``check`` events, prove it and write ``check.json``.

    ``inference`` overrides the run's own scoring (``network.inference``); ``events_file``
    holds the events of the check (default: random events over the preprocessing ranges);
    ``samples`` and ``lfsr_seed`` are the draws of a stochastic check; ``part`` the FPGA part
    of an hls4ml project. ``echo`` is told what was written and the check's summary as they
    come. A failed check raises :class:`~sqnn.errors.SqnnError` after ``check.json`` is written.
    """
    from sqnn.engines import checks

    if fmt not in FORMATS:
        raise SqnnError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if samples < 1:
        raise SqnnError(f"samples must be at least 1, got {samples}")
    run = load_run(run_dir)
    checks.require_network(run)
    mode = run.default_inference if inference is None else inference
    events = checks.check_events(run, check, events_file) if check else None
    request = _Request(run, Path(out), mode, events, samples, lfsr_seed, part, verbose)
    result = Exported(format=fmt, inference=mode)
    FORMATS[fmt](request, result)
    for line in result.written:
        if echo is not None:
            echo(line)
    if result.check is not None:
        result.check_file = request.out / "check.json"
        write_json(result.check_file, {**result.check.to_dict(), "inference": mode, "lfsr_seed": lfsr_seed})
        if echo is not None:
            echo(result.check.summary())
        if not result.check.passed:
            raise SqnnError(f"parity check failed ({fmt}); details in {result.check_file}")
    return result
