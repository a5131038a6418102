"""Where tensors live: ``cpu``, ``cuda`` (or ``cuda:N``) or ``auto`` (a GPU when there is one).

The CPU is the deterministic reference: the same seed gives the same model, bit for bit.
A GPU run is seeded too (its Bernoulli draws come from a generator on the GPU, seeded per
epoch), so it is repeatable on the same card, and its metrics agree with the CPU's within
the spread over seeds; it does not reproduce the CPU's model bit for bit.
"""

from __future__ import annotations

import torch

from sqnn.errors import SqnnError, option

__all__ = ["DEVICES", "resolve_device"]

DEVICES = ("cpu", "cuda", "auto")


def resolve_device(name: str | torch.device | None) -> torch.device:
    """The torch device for ``name``; asking for a GPU that is not there is a one-line error."""
    if isinstance(name, torch.device):
        return name
    text = "cpu" if name is None else str(name)
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    kind, _, index = text.partition(":")
    if kind not in ("cpu", "cuda") or (index and not index.isdigit()) or (kind == "cpu" and index):
        raise SqnnError(f"{option('device')} must be cpu, cuda, cuda:N or auto, got {text!r}")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise SqnnError(
                f"{option('device', text, repr(text))}: this machine has no CUDA GPU that torch can use; "
                f"use {option('device', 'cpu', repr('cpu'))} or auto"
            )
        if index and int(index) >= torch.cuda.device_count():
            raise SqnnError(f"{option('device', text, repr(text))}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return torch.device(text)
