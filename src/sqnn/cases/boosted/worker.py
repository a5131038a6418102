"""What one worker does: run Pythia for its chunks and write each reconstructed chunk.

*Lanes* (a single file): the worker runs its own Pythia from its first chunk to its share of
the jets. *Chunks* (the suite): Pythia is initialised once per class and re-seeded at every
chunk, so a chunk holds the same events whichever worker makes it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sqnn.cases import _pythia
from sqnn.cases.boosted import sequences
from sqnn.cases.boosted.jets import jet_table, reconstruct
from sqnn.cases.boosted.parts import part_name, scan_parts, write_part
from sqnn.cases.boosted.physics import CLASS_CODE, CLASSES, PILEUP_POOL_EVENTS, Process, process_named
from sqnn.cases.boosted.sequences import PILEUP_CODE, EventSequence, chunk_seeds, pool_seed

__all__ = ["Generators", "run_worker"]


class Generators:
    """The Pythia instances, charge table and pileup pool of one worker process."""

    def __init__(self, sequence: EventSequence, process: Process) -> None:
        self.sequence = sequence
        self.process = process
        self.pythias: dict[str, Any] = {}
        self.charges: _pythia.ChargeTable | None = None
        self.pool: _pythia.PileupPool | None = None
        self.pool_seed: int | None = None

    def pythia(self, which: str, seed: int) -> Any:
        """A new Pythia for a class (lanes start one per run)."""
        pythia = _pythia.new_pythia(self.sequence.generator.lines(self.process, which), seed)
        self.charges = self.charges or _pythia.ChargeTable(pythia.particleData)
        return pythia

    def initialised(self, which: str, seed: int) -> Any:
        """The class's Pythia initialised once from ``seed``, re-seeded by the caller per chunk."""
        if which not in self.pythias:
            self.pythias[which] = self.pythia(which, seed)
        return self.pythias[which]

    def pileup_pool(self, seed: int) -> _pythia.PileupPool:
        if self.pool is None:
            self.pool_seed = seed
            self.pool = _pythia.PileupPool.generate(self.sequence.generator.lines(self.process, "pileup"), seed,
                                                    PILEUP_POOL_EVENTS)
        return self.pool


def _run_lanes(sequence: EventSequence, worker: int, report: Callable[[int, int], None],
               should_stop: Callable[[], bool]) -> None:
    """Generate this worker's lane of both classes, one chunk file at a time."""
    process = process_named(sequence.process)
    reco = sequence.variants[0]
    state = Generators(sequence, process)
    found = scan_parts(sequence.parts)
    for which in CLASSES:
        target = sequence.needs[0][which][worker]
        kept = found.get((which, worker), [])
        done = sum(rows for _, _, rows in kept)
        chunk = kept[-1][0] + 1 if kept else 0
        if done >= target or should_stop():
            continue
        pool = None
        if reco.pileup_mu > 0:
            pool = state.pileup_pool(_pythia.derive_seed(sequence.seed, *sequence.keys, PILEUP_CODE, worker))
        keys = (*sequence.keys, CLASS_CODE[which], worker, chunk)
        run = {
            "class": which,
            "worker": worker,
            "first_chunk": chunk,
            "pythia_seed": _pythia.derive_seed(sequence.seed, *keys),
            # the detector and pileup draws: numpy's SeedSequence entropy, apart from Pythia's
            "rng_seed": [sequence.seed, *keys, 1],
            "pileup_seed": state.pool_seed if pool is not None else None,
        }
        pythia = state.pythia(which, run["pythia_seed"])
        rng = np.random.default_rng(np.random.SeedSequence(run["rng_seed"]))
        while done < target:
            batch = pythia.nextBatch(sequences.CHUNK_EVENTS)
            particles = _pythia.final_state(batch, state.charges)
            overlay = pool.overlay(len(batch), reco.pileup_mu, rng) if pool is not None else None
            truth = process.truth(batch) if which == "signal" else None
            jets = reconstruct(particles, len(batch), process, truth, reco, rng, overlay, sequence.constituents)
            table = jet_table(jets, process, which, sequence.code, worker, chunk, reco, sequence.constituents)
            write_part(sequence.parts, table, {"events": len(batch), "chunk": chunk, "run": run}, which, worker, chunk)
            report(min(table.num_rows, target - done), len(batch))
            done += table.num_rows
            chunk += 1
            if should_stop():
                return


def _run_chunks(sequence: EventSequence, worker: int, report: Callable[[int, int], None],
                should_stop: Callable[[], bool]) -> None:
    """Make this worker's chunks of a chunk sequence; each chunk re-seeds Pythia."""
    process = process_named(sequence.process)
    state = Generators(sequence, process)
    for which, chunk, wanted in sequence.tasks[worker]:
        if should_stop():
            return
        missing = [v for v in wanted if not (sequence.variant_dir(v) / part_name(which, 0, chunk)).exists()]
        if not missing:
            continue
        seeds = chunk_seeds(sequence, which, chunk)
        pythia = state.initialised(which, seeds["init"])
        pythia.rndm.init(seeds["pythia"])
        batch = pythia.nextBatch(sequences.CHUNK_EVENTS)
        particles = _pythia.final_state(batch, state.charges)
        truth = process.truth(batch) if which == "signal" else None
        for index in missing:
            reco = sequence.variants[index]
            overlay = None
            if reco.pileup_mu > 0:
                # one draw per chunk and mu: variants that differ only in CHS see the same pileup
                pool = state.pileup_pool(pool_seed(sequence))
                overlay = pool.overlay(len(batch), reco.pileup_mu,
                                       np.random.default_rng(np.random.SeedSequence(seeds["pileup"])))
            rng = np.random.default_rng(np.random.SeedSequence([*seeds["detector"], reco.entropy()]))
            jets = reconstruct(particles, len(batch), process, truth, reco, rng, overlay, sequence.constituents)
            table = jet_table(jets, process, which, sequence.code, 0, chunk, reco, sequence.constituents)
            info = {"events": len(batch), "chunk": chunk, "pythia_seed": seeds["pythia"]}
            write_part(sequence.variant_dir(index), table, info, which, 0, chunk)
        report(1, len(batch))


def run_worker(sequence: EventSequence, worker: int, report: Callable[[int, int], None],
               should_stop: Callable[[], bool]) -> None:
    runner = _run_lanes if sequence.lanes else _run_chunks
    runner(sequence, worker, report, should_stop)
