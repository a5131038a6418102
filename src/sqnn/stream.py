"""Online classification: batches of events in over ZeroMQ, accept/reject decisions out.

``sqnn stream RUN --in ADDR --out ADDR`` receives batches of events on a PULL socket,
classifies every event with the run (``accept`` when the logit exceeds ``--threshold``,
default 0, i.e. score > 0.5) and sends one decision message per batch on a PUSH socket.
PUSH/PULL rather than PUB/SUB: a PUB socket drops messages silently when a subscriber
is slow, PUSH makes a slow consumer hold back the producer instead (back-pressure), so
no decision is ever lost in the socket. Several producers may connect to ``--in`` and
several consumers to ``--out`` (each decision goes to one consumer, round-robin).

Addresses are ZeroMQ endpoints. ``tcp://HOST:PORT`` or ``@tcp://HOST:PORT`` binds (the
default for both sockets: producers and consumers connect to sqnn), ``>tcp://HOST:PORT``
connects instead; ``tcp://127.0.0.1:*`` binds a free port, announced in the first report.

Wire format
-----------
One ZeroMQ frame per message; integers little-endian; a 24-byte header, then the payload.

Events, producer → sqnn::

    offset  size  type     field
    0       4     bytes    magic b"SQEV"
    4       1     uint8    version (1)
    5       1     uint8    reserved (0)
    6       2     uint16   n_features (must equal the run's number of features)
    8       8     uint64   batch_id (any value; echoed in the decisions)
    16      4     uint32   n_events
    20      4     uint32   reserved (0)
    24      4·n_events·n_features   float32 features, C order (event after event), in
                                    the run's feature order (``model.json`` "features")

Decisions, sqnn → consumer::

    0       4     bytes    magic b"SQDC"
    4       1     uint8    version (1)
    5       3     -        reserved (0)
    8       8     uint64   batch_id (the same as in the events message)
    16      4     uint32   n_events
    20      4     uint32   n_accepted
    24      n_events       uint8 per event, in input order: 1 accept, 0 reject

Events with NaN or infinite features are rejected and counted (``non_finite_events``).
A message that does not follow the format (more than one frame, shorter than the
header, wrong magic or version, wrong number of features, payload size that does not
match the header, larger than ``--max-message-bytes``) gets no decision: it is counted by
reason and reported, never dropped silently. Over TCP and IPC a producer that sends a
message larger than ``--max-message-bytes`` (default 64 MiB) is disconnected by ZeroMQ
before the message is held in memory (ZMQ_MAXMSGSIZE). Every ``--report-every`` seconds one JSON line goes to stderr:
throughput, latency percentiles (receive → decision sent), accept rate and the counts.
``--max-messages N`` stops after N messages (malformed ones included); SIGINT and
SIGTERM stop cleanly after the batch in hand, then decisions still queued are flushed.

A producer in Python::

    import numpy as np, zmq
    from sqnn.stream import encode_events, decode_decisions
    context = zmq.Context()
    events = context.socket(zmq.PUSH); events.connect("tcp://127.0.0.1:5555")
    decisions = context.socket(zmq.PULL); decisions.connect("tcp://127.0.0.1:5556")
    events.send(encode_events(7, np.zeros((4096, 6), np.float32)))
    batch_id, accept = decode_decisions(decisions.recv())
"""

from __future__ import annotations

import json
import signal
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sqnn.errors import SqnnError, option

__all__ = [
    "DECISIONS_MAGIC",
    "EVENTS_MAGIC",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "HEADER",
    "Malformed",
    "VERSION",
    "decode_decisions",
    "decode_events",
    "encode_decisions",
    "encode_events",
    "serve",
]

