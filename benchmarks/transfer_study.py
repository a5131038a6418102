"""Data efficiency of transfer learning across analysis channels: pretrained set models against training from scratch.

A set model is pretrained on several channel files at once (``--pretrain``, repeatable;
:mod:`sqnn.training.multichannel`, task ``processes``: one class per process). On every
target channel (``--channel``) and for each number N of its training events and each seed,
the same N events train

* ``scratch``: the same set model, freshly initialised;
* ``frozen``: the pretrained object encoder kept fixed, a new head;
* ``finetune``: the pretrained encoder and a new head, both at the head's learning rate;
* ``finetune-slow``: the same with the encoder at a tenth of the head's learning rate;
* ``mlp``: an MLP on the zero-padded object list (the loader's flat columns, presence flags
  included) with about as many trainable parameters as the set model;

and, with ``--ablation VARIANT@PRETRAINING`` at ``--ablation-sizes``, the same fine-tuning
from other pretrainings: ``signal`` (every pretraining channel's signal against tt̄ in one
binary task) or a channel name (that channel alone).

The seed picks the file's split (so the N events and the test events, the same for every
model at that seed), the initialisation and the batch order. Every fit uses the shared
training loop with early stopping on max(N/3, 200) validation events, and gets enough
optimiser steps at small N: batch size min(128, max(32, N/8)), at most max(60 epochs, 2000
steps), patience max(8 epochs, 200 steps) — the same rule for every model.

Output (``--out``): JSON with every fit (test AUC with its statistical error, background
rejection at 50 % signal efficiency, CPU seconds), per cell the mean ± standard error over
seeds, the paired difference to ``scratch`` and the events saved: the N at which scratch
reaches each variant's AUC (:func:`sqnn.report.transfer.summarize`). Reruns resume: fits
already in ``--out`` with the same settings are kept, pretrained models are cached in
``--cache``. ``benchmarks/transfer_study.sh`` runs it with the samples it generates.

    python benchmarks/transfer_study.py --pretrain zprime=zprime.parquet --pretrain wprime=wprime.parquet \\
        --pretrain ttphi=ttphi.parquet --channel tth=tth.parquet --channel zprime500=zprime500.parquet \\
        --out transfer_study.json --plot transfer_study.png
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from sqnn import metrics
from sqnn.data import ColumnSpec, Sample, load_sample
from sqnn.files import json_safe, write_json
from sqnn.methods import make_objective
from sqnn.nn import NetworkConfig
from sqnn.nn.set_model import SetConfig, SetModel
from sqnn.report.transfer import summarize
from sqnn.training import FitResult, TrainConfig
from sqnn.training.multichannel import fit_channels
from sqnn.training.sets import set_config_for
from sqnn.training.subsets import fit_subset, select_events

FORMAT = 2
MAIN_PRETRAINING = "processes"
SLOW_ENCODER = 0.1


@dataclass(frozen=True)
class Variant:
    """How one model of the study trains: from which pretraining, what is frozen, the encoder's rate."""

    pretraining: str | None = None
    freeze: str = "none"
    encoder_factor: float | None = None
    mlp: bool = False


BASE_VARIANTS = {
    "scratch": Variant(),
    "frozen": Variant(MAIN_PRETRAINING, "encoder"),
    "finetune": Variant(MAIN_PRETRAINING),
    "finetune-slow": Variant(MAIN_PRETRAINING, encoder_factor=SLOW_ENCODER),
    "mlp": Variant(mlp=True),
}


def variant_named(name: str) -> Variant:
    """A base variant, or ``BASE@PRETRAINING`` for the same fine-tuning from another pretraining."""
    base, _, pretraining = name.partition("@")
    if base not in BASE_VARIANTS or (pretraining and BASE_VARIANTS[base].pretraining is None):
        raise SystemExit(f"unknown variant {name!r}: use {', '.join(BASE_VARIANTS)} or frozen|finetune|finetune-slow@PRETRAINING")
    return replace(BASE_VARIANTS[base], pretraining=pretraining) if pretraining else BASE_VARIANTS[base]


def load(path: str, max_objects: int) -> Sample:
    spec = ColumnSpec(features=(), label="is_signal", weight="weight", objects="objects", max_objects=max_objects)
    return load_sample(path, spec, "simulation", require_label=True)


