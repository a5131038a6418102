"""One scoring function for `sqnn predict`, whatever the engine and the inference mode."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sqnn.errors import SqnnError
from sqnn.nn.layers import INFERENCE_MODES
from sqnn.runs import Run

__all__ = ["make_scorer", "ENGINES", "INFERENCE"]

ENGINES = ("torch", "packed", "onnx", "hls4ml")
INFERENCE = INFERENCE_MODES
Scorer = Callable[[np.ndarray], dict[str, np.ndarray]]


def _columns(logit: np.ndarray) -> dict[str, np.ndarray]:
    logit = np.asarray(logit, dtype=np.float64)
    return {"logit": logit.astype(np.float32), "score": (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)}


def _stochastic_columns(logits: np.ndarray) -> dict[str, np.ndarray]:
    """K logits per event → score = mean σ(logit_k), logit = its inverse, vote = fraction of logit_k > 0."""
    score = (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).mean(1)
    clipped = np.clip(score, 1e-12, 1 - 1e-12)
    return {
        "logit": np.log(clipped / (1 - clipped)).astype(np.float32),
        "score": score.astype(np.float32),
        "vote": (logits > 0).mean(1).astype(np.float32),
    }


def make_scorer(
    run: Run, engine: str = "torch", inference: str | None = None, samples: int = 1, seed: int = 0, device: str | None = None
) -> Scorer:
    """features → {"logit", "score"} (and "vote" for stochastic inference), calls in file order.

    ``inference`` defaults to the network's own mode (``network.inference`` in
    ``model.json``). ``mean`` (the expected logit over the Bernoulli code) runs on every
    engine for a fixed-point network (``network.fixed_point``), bit for bit; for a float
    network on torch and ONNX only: the packed engine computes step units, so it asks for
    ``--inference deterministic`` rather than silently giving different scores.

    Stochastic inference draws from the LFSRs of :mod:`sqnn.engines.lfsr`; the sequence
    continues from call to call, so the result does not depend on how the events are
    split into files or chunks. ``device`` moves the torch engine's scoring (e.g. to a GPU).
    ``--engine packed`` runs it in numba, ``--engine torch``
    in the numpy emulation (same bits).
    """
    if engine not in ENGINES:
        raise SqnnError(f"unknown engine {engine!r}; choose from {', '.join(ENGINES)}")
    mode = run.default_inference if inference is None else inference
    if mode not in INFERENCE:
        raise SqnnError(f"inference must be one of {', '.join(INFERENCE)}, got {mode!r}")
    if samples < 1:
        raise SqnnError(f"--samples must be at least 1, got {samples}")
    if engine == "hls4ml":
        return _firmware_scorer(run, mode)
    if mode in ("mean", "deterministic"):
        if engine == "torch":
            return lambda features: _columns(run.logit(features, inference=mode, device=device))
        if engine == "packed":
            from sqnn.engines.arithmetic import packed_engine

            packed = packed_engine(run, mode)
            return lambda features: _columns(packed.logit(features))
        from sqnn.engines.onnx_export import OnnxEngine

        onnx = OnnxEngine.from_run(run, inference=mode)
        return lambda features: _columns(onnx.logit(features))
    if engine == "onnx":
        raise SqnnError("the ONNX graph is deterministic or the expectation (mean); use --engine packed (or torch) for --inference stochastic")
    from sqnn.engines import lfsr
    from sqnn.engines.network import DeployedNetwork

    network = DeployedNetwork.from_run(run)
    if engine == "packed":
        from sqnn.engines.packed import PackedEngine

        packed = PackedEngine(network)
        packed.reset(seed)
        return lambda features: _stochastic_columns(packed.logit(features, inference="stochastic", samples=samples))
    stream = lfsr.LFSRStream(seed, sum(network.widths))
    return lambda features: _stochastic_columns(lfsr.emulate(network, features, seed, samples, stream=stream).logit)


def _firmware_scorer(run: Run, mode: str) -> Scorer:
    """The hls4ml firmware's C simulation as a scorer: exported and compiled once, into a folder removed with it.

    It computes the network in its own scoring (a fixed-point network by its mean or
    thresholded, a step network thresholded); the logit is read before hls4ml's sigmoid,
    which is a lookup table.
    """
    import shutil
    import tempfile
    import weakref

    from sqnn.engines.arithmetic import network_for
    from sqnn.engines.hls import compile_export, export_hls

    if mode == "stochastic":
        raise SqnnError("the firmware scorer runs the deterministic or mean network; check stochastic firmware with sqnn export --check")
    network = network_for(run, mode)
    folder = tempfile.mkdtemp(prefix="sqnn-hls4ml-")
    try:
        export = export_hls(network, folder, inference=mode)
        compile_export(export)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise

    def score(features: np.ndarray) -> dict[str, np.ndarray]:
        logit = export.model.predict(np.ascontiguousarray(export.inputs(features)))
        return _columns(np.asarray(logit, dtype=np.float64).reshape(-1))

    # the compiled project lives as long as the scorer
    weakref.finalize(score, shutil.rmtree, folder, True)
    return score
