"""Running the workers of a sequence: here or as processes, with signals and a progress bar.

One worker runs in this process; more run as fresh Python processes that report every
finished chunk (and errors) on a pipe. Ctrl-C or SIGTERM asks every worker to stop after its
current chunk; the finished chunks stay in ``.parts`` for a rerun.
"""

from __future__ import annotations

import json
import os
import queue as queue_module
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqnn.cases.boosted.sequences import EventSequence
from sqnn.cases.boosted.worker import run_worker
from sqnn.errors import SqnnError

__all__ = ["GenerationInterrupted", "Progress", "run", "worker_main"]


class GenerationInterrupted(SqnnError):
    """Generation stopped by Ctrl-C or SIGTERM; the finished chunks are kept for a rerun."""

    exit_code = 130


@contextmanager
def _stop_on_signals(on_signal: Callable[[], None]) -> Iterator[None]:
    """Turn SIGINT and SIGTERM into a request to stop after the current chunk."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: Any) -> None:
        on_signal()

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def worker_main() -> None:
    """Entry point of a worker process: ``python -c ... SEQUENCE_JSON WORKER FD``.

    Reports every finished chunk, and errors, as JSON lines on the file descriptor FD.
    """
    sequence_json, worker_text, fd_text = sys.argv[1:4]
    worker = int(worker_text)
    sequence = EventSequence.from_json(sequence_json)
    stopped = threading.Event()
    with open(int(fd_text), "w", buffering=1) as messages, _stop_on_signals(stopped.set):

        def report(jets: int, events: int) -> None:
            messages.write(json.dumps({"jets": jets, "events": events}) + "\n")

        try:
            run_worker(sequence, worker, report, stopped.is_set)
        except SqnnError as error:
            messages.write(json.dumps({"error": error.marked, "user": True}) + "\n")
            raise SystemExit(2) from None
        except Exception:
            messages.write(json.dumps({"error": traceback.format_exc(), "user": False}) + "\n")
            raise SystemExit(1) from None


class Progress:
    """A progress bar of jets or chunks on stderr, with the generated events per second."""

    def __init__(self, total: int, initial: int, enabled: bool, unit: str = "jet",
                 description: str | None = None) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=initial, unit=unit, file=sys.stderr, disable=not enabled,
                        dynamic_ncols=True, smoothing=0.05, desc=description)
        self.events = 0
        self.start = time.monotonic()

    def __call__(self, jets: int, events: int) -> None:
        self.events += events
        elapsed = max(time.monotonic() - self.start, 1e-9)
        self.bar.set_postfix_str(f"{self.events / elapsed:.0f} events/s", refresh=False)
        self.bar.update(jets)

    def close(self) -> None:
        self.bar.close()


def _run_in_processes(sequence: EventSequence, progress: Progress) -> bool:
    """Run every worker as its own Python process; True when a stop was requested.

    Workers are fresh interpreters (not forks) started with ``OMP_NUM_THREADS=1``; they
    share the terminal's process group, so Ctrl-C reaches them directly, and a SIGTERM
    to this process is passed on. Either way each stops after its current chunk.
    """
    package_root = str(Path(__file__).resolve().parents[3])
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
    }
    code = "from sqnn.cases.boosted.processes import worker_main; worker_main()"
    messages: queue_module.Queue[tuple[int, str | None]] = queue_module.Queue()
    processes: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    errors: list[tuple[int, str, bool]] = []

    def request_stop() -> None:
        stop.set()
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    def forward(worker: int, fd: int) -> None:
        with open(fd) as lines:
            for line in lines:
                messages.put((worker, line))
        messages.put((worker, None))

    with _stop_on_signals(request_stop):
        try:
            for worker in range(sequence.workers):
                read_fd, write_fd = os.pipe()
                try:
                    processes.append(subprocess.Popen(
                        [sys.executable, "-c", code, sequence.to_json(), str(worker), str(write_fd)],
                        pass_fds=(write_fd,), env=env, stdin=subprocess.DEVNULL,
                    ))
                finally:
                    os.close(write_fd)
                threading.Thread(target=forward, args=(worker, read_fd), daemon=True).start()
            running = set(range(sequence.workers))
            while running:
                try:
                    worker, line = messages.get(timeout=0.5)
                except queue_module.Empty:
                    continue
                if line is None:
                    running.discard(worker)
                    continue
                try:
                    message = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if "error" in message:
                    errors.append((worker, message["error"], message["user"]))
                    request_stop()
                else:
                    progress(message["jets"], message["events"])
        except BaseException:
            request_stop()
            raise
        finally:
            codes = [process.wait() for process in processes]
    for worker, text, user in errors:
        if user:
            raise SqnnError(text)
        raise RuntimeError(f"{sequence.process} worker {worker} failed:\n{text}")
    for worker, code in enumerate(codes):
        if code != 0 and not stop.is_set():
            raise RuntimeError(f"{sequence.process} worker {worker} exited with code {code}")
    return stop.is_set()


def _run_here(sequence: EventSequence, progress: Progress) -> bool:
    stopped = threading.Event()
    with _stop_on_signals(stopped.set):
        run_worker(sequence, 0, progress, stopped.is_set)
    return stopped.is_set()


def run(sequence: EventSequence, progress: Progress) -> bool:
    runner = _run_here if sequence.workers == 1 else _run_in_processes
    return runner(sequence, progress)
