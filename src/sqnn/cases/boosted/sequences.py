"""Sequences of hard events and the files made from them: what a sequence is, how it is seeded.

An :class:`EventSequence` is the hard events of one generator setting, seeded from ``seed`` and
``keys``; an :class:`Output` is one file of jets of one reconstruction of a sequence. The last
key of every derived seed says what the seed is for (``*_CODE``); :func:`chunk_seeds` and
:func:`pool_seed` are the seeds of a chunk sequence (a lane sequence's per-worker seeds are
derived where a worker starts its run, :mod:`sqnn.cases.boosted.worker`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqnn.cases import _pythia
from sqnn.cases.boosted.physics import CLASS_CODE, GeneratorSettings, Reconstruction
from sqnn.cases.boosted.tag_and_probe import TagEfficiencies
from sqnn.errors import SqnnError

__all__ = [
    "CHUNK_EVENTS",
    "MAX_SEED",
    "MAX_SEQUENCE_CODE",
    "MAX_WORKERS",
    "Output",
    "EventSequence",
    "chunk_seeds",
    "make_sequence",
    "pool_seed",
]

FORMAT_VERSION = 1

# the last key of a seed derivation says what the seed is for
PILEUP_CODE = 2
SHUFFLE_CODE = 3
INIT_CODE = 4
CHUNK_CODE = 5
DETECTOR_CODE = 6
MAX_SEED = 2**32 - 1
MAX_WORKERS = 255
MAX_SEQUENCE_CODE = 2**18 - 1

CHUNK_EVENTS = 200


@dataclass(frozen=True)
class Output:
    """One file: the jets of one reconstruction, ``n_signal`` + ``n_background`` of them."""

    path: Path
    reconstruction: Reconstruction
    n_signal: int
    n_background: int
    domain: str
    # the fraction asked for, as recorded in the metadata (n_signal is its rounded share of n)
    signal_fraction: float
    # extra metadata under the key "sample" (suite files: the sequence, role, request hash)
    sample: dict[str, Any] | None = None
    # the efficiencies of the tag column; None: the domain's of `sqnn generate`
    tag: TagEfficiencies | None = None

    @property
    def n(self) -> int:
        return self.n_signal + self.n_background

    @property
    def tag_efficiencies(self) -> TagEfficiencies:
        return TagEfficiencies.of_domain(self.domain) if self.tag is None else self.tag


@dataclass(frozen=True)
class EventSequence:
    """Hard events of one generator setting, seeded from ``seed`` and ``keys``.

    ``lanes`` True: the historical single-file layout (one Pythia run per worker lane; the
    only use of ``workers`` in what is generated). ``code`` goes into the event ids.
    """

    process: str
    generator: GeneratorSettings
    seed: int
    keys: tuple[int, ...]
    code: int
    parts: Path
    lanes: bool
    workers: int = 1
    constituents: bool = False
    variants: tuple[Reconstruction, ...] = ()
    # lane sequences: the jets of each class that each lane makes
    needs: tuple[dict[str, list[int]], ...] = ()
    # chunk sequences: the (class, chunk, variant indices) each worker makes in this pass
    tasks: tuple[tuple[tuple[str, int, tuple[int, ...]], ...], ...] = ()

    def to_json(self) -> str:
        values = {
            **{name: getattr(self, name) for name in ("process", "seed", "code", "lanes", "workers", "constituents")},
            "generator": self.generator.to_dict(),
            "keys": list(self.keys),
            "parts": str(self.parts),
            "variants": [variant.to_dict() for variant in self.variants],
            "needs": list(self.needs),
            "tasks": [[list(task[:2]) + [list(task[2])] for task in tasks] for tasks in self.tasks],
        }
        return json.dumps(values)

    @classmethod
    def from_json(cls, text: str) -> EventSequence:
        values = json.loads(text)
        return cls(
            **{name: values[name] for name in ("process", "seed", "code", "lanes", "workers", "constituents")},
            generator=GeneratorSettings.from_dict(values["generator"]),
            keys=tuple(values["keys"]),
            parts=Path(values["parts"]),
            variants=tuple(Reconstruction.from_dict(v) for v in values["variants"]),
            needs=tuple(values["needs"]),
            tasks=tuple(tuple((task[0], task[1], tuple(task[2])) for task in tasks) for tasks in values["tasks"]),
        )

    def variant_dir(self, index: int) -> Path:
        # a lane sequence has one reconstruction and keeps its chunks at the top
        return self.parts if self.lanes else self.parts / self.variants[index].key()

    def manifest(self) -> dict[str, Any]:
        """What the events of the kept chunks depend on; a rerun must match it."""
        wanted = {
            "format": FORMAT_VERSION,
            "process": self.process,
            "generator": self.generator.to_dict(),
            "seed": self.seed,
            "keys": list(self.keys),
            "code": self.code,
            "constituents": self.constituents,
        }
        if self.lanes:
            wanted.update(workers=self.workers, variant=self.variants[0].to_dict(), needs=list(self.needs))
        return wanted


def make_sequence(process: str, generator: GeneratorSettings, seed: int, keys: Sequence[int], code: int,
                  parts: Path, *, workers: int = 1, constituents: bool = False) -> EventSequence:
    """A chunk sequence (see :mod:`sqnn.cases.boosted`); its outputs are made by :func:`sqnn.cases.boosted.produce`."""
    if not 0 <= code <= MAX_SEQUENCE_CODE:
        raise SqnnError(f"sequence code {code} is outside 0..{MAX_SEQUENCE_CODE}")
    return EventSequence(process=process, generator=generator, seed=int(seed), keys=tuple(int(k) for k in keys),
                         code=int(code), parts=Path(parts), lanes=False, workers=int(workers),
                         constituents=bool(constituents))


def chunk_seeds(sequence: EventSequence, which: str, chunk: int) -> dict[str, Any]:
    return {
        "init": _pythia.derive_seed(sequence.seed, *sequence.keys, CLASS_CODE[which], INIT_CODE),
        "pythia": _pythia.derive_seed(sequence.seed, *sequence.keys, CLASS_CODE[which], CHUNK_CODE, chunk),
        "pileup": [sequence.seed, *sequence.keys, CLASS_CODE[which], chunk, PILEUP_CODE],
        "detector": [sequence.seed, *sequence.keys, CLASS_CODE[which], chunk, DETECTOR_CODE],
    }


def pool_seed(sequence: EventSequence) -> int:
    return _pythia.derive_seed(sequence.seed, *sequence.keys, PILEUP_CODE)
