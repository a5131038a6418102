"""The engines, registered once by name with what each can compute.

Every place that picks an engine — scoring (:func:`sqnn.engines.scoring.make_scorer`,
``sqnn predict``, ``sqnn evaluate --engine``), the speed benchmark (``sqnn bench``) and the
export workflow (``sqnn export``) — reads :data:`ENGINES`. An engine is a name, what it is,
the inference modes it scores, whether it can be timed call by call, and a factory that
builds its scorer for a run. Building a scorer may refuse, in one line, a scoring the
engine cannot reproduce exactly (:func:`sqnn.engines.arithmetic.network_for`).

>>> sorted(ENGINES)
['hls4ml', 'onnx', 'packed', 'torch']
>>> ENGINES["onnx"].modes
('mean', 'deterministic')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sqnn.errors import SqnnError, option, phrase
from sqnn.runs import MODEL_FILE, Run

__all__ = ["ENGINES", "Engine", "EngineScorer", "engine", "timed_engines"]


@dataclass
class EngineScorer:
    """An engine set up for one run and one scoring: ``logit(features)`` per call and the size of what it runs."""

    logit: Callable[[np.ndarray], np.ndarray]
    model_bytes: int
    # K logits per event (stochastic inference draws), else one
    draws: bool = False


@dataclass(frozen=True)
class Engine:
    """One engine: its name, what it is, the inference modes it scores, and how its scorer is built."""

    name: str
    description: str
    modes: tuple[str, ...]
    # builds the scorer: (run, mode, samples, seed, device, threads) -> EngineScorer
    build: Callable[[Run, str, int, int, str | None, int], EngineScorer]
    # timed call by call by `sqnn bench` (the firmware's C simulation is a check, not a speed)
    timed: bool = True
    # what to say when asked for a mode it does not score
    refusal: str = ""

    def scorer(self, run: Run, mode: str, *, samples: int = 1, seed: int = 0, device: str | None = None,
               threads: int = 1) -> EngineScorer:
        if mode not in self.modes:
            raise SqnnError(self.refusal or f"the {self.name} engine scores {' or '.join(self.modes)}, not {mode}")
        return self.build(run, mode, samples, seed, device, threads)


def _torch(run: Run, mode: str, samples: int, seed: int, device: str | None, threads: int) -> EngineScorer:
    size = (run.path / MODEL_FILE).stat().st_size
    if mode != "stochastic":
        return EngineScorer(lambda features: run.logit(features, inference=mode, device=device), size)
    # stochastic scoring draws from the LFSRs the firmware has, in the numpy emulation (the same bits)
    from sqnn.engines import lfsr
    from sqnn.engines.network import DeployedNetwork

    network = DeployedNetwork.from_run(run)
    source = lfsr.LFSRSource(seed, sum(network.widths))
    return EngineScorer(lambda features: lfsr.emulate(network, features, seed, samples, source=source).logit, size,
                        draws=True)


def _packed(run: Run, mode: str, samples: int, seed: int, device: str | None, threads: int) -> EngineScorer:
    from sqnn.engines.arithmetic import packed_engine

    if mode != "stochastic":
        packed = packed_engine(run, mode)
        if threads == 1:
            return EngineScorer(packed.logit, packed.model_bytes)
        return EngineScorer(lambda x: packed.logit(x, threads=threads), packed.model_bytes)
    from sqnn.engines.network import DeployedNetwork
    from sqnn.engines.packed import PackedEngine

    stepped = PackedEngine(DeployedNetwork.from_run(run))
    stepped.reset(seed)
    return EngineScorer(lambda x: stepped.logit(x, inference="stochastic", samples=samples), stepped.model_bytes,
                        draws=True)


def _onnx(run: Run, mode: str, samples: int, seed: int, device: str | None, threads: int) -> EngineScorer:
    from sqnn.engines.onnx_export import OnnxEngine

    onnx = OnnxEngine.from_run(run, threads=threads, inference=mode)
    return EngineScorer(onnx.logit, onnx.model_bytes)


def _hls4ml(run: Run, mode: str, samples: int, seed: int, device: str | None, threads: int) -> EngineScorer:
    """The firmware's C simulation, exported and compiled once into a folder removed with the scorer.

    It computes the network in its own scoring (a fixed-point network by its mean or
    thresholded, a step network thresholded); the logit is read before hls4ml's sigmoid,
    which is a lookup table.
    """
    import shutil
    import tempfile
    import weakref

    from sqnn.engines.arithmetic import network_for
    from sqnn.engines.hls import compile_export, export_hls

    network = network_for(run, mode)
    folder = tempfile.mkdtemp(prefix="sqnn-hls4ml-")
    try:
        export = export_hls(network, folder, inference=mode)
        compile_export(export)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise

    def logit(features: np.ndarray) -> np.ndarray:
        return np.asarray(export.model.predict(np.ascontiguousarray(export.inputs(features))), dtype=np.float64).reshape(-1)

    # the compiled project lives as long as the scorer
    weakref.finalize(logit, shutil.rmtree, folder, True)
    return EngineScorer(logit, _folder_bytes(Path(folder)))


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


ENGINES: dict[str, Engine] = {
    engine.name: engine
    for engine in (
        Engine("torch", "the Python model (torch; stochastic draws in the numpy LFSR emulation)",
               ("mean", "deterministic", "stochastic"), _torch),
        Engine("packed", "the bit-packed CPU engine (numba)", ("mean", "deterministic", "stochastic"), _packed),
        Engine("onnx", "the ONNX graph in onnxruntime", ("mean", "deterministic"), _onnx,
               refusal=f"the ONNX graph is deterministic or the expectation (mean); use {option('engine', 'packed', repr('packed'))} "
                       f"(or torch) for {option('inference', 'stochastic', repr('stochastic'))}"),
        Engine("hls4ml", "the hls4ml firmware's C simulation", ("mean", "deterministic"), _hls4ml, timed=False,
               refusal="the firmware scorer runs the deterministic or mean network; check stochastic firmware with "
                       + phrase("export_run(..., check=N)", "sqnn export --check")),
    )
}


def engine(name: str) -> Engine:
    """The engine called ``name``, or one line naming the choices."""
    if name not in ENGINES:
        raise SqnnError(f"unknown engine {name!r}; choose from {', '.join(ENGINES)}")
    return ENGINES[name]


def timed_engines() -> tuple[str, ...]:
    return tuple(name for name, described in ENGINES.items() if described.timed)


def describe() -> dict[str, Any]:
    """Every engine with the modes it scores (for help texts and documentation)."""
    return {name: {"description": e.description, "modes": list(e.modes), "timed": e.timed} for name, e in ENGINES.items()}
