"""Making files: one file of a domain (:func:`generate_file`) or several files of one sequence (:func:`produce`).

Both plan what is missing from the kept chunks, run the workers until it exists, and
assemble each file; an interrupted run raises :class:`GenerationInterrupted` and a rerun
with the same arguments resumes.
"""

from __future__ import annotations

import inspect
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqnn.cases import _pythia
from sqnn.cases.boosted import sequences
from sqnn.cases.boosted.assembly import assemble_chunks, assemble_lanes, write_file
from sqnn.cases.boosted.parts import lane_jets_done, prepare_parts, scan_parts
from sqnn.cases.boosted.physics import (
    CLASSES,
    DOMAIN_CODE,
    DOMAIN_DEFAULTS,
    DOMAINS,
    Process,
    Reconstruction,
    process_named,
    resolve,
)
from sqnn.cases.boosted.processes import GenerationInterrupted, Progress, run
from sqnn.cases.boosted.sequences import MAX_SEED, MAX_WORKERS, EventSequence, Output
from sqnn.cases.boosted.tag_and_probe import TagEfficiencies
from sqnn.errors import SqnnError

__all__ = ["generate_file", "produce"]


# ---------------------------------------------------------------- one file (lanes)


def _split(total: int, workers: int) -> list[int]:
    return [total // workers + (1 if k < total % workers else 0) for k in range(workers)]


def generate_file(
    process_name: str,
    domain: str,
    n: int,
    seed: int,
    out: str | Path,
    *,
    workers: int = 1,
    constituents: bool = False,
    signal_fraction: float | None = None,
    progress: bool = True,
    tag_signal: float | None = None,
    tag_background: float | None = None,
    **knobs: Any,
) -> Path:
    """One file of ``n`` signal and QCD jets of ``domain``; ``knobs`` as in :func:`resolve`.

    ``tag_signal`` and ``tag_background`` replace the domain's efficiencies of the ``tag``
    column (:mod:`sqnn.cases.boosted.tag_and_probe`).
    """
    _pythia.validate_generation(
        domain, n, seed, workers, signal_fraction, unit="jets", domains=DOMAINS, max_seed=MAX_SEED,
        max_workers=MAX_WORKERS,
    )
    process = process_named(process_name)
    unknown = sorted(set(knobs) - set(inspect.signature(resolve).parameters) - {"process", "domain"})
    if unknown:
        raise SqnnError(f"{process_name} has no knob {', '.join(unknown)}; see sqnn.cases.boosted.resolve")
    generator, reco = resolve(process, domain, **knobs)
    tag = TagEfficiencies.of_domain(domain, tag_signal, tag_background)
    fraction = DOMAIN_DEFAULTS[domain]["signal_fraction"] if signal_fraction is None else float(signal_fraction)
    out = Path(out)
    n_signal = int(round(n * fraction))
    sequence = EventSequence(
        process=process_name,
        generator=generator,
        seed=int(seed),
        keys=(DOMAIN_CODE[domain],),
        code=0,
        parts=out.parent / f"{out.name}.parts",
        lanes=True,
        workers=int(workers),
        constituents=bool(constituents),
        variants=(reco,),
        needs=({"signal": _split(n_signal, workers), "background": _split(int(n) - n_signal, workers)},),
    )
    prepare_parts(sequence)
    done = lane_jets_done(sequence)
    if done < n:
        bar = Progress(int(n), done, progress)
        try:
            stopped = run(sequence, bar)
        finally:
            bar.close()
        done = lane_jets_done(sequence)
        if done < n:
            if stopped:
                raise GenerationInterrupted(
                    f"stopped after the current chunk with {done} of {n} jets; the finished "
                    f"chunks are kept in {sequence.parts}: rerun the same command to resume"
                )
            raise RuntimeError(f"generation ended with {done} of {n} jets")
    output = Output(out, reco, n_signal, int(n) - n_signal, domain, fraction, tag=tag)
    write_file(assemble_lanes(sequence, output), out)
    shutil.rmtree(sequence.parts)
    return out


# ---------------------------------------------------------------- several files of one sequence (chunks)


def _plan(sequence: EventSequence, needs: Sequence[dict[str, int]],
          process: Process) -> list[tuple[str, int, tuple[int, ...]]]:
    """The chunks still to make so that every variant has its jets from chunks 0, 1, ...

    Missing chunks are counted at the variant's yield so far (or the process's typical yield
    for a new variant); a pass that falls short is followed by another.
    """
    wanted: dict[tuple[str, int], set[int]] = {}
    for index, need in enumerate(needs):
        directory = sequence.variant_dir(index)
        found = scan_parts(directory)
        for which in CLASSES:
            chunks = {chunk: rows for chunk, _, rows in found.get((which, 0), [])}
            if chunks:
                if len(chunks) >= 10 and not sum(chunks.values()):
                    raise SqnnError(f"{directory}: no {which} jet passed the selection in {len(chunks)} chunks; "
                                    "check the jet pT window and radius")
                per_chunk = max(sum(chunks.values()) / len(chunks), 1.0)
            else:
                # a new variant's first pass aims a little short, so that chunks made at the
                # typical yield are never wasted; the next pass counts at the measured yield
                per_chunk = max(1.15 * process.jets_per_event[which] * sequences.CHUNK_EVENTS, 1.0)
            rows, chunk = 0.0, 0
            while rows < need[which]:
                if chunk in chunks:
                    rows += chunks[chunk]
                else:
                    rows += per_chunk
                    wanted.setdefault((which, chunk), set()).add(index)
                chunk += 1
    # by class, then chunk: dealt round-robin, a worker's chunks are not consecutive
    return [(which, chunk, tuple(sorted(indices))) for (which, chunk), indices in sorted(wanted.items())]


def produce(sequence: EventSequence, outputs: Sequence[Output], *, progress: bool = True,
            label: str | None = None) -> list[Path]:
    """Make every output of a chunk sequence, reusing the chunks kept in ``sequence.parts``.

    Outputs with the same reconstruction share its jets (a smaller file takes the first jets
    of a larger one). The kept chunks stay, so that a later, larger request only adds chunks.
    """
    process = process_named(sequence.process)
    variants: list[Reconstruction] = []
    for output in outputs:
        if output.reconstruction not in variants:
            variants.append(output.reconstruction)
    needs = [{which: max(getattr(o, f"n_{which}") for o in outputs if o.reconstruction == reco)
              for which in CLASSES} for reco in variants]
    sequence = replace(sequence, variants=tuple(variants))
    prepare_parts(sequence)
    while True:
        tasks = _plan(sequence, needs, process)
        if not tasks:
            break
        per_worker = tuple(tuple(tasks[k::sequence.workers]) for k in range(sequence.workers))
        bar = Progress(len(tasks), 0, progress, unit="chunk", description=label)
        try:
            stopped = run(replace(sequence, tasks=per_worker), bar)
        finally:
            bar.close()
        if stopped:
            raise GenerationInterrupted(
                f"stopped after the current chunk; the finished chunks are kept in {sequence.parts}: "
                "rerun the same command to resume"
            )
    written = []
    for output in outputs:
        table = assemble_chunks(sequence, output, variants.index(output.reconstruction))
        output.path.parent.mkdir(parents=True, exist_ok=True)
        write_file(table, output.path)
        written.append(output.path)
    return written
