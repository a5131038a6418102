"""`sqnn predict`: score files with a trained run, in chunks, here or on a Dask cluster."""

from __future__ import annotations

from pathlib import Path

import click

from sqnn.cli.options import CHUNK, THREADS, Checked, device_option
from sqnn.schema import Integer
from sqnn.engines.scoring import ENGINES
from sqnn.errors import SqnnError
from sqnn.nn.layers import INFERENCE_MODES
from sqnn.workflows.settings import split_list

__all__ = ["predict"]


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Output parquet, or a directory (one OUT/<input>.scores.parquet per input) with --scheduler/--chunk.")
@click.option("--scheduler", default=None, help="Score chunks on Dask: 'local' (a LocalCluster) or tcp://HOST:PORT.")
@click.option("--chunk", type=CHUNK, default=None, help="Events per chunk; streams each input instead of loading it [default: 100000].")
@click.option("--workers", type=THREADS, default=2, show_default=True, help="Worker processes of --scheduler local.")
@click.option("--engine", type=click.Choice(list(ENGINES)), default="torch", show_default=True,
              help="torch, the packed CPU engine (step hidden layers), or onnxruntime.")
@click.option("--inference", type=click.Choice(INFERENCE_MODES), default=None,
              help="Bernoulli units as their expectation θ (torch engine), thresholds, or LFSR draws (packed engine or its "
                   "numpy emulation with --engine torch) [default: the model's own, network.inference].")
@click.option("--samples", type=Checked(Integer(1, 1024)), default=1, show_default=True, help="Stochastic draws per event (score = mean σ, vote = fraction > 0).")
@click.option("--lfsr-seed", type=Checked(Integer(0, 2**64 - 1)), default=0, show_default=True, help="Seed of the LFSR registers (stochastic).")
@click.option("--passthrough", help="Comma-separated columns copied next to the scores.")
@device_option
def predict(
    run_dir: Path,
    inputs: tuple[str, ...],
    out: Path,
    scheduler: str | None,
    chunk: int | None,
    workers: int,
    engine: str,
    inference: str | None,
    samples: int,
    lfsr_seed: int,
    passthrough: str | None,
    device: str | None,
) -> None:
    """Score events with a trained run; writes `score` and `logit` per event (and `vote` when stochastic)."""
    import torch

    from sqnn.workflows.predict import DEFAULT_CHUNK, predict_files, predict_to_file

    torch.set_num_threads(1)
    keep = split_list(passthrough) or ()
    if chunk is not None and chunk < 1:
        raise SqnnError(f"--chunk must be at least 1, got {chunk}")
    size = chunk or DEFAULT_CHUNK
    if scheduler is not None or chunk is not None or out.suffix.lower() != ".parquet":
        predict_files(
            run_dir, inputs, out, scheduler=scheduler, workers=workers, chunk=size, engine=engine, passthrough=keep,
            inference=inference, samples=samples, lfsr_seed=lfsr_seed, device=device,
            progress=lambda f: click.echo(f"wrote {f.output} ({f.events} events)"),
        )
        return
    written = predict_to_file(
        run_dir, inputs, out, chunk=size, engine=engine, passthrough=keep, inference=inference, samples=samples,
        lfsr_seed=lfsr_seed, device=device,
    )
    click.echo(f"wrote {out} ({written.events} events)")
