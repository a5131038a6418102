"""Building blocks: the Bernoulli (stochastically quantized) activation and binary weights."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import nn

from sqnn.nn.quant import straight_through, theta_levels, theta_thresholds

__all__ = ["BernoulliActivation", "BinaryLinear", "INFERENCE_MODES", "Inference", "StochasticModule", "straight_through"]

Inference = Literal["deterministic", "stochastic", "mean"]
INFERENCE_MODES = ("deterministic", "stochastic", "mean")


class BernoulliActivation(nn.Module):
    """T = Bernoulli(θ), θ = σ(τ·z).

    Training draws ``samples`` Bernoulli samples per unit and forwards their mean with
    the straight-through estimator (gradient of θ), so K > 1 lowers the variance of the
    forward pass. At inference the unit is the threshold 1[θ > 0.5] = 1[z > 0]
    (``deterministic``), a seeded draw (``stochastic``, from ``generator``) or its
    expectation θ (``mean``): a linear layer after the last Bernoulli layer then gives the
    exact expected logit E_T[logit | x], the limit of averaging many stochastic passes.
    The last θ is kept in ``self.theta`` for the information penalty.

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
        self.theta: torch.Tensor | None = None
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

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        theta = torch.sigmoid(self.temperature * z)
        if self.levels is not None and self.z_fractional is not None:
            quantized = theta_levels(z, self.thresholds(), self.z_fractional) / float(1 << self.levels)
            theta = straight_through(quantized, theta)
        self.theta = theta
        if self.training:
            draws = torch.rand((self.samples, *theta.shape), generator=self.generator, dtype=theta.dtype, device=theta.device)
            hard = (draws < theta).to(theta.dtype).mean(0)
            return straight_through(hard, theta)
        if self.inference == "stochastic":
            draws = torch.rand((self.draws, *theta.shape), generator=self.generator, dtype=theta.dtype, device=theta.device)
            return (draws < theta).to(theta.dtype).mean(0)
        if self.inference == "mean":
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

    ``forward`` must leave θ of the penalised layer (or its output when that layer is not
    stochastic) in ``self.representation_theta``.
    """

    representation_theta: torch.Tensor | None

    def representation(self, x: torch.Tensor) -> torch.Tensor:
        """θ of the penalised layer for events ``x`` (the firing probabilities)."""
        self.forward(x)
        assert self.representation_theta is not None
        return self.representation_theta

    def bernoulli_layers(self) -> list[BernoulliActivation]:
        return [m for m in self.modules() if isinstance(m, BernoulliActivation)]

    def set_inference(self, mode: Inference, seed: int | None = None, draws: int = 1) -> None:
        """Choose how Bernoulli layers behave in eval mode; a seed makes stochastic draws repeatable.

        ``draws`` Bernoulli draws per unit are averaged at stochastic inference (K draws of
        the firmware averaged before the head).
        """
        if mode not in INFERENCE_MODES:
            raise ValueError(f"inference must be one of {', '.join(INFERENCE_MODES)}, got {mode!r}")
        if draws < 1:
            raise ValueError(f"draws must be at least 1, got {draws}")
        generator = None
        if mode == "stochastic":
            generator = torch.Generator().manual_seed(0 if seed is None else int(seed))
        for layer in self.bernoulli_layers():
            layer.inference = mode
            layer.generator = generator
            layer.draws = draws

    def set_training_generator(self, generator: torch.Generator | None) -> None:
        for layer in self.bernoulli_layers():
            layer.generator = generator
