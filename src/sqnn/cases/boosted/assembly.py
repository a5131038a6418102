"""A file from the kept chunks of a sequence: its jets, shuffled, with everything it depends on.

The jets of each class are taken from the kept chunks in order (a smaller file of the same
reconstruction takes the first jets of a larger one), shuffled with a seed of the sequence,
given their ``tag`` column (:mod:`sqnn.cases.boosted.tag_and_probe`) and described under the
key ``sqnn`` of the parquet metadata: settings, seeds and versions. :func:`add_tag` gives a
file written before the tag column existed the column a fresh generation would have drawn.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sqnn.cases import _pythia
from sqnn.cases.boosted import sequences
from sqnn.cases.boosted.jets import (
    CONSTITUENT_FIELDS,
    JET_ABS_ETA_MAX,
    LEADING_JETS,
    MIN_CONSTITUENTS,
    N_CONSTITUENTS_KEPT,
)
from sqnn.cases.boosted.parts import scan_parts
from sqnn.cases.boosted.physics import BEAM, CLASSES, PILEUP_POOL_EVENTS, PILEUP_PROCESS, features, process_named
from sqnn.cases.boosted.sequences import FORMAT_VERSION, SHUFFLE_CODE, EventSequence, Output, chunk_seeds, pool_seed
from sqnn.cases.boosted.tag_and_probe import TagEfficiencies, with_tag
from sqnn.errors import SqnnError
from sqnn.files import atomic_path

__all__ = ["add_tag", "assemble_chunks", "assemble_lanes", "write_file"]


def _shuffled(table: pa.Table, shuffle_seed: list[int], metadata: dict[str, Any], sequence: EventSequence,
              output: Output) -> pa.Table:
    order = np.random.default_rng(np.random.SeedSequence(shuffle_seed)).permutation(table.num_rows)
    table = table.take(pa.array(order))
    # drawn last, from the jets as they are in the file: the same column as add_tag gives
    table, metadata = with_tag(table, sequence.seed, output.domain, output.tag_efficiencies, metadata)
    return table.replace_schema_metadata({"sqnn": json.dumps(metadata)})


def assemble_lanes(sequence: EventSequence, output: Output) -> pa.Table:
    found = scan_parts(sequence.parts)
    tables, runs, events = [], {}, dict.fromkeys(CLASSES, 0)
    for which in CLASSES:
        for lane, target in enumerate(sequence.needs[0][which]):
            pieces, rows = [], 0
            for _, path, n_rows in found.get((which, lane), []):
                if rows >= target:
                    break
                part = pq.read_table(path)
                info = json.loads(part.schema.metadata[b"sqnn_part"])
                run = info["run"]
                runs[(which, lane, run["first_chunk"])] = run
                events[which] += info["events"]
                pieces.append(part.replace_schema_metadata(None))
                rows += n_rows
            if rows < target:
                raise RuntimeError(f"{sequence.parts}: {which} worker {lane} has {rows} of {target} jets")
            if target:
                tables.append(pa.concat_tables(pieces).slice(0, target))
    table = pa.concat_tables(tables)
    shuffle_seed = [sequence.seed, *sequence.keys, SHUFFLE_CODE]
    run_list = sorted(runs.values(), key=lambda r: (r["class"], r["worker"], r["first_chunk"]))
    pileup_seeds = sorted({run["pileup_seed"] for run in run_list if run["pileup_seed"] is not None})
    seeds = {"runs": run_list, "shuffle": shuffle_seed}
    return _shuffled(table, shuffle_seed, _metadata(sequence, output, seeds, events, pileup_seeds), sequence, output)


def _chunk_prefix(directory: Path, which: str) -> list[tuple[int, Path, int]]:
    """The chunks 0, 1, ... of a class that exist without a gap."""
    prefix = []
    for chunk, path, rows in scan_parts(directory).get((which, 0), []):
        if chunk != len(prefix):
            break
        prefix.append((chunk, path, rows))
    return prefix


def assemble_chunks(sequence: EventSequence, output: Output, index: int) -> pa.Table:
    tables, events, used_seeds = [], dict.fromkeys(CLASSES, 0), {}
    targets = {"signal": output.n_signal, "background": output.n_background}
    for which in CLASSES:
        pieces, rows, used = [], 0, []
        for chunk, path, n_rows in _chunk_prefix(sequence.variant_dir(index), which):
            if rows >= targets[which]:
                break
            part = pq.read_table(path)
            info = json.loads(part.schema.metadata[b"sqnn_part"])
            events[which] += info["events"]
            used.append(info["pythia_seed"])
            pieces.append(part.replace_schema_metadata(None))
            rows += n_rows
        if rows < targets[which]:
            raise RuntimeError(f"{sequence.variant_dir(index)}: {which} has {rows} of {targets[which]} jets")
        used_seeds[which] = used
        if targets[which]:
            tables.append(pa.concat_tables(pieces).slice(0, targets[which]))
    table = pa.concat_tables(tables)
    reco = output.reconstruction
    shuffle_seed = [sequence.seed, *sequence.keys, SHUFFLE_CODE, reco.entropy(), output.n_signal, output.n_background]
    seeds = {
        "init": {which: chunk_seeds(sequence, which, 0)["init"] for which in CLASSES},
        "chunks": used_seeds,
        "chunk_entropy": "detector draws [seed, *keys, class, chunk, 6, variant], pileup draws "
                         "[seed, *keys, class, chunk, 2] (numpy SeedSequence)",
        "keys": list(sequence.keys),
        "variant": reco.entropy(),
        "shuffle": shuffle_seed,
    }
    pileup_seeds = [pool_seed(sequence)] if reco.pileup_mu > 0 else []
    return _shuffled(table, shuffle_seed, _metadata(sequence, output, seeds, events, pileup_seeds), sequence, output)


def _metadata(sequence: EventSequence, output: Output, seeds: dict[str, Any], events: dict[str, int],
              pileup_seeds: list[int]) -> dict[str, Any]:
    process = process_named(sequence.process)
    reco = output.reconstruction
    generator = sequence.generator
    pileup: dict[str, Any] | None = None
    if reco.pileup_mu > 0:
        pool_key = "pool_events_per_worker" if sequence.lanes else "pool_events"
        subtraction = ("charged-hadron subtraction: tracked pileup charged particles removed, pileup neutrals kept"
                       if reco.chs else "none: every reconstructed pileup particle is kept")
        pileup = {
            "mu": reco.pileup_mu,
            pool_key: PILEUP_POOL_EVENTS,
            "process": PILEUP_PROCESS,
            # "stream" is the stored wording of the files' metadata: files made before stay the same
            "distribution": f"Poisson, drawn with replacement from the {'worker' if sequence.lanes else 'stream'}'s "
                            "pool, each copy rotated in azimuth and mirrored in z at random",
            "subtraction": subtraction,
            "seeds": pileup_seeds,
        }
    region = process.control_region
    lane_event = "class << 44 | worker << 36 | chunk << 12 | index"
    # the sequence code, written "stream" as in the metadata of every file made so far
    event_layout = lane_event if sequence.code == 0 else f"stream {sequence.code} << 45 | {lane_event}"
    metadata = {
        "case": process.name,
        "format": FORMAT_VERSION,
        "domain": output.domain,
        "n": output.n,
        "n_signal": output.n_signal,
        "n_background": output.n_background,
        "signal_fraction": output.signal_fraction,
        "seed": sequence.seed,
        "workers": sequence.workers,
        "beam": BEAM,
        "processes": {"signal": list(process.signal), "background": list(process.background)},
        "tune": {"Tune:pp": generator.tune, "name": generator.tune_name},
        "pythia_settings": {which: ["Print:quiet = on", *generator.lines(process, which)]
                            for which in ("signal", "background", "pileup")},
        "detector": reco.detector.to_dict(),
        "pileup": pileup,
        "jets": {
            "algorithm": "anti-kt",
            "radius": reco.radius,
            "input": "reconstructed particles",
            "leading": LEADING_JETS,
            "pt_range_GeV": [reco.pt_min, reco.pt_max],
            "abs_eta_max": JET_ABS_ETA_MAX,
            "min_constituents": MIN_CONSTITUENTS,
            "signal_truth_match": process.truth_match(reco.radius),
        },
        "features": features(reco.radius),
        "control_region": {
            "column": "control",
            "definition": f"mass < {region['mass_below']:g} GeV or mass > {region['mass_above']:g} GeV",
            **region,
        },
        "event": f"int64 id of the generated event ({event_layout}); jets of the same event share it",
        "constituents": (f"{N_CONSTITUENTS_KEPT} leading by pT: {', '.join(CONSTITUENT_FIELDS)}"
                         if sequence.constituents else None),
        "seeds": seeds,
        "events_generated": events,
        "chunk_events": sequences.CHUNK_EVENTS,
        "versions": _pythia.versions(),
    }
    if not sequence.lanes:
        # a chunk sequence's files do not depend on how many workers made them
        del metadata["workers"]
    if output.sample is not None:
        metadata["sample"] = output.sample
    return metadata


def write_file(table: pa.Table, out: Path) -> None:
    with atomic_path(out) as tmp:
        pq.write_table(table, tmp, compression="zstd")
        # the temporary file is private (0600); the result gets the usual umask permissions
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)


def add_tag(path: str | Path, out: str | Path | None = None, *, tag_signal: float | None = None,
            tag_background: float | None = None) -> Path:
    """Write a boosted-jet file with its ``tag`` column to ``out`` (default: ``path``, replaced atomically).

    The column is the one a fresh generation with the file's seed and domain draws; every other
    column and metadata entry is kept. The efficiencies are ``tag_signal`` and ``tag_background``
    where given, otherwise those the file records (a file that has the column), otherwise the
    defaults of its domain in ``sqnn generate``; a suite file without the column needs both
    (its efficiencies depend on its case, see :mod:`sqnn.cases.suite`).

    >>> add_tag("src/sqnn/datasets/wjets_sim.parquet")  # doctest: +SKIP
    PosixPath('src/sqnn/datasets/wjets_sim.parquet')
    """
    path = Path(path)
    try:
        table = pq.read_table(path)
        metadata = json.loads(table.schema.metadata[b"sqnn"])
        seed, domain = int(metadata["seed"]), str(metadata["domain"])
    except (OSError, KeyError, TypeError, ValueError, pa.ArrowException):
        raise SqnnError(f"{path}: not a file of `sqnn generate wjets|topjets` or `sqnn suite make` "
                        "(no readable seed and domain under the parquet metadata key sqnn)") from None
    if metadata.get("case") not in ("wjets", "topjets"):
        raise SqnnError(f"{path}: a {metadata.get('case')!r} file; the tag column belongs to wjets and topjets files")
    missing = [name for name in ("event", "pt", "eta", "is_signal") if name not in table.column_names]
    if missing:
        raise SqnnError(f"{path}: column {missing[0]!r} not found ({table.num_rows} rows); the tag draw needs it")
    recorded = (metadata.get("tag") or {}).get("efficiency")
    if recorded is not None:
        base = TagEfficiencies(**recorded)
    elif "sample" in metadata and (tag_signal is None or tag_background is None):
        raise SqnnError(f"{path}: a suite file without a tag column; give tag_signal and tag_background "
                        "(sqnn.cases.suite.CASES[name].sim.tag or .data.tag)")
    else:
        base = TagEfficiencies.of_domain(domain)
    efficiencies = TagEfficiencies(base.signal if tag_signal is None else tag_signal,
                                   base.background if tag_background is None else tag_background)
    table, metadata = with_tag(table.replace_schema_metadata(None), seed, domain, efficiencies, metadata)
    target = path if out is None else Path(out)
    write_file(table.replace_schema_metadata({"sqnn": json.dumps(metadata)}), target)
    return target
