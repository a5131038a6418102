"""Transfer learning across analysis channels: a pretrained set model against training from scratch.

A set model is trained on one channel (many events). On every other channel it is fine-tuned
with N training events (its object encoder reused, a new head; the encoder frozen, or
trained too) and compared, on the same N events and the channel's held-out test split, with

* the same set model trained from scratch, and
* an MLP on the zero-padded fixed-length object list (the loader's flat columns, presence
  flags included) with about as many trainable parameters as the set model.

Every (channel, N, model) runs with several seeds; the seed picks the file's split (so the N
events and the test events), the initialisation and the batch order. All fits use the shared
training loop with early stopping on max(N/3, 200) validation events. Output: JSON with the
AUC of every fit and mean ± standard deviation per cell, and a PNG of AUC against N.

    python benchmarks/transfer_study.py --pretrain /tmp/events/tth_sim.parquet \\
        --channel zprime=/tmp/events/zprime_sim.parquet --channel wprime=/tmp/events/wprime_sim.parquet \\
        --out transfer_study.json --plot transfer_study.png

The channel files come from ``sqnn generate events --channel NAME --domain sim``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch

from sqnn import metrics
from sqnn.data import ColumnSpec, Sample, load_sample
from sqnn.methods import make_objective
from sqnn.nn import NetworkConfig
from sqnn.nn.set_model import SetConfig, SetModel
from sqnn.training import FitResult, TrainConfig
from sqnn.training.sets import fit_set_model, set_config_for
from sqnn.training.subsets import fit_subset, select_events

MODELS = ("finetune-frozen", "finetune-full", "scratch", "mlp")


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


def test_auc(result: FitResult, sample: Sample, test: np.ndarray) -> float:
    sub = sample.subset(test)
    assert sub.label is not None
    return float(metrics.roc_auc(result.probability(sub.features), sub.label, sub.weight))


def pretrain(sample: Sample, config: SetConfig, train: TrainConfig) -> tuple[FitResult, dict[str, Any]]:
    from sqnn.data import split_indices

    started = time.process_time()
    result = fit_set_model(sample, sample, make_objective("source-only"), config, train)
    split = split_indices(len(sample), train.seed, 0, train.validation_fraction, train.test_fraction)
    info = {
        "events": len(sample),
        "train_events": len(split["train"]),
        "auc_test": test_auc(result, sample, split["test"]),
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "cpu_seconds": time.process_time() - started,
        "params": n_trainable(result.model),
    }
    return result, info


def one_fit(model: str, sample: Sample, n_train: int, seed: int, pretrained: SetModel, set_config: SetConfig,
            mlp: NetworkConfig, train: TrainConfig) -> dict[str, Any]:
    config = replace(train, seed=seed)
    selection = select_events(len(sample), n_train, config, source=sample.source)
    objective = make_objective("source-only")
    started = time.process_time()
    if model == "mlp":
        result = fit_subset(sample, None, objective, selection, config, network=mlp)
    else:
        result = fit_subset(
            sample, None, objective, selection, config,
            set_config=set_config,
            encoder_from=None if model == "scratch" else pretrained,
            freeze="encoder" if model == "finetune-frozen" else "none",
        )
    return {
        "seed": seed,
        "auc": test_auc(result, sample, selection.test),
        "test_events": len(selection.test),
        "validation_events": len(selection.validation),
        "trainable_params": n_trainable(result.model),
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "cpu_seconds": round(time.process_time() - started, 2),
    }


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    channels = list(results["channels"])
    fig, axes = plt.subplots(1, len(channels), figsize=(5.2 * len(channels), 4.2), squeeze=False)
    for ax, channel in zip(axes[0], channels):
        cells = results["channels"][channel]["cells"]
        for model in MODELS:
            sizes = sorted(int(n) for n in cells)
            mean = [cells[str(n)][model]["auc_mean"] for n in sizes]
            std = [cells[str(n)][model]["auc_std"] for n in sizes]
            ax.errorbar(sizes, mean, yerr=std, marker="o", capsize=3, label=model)
        ax.set_xscale("log")
        ax.set_xlabel("training events of the new channel")
        ax.set_ylabel("test AUC")
        ax.set_title(f"{results['pretrain']['channel']} → {channel}")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrain", required=True, help="channel file to pretrain on")
    parser.add_argument("--channel", action="append", required=True, help="NAME=FILE of a channel to fine-tune on")
    parser.add_argument("--sizes", default="500,2000,10000")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--max-objects", type=int, default=12)
    parser.add_argument("--bottleneck", type=int, default=0, help="Bernoulli units after pooling (0 = none)")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--pretrain-epochs", type=int, default=40)
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--out", required=True)
    parser.add_argument("--plot", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes = [int(n) for n in args.sizes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, patience=args.patience, seed=0)

    source = load(args.pretrain, args.max_objects)
    set_config = set_config_for(source, {"bottleneck": args.bottleneck})
    pre_result, pre_info = pretrain(source, set_config, replace(train, epochs=args.pretrain_epochs))
    pretrained = pre_result.model
    assert isinstance(pretrained, SetModel)
    pre_meta = json.loads(pq.read_schema(args.pretrain).metadata[b"sqnn"])
    set_params = n_trainable(SetModel(set_config.n_inputs, set_config))
    widths = mlp_widths(set_config.n_inputs, set_params)
    mlp = NetworkConfig(hidden=widths, stochastic=(False, False), binary_weights=(False, False))
    results: dict[str, Any] = {
        "description": __doc__.split("\n\n")[0],
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "torch_threads": 1},
        "pretrain": {"channel": pre_meta["channel"], "file": args.pretrain, **pre_info},
        "set_model": {**set_config.to_dict(), "params": set_params},
        "mlp": {"hidden": list(widths), "inputs": set_config.n_inputs,
                "params": n_trainable(torch.nn.Sequential(torch.nn.Linear(set_config.n_inputs, widths[0]),
                                                          torch.nn.Linear(*widths), torch.nn.Linear(widths[1], 1)))},
        "train": {**train.to_dict(), "pretrain_epochs": args.pretrain_epochs},
        "sizes": sizes,
        "seeds": seeds,
        "channels": {},
    }
    print(f"pretrained on {pre_meta['channel']}: test AUC {pre_info['auc_test']:.4f} "
          f"({pre_info['train_events']} training events, {pre_info['cpu_seconds']:.0f} CPU-s)", flush=True)
    for item in args.channel:
        name, _, path = item.partition("=")
        sample = load(path, args.max_objects)
        cells: dict[str, Any] = {}
        for n_train in sizes:
            cells[str(n_train)] = {}
            for model in MODELS:
                runs = [one_fit(model, sample, n_train, seed, pretrained, set_config, mlp, train) for seed in seeds]
                auc = np.array([r["auc"] for r in runs])
                cells[str(n_train)][model] = {
                    "auc_mean": float(auc.mean()),
                    "auc_std": float(auc.std(ddof=1)) if len(auc) > 1 else 0.0,
                    "runs": runs,
                }
                print(f"{name:8s} N={n_train:6d} {model:16s} AUC {auc.mean():.4f} ± {cells[str(n_train)][model]['auc_std']:.4f} "
                      f"({sum(r['cpu_seconds'] for r in runs):.0f} CPU-s)", flush=True)
        results["channels"][name] = {"file": path, "events": len(sample), "cells": cells}
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    if args.plot:
        plot(results, Path(args.plot))


if __name__ == "__main__":
    main()
