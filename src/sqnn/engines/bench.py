"""Throughput and latency of the torch, onnxruntime and packed engines, measured side by side.

Every engine scores the same raw float64 events (standardisation included, as in
``sqnn predict``) in the run's own scoring (``network.inference``); an engine that
cannot compute it is skipped, with the reason in the summary. Within one repeat the engines take turns, so a machine shared with
other work slows them alike; the figure per engine and batch is the median over the
repeats. With one thread the clock is the calling thread's CPU time (torch with
``set_num_threads(1)`` and onnxruntime with ``intra_op_num_threads=1`` compute in the
calling thread), which other processes on the machine do not inflate; with more threads
it is wall time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sqnn.engines import registry
from sqnn.errors import SqnnError, option, phrase
from sqnn.runs import Run

__all__ = ["BenchRecord", "benchmark", "random_events", "ENGINES"]

# the engines that can be timed call by call
ENGINES = registry.timed_engines()
_MIN_EVENTS_PER_REPEAT = 200_000
_MIN_CALLS = 20


@dataclass
class BenchRecord:
    engine: str
    batch: int
    threads: int
    events_per_s: float
    latency_us: float
    model_bytes: int
    clock: str
    calls: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine, "batch": self.batch, "threads": self.threads,
            "events_per_s": round(self.events_per_s, 1), "latency_us": round(self.latency_us, 3),
            "model_bytes": self.model_bytes, "clock": self.clock, "calls": self.calls,
        }


def random_events(run: Run, n: int, seed: int = 0) -> np.ndarray:
    """Raw events spread over the preprocessing ranges: mean + scale · N(0, 1.5²) per feature."""
    rng = np.random.default_rng(seed)
    mean = np.asarray(run.standardizer.mean, dtype=np.float64)
    scale = np.asarray(run.standardizer.scale, dtype=np.float64)
    return mean + scale * rng.normal(scale=1.5, size=(n, len(mean)))


def _scorers(run: Run, engines: Sequence[str], threads: int) -> tuple[dict[str, tuple[Callable[[np.ndarray], np.ndarray], int]], dict[str, str]]:
    """Each engine's scorer in the run's own scoring, and the engines that cannot compute it (with the reason)."""
    scorers: dict[str, tuple[Callable[[np.ndarray], np.ndarray], int]] = {}
    skipped: dict[str, SqnnError] = {}
    mode = run.default_inference
    for name in engines:
        if name not in ENGINES:
            raise SqnnError(f"unknown engine {name!r}; choose from {', '.join(ENGINES)}")
        try:
            built = registry.engine(name).scorer(run, mode, threads=threads)
        except SqnnError as exc:
            skipped[name] = exc
            continue
        scorers[name] = (built.logit, built.model_bytes)
    if not scorers:
        raise SqnnError(f"{run.path}: no engine can score this model: " + "; ".join(e.marked for e in skipped.values()))
    return scorers, {name: str(exc) for name, exc in skipped.items()}


def benchmark(
    run: Run,
    batches: Sequence[int] = (1, 256, 65536),
    threads: int = 1,
    repeats: int = 5,
    engines: Sequence[str] = ENGINES,
    seed: int = 0,
    check_events: int = 65536,
) -> tuple[list[BenchRecord], dict[str, Any]]:
    """Records per engine and batch, and a summary (decision agreement between the engines, settings)."""
    if threads < 1 or repeats < 1 or any(b < 1 for b in batches):
        raise SqnnError(f"{option('threads')}, {option('repeats')} and every {phrase('value of batches', '--batch')} must be at least 1")
    if not engines:
        raise SqnnError(f"{option('engines')} needs at least one of {', '.join(ENGINES)}")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        scorers, skipped = _scorers(run, engines, threads)
        events = random_events(run, max(max(batches), check_events), seed)
        decisions = {name: fn(events[:check_events]) > 0 for name, (fn, _) in scorers.items()}
        reference_name = "torch" if "torch" in decisions else next(iter(decisions))
        agreement = {name: int((d != decisions[reference_name]).sum()) for name, d in decisions.items()}
        clock = time.thread_time_ns if threads == 1 else time.perf_counter_ns
        records = []
        for batch in batches:
            x = np.ascontiguousarray(events[:batch])
            calls = max(_MIN_CALLS, -(-_MIN_EVENTS_PER_REPEAT // batch))
            timings: dict[str, list[float]] = {name: [] for name in scorers}
            for name, (fn, _) in scorers.items():
                fn(x)  # warm up: compilation, allocations, caches
            for _ in range(repeats):
                for name, (fn, _) in scorers.items():
                    n_calls = max(2, calls // 50) if name == "torch" and batch == 1 else calls
                    start = clock()
                    for _ in range(n_calls):
                        fn(x)
                    timings[name].append((clock() - start) / 1e9 / n_calls)
            for name, (fn, size) in scorers.items():
                per_call = float(np.median(timings[name]))
                records.append(BenchRecord(
                    engine=name, batch=int(batch), threads=threads, events_per_s=batch / per_call,
                    latency_us=per_call * 1e6, model_bytes=int(size),
                    clock="thread_cpu" if threads == 1 else "wall", calls=len(timings[name]),
                ))
    finally:
        torch.set_num_threads(previous_threads)
    summary = {
        "run": str(run.path),
        "scoring": run.default_inference,
        "skipped": skipped,
        "threads": threads,
        "repeats": repeats,
        "decision_reference": reference_name,
        "decision_mismatches": agreement,
        "check_events": int(check_events),
    }
    return records, summary


def ratios(records: Sequence[BenchRecord], numerator: str = "packed", denominators: Sequence[str] = ("onnx", "torch")) -> dict[str, dict[str, float]]:
    """events/s of ``numerator`` divided by each other engine's, per batch."""
    table: dict[tuple[str, int], float] = {(r.engine, r.batch): r.events_per_s for r in records}
    out: dict[str, dict[str, float]] = {}
    for other in denominators:
        out[f"{numerator}/{other}"] = {
            str(batch): round(table[(numerator, batch)] / table[(other, batch)], 2)
            for (engine, batch) in table
            if engine == numerator and (other, batch) in table
        }
    return out


def format_table(records: Sequence[BenchRecord]) -> str:
    """Engine × batch, events/s and latency."""
    lines = [f"{'engine':8s} {'batch':>7s} {'threads':>7s} {'events/s':>14s} {'latency_us':>12s} {'model_bytes':>12s}"]
    for r in records:
        lines.append(f"{r.engine:8s} {r.batch:7d} {r.threads:7d} {r.events_per_s:14,.0f} {r.latency_us:12.2f} {r.model_bytes:12d}")
    return "\n".join(lines)
