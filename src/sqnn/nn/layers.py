"""Building blocks: the Bernoulli (stochastically quantized) activation and binary weights."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import torch
from torch import nn

from sqnn.nn.quant import straight_through, theta_levels, theta_thresholds

__all__ = [
    "BernoulliActivation", "BinaryLinear", "INFERENCE_MODES", "Inference", "Outputs", "Scoring", "StochasticModule",
    "straight_through",
]

Inference = Literal["deterministic", "stochastic", "mean"]
INFERENCE_MODES = ("deterministic", "stochastic", "mean")


class Outputs(NamedTuple):
    """What one forward pass gives its caller.

    ``theta`` is θ of the penalised layer (its activations when that layer is not
    stochastic), ``output`` what that layer passed on (the drawn bits in training; θ,
    thresholds or draws at inference).
    """

    logit: torch.Tensor
    theta: torch.Tensor
    output: torch.Tensor


@dataclass(frozen=True)
class Scoring:
    """How the Bernoulli units of a network in eval mode behave for one call: the mode, the draws' source and count."""

    mode: Inference = "deterministic"
    generator: torch.Generator | None = None
    draws: int = 1

    @classmethod
    def of(cls, mode: str, seed: int | None = None, draws: int = 1) -> "Scoring":
        """A scoring; a seed makes stochastic draws repeatable. ``draws`` draws per unit are averaged."""
        if mode not in INFERENCE_MODES:
            raise ValueError(f"inference must be one of {', '.join(INFERENCE_MODES)}, got {mode!r}")
        if draws < 1:
            raise ValueError(f"draws must be at least 1, got {draws}")
        generator = torch.Generator().manual_seed(0 if seed is None else int(seed)) if mode == "stochastic" else None
        return cls(mode, generator, int(draws))  # type: ignore[arg-type]


