"""Run directories: the trained model, its description and its history, written and loaded back safely."""

from sqnn.runs.format import (
    MODEL_FILE,
    MODEL_JSON,
    Run,
    file_fingerprint,
    forward_in_batches,
    input_fingerprint,
    input_spec,
)
from sqnn.runs.store import RUN_KINDS, load_run, write_run
from sqnn.runs.trees import TreeRun

__all__ = [
    "MODEL_FILE",
    "MODEL_JSON",
    "RUN_KINDS",
    "Run",
    "TreeRun",
    "file_fingerprint",
    "forward_in_batches",
    "input_fingerprint",
    "input_spec",
    "load_run",
    "write_run",
]
