"""One scoring function for `sqnn predict` and `sqnn evaluate`, whatever the engine and the inference mode."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sqnn.engines.registry import ENGINES, engine
from sqnn.errors import SqnnError, option
from sqnn.nn.layers import INFERENCE_MODES
from sqnn.runs import Run

__all__ = ["make_scorer", "ENGINES", "INFERENCE"]

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
    run: Run, engine_name: str = "torch", inference: str | None = None, samples: int = 1, seed: int = 0,
    device: str | None = None,
) -> Scorer:
    """features → {"logit", "score"} (and "vote" for stochastic inference), calls in file order.

    ``engine_name`` is one of :data:`~sqnn.engines.registry.ENGINES`. ``inference`` defaults
    to the network's own mode (``network.inference`` in ``model.json``). ``mean`` (the
    expected logit over the Bernoulli code) runs on every engine for a fixed-point network
    (``network.fixed_point``), bit for bit; for a float network on torch and ONNX only: the
    packed engine computes step units, so it asks for ``--inference deterministic`` rather
    than silently giving different scores.

    Stochastic inference draws from the LFSRs of :mod:`sqnn.engines.lfsr`; the sequence
    continues from call to call, so the result does not depend on how the events are
    split into files or chunks. ``device`` moves the torch engine's scoring (e.g. to a GPU).
    ``--engine packed`` runs it in numba, ``--engine torch`` in the numpy emulation (same bits).
    """
    chosen = engine(engine_name)
    mode = run.default_inference if inference is None else inference
    if mode not in INFERENCE:
        raise SqnnError(f"inference must be one of {', '.join(INFERENCE)}, got {mode!r}")
    if samples < 1:
        raise SqnnError(f"{option('samples')} must be at least 1, got {samples}")
    scorer = chosen.scorer(run, mode, samples=samples, seed=seed, device=device)
    if scorer.draws:
        return lambda features: _stochastic_columns(scorer.logit(features))
    return lambda features: _columns(scorer.logit(features))