def n_trainable(model: torch.nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def mlp_widths(n_inputs: int, target: int) -> tuple[int, int]:
    """Widths (w, w/2) of a two-layer MLP whose parameter count is closest to ``target``."""

    def count(w: int) -> int:
        h = max(w // 2, 1)
        return n_inputs * w + w + w * h + h + h + 1

    best = min(range(2, 2048), key=lambda w: abs(count(w) - target))
    return best, max(best // 2, 1)


def schedule(n_train: int, base: TrainConfig, min_steps: int, patience_steps: int) -> TrainConfig:
    """Batch size, epoch limit and patience for ``n_train`` events: enough steps at small N."""
    batch = min(base.batch_size, max(32, n_train // 8))
    steps = math.ceil(n_train / batch)
    return replace(base, batch_size=batch, epochs=max(base.epochs, math.ceil(min_steps / steps)),
                   patience=max(base.patience, math.ceil(patience_steps / steps)))


def test_metrics(result: FitResult, sample: Sample, test: np.ndarray) -> dict[str, float]:
    sub = sample.subset(test)
    assert sub.label is not None
    score = result.probability(sub.features)
    auc = float(metrics.roc_auc(score, sub.label, sub.weight))
    return {"auc": auc, "auc_err": float(metrics.roc_auc_error(auc, sub.label, sub.weight)),
            "rejection_50": float(metrics.rejection_at(score, sub.label, sub.weight, 0.5))}


# ------------------------------------------------------------------ pretraining, cached


def pretrain(key: str, channels: dict[str, str], config: SetConfig, train: TrainConfig, max_objects: int,
             cache: Path) -> tuple[SetModel, dict[str, Any]]:
    """The pretrained set model ``key`` (``processes``, ``signal`` or one channel's name), from the cache if there."""
    path = cache / f"{key}.safetensors"
    files = channels if key in ("processes", "signal") else {key: channels[key]}
    task = "processes" if key == "processes" else "signal"
    wanted = {"task": task, "files": files, "config": config.to_dict(), "train": train.to_dict()}
    if path.exists():
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads(handle.metadata()["sqnn"])
            state = {name: handle.get_tensor(name) for name in handle.keys()}
        if meta["wanted"] == json_safe(wanted):
            model = SetModel(config.n_inputs, SetConfig.from_dict(meta["config"]))
            model.load_state_dict(state)
            model.eval()
            return model, meta["info"]
    samples = {name: load(file, max_objects) for name, file in files.items()}
    result = fit_channels(samples, config, train, task=task)
    info = {**result.describe(), "files": files, "params": n_trainable(result.model)}
    cache.mkdir(parents=True, exist_ok=True)
    meta = {"wanted": json_safe(wanted), "config": result.model.config.to_dict(), "info": info}
    save_file({k: v.contiguous() for k, v in result.model.state_dict().items()}, str(path),
              metadata={"sqnn": json.dumps(meta)})
    return result.model, info


# ------------------------------------------------------------------ one fit


def one_fit(variant: Variant, sample: Sample, n_train: int, seed: int, encoder: SetModel | None, set_config: SetConfig,
            mlp: NetworkConfig, base: TrainConfig, min_steps: int, patience_steps: int) -> dict[str, Any]:
    config = schedule(n_train, replace(base, seed=seed), min_steps, patience_steps)
    selection = select_events(len(sample), n_train, config, source=sample.source)
    objective = make_objective("source-only")
    started = time.process_time()
    if variant.mlp:
        result = fit_subset(sample, None, objective, selection, config, network=mlp)
    else:
        result = fit_subset(
            sample, None, objective, selection, config,
            set_config=set_config,
            encoder_from=encoder,
            freeze=variant.freeze,
            encoder_learning_rate=None if variant.encoder_factor is None else variant.encoder_factor * config.learning_rate,
        )
    return {
        "seed": seed,
        **test_metrics(result, sample, selection.test),
        "test_events": len(selection.test),
        "validation_events": len(selection.validation),
        "trainable_params": n_trainable(result.model),
        "batch_size": config.batch_size,
        "max_epochs": config.epochs,
        "patience": config.patience,
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "cpu_seconds": round(time.process_time() - started, 2),
    }


# ------------------------------------------------------------------ the plot


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sqnn.report.transfer import plot_curves

    channels = list(results["channels"])
    fig, axes = plt.subplots(2, len(channels), figsize=(5.6 * len(channels), 8.4), squeeze=False)
    for column, channel in enumerate(channels):
        plot_curves(results, channel, "auc", ax=axes[0][column])
        plot_curves(results, channel, "rejection_50", ax=axes[1][column])
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------ main


def named_files(items: list[str], flag: str) -> dict[str, str]:
    files = {}
    for item in items:
        name, _, path = item.partition("=")
        if not name or not path:
            raise SystemExit(f"{flag} takes NAME=FILE, got {item!r}")
        files[name] = path
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain", action="append", required=True, help="NAME=FILE of a channel to pretrain on")
    parser.add_argument("--channel", action="append", required=True, help="NAME=FILE of a target channel")
    parser.add_argument("--sizes", default="100,300,1000,3000,10000,30000")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--variants", default=",".join(BASE_VARIANTS))
    parser.add_argument("--ablation", default="", help="VARIANT@PRETRAINING,... run at --ablation-sizes")
    parser.add_argument("--ablation-sizes", default="100,1000,10000")
    parser.add_argument("--max-objects", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--min-steps", type=int, default=2000)
    parser.add_argument("--patience-steps", type=int, default=200)
    parser.add_argument("--pretrain-epochs", type=int, default=60)
    parser.add_argument("--pretrain-batch-size", type=int, default=256)
    parser.add_argument("--validation-fraction", type=float, default=0.15, help="of each target file")
    parser.add_argument("--test-fraction", type=float, default=0.15, help="of each target file")
    parser.add_argument("--cache", default=None, help="directory of pretrained models [default: OUT.pretrained]")
    parser.add_argument("--out", required=True)
    parser.add_argument("--plot", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes = [int(n) for n in args.sizes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = {name: variant_named(name) for name in args.variants.split(",") if name}
    ablations = {name: variant_named(name) for name in args.ablation.split(",") if name}
    ablation_sizes = [int(n) for n in args.ablation_sizes.split(",") if n]
    pretrain_files = named_files(args.pretrain, "--pretrain")
    target_files = named_files(args.channel, "--channel")
    out = Path(args.out)
    cache = Path(args.cache) if args.cache else out.with_suffix(".pretrained")

    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, patience=args.patience, seed=0,
                        validation_fraction=args.validation_fraction, test_fraction=args.test_fraction)
    pretrain_train = TrainConfig(epochs=args.pretrain_epochs, batch_size=args.pretrain_batch_size,
                                 patience=args.patience, seed=0)
    first = load(next(iter(pretrain_files.values())), args.max_objects)
    set_config = set_config_for(first, {"bottleneck": 0})
    set_params = n_trainable(SetModel(set_config.n_inputs, set_config))
    widths = mlp_widths(set_config.n_inputs, set_params)
    mlp = NetworkConfig(hidden=widths, stochastic=(False, False), binary_weights=(False, False))
    settings = json_safe({
        "format": FORMAT,
        "pretrain_files": pretrain_files,
        "target_files": target_files,
        "set_model": {**set_config.to_dict(), "params": set_params},
        "mlp": {"hidden": list(widths), "inputs": set_config.n_inputs,
                "params": n_trainable(torch.nn.Sequential(torch.nn.Linear(set_config.n_inputs, widths[0]),
                                                          torch.nn.Linear(*widths), torch.nn.Linear(widths[1], 1)))},
        "train": train.to_dict(),
        "pretrain_train": pretrain_train.to_dict(),
        "schedule": {"batch_size": f"min({args.batch_size}, max(32, N // 8))",
                     "max_epochs": f"max({args.epochs}, ceil({args.min_steps} / steps per epoch))",
                     "patience": f"max({args.patience}, ceil({args.patience_steps} / steps per epoch))"},
        "slow_encoder_factor": SLOW_ENCODER,
        "max_objects": args.max_objects,
    })
    results: dict[str, Any] = {}
    if out.exists():
        results = json.loads(out.read_text())
        if results.get("settings") != settings:
            raise SystemExit(f"{out} was written with other settings; move it away to start afresh")
    results.update({
        "description": __doc__.split("\n\n")[0],
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "torch_threads": 1},
        "settings": settings,
        "sizes": sorted(set(results.get("sizes", [])) | set(sizes)),
        "seeds": sorted(set(results.get("seeds", [])) | set(seeds)),
    })
    results.setdefault("pretraining", {})
    results.setdefault("channels", {})

    encoders: dict[str, SetModel] = {}
    for key in sorted({v.pretraining for v in (*variants.values(), *ablations.values()) if v.pretraining}):
        started = time.process_time()
        encoders[key], info = pretrain(key, pretrain_files, set_config, pretrain_train, args.max_objects, cache)
        results["pretraining"][key] = info
        print(f"pretraining {key}: test AUC {info['test_auc']} ({info['cpu_seconds']:.0f} CPU-s to train, "
              f"{time.process_time() - started:.0f} here)", flush=True)

    plan = [(n, name, variant) for n in sizes for name, variant in variants.items()]
    plan += [(n, name, variant) for n in ablation_sizes for name, variant in ablations.items()]
    for channel, path in target_files.items():
        sample = load(path, args.max_objects)
        entry = results["channels"].setdefault(channel, {"file": path, "events": len(sample), "runs": {}})
        for n_train, name, variant in plan:
            cell = entry["runs"].setdefault(name, {}).setdefault(str(n_train), {})
            todo = [seed for seed in seeds if str(seed) not in cell]
            for seed in todo:
                encoder = encoders.get(variant.pretraining) if variant.pretraining else None
                cell[str(seed)] = one_fit(variant, sample, n_train, seed, encoder, set_config, mlp, train,
                                          args.min_steps, args.patience_steps)
                write_json(out, results)
            if todo:
                aucs = np.array([cell[str(s)]["auc"] for s in seeds])
                cpu = sum(cell[str(s)]["cpu_seconds"] for s in todo)
                print(f"{channel:10s} N={n_train:6d} {name:24s} AUC {aucs.mean():.4f} ± "
                      f"{aucs.std(ddof=1) / math.sqrt(len(aucs)) if len(aucs) > 1 else 0:.4f} ({cpu:.0f} CPU-s)", flush=True)
    results["summary"] = summarize(results)
    write_json(out, results)
    if args.plot:
        plot(results, Path(args.plot))


if __name__ == "__main__":
    main()
