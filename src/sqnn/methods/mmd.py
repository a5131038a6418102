"""`mmd`: maximum mean discrepancy (Gretton et al. 2012) between the simulation and data
representations.

The penalty is the event-weighted squared MMD, with a sum of Gaussian kernels
k(a, b) = Σ_σ exp(−|a − b|² / (2σ²)), between the penalised layer (the layer the sqnn
penalty acts on, as the network passes it on when it scores:
:meth:`Objective.served_representation`) in simulation and in data:

    MMD² = Σ_ij p_i p_j k(s_i, s_j) + Σ_ij q_i q_j k(d_i, d_j) − 2 Σ_ij p_i q_j k(s_i, d_j)

with p, q each domain's weights normalised to sum 1. The bandwidths 2σ² are the
median pairwise squared distance of the events (the median heuristic, taken without
gradient) times ``bandwidths`` (default 0.25, 1, 4), so the kernel adapts to the
layer's scale.

Memory is bounded as for ``disco``: more than ``block_events`` events are cut into
interleaved blocks with both domains and the blocks' values averaged.

Options: ``bandwidths`` (a list of factors), ``block_events`` (default 2048).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from sqnn.info import Reduce
from sqnn.labels import Penalty
from sqnn.methods.base import READS, Batch, Objective
from sqnn.methods.disco import domain_blocks
from sqnn.schema import Integer, Real
from sqnn.schema import Sequence as Several

__all__ = ["MMD", "mmd_squared", "DEFAULT_BANDWIDTHS"]

DEFAULT_BANDWIDTHS = (0.25, 1.0, 4.0)


def _squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.pow(2).sum(1).reshape(-1, 1) + b.pow(2).sum(1).reshape(1, -1) - 2 * a @ b.T).clamp(min=0.0)


def mmd_squared(
    simulation: torch.Tensor,
    data: torch.Tensor,
    sim_weight: torch.Tensor | None = None,
    data_weight: torch.Tensor | None = None,
    bandwidths: Sequence[float] = DEFAULT_BANDWIDTHS,
    scale: float | None = None,
) -> torch.Tensor:
    """Weighted MMD² (biased V-statistic) between two sets of vectors (N, d) and (M, d).

    The kernels' 2σ² are ``bandwidths`` times ``scale``, by default the median pairwise
    squared distance. 0 when either set is empty or has non-positive total weight.
    """
    simulation = simulation.reshape(len(simulation), -1)
    data = data.reshape(len(data), -1).to(simulation.dtype)
    zero = simulation.sum() * 0.0 + data.sum() * 0.0
    if len(simulation) == 0 or len(data) == 0:
        return zero
    p = simulation.new_ones(len(simulation)) if sim_weight is None else sim_weight.to(simulation.dtype)
    q = simulation.new_ones(len(data)) if data_weight is None else data_weight.to(simulation.dtype)
    if float(p.sum()) <= 0 or float(q.sum()) <= 0:
        return zero
    p, q = p / p.sum(), q / q.sum()
    d_ss = _squared_distances(simulation, simulation)
    d_dd = _squared_distances(data, data)
    d_sd = _squared_distances(simulation, data)
    if scale is None:
        with torch.no_grad():
            pooled = torch.cat([d_ss.reshape(-1), d_dd.reshape(-1), d_sd.reshape(-1)])
            scale = float(pooled.median())
        scale = scale if scale > 1e-9 else 1.0
    value = zero
    for factor in bandwidths:
        inverse_width = 1.0 / (factor * scale)
        value = value + p @ torch.exp(-inverse_width * d_ss) @ p + q @ torch.exp(-inverse_width * d_dd) @ q
        value = value - 2.0 * (p @ torch.exp(-inverse_width * d_sd) @ q)
    return value


class MMD(Objective):
    name = "mmd"
    summary = "the maximum mean discrepancy of the representation between the domains"
    uses_data = True
    # the kernel sums run over pairs of events of the whole batch, not sums over events
    distributable = False
    option_rules = {
        "bandwidths": Several(Real(1e-6, 1e6), 1, 16),
        "block_events": Integer(4, 1 << 20),
        "reads": READS,
    }
    default_network: dict[str, Any] = {"hidden": [64, 16], "stochastic": [False, True], "binary_weights": [False, False]}
    strengths = (0.3, 1.0, 3.0, 10.0)
    strength_symbol = "λ"
    penalty_label = Penalty("MMD²", "MMD²")
    colour = "#009E73"
    demo = ("full",)

    def __init__(self, gamma: float = 1.0, **options: Any) -> None:
        super().__init__(gamma, **options)
        self.bandwidths = tuple(float(b) for b in self.options.get("bandwidths", DEFAULT_BANDWIDTHS))
        self.block_events = int(self.options.get("block_events", 2048))

    def penalty(self, batch: Batch, reduce: Reduce | None = None) -> dict[str, torch.Tensor]:
        sim_output, data_output = self.served_representation(batch)
        values, sizes = [], []
        for sim_index, data_index in domain_blocks(len(sim_output), len(data_output), self.block_events):
            values.append(
                mmd_squared(
                    sim_output[sim_index],
                    data_output[data_index],
                    batch.sim_weight[sim_index],
                    batch.data_weight[data_index],
                    self.bandwidths,
                )
            )
            sizes.append(len(sim_index) + len(data_index))
        size = torch.tensor(sizes, dtype=sim_output.dtype, device=sim_output.device)
        value = (torch.stack(values) * size).sum() / size.sum()
        return {"penalty": value, "mmd2": value.detach()}
