"""Online mode: every event of every batch gets exactly one decision, equal to offline scoring."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

zmq = pytest.importorskip("zmq")

from sqnn.cases.toy import make_toy  # noqa: E402
from sqnn.runs import load_run  # noqa: E402
from sqnn.stream import (  # noqa: E402
    HEADER,
    Malformed,
    decode_decisions,
    decode_events,
    encode_decisions,
    encode_events,
)

FEATURES = ("x0", "x1", "x2", "x3", "x4", "x5")
BATCHES, BATCH = 250, 4096
DEADLINE_S = 90


def toy_events(n: int, seed: int) -> np.ndarray:
    columns = make_toy("data", n, seed)
    return np.column_stack([columns[c] for c in FEATURES]).astype(np.float32)


def test_messages_round_trip_and_every_malformation_is_named() -> None:
    events = toy_events(5, 1)
    message = encode_events(2**40 + 3, events)
    assert len(message) == HEADER.size + events.nbytes
    batch_id, decoded = decode_events(message, 6)
    assert batch_id == 2**40 + 3 and np.array_equal(decoded, events)
    accept = np.array([1, 0, 0, 1, 1], dtype=np.uint8)
    assert decode_decisions(encode_decisions(9, accept))[0] == 9
    assert np.array_equal(decode_decisions(encode_decisions(9, accept))[1], accept)
    bad = {
        "short": message[:10],
        "bad_magic": b"XXXX" + message[4:],
        "bad_version": message[:4] + b"\x07" + message[5:],
        "wrong_feature_count": encode_events(1, toy_events(5, 1)[:, :5]),
        "wrong_size": message[:-4],
    }
    for reason, payload in bad.items():
        with pytest.raises(Malformed) as caught:
            decode_events(payload, 6)
        assert caught.value.reason == reason


def _start(run_dir: Path, *extra: str) -> tuple[subprocess.Popen, dict]:
    command = [sys.executable, "-m", "sqnn", "stream", str(run_dir), "--in", "tcp://127.0.0.1:*",
               "--out", "tcp://127.0.0.1:*", *extra]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = process.stderr.readline()  # the first report names the ports that were bound
    if not line:
        process.kill()
        raise AssertionError(f"sqnn stream did not start: {process.communicate()[1][-2000:]}")
    return process, json.loads(line)


@contextlib.contextmanager
def _connected(process: subprocess.Popen, listening: dict) -> Iterator[tuple[Any, Any]]:
    """A PUSH socket to the stream's input and a PULL socket on its output; closed, and the process killed if still up, on exit."""
    context = zmq.Context()
    producer, consumer = context.socket(zmq.PUSH), context.socket(zmq.PULL)
    try:
        producer.connect(listening["in"])
        consumer.connect(listening["out"])
        yield producer, consumer
    finally:
        producer.close(linger=0)
        consumer.close(linger=0)
        context.term()
        if process.poll() is None:
            process.kill()
            process.communicate()


