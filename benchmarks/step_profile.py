"""Where one training step's CPU time goes, per method, on the W-jet case at one thread.

A step as the training loop takes it: 256 simulated and (for methods that use data) 256 data
events forwarded together, the weighted cross-entropy, the method's penalty, the backward
pass and an Adam step. Each part's CPU milliseconds are the median over ``--steps`` steps
(after five warm-up steps); the network is the method's default, at initialisation.

    OMP_NUM_THREADS=1 python benchmarks/step_profile.py --out step_profile.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sqnn.files import write_json
from sqnn.data import ColumnSpec, Standardizer, load_sample
from sqnn.datasets import wjets_path
from sqnn.methods import Batch, make_objective

FEATURES = ("pt", "eta", "mass", "n_constituents", "n_charged", "girth", "ptd",
            "tau1", "tau2", "tau3", "tau21", "tau32", "d2", "c2")
PARTS = ("batch", "forward", "penalty", "backward", "optimiser")


def profile(method: str, simulation: np.ndarray, label: np.ndarray, data: np.ndarray, steps: int, batch: int) -> dict[str, Any]:
    objective = make_objective(method)
    model = objective.build(simulation.shape[1], objective.network_config())
    objective.sim_prior, objective.data_prior = 0.5, 0.3
    optimizer = torch.optim.Adam([*model.parameters(), *objective.extra.parameters()], lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    model.set_training_generator(generator)
    model.train()
    x_sim, x_data = torch.from_numpy(simulation), torch.from_numpy(data)
    y_sim = torch.from_numpy(label.astype(np.float32))
    times: dict[str, list[float]] = {part: [] for part in PARTS}
    for step in range(steps + 5):
        clock = [time.process_time()]
        pick_sim = torch.randint(len(x_sim), (batch,), generator=generator)
        pick_data = torch.randint(len(x_data), (batch,), generator=generator)
        x = torch.cat([x_sim[pick_sim], x_data[pick_data]]) if objective.uses_data else x_sim[pick_sim]
        label_batch, weight = y_sim[pick_sim], torch.ones(batch)
        clock.append(time.process_time())
        logit, theta, output = model(x, outputs=True)
        terms = Batch(logit[:batch], theta[:batch], label_batch, weight, logit[batch:], theta[batch:], weight[: len(logit) - batch],
                      sim_output=output[:batch], data_output=output[batch:])
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit[:batch], label_batch)
        clock.append(time.process_time())
        if objective.uses_data:
            loss = loss + objective.gamma * objective.penalty(terms)["penalty"]
        clock.append(time.process_time())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clock.append(time.process_time())
        optimizer.step()
        clock.append(time.process_time())
        if step >= 5:
            for part, start, end in zip(PARTS, clock, clock[1:]):
                times[part].append(1e3 * (end - start))
    parts = {part: statistics.median(values) for part, values in times.items()}
    return {"milliseconds": parts, "total_milliseconds": sum(parts.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--methods", default="source-only,sqnn,dann,disco,mmd")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=256, help="events per domain")
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = ColumnSpec(features=FEATURES, label="is_signal")
    simulation = load_sample(wjets_path("sim"), spec, "simulation", require_label=True)
    data = load_sample(wjets_path("data"), spec, "data")
    scaler = Standardizer.fit(simulation.features)
    assert simulation.label is not None
    results = {}
    for method in args.methods.split(","):
        results[method] = profile(method, scaler.transform(simulation.features), simulation.label,
                                  scaler.transform(data.features), args.steps, args.batch)
        parts = results[method]["milliseconds"]
        print(f"{method:12s} " + "  ".join(f"{p} {parts[p]:6.2f}" for p in PARTS)
              + f"  total {results[method]['total_milliseconds']:6.2f} ms", flush=True)
    write_json(args.out, {"batch_per_domain": args.batch, "threads": 1, "methods": results})


if __name__ == "__main__":
    main()