class BernoulliActivation(nn.Module):
    """T = Bernoulli(θ), θ = σ(τ·z).

    Training draws ``samples`` Bernoulli samples per unit and forwards their mean with
    the straight-through estimator (gradient of θ), so K > 1 lowers the variance of the
    forward pass. At inference the unit is the threshold 1[θ > 0.5] = 1[z > 0]
    (``deterministic``), a seeded draw (``stochastic``, from ``generator``) or its
    expectation θ (``mean``): a linear layer after the last Bernoulli layer then gives the
    exact expected logit E_T[logit | x], the limit of averaging many stochastic passes.
    ``layer(z, with_theta=True)`` also returns θ, for the information penalty; nothing of a
    pass is kept on the layer. The mode it scores in is its own (``inference``, set with the
    network's :meth:`StochasticModule.set_inference`) unless a call gives a :class:`Scoring`.

    In a fixed-point network (:mod:`sqnn.nn.fixed`) ``levels`` = B and ``z_fractional``
    (the grid of z) are set: θ is then θ_q = m / 2^B, σ(τz) rounded to B bits through the
    thresholds of :func:`sqnn.nn.quant.theta_thresholds`, everywhere — draws, expectation
    and penalty — with the gradient of σ(τz) (straight-through).
    """

    def __init__(self, temperature: float = 6.0, samples: int = 1) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        if samples < 1:
            raise ValueError(f"samples must be at least 1, got {samples}")
        self.temperature = float(temperature)
        self.samples = int(samples)
        self.inference: Inference = "deterministic"
        # Bernoulli draws averaged per unit at stochastic inference (K draws of the firmware)
        self.draws = 1
        self.generator: torch.Generator | None = None
        self.levels: int | None = None
        self.z_fractional: int | None = None
        self._thresholds: dict[tuple[float, int, int], torch.Tensor] = {}

    def thresholds(self) -> torch.Tensor:
        """T_k of the θ table for the current temperature (float64, units of z's lsb)."""
        assert self.levels is not None and self.z_fractional is not None
        key = (self.temperature, self.levels, self.z_fractional)
        if key not in self._thresholds:
            self._thresholds[key] = torch.from_numpy(theta_thresholds(*key).astype(np.float64))
        return self._thresholds[key]

    def forward(
        self, z: torch.Tensor, scoring: Scoring | None = None, with_theta: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        theta = torch.sigmoid(self.temperature * z)
        if self.levels is not None and self.z_fractional is not None:
            quantized = theta_levels(z, self.thresholds(), self.z_fractional) / float(1 << self.levels)
            theta = straight_through(quantized, theta)
        output = self._output(z, theta, scoring)
        return (output, theta) if with_theta else output

    def _output(self, z: torch.Tensor, theta: torch.Tensor, scoring: Scoring | None) -> torch.Tensor:
        if self.training:
            draws = torch.rand((self.samples, *theta.shape), generator=self.generator, dtype=theta.dtype, device=theta.device)
            hard = (draws < theta).to(theta.dtype).mean(0)
            return straight_through(hard, theta)
        mode = self.inference if scoring is None else scoring.mode
        if mode == "stochastic":
            generator, count = (self.generator, self.draws) if scoring is None else (scoring.generator, scoring.draws)
            draws = torch.rand((count, *theta.shape), generator=generator, dtype=theta.dtype, device=theta.device)
            return (draws < theta).to(theta.dtype).mean(0)
        if mode == "mean":
            return theta
        return (z > 0).to(theta.dtype)

    def extra_repr(self) -> str:
        levels = "" if self.levels is None else f", theta_bits={self.levels}"
        return f"temperature={self.temperature}, samples={self.samples}{levels}"


class BinaryLinear(nn.Linear):
    """Linear layer with weights α·sign(W) (α = mean |W| of the layer), straight-through in training.

    The latent full-precision weights are what the optimiser updates; the forward pass
    sees only their signs and one scale per layer, as the packed engine and firmware do.
    """

    def binary_weight(self) -> torch.Tensor:
        w = self.weight
        scale = w.abs().mean()
        hard = torch.where(w >= 0, scale, -scale)
        return straight_through(hard, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.binary_weight(), self.bias)


class StochasticModule(nn.Module):
    """A network holding Bernoulli layers: one place to choose how all of them draw.

    ``forward(x)`` gives the logits; ``forward(x, outputs=True)`` the :class:`Outputs` of the
    pass (logit, θ of the penalised layer, what it passed on), and ``scoring`` a
    :class:`Scoring` for this call only. A pass leaves nothing on the module, so one network
    can score from several threads at once.
    """

    def outputs(self, x: torch.Tensor, scoring: Scoring | None = None) -> Outputs:
        """The :class:`Outputs` of a pass over events ``x``."""
        result = self(x, outputs=True, scoring=scoring)
        assert isinstance(result, Outputs)
        return result

    def representation(self, x: torch.Tensor, scoring: Scoring | None = None) -> torch.Tensor:
        """θ of the penalised layer for events ``x`` (the firing probabilities)."""
        return self.outputs(x, scoring).theta

    def finish_epoch(self) -> None:
        """The end of a training epoch: fix what training observed and the network needs from then on.

        Nothing by default; a fixed-point network whose grids are chosen from the data
        chooses them here, after its first epoch (:meth:`sqnn.nn.model.SQNN.finish_epoch`).
        """

    def bernoulli_layers(self) -> list[BernoulliActivation]:
        return [m for m in self.modules() if isinstance(m, BernoulliActivation)]

    def set_inference(self, mode: Inference, seed: int | None = None, draws: int = 1) -> None:
        """Choose how Bernoulli layers behave in eval mode; a seed makes stochastic draws repeatable.

        ``draws`` Bernoulli draws per unit are averaged at stochastic inference (K draws of
        the firmware averaged before the head).
        """
        scoring = Scoring.of(mode, seed, draws)
        for layer in self.bernoulli_layers():
            layer.inference = scoring.mode
            layer.generator = scoring.generator
            layer.draws = scoring.draws

    def set_training_generator(self, generator: torch.Generator | None) -> None:
        for layer in self.bernoulli_layers():
            layer.generator = generator
