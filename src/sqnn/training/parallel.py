"""Process-group primitives for data-parallel training (``torchrun``, DistributedDataParallel).

Every process loads the same files, draws the same sequence of global batches (same
seed) and takes its own contiguous slice of each one; DistributedDataParallel averages
the gradients. The information penalty is the one of the **global** batch: its event
sums are added over the processes with :func:`all_reduce_sum` before any entropy is
taken (:mod:`sqnn.info`), so a batch split over W processes gives the same penalty and,
after the average, the same gradient as one process holding the whole batch. Only the
first process (rank 0) writes checkpoints, the run directory and its metrics
(:func:`sqnn.workflows.train.train_run` with ``distributed=True``).

Launch (one machine, two processes, ``gloo`` on CPU)::

    torchrun --nproc_per_node 2 -m sqnn train --distributed --sim sim.parquet --data data.parquet \\
        --label is_signal --out runs/ddp

The backend follows the device of the tensors: ``gloo`` on CPU, ``nccl`` on a GPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from sqnn.errors import SqnnError, option, phrase
from sqnn.methods import Objective

__all__ = [
    "Context",
    "all_reduce_sum",
    "backend_for",
    "context",
    "init_from_environment",
    "local_rank",
    "require_supported",
    "shutdown",
]

# torchrun sets these for every process it starts
_ENVIRONMENT = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
# how a distributed training is started, in the terms of the one who asked for it
_LAUNCH = phrase("torchrun --nproc_per_node 2 SCRIPT.py, where SCRIPT.py calls train_run(..., distributed=True)",
                 "torchrun --nproc_per_node 2 -m sqnn train --distributed ...")
_DISTRIBUTED = option("distributed", python_value="True")


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes; the backward sums the incoming gradients over processes too.

    Written here rather than taken from ``torch.distributed.nn.functional.all_reduce``
    (same forward and backward), which torch 2.13 deprecates in favour of a private module.
    """

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:  # noqa: ARG004 - autograd signature
        total = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # noqa: ARG004 - autograd signature
        total = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Differentiable sum of ``tensor`` over all processes of the default group.

    The backward returns the sum over processes of the gradients arriving there: the
    gradient of Σ_processes loss. With a penalty P computed from the reduced sums on every
    process, each process gets W·∂P/∂(its inputs), and DistributedDataParallel's average
    over the W processes leaves exactly ∂P/∂(parameters) of the global batch.
    """
    return _AllReduceSum.apply(tensor)


def local_rank() -> int:
    """This process's index on its machine (torchrun's ``LOCAL_RANK``), the GPU it trains on."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def backend_for(device: torch.device | str = "cpu") -> str:
    """``nccl`` for tensors on a GPU, ``gloo`` for tensors on the CPU."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


@dataclass(frozen=True)
class Context:
    """Where this process stands in the group."""

    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, n: int) -> slice:
        """This process's contiguous part of ``n`` events (sizes differ by at most one)."""
        base, extra = divmod(n, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (1 if self.rank < extra else 0))

    def sampling_seed(self, seed: int, epoch: int) -> int:
        """Seed of this process's Bernoulli draws in ``epoch``: independent per process, resumable."""
        return int(np.random.SeedSequence([int(seed), 104729, self.rank, int(epoch)]).generate_state(1, np.uint64)[0] >> 1)

    def from_main(self, value: Any) -> Any:
        """Rank 0's ``value`` on every process (a picklable object), so all take the same decisions."""
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum of a (non-differentiated) tensor over processes (on this process's GPU under nccl)."""
        total = values.detach().clone()
        if dist.get_backend() == "nccl":
            total = total.to(torch.device("cuda", local_rank()))
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total.cpu()

    def barrier(self) -> None:
        dist.barrier()


def context() -> Context:
    """The group this process belongs to; the process group must be initialised."""
    if not (dist.is_available() and dist.is_initialized()):
        raise SqnnError(
            f"distributed training needs a process group: start it with torchrun ({_LAUNCH})"
        )
    return Context(rank=dist.get_rank(), world_size=dist.get_world_size())


def init_from_environment(backend: str | None = None) -> Context:
    """Join the process group that ``torchrun`` describes in the environment (idempotent)."""
    if not dist.is_available():
        raise SqnnError(f"this torch build has no torch.distributed; {_DISTRIBUTED} is not available")
    if not dist.is_initialized():
        missing = [name for name in _ENVIRONMENT if name not in os.environ]
        if missing:
            raise SqnnError(
                f"{_DISTRIBUTED} runs under torchrun, which sets {', '.join(missing)}: {_LAUNCH}"
            )
        dist.init_process_group(backend=backend or backend_for("cpu"))
    return context()


def shutdown() -> None:
    """Leave the process group (no-op when none is initialised)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def require_supported(objective: Objective) -> None:
    """Refuse objectives whose penalty cannot be reduced to the global batch.

    The classification loss alone (``source-only``, ``mlp``) and the SQNN information
    penalty are sums over events; the pairwise statistics of ``disco`` and ``mmd`` and the
    domain head of ``dann`` would need the events of every process, not their sums.
    """
    if objective.own_trainer:
        raise SqnnError(f"method {objective.name!r} is not a network; it does not train with {_DISTRIBUTED}")
    if objective.uses_data and not objective.distributable:
        raise SqnnError(
            f"method {objective.name!r} does not support {_DISTRIBUTED} (its penalty is not a sum over events); "
            "use sqnn, source-only or mlp, or train it in one process"
        )
