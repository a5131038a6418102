"""`disco`: distance correlation (Székely et al. 2007; DisCo, Kasieczka & Shih 2020) between
the classifier output and the domain.

The penalty is the squared, event-weighted distance correlation dCor²(score, S) between
the classifier's probability — as the trained network will report it, the expected logit
under ``mean`` inference (:meth:`Objective.served_logits`) — and the domain label S
(0 simulation, 1 data) on the
events of the batch, each domain carrying half of the total weight. It is 0 exactly
when the score distribution is the same in both domains (for positive weights).

Memory: the pairwise distance matrices are O(n²) for n events. A training batch is
small (2 × batch size) and is used whole; a larger set of events (the validation
split the loop monitors) is cut into interleaved blocks of at most ``block_events``
events each, with both domains in every block, and the blocks' values are averaged —
so no call ever holds more than ``block_events``² numbers per matrix.

Options: ``block_events`` (default 2048).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from sqnn.data.splits import domain_labels
from sqnn.info import Reduce
from sqnn.labels import Penalty
from sqnn.methods.base import Batch, Objective
from sqnn.schema import Integer

__all__ = ["DisCo", "distance_correlation", "domain_blocks"]


def _centred_distances(x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """|x_i − x_j| doubly centred with the event probabilities ``p`` (sum 1)."""
    distance = (x.reshape(-1, 1) - x.reshape(1, -1)).abs()
    row = distance @ p  # Σ_j p_j a_ij
    grand = p @ row
    return distance - row.reshape(-1, 1) - row.reshape(1, -1) + grand


def distance_correlation(x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Squared weighted distance correlation dCor²(x, y) of two 1-d variables, in [0, 1].

    With ``weight`` the events enter as a weighted empirical distribution; a weight of 2
    is the same as the event appearing twice. 0 when either variable is constant.
    """
    x, y = x.reshape(-1), y.reshape(-1).to(x.dtype)
    w = x.new_ones(x.shape[0]) if weight is None else weight.reshape(-1).to(x.dtype)
    total = w.sum()
    if x.shape[0] < 2 or float(total.detach()) <= 0:
        return x.sum() * 0.0
    p = w / total
    a, b = _centred_distances(x, p), _centred_distances(y, p)

    def covariance(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return p @ (u * v) @ p

    denominator = (covariance(a, a) * covariance(b, b)).clamp(min=0.0).sqrt()
    if float(denominator.detach()) <= 1e-12:
        return x.sum() * 0.0
    return covariance(a, b) / denominator


def domain_blocks(n_simulation: int, n_data: int, block_events: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Split event indices of each domain into the same number of interleaved blocks.

    Each block holds at most ``block_events`` events in total (±1 per domain) and
    events of both domains whenever both are present.
    """
    n_blocks = max(1, math.ceil((n_simulation + n_data) / max(2, block_events)))
    return [
        (torch.arange(k, n_simulation, n_blocks), torch.arange(k, n_data, n_blocks)) for k in range(n_blocks)
    ]


def _balanced(weight: torch.Tensor) -> torch.Tensor:
    total = weight.sum()
    return weight / total if float(total) > 0 else torch.zeros_like(weight)


class DisCo(Objective):
    name = "disco"
    summary = "distance correlation between the classifier output and the domain"
    uses_data = True
    # pairwise distances need every event of the batch, not sums over them
    distributable = False
    option_rules = {"block_events": Integer(4, 1 << 20)}
    default_network: dict[str, Any] = {"hidden": [64, 16], "stochastic": [False, True], "binary_weights": [False, False]}
    strengths = (1.0, 3.0, 10.0, 30.0)
    strength_symbol = "λ"
    penalty_label = Penalty("dCor²", "dCor²")
    colour = "#CC79A7"
    demo = ("full",)

    def __init__(self, gamma: float = 10.0, **options: Any) -> None:
        super().__init__(gamma, **options)
        self.block_events = int(self.options.get("block_events", 2048))

    def penalty(self, batch: Batch, reduce: Reduce | None = None) -> dict[str, torch.Tensor]:
        sim_logit, data_logit = self.served_logits(batch)
        sim_score, data_score = torch.sigmoid(sim_logit), torch.sigmoid(data_logit)
        values, sizes = [], []
        for sim_index, data_index in domain_blocks(len(sim_score), len(data_score), self.block_events):
            score = torch.cat([sim_score[sim_index], data_score[data_index]])
            domain = torch.from_numpy(domain_labels(len(sim_index), len(data_index))).to(score.device, score.dtype)
            weight = torch.cat([_balanced(batch.sim_weight[sim_index]), _balanced(batch.data_weight[data_index])])
            values.append(distance_correlation(score, domain, weight))
            sizes.append(len(sim_index) + len(data_index))
        size = torch.tensor(sizes, dtype=sim_score.dtype, device=sim_score.device)
        value = (torch.stack(values) * size).sum() / size.sum()
        return {"penalty": value, "dcor2": value.detach()}