EVENTS_MAGIC = b"SQEV"
DECISIONS_MAGIC = b"SQDC"
VERSION = 1
# magic, version, reserved, n_features (events) / reserved (decisions), batch_id, n_events,
# reserved (events) / n_accepted (decisions)
HEADER = struct.Struct("<4sBBHQII")
MALFORMED_REASONS = ("multipart", "short", "too_large", "bad_magic", "bad_version", "wrong_feature_count", "wrong_size")
# the largest events message taken; larger ones are refused before they are held in memory
DEFAULT_MAX_MESSAGE_BYTES = 64 << 20
_POLL_MS = 100
_LINGER_MS = 5000
# the final report's latency percentiles cover at most this many of the last batches
_LATENCY_MEMORY = 100_000


class Malformed(ValueError):
    """A message that does not follow the wire format; ``reason`` is one of MALFORMED_REASONS."""

    def __init__(self, reason: str, detail: str, batch_id: int | None = None) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.batch_id = reason, detail, batch_id


def encode_events(batch_id: int, features: np.ndarray) -> bytes:
    """One events message for a (n_events, n_features) array."""
    x = np.ascontiguousarray(features, dtype="<f4")
    if x.ndim != 2:
        raise ValueError(f"features must be a 2-D array (events, features), got shape {x.shape}")
    return HEADER.pack(EVENTS_MAGIC, VERSION, 0, x.shape[1], batch_id, x.shape[0], 0) + x.tobytes()


def decode_events(
    message: bytes | memoryview, n_features: int, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> tuple[int, np.ndarray]:
    """``(batch_id, features)`` of an events message; :class:`Malformed` if it breaks the format."""
    size = len(message)
    if size < HEADER.size:
        raise Malformed("short", f"{size} bytes, shorter than the {HEADER.size}-byte header")
    if size > max_bytes:
        raise Malformed("too_large", f"{size} bytes, more than the limit of {max_bytes}")
    magic, version, _, features, batch_id, n_events, _ = HEADER.unpack_from(message)
    if magic != EVENTS_MAGIC:
        raise Malformed("bad_magic", f"magic {bytes(magic)!r}, expected {EVENTS_MAGIC!r}")
    if version != VERSION:
        raise Malformed("bad_version", f"version {version}, expected {VERSION}", batch_id)
    if features != n_features:
        raise Malformed("wrong_feature_count", f"{features} features, the run takes {n_features}", batch_id)
    expected = HEADER.size + 4 * n_events * n_features
    if size != expected:
        raise Malformed("wrong_size", f"{size} bytes, the header announces {n_events} events = {expected} bytes", batch_id)
    array = np.frombuffer(message, dtype="<f4", offset=HEADER.size, count=n_events * n_features)
    return batch_id, array.reshape(n_events, n_features)


def encode_decisions(batch_id: int, accept: np.ndarray) -> bytes:
    decisions = np.ascontiguousarray(accept, dtype=np.uint8)
    return HEADER.pack(DECISIONS_MAGIC, VERSION, 0, 0, batch_id, decisions.size, int(decisions.sum())) + decisions.tobytes()


def decode_decisions(message: bytes | memoryview) -> tuple[int, np.ndarray]:
    """``(batch_id, accept)`` of a decisions message (``accept``: uint8, 1 accept, 0 reject)."""
    if len(message) < HEADER.size:
        raise Malformed("short", f"{len(message)} bytes, shorter than the {HEADER.size}-byte header")
    magic, version, _, _, batch_id, n_events, n_accepted = HEADER.unpack_from(message)
    if magic != DECISIONS_MAGIC or version != VERSION:
        raise Malformed("bad_magic", f"not a version-{VERSION} decisions message (magic {bytes(magic)!r})")
    if len(message) != HEADER.size + n_events:
        raise Malformed("wrong_size", f"{len(message)} bytes for {n_events} decisions")
    accept = np.frombuffer(message, dtype=np.uint8, offset=HEADER.size, count=n_events)
    if int(accept.sum()) != n_accepted:
        raise Malformed("wrong_size", f"header says {n_accepted} accepted, the payload {int(accept.sum())}")
    return batch_id, accept


@dataclass
class _Counters:
    """What the reports say: totals since the start, and the current reporting window."""

    started: float = field(default_factory=time.monotonic)
    messages: int = 0
    batches: int = 0
    events: int = 0
    accepted: int = 0
    non_finite_events: int = 0
    undelivered_batches: int = 0
    malformed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MALFORMED_REASONS, 0))
    window_start: float = field(default_factory=time.monotonic)
    window_events: int = 0
    window_accepted: int = 0
    window_latency: list[float] = field(default_factory=list)
    latency: deque[float] = field(default_factory=lambda: deque(maxlen=_LATENCY_MEMORY))

    def delivered(self, n_events: int, n_accepted: int, latency: float) -> None:
        self.batches += 1
        self.events += n_events
        self.accepted += n_accepted
        self.window_events += n_events
        self.window_accepted += n_accepted
        self.window_latency.append(latency)
        self.latency.append(latency)

    def report(self, kind: str) -> dict[str, Any]:
        now = time.monotonic()
        final = kind == "final"
        interval = now - (self.started if final else self.window_start)
        events = self.events if final else self.window_events
        accepted = self.accepted if final else self.window_accepted
        latencies = np.asarray(self.latency if final else self.window_latency) * 1e3
        record: dict[str, Any] = {
            "event": kind,
            "elapsed_s": round(now - self.started, 3),
            "interval_s": round(interval, 3),
            "events_per_s": round(events / interval, 1) if interval > 0 else None,
            "latency_ms": None
            if latencies.size == 0
            else {
                "p50": round(float(np.percentile(latencies, 50)), 4),
                "p99": round(float(np.percentile(latencies, 99)), 4),
                "max": round(float(latencies.max()), 4),
                "batches": int(latencies.size),
            },
            "accept_rate": round(accepted / events, 6) if events else None,
            "messages": self.messages,
            "batches": self.batches,
            "events": self.events,
            "accepted": self.accepted,
            "malformed": {k: v for k, v in self.malformed.items() if v},
            "dropped": sum(self.malformed.values()),
            "non_finite_events": self.non_finite_events,
            "undelivered_batches": self.undelivered_batches,
        }
        self.window_start, self.window_events, self.window_accepted = now, 0, 0
        self.window_latency = []
        return record


