"""Events per second when scoring at scale, next to the engine's own in-process rate.

Side by side, on one trained toy run and the same events:

* ``engine_in_process``: the scorer alone on events already in memory (best of 3);
* ``predict_in_process``: :func:`sqnn.workflows.predict.predict_files` without a scheduler — reading
  parquet in chunks, scoring, writing the outputs;
* ``predict_dask_1`` / ``predict_dask_2``: the same on a LocalCluster of 1 and 2 worker
  processes (one thread each), timed on a warm cluster (workers have imported torch and
  loaded the run); ``cluster_start_s`` is what starting the cluster and warming it took;
* ``stream_loopback``: ``sqnn stream`` in its own process on 127.0.0.1, a producer and a
  consumer in this one: events from the first batch sent to the last decision received,
  with the server's own latency percentiles.

All numbers share the machine's cores with each other's processes (the producer, the
consumer and the server run at once); on 2 cores, 2 Dask workers compete with the client
that writes the outputs.

    python benchmarks/scale_bench.py --out scale_bench.json [--events 2000000] [--engine torch]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sqnn.cases.toy import generate, make_toy
from sqnn.data import ColumnSpec
from sqnn.engines.scoring import make_scorer
from sqnn.workflows.train import train_run
from sqnn.runs import load_run
from sqnn.cluster import open_client
from sqnn.workflows.predict import predict_files, warm_up
from sqnn.training import TrainConfig
from sqnn.workflows.settings import Settings

FEATURES = ("x0", "x1", "x2", "x3", "x4", "x5")
# all hidden layers step layers, so the packed engine can run the same network
STEP_NETWORK = {"hidden": [64, 16], "stochastic": [True, True], "binary_weights": [False, False], "inference": "deterministic"}


def train(folder: Path, engine: str) -> Path:
    sim = generate("sim", 4000, 1, folder / "sim.parquet")
    data = generate("data", 4000, 2, folder / "data.parquet")
    spec = ColumnSpec(features=FEATURES, label="is_signal", weight="weight")
    network = STEP_NETWORK if engine == "packed" else None
    out = folder / "run"
    train_run(sim, data, Settings(columns=spec, method="sqnn", gamma=1.0, network=network, train=TrainConfig(epochs=2)), out)
    return out


def engine_rate(run_dir: Path, engine: str, n: int) -> float:
    columns = make_toy("data", n, 9)
    features = np.column_stack([columns[c] for c in FEATURES]).astype(np.float32)
    scorer = make_scorer(load_run(run_dir), engine)
    scorer(features[:4096])  # compile / warm up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        scorer(features)
        best = min(best, time.perf_counter() - start)
    return n / best


def timed_predict(run_dir: Path, inputs: list[Path], out: Path, **options: object) -> dict[str, float]:
    start = time.perf_counter()
    written = predict_files(run_dir, inputs, out, passthrough=("event",), **options)
    seconds = time.perf_counter() - start
    events = sum(w.events for w in written)
    return {"events": events, "seconds": round(seconds, 3), "events_per_s": round(events / seconds, 1)}


def predict_on_cluster(run_dir: Path, inputs: list[Path], warmup: Path, out: Path, workers: int, **options: object) -> dict:
    start = time.perf_counter()
    with open_client("local", workers=workers) as client:
        # every worker imports torch, loads the run and compiles its engine before the clock starts
        warm_up(client, run_dir, str(options["engine"]))
        predict_files(run_dir, [warmup], out / "warmup", scheduler=client, **{**options, "chunk": 2000})
        started = time.perf_counter() - start
        result = timed_predict(run_dir, inputs, out / f"dask{workers}", scheduler=client, **options)
    return {**result, "workers": workers, "cluster_start_s": round(started, 3)}


def stream_loopback(run_dir: Path, engine: str, batches: int, batch: int) -> dict:
    import zmq

    from sqnn.stream import decode_decisions, encode_events

    columns = make_toy("data", batches * batch, 11)
    features = np.column_stack([columns[c] for c in FEATURES]).astype(np.float32)
    messages = [encode_events(i, features[i * batch : (i + 1) * batch]) for i in range(batches)]
    command = [sys.executable, "-m", "sqnn", "stream", str(run_dir), "--engine", engine, "--in", "tcp://127.0.0.1:*",
               "--out", "tcp://127.0.0.1:*", "--max-messages", str(batches), "--report-every", "60"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    listening = json.loads(process.stderr.readline())
    context = zmq.Context()
    producer, consumer = context.socket(zmq.PUSH), context.socket(zmq.PULL)
    try:
        producer.connect(listening["in"])
        consumer.connect(listening["out"])
        poller = zmq.Poller()
        poller.register(consumer, zmq.POLLIN)
        poller.register(producer, zmq.POLLOUT)
        sent = received = 0
        start = time.perf_counter()
        while received < batches:
            ready = dict(poller.poll(30_000))
            if not ready:
                raise RuntimeError(f"no progress for 30 s ({received} of {batches} decisions)")
            if consumer in ready:
                decode_decisions(consumer.recv())
                received += 1
            if producer in ready and sent < batches:
                producer.send(messages[sent], copy=False)
                sent += 1
                if sent == batches:
                    poller.unregister(producer)
        seconds = time.perf_counter() - start
        _, stderr = process.communicate(timeout=60)
    finally:
        producer.close(linger=0)
        consumer.close(linger=0)
        context.term()
        if process.poll() is None:
            process.kill()
    final = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")][-1]
    events = batches * batch
    return {
        "events": events, "batch": batch, "seconds": round(seconds, 3), "events_per_s": round(events / seconds, 1),
        "server_latency_ms": final["latency_ms"], "server_events_per_s": final["events_per_s"], "dropped": final["dropped"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="JSON file to write")
    parser.add_argument("--events", type=int, default=2_000_000, help="events to score with predict, over --files files")
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--chunk", type=int, default=100_000)
    parser.add_argument("--engine", choices=["torch", "packed", "onnx"], default="torch")
    parser.add_argument("--stream-batches", type=int, default=250)
    parser.add_argument("--batch", type=int, default=4096, help="events per stream message")
    args = parser.parse_args()
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run_dir = train(folder, args.engine)
        inputs = [generate("data", args.events // args.files, 100 + i, folder / f"events{i}.parquet") for i in range(args.files)]
        warmup = generate("data", 20_000, 99, folder / "warmup.parquet")
        options = {"chunk": args.chunk, "engine": args.engine}
        results = {
            "engine_in_process": {"events_per_s": round(engine_rate(run_dir, args.engine, 1_000_000), 1)},
            "predict_in_process": timed_predict(run_dir, inputs, folder / "here", **options),
            "predict_dask_1": predict_on_cluster(run_dir, inputs, warmup, folder, 1, **options),
            "predict_dask_2": predict_on_cluster(run_dir, inputs, warmup, folder, 2, **options),
            "stream_loopback": stream_loopback(run_dir, args.engine, args.stream_batches, args.batch),
        }
        network = load_run(run_dir).meta["network"]
    report = {
        "engine": args.engine,
        "network": {"inputs": len(FEATURES), **network},
        "chunk": args.chunk,
        "files": args.files,
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(), "python": platform.python_version()},
        "torch_threads": 1,
        "results": results,
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
