"""A Dask cluster for independent tasks: a local one, or a running scheduler.

:func:`open_client` gives a client (a new ``LocalCluster`` of one-thread worker processes
for ``"local"``, or a connection to ``tcp://host:8786``); :func:`map_tasks` runs
independent tasks (e.g. one (method, γ, seed) training each) on it and returns their
results in task order; :func:`in_order` streams results with a bounded number in flight.
Workers must have sqnn installed and see the same paths; tasks carry paths, never models.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from sqnn.errors import SqnnError, option

__all__ = ["Scheduler", "in_order", "map_tasks", "open_client"]

Scheduler = Any  # None, "local", an address, or a distributed.Client
T = TypeVar("T")
R = TypeVar("R")

# tasks in flight per worker thread: one running, one queued behind it
_IN_FLIGHT_PER_THREAD = 2


@contextlib.contextmanager
def open_client(scheduler: Scheduler, workers: int = 2) -> Iterator[Any]:
    """A Dask client: a new LocalCluster for ``"local"``, a connection for an address, or the Client given."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SqnnError("this needs Dask: pip install 'sqnn[dask]'") from None
    if isinstance(scheduler, Client):
        yield scheduler
        return
    if not isinstance(scheduler, str) or not scheduler:
        raise SqnnError(f"{option('scheduler')} must be 'local' or the address of a Dask scheduler, got {scheduler!r}")
    if scheduler == "local":
        if workers < 1:
            raise SqnnError(f"{option('workers')} must be at least 1, got {workers}")
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None, silence_logs=logging.ERROR,
        )
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    try:
        client = Client(scheduler, timeout="20s")
    except OSError as exc:
        raise SqnnError(f"cannot reach the Dask scheduler at {scheduler} ({exc})") from None
    with client:
        yield client


def in_order(client: Any, fn: Callable[..., R], calls: Iterable[tuple[Any, ...]]) -> Iterator[R]:
    """Results of ``fn(*args)`` for each call, in call order, with a bounded number in flight."""
    window = max(2, _IN_FLIGHT_PER_THREAD * sum(client.nthreads().values()))
    calls = iter(calls)
    pending: deque[Any] = deque()

    def submit_next() -> None:
        args = next(calls, None)
        if args is not None:
            pending.append(client.submit(fn, *args, pure=False))

    try:
        for _ in range(window):
            submit_next()
        while pending:
            future = pending.popleft()
            result = future.result()
            future.release()
            submit_next()
            yield result
    finally:
        if pending:
            client.cancel(list(pending))


def map_tasks(
    fn: Callable[[T], R],
    tasks: Iterable[T],
    scheduler: Scheduler = None,
    *,
    workers: int = 2,
    on_result: Callable[[int, R], None] | None = None,
) -> list[R]:
    """``[fn(task) for task in tasks]``, in task order, here (``scheduler=None``) or on a Dask cluster.

    ``fn`` must be importable on the workers (a module-level function) and each task
    picklable; tasks run independently, one per worker thread. ``on_result(i, result)`` is
    called in task order as results arrive (e.g. to print progress). An exception in a
    task is raised here, and the tasks still queued are cancelled.
    """
    tasks = list(tasks)
    results: list[R] = []
    if scheduler is None:
        for index, task in enumerate(tasks):
            results.append(fn(task))
            if on_result is not None:
                on_result(index, results[-1])
        return results
    with open_client(scheduler, workers) as client:
        for index, result in enumerate(in_order(client, fn, ((task,) for task in tasks))):
            results.append(result)
            if on_result is not None:
                on_result(index, result)
    return results
