"""`sqnn train`, `sqnn evaluate` and `sqnn predict`."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import numpy as np

from sqnn.cli.options import column_spec, data_options, read_config
from sqnn.data import ColumnSpec, load_sample
from sqnn.errors import SqnnError
from sqnn.methods import METHODS
from sqnn.nn.layers import INFERENCE_MODES
from sqnn.nn.model import SCORING_MODES
from sqnn.pipeline import evaluate_run, train_run
from sqnn.run import input_spec, load_run
from sqnn.train import TrainConfig

__all__ = ["train", "evaluate", "predict", "format_metrics"]


def _train_config(config: dict[str, Any], epochs: int | None, seed: int | None) -> TrainConfig:
    settings = dict(config.get("train") or {})
    if epochs is not None:
        settings["epochs"] = epochs
    if seed is not None:
        settings["seed"] = seed
    try:
        return TrainConfig(**settings)
    except (TypeError, ValueError) as exc:
        raise SqnnError(f"invalid training settings: {exc}") from None


@click.command()
@click.option("--sim", "simulation", required=True, help="Labelled simulation file.")
@click.option("--data", "data", help="Unlabelled data file.")
@data_options
@click.option("--method", type=click.Choice(sorted(METHODS)), default=None, help="Training objective [default: sqnn].")
@click.option("--gamma", type=float, default=None, help="Strength of the domain penalty.")
@click.option("--region", type=click.Choice(["all", "control", "class-conditional"]), default=None, help="Events in the penalty (sqnn).")
@click.option("--epochs", type=int, default=None, help="Maximum number of epochs.")
@click.option("--seed", type=int, default=None, help="Random seed.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config (flags win).")
@click.option("--resume", is_flag=True, help="Continue from the run directory's last checkpoint.")
@click.option("--distributed", is_flag=True, help="Data-parallel training under torchrun (gloo on CPU); rank 0 writes the run.")
@click.option("--model", "model", type=click.Choice(["dense", "set"]), default="dense", show_default=True,
              help="Feed-forward network on the features, or a permutation-invariant set model on --objects.")
@click.option("--objects", help="Jagged column of objects (records) per event, read by --model set.")
@click.option("--max-objects", type=int, default=12, show_default=True, help="Objects kept per event (set model).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Run directory.")
def train(
    simulation: str,
    data: str | None,
    features: str | None,
    label: str | None,
    weight: str | None,
    control: str | None,
    observer: str | None,
    domain_column: str | None,
    method: str | None,
    gamma: float | None,
    region: str | None,
    epochs: int | None,
    seed: int | None,
    config_path: str | None,
    resume: bool,
    distributed: bool,
    model: str,
    objects: str | None,
    max_objects: int,
    quiet: bool,
    out: Path,
) -> None:
    """Train one model on labelled simulation and unlabelled data."""
    config = read_config(config_path)
    spec = column_spec(config, features=features, label=label, weight=weight, control=control, observer=observer)
    if objects is not None and model != "set":
        raise SqnnError("--objects is read by the set model: add --model set")
    if model == "set":
        if objects is None:
            raise SqnnError("--model set needs the objects column: --objects COL")
        if max_objects < 1:
            raise SqnnError(f"--max-objects must be at least 1, got {max_objects}")
        spec = replace(spec, objects=objects, max_objects=max_objects)
    if spec.label is None:
        raise SqnnError(f"{simulation}: simulation needs a label column (--label COL)")
    options = dict(config.get("method_options") or {})
    if region is not None:
        options["region"] = region
    settings: dict[str, Any] = {
        "method": method or config.get("method", "sqnn"),
        "gamma": gamma if gamma is not None else config.get("gamma"),
        "method_options": options,
        "network": config.get("network"),
        "train_config": _train_config(config, epochs, seed),
        "domain_column": domain_column,
        "resume": resume,
        "progress": not quiet,
    }
    if distributed:
        if model != "dense":
            raise SqnnError("--distributed trains dense networks; drop --model set")
        from sqnn.distributed import train_run as distributed_train_run

        run, metrics = distributed_train_run(simulation, data, spec, out, **settings)
        if run is None:  # every rank but 0: rank 0 writes and reports the run
            return
    else:
        run, metrics = train_run(simulation, data, spec, out, model=model, **settings)
    click.echo(f"wrote {out}")
    click.echo(format_metrics({run.meta["method"]: metrics}))


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--sim", "simulation", required=True, help="Labelled simulation file.")
@click.option("--data", "data", help="Data file.")
@click.option("--data-label", help="Class column in data, used only for evaluation.")
@data_options
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="metrics.json to write.")
@click.option("--inference", type=click.Choice(SCORING_MODES), default=None,
              help="Score with this mode instead of the network's own (network.inference).")
def evaluate(
    run_dir: Path,
    simulation: str,
    data: str | None,
    data_label: str | None,
    features: str | None,
    label: str | None,
    weight: str | None,
    control: str | None,
    observer: str | None,
    domain_column: str | None,
    out: Path | None,
    inference: str | None,
) -> None:
    """Metrics of a trained run; on its own training files only the test split is used."""
    if features is not None:
        raise SqnnError("evaluate uses the run's own features; drop --features")
    spec = ColumnSpec(label=label, weight=weight, control=control, observer=observer)
    metrics = evaluate_run(
        run_dir, simulation, data, data_label=data_label, spec=spec, domain_column=domain_column, out=out,
        inference=inference,
    )
    click.echo(json.dumps(metrics, indent=2) if out is None else f"wrote {out}")


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", required=True, type=click.Path(path_type=Path),
              help="Output parquet, or a directory (one OUT/<input>.scores.parquet per input) with --scheduler/--chunk.")
@click.option("--scheduler", default=None, help="Score chunks on Dask: 'local' (a LocalCluster) or tcp://HOST:PORT.")
@click.option("--chunk", type=int, default=None, help="Events per chunk; streams each input instead of loading it [default: 100000].")
@click.option("--workers", type=int, default=2, show_default=True, help="Worker processes of --scheduler local.")
@click.option("--engine", type=click.Choice(["torch", "packed", "onnx"]), default="torch", show_default=True,
              help="torch, the packed CPU engine (step hidden layers), or onnxruntime.")
@click.option("--inference", type=click.Choice(INFERENCE_MODES), default=None,
              help="Bernoulli units as their expectation θ (torch engine), thresholds, or LFSR draws (packed engine or its "
                   "numpy emulation with --engine torch) [default: the model's own, network.inference].")
@click.option("--samples", type=int, default=1, show_default=True, help="Stochastic draws per event (score = mean σ, vote = fraction > 0).")
@click.option("--lfsr-seed", type=int, default=0, show_default=True, help="Seed of the LFSR registers (stochastic).")
@click.option("--passthrough", help="Comma-separated columns copied next to the scores.")
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
) -> None:
    """Score events with a trained run; writes `score` and `logit` per event (and `vote` when stochastic)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch

    from sqnn._atomic import atomic_path
    from sqnn.cli.options import split_list
    from sqnn.engines.scoring import make_scorer

    torch.set_num_threads(1)
    keep = split_list(passthrough) or ()
    if scheduler is not None or chunk is not None or out.suffix.lower() != ".parquet":
        from sqnn.scale import DEFAULT_CHUNK, predict_files

        if chunk is not None and chunk < 1:
            raise SqnnError(f"--chunk must be at least 1, got {chunk}")
        predict_files(
            run_dir, inputs, out, scheduler=scheduler, chunk=chunk or DEFAULT_CHUNK, engine=engine, passthrough=keep,
            workers=workers, inference=inference, samples=samples, lfsr_seed=lfsr_seed,
            progress=lambda f: click.echo(f"wrote {f.output} ({f.events} events)"),
        )
        return
    run = load_run(run_dir)
    scorer = make_scorer(run, engine, inference, samples, lfsr_seed)
    tables = []
    for index, path in enumerate(inputs):
        sample = load_sample(path, input_spec(run.meta, passthrough=keep), "data")
        columns: dict[str, Any] = {c: sample.passthrough[c] for c in keep}
        columns["input"] = np.full(len(sample), index, dtype=np.int32)
        columns.update(scorer(sample.features))
        tables.append(pa.table(columns))
    with atomic_path(out) as tmp:
        pq.write_table(pa.concat_tables(tables), tmp)
    click.echo(f"wrote {out} ({sum(t.num_rows for t in tables)} events)")


_TABLE_KEYS = ("auc_source", "auc_target", "ks", "ks_control", "domain_auc", "mi_bits", "mi_joint_bits", "sf_signal", "sf_background")


def format_metrics(rows: dict[str, dict[str, Any]], keys: tuple[str, ...] = _TABLE_KEYS) -> str:
    """A fixed-width table, one row per run."""
    width = max([len(name) for name in rows] + [6])
    header = "run".ljust(width) + "".join(k.rjust(15) for k in keys)
    lines = [header, "-" * len(header)]
    for name, metrics in rows.items():
        cells = []
        for key in keys:
            value = metrics.get(key)
            cells.append(("—" if value is None else f"{value:.4f}").rjust(15))
        lines.append(name.ljust(width) + "".join(cells))
    return "\n".join(lines)
