"""`sqnn export` and `sqnn bench`: deployment artefacts, their parity checks, and engine speeds."""

from __future__ import annotations

import json
from pathlib import Path

import click

from sqnn.cli.options import THREADS, Checked
from sqnn.errors import SqnnError
from sqnn.runs import load_run
from sqnn.schema import Integer
from sqnn.workflows.settings import split_list

__all__ = ["export", "bench"]

_INFERENCE = click.Choice(["mean", "deterministic", "stochastic"])


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["onnx", "hls4ml", "packed"]), required=True, help="Deployment format.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output directory.")
@click.option("--check", "check_n", type=Checked(Integer(0, 1 << 24)), default=0, show_default=True, help="Prove agreement with the Python model on N events (0: no check).")
@click.option("--events", "events_file", type=click.Path(dir_okay=False), help="Events for --check (default: random events over the preprocessing ranges).")
@click.option("--inference", type=_INFERENCE, default=None,
              help="How the Bernoulli units score: their expectation (mean), thresholds, or LFSR draws [default: the model's own, network.inference].")
@click.option("--samples", type=Checked(Integer(1, 1024)), default=1, show_default=True, help="Stochastic draws per event in --check.")
@click.option("--lfsr-seed", type=Checked(Integer(0, 2**64 - 1)), default=0, show_default=True, help="Seed of the LFSR registers (stochastic).")
@click.option("--part", default=None, help="FPGA part for the hls4ml project.")
@click.option("--verbose", is_flag=True, help="Show hls4ml's own output.")
def export(
    run_dir: Path, fmt: str, out: Path, check_n: int, events_file: str | None, inference: str | None, samples: int,
    lfsr_seed: int, part: str | None, verbose: bool,
) -> None:
    """Write a deployment artefact of a trained run; --check N proves bit-level agreement.

    \b
    onnx     OUT/model.onnx: raw float64 features in, logit out
    packed   OUT/network.safetensors + network.json for the packed CPU engine
    hls4ml   OUT/hls4ml/: hls4ml project (needs a quantisation-aware model),
             OUT/resources.json: what the firmware computes, layer by layer

    A model is exported as it scores (network.inference) unless --inference says
    otherwise; a scoring the format cannot compute exactly is refused (exit 2).
    """
    from sqnn.workflows.export import export_run

    export_run(run_dir, fmt, out, check=check_n, events_file=events_file, inference=inference, samples=samples,
               lfsr_seed=lfsr_seed, part=part, verbose=verbose, echo=click.echo)


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--batch", "batches", default="1,256,65536", show_default=True, help="Comma-separated batch sizes.")
@click.option("--threads", type=THREADS, default=1, show_default=True, help="Threads per engine (1: CPU time of the calling thread).")
@click.option("--repeats", type=Checked(Integer(1, 10_000)), default=5, show_default=True, help="Timed repeats; the median is reported.")
@click.option("--engines", default="torch,onnx,packed", show_default=True, help="Comma-separated engines.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="JSON file for the records.")
def bench(run_dir: Path, batches: str, threads: int, repeats: int, engines: str, out: Path | None) -> None:
    """Events/s and per-call latency of the torch, onnxruntime and packed engines, side by side."""
    from sqnn.files import write_json
    from sqnn.engines.bench import benchmark, format_table, ratios

    try:
        sizes = [int(b) for b in split_list(batches) or ()]
    except ValueError:
        raise SqnnError(f"--batch must be comma-separated integers, got {batches!r}") from None
    if not sizes:
        raise SqnnError("--batch needs at least one batch size")
    if any(not 1 <= size <= 1 << 24 for size in sizes):
        raise SqnnError(f"--batch sizes must lie in [1, {1 << 24}], got {batches!r}")
    run = load_run(run_dir)
    records, summary = benchmark(run, sizes, threads=threads, repeats=repeats, engines=split_list(engines) or ())
    click.echo(format_table(records))
    engine_names = {r.engine for r in records}
    if "packed" in engine_names:
        others = [e for e in ("onnx", "torch") if e in engine_names]
        for name, per_batch in ratios(records, "packed", others).items():
            click.echo(f"{name}: " + ", ".join(f"batch {b}: {v:.2f}×" for b, v in per_batch.items()))
    for name, reason in summary["skipped"].items():
        click.echo(f"{name}: skipped ({reason})")
    click.echo(f"decision mismatches vs {summary['decision_reference']}: " + json.dumps(summary["decision_mismatches"]))
    if out is not None:
        write_json(out, [r.to_dict() for r in records])
        click.echo(f"wrote {out}")
