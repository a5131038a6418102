"""`sqnn stream`: online classification of event batches over ZeroMQ (see :mod:`sqnn.stream`)."""

from __future__ import annotations

from pathlib import Path

import click

from sqnn.cli.options import COUNT, THREADS, Checked
from sqnn.schema import Integer, Real

__all__ = ["stream"]


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--in", "in_address", required=True,
              help="Events endpoint (PULL): tcp://HOST:PORT or @tcp://… binds, >tcp://… connects; PORT * picks a free one.")
@click.option("--out", "out_address", required=True,
              help="Decisions endpoint (PUSH), same address forms as --in.")
@click.option("--engine", type=click.Choice(["torch", "packed", "onnx"]), default="torch", show_default=True,
              help="torch (any run), packed (networks with step hidden layers, fastest on CPU) or onnxruntime.")
@click.option("--threshold", type=Checked(Real()), default=0.0, show_default=True, help="Accept events whose logit exceeds this.")
@click.option("--report-every", type=Checked(Real(1e-3, 86_400.0)), default=1.0, show_default=True, help="Seconds between JSON reports on stderr.")
@click.option("--max-messages", type=COUNT, default=None, help="Stop after this many messages (malformed ones included).")
@click.option("--threads", type=THREADS, default=1, show_default=True, help="torch threads (one process per core scales best).")
@click.option("--max-message-bytes", type=Checked(Integer(24, 1 << 31)), default=64 << 20, show_default=True,
              help="Largest events message taken; a producer sending a larger one is disconnected.")
def stream(
    run_dir: Path, in_address: str, out_address: str, engine: str, threshold: float, report_every: float,
    max_messages: int | None, threads: int, max_message_bytes: int,
) -> None:
    """Classify batches of events arriving over ZeroMQ; send accept/reject decisions.

    \b
    Message formats, socket types and reports: `python -m pydoc sqnn.stream`.
    Stops on SIGINT/SIGTERM or after --max-messages; reports are JSON lines on stderr.
    """
    from sqnn.stream import serve

    serve(run_dir, in_address, out_address, engine=engine, threshold=threshold, report_every=report_every,
          max_messages=max_messages, threads=threads, max_message_bytes=max_message_bytes)
