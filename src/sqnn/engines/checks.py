"""Parity checks: every deployment format against the torch model (or the LFSR emulation), bit by bit.

A check compares the decisions (logit > 0) and every step layer's bits on N events and
passes only when all of them are identical.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sqnn.engines.network import require_network
from sqnn.errors import SqnnError, option
from sqnn.nn import BernoulliActivation
from sqnn.runs import Run

__all__ = ["Parity", "torch_outputs", "check_events", "require_network", "check_packed", "check_onnx"]


@dataclass
class Parity:
    """Agreement of one format with its reference on N events."""

    format: str
    reference: str
    events: int
    decision_agreement: float
    hidden_agreement: list[float]
    logit_max_abs_diff: float
    samples: int = 1
    logit_reference: str = ""  # what the logit difference is taken against, when not ``reference``
    hidden: str = "bits"  # what hidden_agreement compares: step bits, or a fixed-point network's codes
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.decision_agreement == 1.0 and all(h == 1.0 for h in self.hidden_agreement)

    def summary(self) -> str:
        bits = ", ".join(f"{100 * a:.3f} %" for a in self.hidden_agreement) or "none"
        samples = f" × {self.samples} samples" if self.samples > 1 else ""
        against = f" (vs {self.logit_reference})" if self.logit_reference else ""
        return (
            f"{self.format} vs {self.reference} on {self.events} events{samples}: decisions "
            f"{100 * self.decision_agreement:.3f} % identical, hidden {self.hidden} {bits}, max |Δlogit|{against} "
            f"{self.logit_max_abs_diff:.3g} — {'PASS' if self.passed else 'FAIL'}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def torch_outputs(run: Run, features: np.ndarray, inference: str = "deterministic") -> tuple[np.ndarray, list[np.ndarray]]:
    """Logits and hidden outputs from the torch model itself, scored ``inference``.

    A step network gives the bits of every step layer (bool). A fixed-point network gives
    every hidden layer's codes (int64) as :mod:`sqnn.engines.fixed_network` defines them:
    ReLU outputs in units of their lsb, θ levels m = 2^B θ_q (a thresholded unit: 2^B · bit).
    """
    model = require_network(run)
    fixed_point = model.config.fixed_point
    if fixed_point is not None:
        grids = fixed_point.grids()
        scales = [2.0 ** (fixed_point.theta_bits if grid is None else grid.fractional) for grid in grids.activations]
        convert = lambda i, out: np.rint(out.detach().double().numpy() * scales[i]).astype(np.int64)  # noqa: E731
        watched = list(range(len(model.activations)))
    else:
        convert = lambda i, out: out.detach().numpy() > 0.5  # noqa: E731
        watched = [i for i, a in enumerate(model.activations) if isinstance(a, BernoulliActivation)]
    captured: dict[int, list[np.ndarray]] = {i: [] for i in watched}
    hooks = [
        # a Bernoulli layer asked for θ too returns (output, θ): the output is what the next layer reads
        model.activations[i].register_forward_hook(
            lambda module, args, output, i=i: captured[i].append(convert(i, output[0] if isinstance(output, tuple) else output))
        )
        for i in watched
    ]
    try:
        logit = run.logit(features, inference=inference)
    finally:
        for hook in hooks:
            hook.remove()
    outputs = [np.concatenate(captured[i]) if captured[i] else np.zeros((0, 0), dtype=bool) for i in watched]
    return logit, outputs


def check_events(run: Run, n: int, events_file: str | Path | None = None, seed: int = 0) -> np.ndarray:
    """The first ``n`` events of a file (the run's feature columns), or ``n`` random events over the preprocessing ranges."""
    if n < 1:
        raise SqnnError(f"{option('check')} needs a positive number of events, got {n}")
    if events_file is None:
        from sqnn.engines.bench import random_events

        return random_events(run, n, seed)
    from sqnn.data import ColumnSpec, load_sample

    sample = load_sample(events_file, ColumnSpec(features=tuple(run.features)), "data")
    if len(sample) < n:
        raise SqnnError(f"{events_file}: holds {len(sample)} events, fewer than {option('check', str(n), str(n))}")
    return np.asarray(sample.features[:n], dtype=np.float64)


def _agreement(a: list[np.ndarray], b: list[np.ndarray]) -> list[float]:
    return [float((x.reshape(len(x), -1) == y.reshape(len(y), -1)).mean()) if x.size else 1.0 for x, y in zip(a, b)]


def check_packed(run: Run, directory: str | Path, features: np.ndarray, *, inference: str = "deterministic",
                 samples: int = 1, seed: int = 0) -> Parity:
    """The packed export read back from ``directory`` against torch (or, stochastic, the LFSR emulation).

    A fixed-point export is compared in its own scoring: decisions and every layer's codes.
    """
    from sqnn.engines import lfsr
    from sqnn.engines.arithmetic import load_packed
    from sqnn.engines.packed_fixed import FixedPackedEngine

    engine = load_packed(directory)
    if isinstance(engine, FixedPackedEngine):
        reference_logit, reference_codes = torch_outputs(run, features, engine.scoring)
        logit = engine.logit(features)
        return Parity(
            format="packed", reference=f"torch ({engine.scoring})", events=len(features), hidden="codes",
            decision_agreement=float(((logit > 0) == (reference_logit > 0)).mean()),
            hidden_agreement=_agreement(engine.hidden_codes(features), reference_codes),
            logit_max_abs_diff=float(np.abs(logit - reference_logit).max()) if len(logit) else 0.0,
        )
    if inference == "stochastic":
        logits, bits = engine.stochastic(features, samples, seed=seed)
        emulation = lfsr.emulate(engine.network, features, seed, samples)
        return Parity(
            format="packed", reference="LFSR emulation (numpy)", events=len(features), samples=samples,
            decision_agreement=float(((logits > 0) == (emulation.logit > 0)).mean()),
            hidden_agreement=_agreement(bits, emulation.hidden),
            logit_max_abs_diff=float(np.abs(logits - emulation.logit).max()),
        )
    reference_logit, reference_bits = torch_outputs(run, features)
    logit = engine.logit(features)
    return Parity(
        format="packed", reference="torch", events=len(features),
        decision_agreement=float(((logit > 0) == (reference_logit > 0)).mean()),
        hidden_agreement=_agreement(engine.hidden_bits(features), reference_bits),
        logit_max_abs_diff=float(np.abs(logit - reference_logit).max()),
    )


def check_onnx(run: Run, path: str | Path, features: np.ndarray, inference: str | None = None) -> Parity:
    """The written ONNX file's decisions, and the hidden outputs of the same graph, against torch.

    Hidden outputs compared: a step network's bits, a fixed-point network's codes; the θ
    of a float network scored by its mean are floats, so only its decisions are compared.
    """
    from sqnn.engines.onnx_export import OnnxEngine

    mode = run.default_inference if inference is None else inference
    model = require_network(run)
    reference_logit, reference_hidden = torch_outputs(run, features, mode)
    logit = OnnxEngine(path).logit(features)
    graph = OnnxEngine.from_run(run, with_hidden=True, inference=mode)
    if model.config.fixed_point is not None:
        hidden = graph.hidden_codes(features)
    elif mode == "mean":
        hidden, reference_hidden = [], []
    else:
        steps = [isinstance(a, BernoulliActivation) for a in model.activations]
        hidden = [h for h, step in zip(graph.hidden_bits(features), steps) if step]
    return Parity(
        format="onnx", reference="torch" if mode == "deterministic" else f"torch ({mode})", events=len(features),
        hidden="codes" if model.config.fixed_point is not None else "bits",
        decision_agreement=float(((logit > 0) == (reference_logit > 0)).mean()),
        hidden_agreement=_agreement(hidden, reference_hidden),
        logit_max_abs_diff=float(np.abs(logit.astype(np.float64) - reference_logit).max()),
    )