def _reports(stderr: str) -> list[dict]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_a_million_events_each_get_one_decision_equal_to_offline_scoring(toy_run: Path) -> None:
    events = toy_events(BATCHES * BATCH, 5)
    expected = load_run(toy_run).logit(events) > 0
    malformed = [b"NOPE" + bytes(40), encode_events(10**6, events[:8, :4]), encode_events(10**6 + 1, events[:8])[:-1]]
    process, listening = _start(toy_run, "--max-messages", str(BATCHES + len(malformed)), "--report-every", "0.2")
    with _connected(process, listening) as (producer, consumer):
        # batch ids in a scrambled order: decisions are matched by id, not by arrival
        ids = np.random.default_rng(0).permutation(BATCHES) * 7919 + 11
        for index, batch_id in enumerate(ids):
            producer.send(encode_events(int(batch_id), events[index * BATCH : (index + 1) * BATCH]))
            if index % 100 == 50:
                producer.send(malformed[index // 100])
        producer.send(malformed[2])
        decisions: dict[int, np.ndarray] = {}
        deadline = time.monotonic() + DEADLINE_S
        while len(decisions) < BATCHES and consumer.poll(max(0, int(1000 * (deadline - time.monotonic())))):
            batch_id, accept = decode_decisions(consumer.recv())
            assert batch_id not in decisions, f"batch {batch_id} decided twice"
            decisions[batch_id] = accept.copy()
        assert len(decisions) == BATCHES, f"{len(decisions)} of {BATCHES} batches decided in {DEADLINE_S} s"
        assert not consumer.poll(200), "more decision messages than batches"
        got = np.concatenate([decisions[int(batch_id)] for batch_id in ids]).astype(bool)
        assert got.shape == expected.shape
        assert np.array_equal(got, expected)
        assert 0.2 < expected.mean() < 0.8  # both decisions occur
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr[-2000:]
    reports = _reports(stderr)
    final = reports[-1]
    assert final["event"] == "final"
    assert final["events"] == BATCHES * BATCH and final["batches"] == BATCHES
    assert final["accepted"] == int(expected.sum())
    assert final["malformed"] == {"bad_magic": 1, "wrong_feature_count": 1, "wrong_size": 1}
    assert final["dropped"] == 3 and final["messages"] == BATCHES + 3
    assert final["latency_ms"]["p50"] <= final["latency_ms"]["p99"]
    assert {r["reason"] for r in reports if r["event"] == "malformed"} == {"bad_magic", "wrong_feature_count", "wrong_size"}
    periodic = [r for r in reports if r["event"] == "report"]
    assert periodic and all({"events_per_s", "latency_ms", "accept_rate"} <= set(r) for r in periodic)


def test_sigterm_stops_cleanly_with_a_final_report(toy_run: Path) -> None:
    process, listening = _start(toy_run)
    with _connected(process, listening) as (producer, consumer):
        events = toy_events(300, 6)
        for batch_id in range(3):
            producer.send(encode_events(batch_id, events[batch_id * 100 : (batch_id + 1) * 100]))
        for _ in range(3):
            assert consumer.poll(30_000), "no decision within 30 s"
            decode_decisions(consumer.recv())
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr[-2000:]
    final = _reports(stderr)[-1]
    assert final["event"] == "final" and final["events"] == 300 and final["dropped"] == 0


def test_a_message_larger_than_the_limit_is_refused_before_it_is_held(toy_run: Path) -> None:
    import threading

    from sqnn.stream import serve

    with pytest.raises(Malformed) as caught:
        decode_events(encode_events(1, toy_events(100, 1)), 6, max_bytes=1000)
    assert caught.value.reason == "too_large"

    reports: list[dict] = []
    stop = threading.Event()
    listening = threading.Event()

    def report(record: dict) -> None:
        reports.append(record)
        if record["event"] == "listening":
            listening.set()

    server = threading.Thread(target=serve, args=(toy_run, "tcp://127.0.0.1:*", "tcp://127.0.0.1:*"),
                              kwargs={"max_message_bytes": 4096, "report": report, "stop": stop, "report_every": 60})
    server.start()
    try:
        assert listening.wait(60)
        assert reports[0]["max_message_bytes"] == 4096
        context = zmq.Context()
        consumer = context.socket(zmq.PULL)
        consumer.connect(reports[0]["out"])
        oversized, small = context.socket(zmq.PUSH), context.socket(zmq.PUSH)
        for sock in (oversized, small):
            sock.connect(reports[0]["in"])
        oversized.send(encode_events(1, toy_events(1000, 2)))  # 24 kB: the producer is cut off, nothing is held
        small.send(encode_events(2, toy_events(10, 3)))
        assert consumer.poll(30_000)
        batch_id, accept = decode_decisions(consumer.recv())
        assert batch_id == 2 and len(accept) == 10
        assert not consumer.poll(500), "the oversized message got a decision"
        for sock in (consumer, oversized, small):
            sock.close(linger=0)
        context.term()
    finally:
        stop.set()
        server.join(30)
    assert reports[-1]["event"] == "final" and reports[-1]["batches"] == 1
