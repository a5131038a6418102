"""Boosted-jet samples: one Pythia sequence of hard events, reconstructed in one or more ways.

The W-jet (:mod:`sqnn.cases.wjets`) and top-jet (:mod:`sqnn.cases.topjets`) cases are a
:class:`Process` each (signal and background Pythia settings, truth matching, jet window and
control region); the engine they share is this package, the physics apart from the running:

* :mod:`~sqnn.cases.boosted.physics`: :class:`Process`, :class:`GeneratorSettings` (what
  enters Pythia: tune, shower alpha_s, hadronisation, multiple interactions, extra lines,
  written after the tune because the tune resets them), :class:`Reconstruction` (what happens
  after Pythia: detector, pileup with or without charged-hadron subtraction, jet radius and pT
  window) and the domains of a single file (:data:`DOMAIN_DEFAULTS`, :func:`resolve`).
* :mod:`~sqnn.cases.boosted.jets`: one batch of hard events to the rows of a jet table.
* :mod:`~sqnn.cases.boosted.sequences`: :class:`EventSequence` and :class:`Output`, and the seeds.
* :mod:`~sqnn.cases.boosted.parts`: the kept chunks in ``<parts>`` that a rerun resumes from.
* :mod:`~sqnn.cases.boosted.worker`: what one worker generates;
  :mod:`~sqnn.cases.boosted.processes`: running workers here or as processes, signals, progress.
* :mod:`~sqnn.cases.boosted.assembly`: a file from the kept chunks, with its metadata.
* :mod:`~sqnn.cases.boosted.production`: :func:`generate_file` and :func:`produce`.
* :mod:`~sqnn.cases.boosted.tag_and_probe`: the ``tag`` column, an emulated tag-and-probe
  selection (:class:`TagEfficiencies`); :func:`add_tag` adds it to a file made without it.

Several reconstructions of the same hard events cost one Pythia run and one reconstruction
each. There are two ways to run a sequence, both resumable from ``<parts>``:

- *lanes* (``generate`` of one file, the historical layout): every worker runs its own
  Pythia from its first chunk to its share of the jets; the file depends on the seed and
  on the number of workers, and a resumed lane is seeded from its first new chunk.
- *chunks* (the suite): Pythia is initialised once per class from the sequence's seed and
  re-seeded at every chunk, so chunk ``k`` holds the same events whichever worker makes it
  and whether or not the run was interrupted. A file takes chunks 0, 1, ... until it has its
  jets, so it depends on the seed and the sequence, not on the workers or on which other
  reconstructions were asked for at the same time.

Event ids are ``sequence << 45 | class << 44 | lane << 36 | chunk << 12 | index``; the sequence
code is 0 for single files and unique per suite sequence, so files of different sequences never
share an id.

The chunk size, :data:`sqnn.cases.boosted.sequences.CHUNK_EVENTS`, is read from that module
when a sequence runs (a test makes smaller chunks by setting it there).
"""

from __future__ import annotations

from sqnn.cases.boosted.assembly import add_tag
from sqnn.cases.boosted.jets import (
    CONSTITUENT_FIELDS,
    JET_ABS_ETA_MAX,
    LEADING_JETS,
    MIN_CONSTITUENTS,
    N_CONSTITUENTS_KEPT,
)
from sqnn.cases.boosted.physics import (
    BEAM,
    CLASS_CODE,
    CLASSES,
    DOMAIN_CODE,
    DOMAIN_DEFAULTS,
    DOMAINS,
    PILEUP_POOL_EVENTS,
    PILEUP_PROCESS,
    TUNE_NAMES,
    GeneratorSettings,
    Process,
    Reconstruction,
    features,
    process_named,
    resolve,
)
from sqnn.cases.boosted.processes import GenerationInterrupted
from sqnn.cases.boosted.production import generate_file, produce
from sqnn.cases.boosted.sequences import (
    CHUNK_CODE,
    CHUNK_EVENTS,
    DETECTOR_CODE,
    FORMAT_VERSION,
    INIT_CODE,
    MAX_SEED,
    MAX_SEQUENCE_CODE,
    MAX_WORKERS,
    PILEUP_CODE,
    SHUFFLE_CODE,
    Output,
    EventSequence,
    make_sequence,
)
from sqnn.cases.boosted.tag_and_probe import TagEfficiencies

__all__ = [
    "CLASSES",
    "DOMAIN_DEFAULTS",
    "GenerationInterrupted",
    "GeneratorSettings",
    "Output",
    "Process",
    "Reconstruction",
    "EventSequence",
    "TagEfficiencies",
    "add_tag",
    "features",
    "generate_file",
    "make_sequence",
    "process_named",
    "produce",
    "resolve",
]