def _stderr_line(record: dict[str, Any]) -> None:
    sys.stderr.write(json.dumps(record) + "\n")
    sys.stderr.flush()


def _endpoint(address: str) -> tuple[bool, str]:
    """``(bind, endpoint)``: ``@`` or no prefix binds, ``>`` connects."""
    if address.startswith(">"):
        return False, address[1:]
    return True, address[1:] if address.startswith("@") else address


def _open(context: Any, kind: int, address: str, max_message_bytes: int | None = None) -> tuple[Any, str]:
    import zmq

    bind, endpoint = _endpoint(address)
    sock = context.socket(kind)
    sock.setsockopt(zmq.LINGER, _LINGER_MS)
    if max_message_bytes is not None:
        sock.setsockopt(zmq.MAXMSGSIZE, max_message_bytes)
    try:
        if bind:
            sock.bind(endpoint)
        else:
            sock.connect(endpoint)
    except zmq.ZMQError as exc:
        sock.close(linger=0)
        raise SqnnError(f"cannot {'bind' if bind else 'connect'} {endpoint}: {exc}") from None
    return sock, sock.getsockopt_string(zmq.LAST_ENDPOINT) if bind else endpoint


def serve(
    run_dir: str | Path,
    in_address: str,
    out_address: str,
    *,
    engine: str = "torch",
    threshold: float = 0.0,
    report_every: float = 1.0,
    max_messages: int | None = None,
    threads: int = 1,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    report: Callable[[dict[str, Any]], None] = _stderr_line,
    stop: threading.Event | None = None,
) -> dict[str, Any]:
    """Classify batches from ``in_address`` until stopped; returns the final report.

    Stops after ``max_messages`` messages, when ``stop`` is set, or on SIGINT/SIGTERM
    (handlers are installed only when called from the main thread, and restored after).
    ``threads`` sets torch's intra-op threads: one thread is several times faster than two
    on small batches, and a trigger farm runs one process per core.
    """
    try:
        import zmq
    except ImportError:
        raise SqnnError("sqnn stream needs pyzmq: pip install 'sqnn[stream]'") from None
    from sqnn.engines.scoring import make_scorer
    from sqnn.runs import load_run

    if report_every <= 0:
        raise SqnnError(f"{option('report_every')} must be positive, got {report_every}")
    if max_messages is not None and max_messages < 1:
        raise SqnnError(f"{option('max_messages')} must be at least 1, got {max_messages}")
    if threads < 1:
        raise SqnnError(f"{option('threads')} must be at least 1, got {threads}")
    if not HEADER.size <= max_message_bytes <= 1 << 31:
        raise SqnnError(f"{option('max_message_bytes')} must lie in [{HEADER.size}, {1 << 31}], got {max_message_bytes}")
    if not (np.isfinite(threshold) and np.isfinite(report_every)):
        raise SqnnError(f"{option('threshold')} and {option('report_every')} must be finite numbers")
    import torch

    torch.set_num_threads(threads)
    run = load_run(run_dir)
    n_features = len(run.features)
    scorer = make_scorer(run, engine)
    scorer(np.zeros((1, n_features), dtype=np.float32))  # compile / allocate now, not on the first batch
    stop = stop or threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for number in (signal.SIGINT, signal.SIGTERM):
            previous[number] = signal.signal(number, lambda *_: stop.set())

    context = zmq.Context()
    sockets: list[Any] = []
    try:
        pull, in_endpoint = _open(context, zmq.PULL, in_address, max_message_bytes)
        sockets.append(pull)
        push, out_endpoint = _open(context, zmq.PUSH, out_address)
        sockets.append(push)
        report({"event": "listening", "in": in_endpoint, "out": out_endpoint, "engine": engine,
                "features": run.features, "threshold": threshold, "max_message_bytes": max_message_bytes})
        poller = zmq.Poller()
        poller.register(pull, zmq.POLLIN)
        counters = _Counters()
        next_report = counters.started + report_every
        while not stop.is_set() and (max_messages is None or counters.messages < max_messages):
            if poller.poll(_POLL_MS):
                frames = pull.recv_multipart(copy=False)
                received = time.monotonic()
                counters.messages += 1
                try:
                    if len(frames) != 1:
                        raise Malformed("multipart", f"{len(frames)} frames, the format has one")
                    batch_id, features = decode_events(frames[0].buffer, n_features, max_message_bytes)
                except Malformed as exc:
                    counters.malformed[exc.reason] += 1
                    if counters.malformed[exc.reason] == 1:  # the first of each kind in full; all in the counts
                        report({"event": "malformed", "reason": exc.reason, "detail": exc.detail, "batch_id": exc.batch_id})
                else:
                    accept = scorer(features)["logit"] > threshold
                    finite = np.isfinite(features).all(axis=1)
                    if not finite.all():
                        accept &= finite
                        counters.non_finite_events += int((~finite).sum())
                    if _send(push, encode_decisions(batch_id, accept), stop):
                        counters.delivered(len(accept), int(accept.sum()), time.monotonic() - received)
                    else:
                        counters.undelivered_batches += 1
            if time.monotonic() >= next_report:
                report(counters.report("report"))
                next_report = time.monotonic() + report_every
        final = counters.report("final")
        report(final)
        return final
    finally:
        for sock in sockets:
            sock.close()  # lingers up to _LINGER_MS to hand over decisions still queued
        context.term()
        for number, handler in previous.items():
            signal.signal(number, handler)


def _send(sock: Any, message: bytes, stop: threading.Event) -> bool:
    """Send, waiting while no consumer can take the message; False if stopped before it could."""
    import zmq

    while True:
        try:
            sock.send(message, flags=zmq.NOBLOCK, copy=False)
            return True
        except zmq.Again:
            if stop.is_set():
                return False
            sock.poll(_POLL_MS, zmq.POLLOUT)
