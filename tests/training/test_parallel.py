"""Distributed training: the penalty of a batch split over processes is that of the whole batch."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from sqnn import info
from sqnn.training.parallel import Context, require_supported
from sqnn.errors import SqnnError
from sqnn.methods import Batch, make_objective
from sqnn.workflows.settings import Settings

WORLD = 2
N_EVENTS, N_UNITS, N_INPUTS = 61, 5, 4  # odd on purpose: the two slices differ in size


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(rank: int, port: int) -> None:
    os.environ.update(
        {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank), "WORLD_SIZE": str(WORLD),
         "LOCAL_RANK": str(rank)}
    )


def _fixed_batch() -> dict[str, torch.Tensor]:
    """Events and a small layer θ = σ(x A + b), the same in every process."""
    rng = np.random.default_rng(11)
    weight = rng.exponential(1.0, N_EVENTS)
    weight[::7] *= -0.3  # negative weights, as from NLO generators
    return {
        "x": torch.from_numpy(rng.normal(size=(N_EVENTS, N_INPUTS))),
        "a": torch.from_numpy(rng.normal(size=(N_INPUTS, N_UNITS))),
        "b": torch.from_numpy(rng.normal(size=N_UNITS)),
        "domain": torch.from_numpy(rng.integers(0, 2, N_EVENTS)),
        "weight": torch.from_numpy(weight),
        "signal": torch.from_numpy(rng.uniform(size=N_EVENTS)),
    }


def _measures(batch: dict[str, torch.Tensor], part: slice, reduce) -> dict[str, tuple[float, np.ndarray, np.ndarray]]:  # noqa: ANN001
    """Each measure on the events in ``part``: value, ∂/∂θ of those events, ∂/∂A."""
    results = {}
    for name in ("factorized", "joint", "conditional", "conditional-joint"):
        a = batch["a"].clone().requires_grad_(True)
        theta = torch.sigmoid(batch["x"][part] @ a + batch["b"])
        theta.retain_grad()
        domain, weight = batch["domain"][part], batch["weight"][part]
        signal = batch["signal"][part]
        condition = torch.stack([1 - signal, signal], dim=1)
        joint = name.endswith("joint")
        if name.startswith("conditional"):
            value = info.conditional_mi(theta, domain, condition, weight, joint=joint, n_values=2, reduce=reduce)
        else:
            value = info.mutual_information(theta, domain, weight, joint=joint, n_values=2, prior="balanced", reduce=reduce)
        value.backward()
        results[name] = (float(value.detach()), theta.grad.numpy().copy(), a.grad.numpy().copy())
    return results


def _penalty_terms(batch: dict[str, torch.Tensor], part: slice) -> Batch:
    """A training Batch of the sqnn objective: simulation = first half of the events, data = second."""
    half = N_EVENTS // 2
    x, a, b = batch["x"].float(), batch["a"].float(), batch["b"].float()
    sim_index = torch.arange(half)[part]
    data_index = torch.arange(half, 2 * half)[part]
    theta = torch.sigmoid(torch.cat([x[sim_index], x[data_index]]) @ a + b)
    logit = theta.sum(1) - 2.5
    n = len(sim_index)
    return Batch(
        sim_logit=logit[:n], sim_theta=theta[:n], sim_label=(batch["signal"][sim_index] > 0.5).float(),
        sim_weight=batch["weight"][sim_index].abs().float(), data_logit=logit[n:], data_theta=theta[n:],
        data_weight=batch["weight"][data_index].abs().float(),
    )


def _objective_penalties(batch: dict[str, torch.Tensor], part: slice, grouped: bool) -> dict[str, tuple[float, np.ndarray]]:
    from sqnn.training.parallel import all_reduce_sum

    results = {}
    for region in ("all", "class-conditional"):
        for estimator in ("factorized", "joint"):
            objective = make_objective("sqnn", 1.0, region=region, estimator=estimator)
            objective.sim_prior, objective.data_prior = 0.5, 0.3
            a = batch["a"].float().clone().requires_grad_(True)
            terms = _penalty_terms({**batch, "a": a}, part)
            value = objective.penalty(terms, all_reduce_sum if grouped else None)["penalty"]
            value.backward()
            results[f"{region}/{estimator}"] = (float(value.detach()), a.grad.numpy().copy())
    return results


def _split_batch_worker(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist

    from sqnn.training.parallel import all_reduce_sum

    torch.set_num_threads(1)
    _environment(rank, port)
    dist.init_process_group("gloo")
    try:
        group = Context(rank, WORLD)
        batch = _fixed_batch()
        measures = _measures(batch, group.shard(N_EVENTS), all_reduce_sum)
        # DistributedDataParallel averages parameter gradients over the processes
        averaged = {}
        for name, (_, _, grad_a) in measures.items():
            total = torch.from_numpy(grad_a)
            dist.all_reduce(total)
            averaged[name] = (total / WORLD).numpy()
        penalties = _objective_penalties(batch, group.shard(N_EVENTS // 2), grouped=True)
        for name, (value, grad) in penalties.items():
            total = torch.from_numpy(grad)
            dist.all_reduce(total)
            penalties[name] = (value, (total / WORLD).numpy())
    finally:
        dist.destroy_process_group()
    arrays = {}
    for name, (value, grad_theta, _) in measures.items():
        arrays[f"{name}.value"] = np.array(value)
        arrays[f"{name}.grad_theta"] = grad_theta
        arrays[f"{name}.grad_a"] = averaged[name]
    for name, (value, grad) in penalties.items():
        arrays[f"penalty {name}.value"] = np.array(value)
        arrays[f"penalty {name}.grad_a"] = grad
    np.savez(Path(out) / f"rank{rank}.npz", **arrays)


def test_mi_and_its_gradient_on_a_batch_split_over_two_processes_equal_the_whole_batch(tmp_path: Path) -> None:
    batch = _fixed_batch()
    whole = _measures(batch, slice(None), None)
    penalties = _objective_penalties(batch, slice(None), grouped=False)
    mp.start_processes(_split_batch_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, start_method="spawn")
    for rank in range(WORLD):
        part = Context(rank, WORLD).shard(N_EVENTS)
        got = np.load(tmp_path / f"rank{rank}.npz")
        for name, (value, grad_theta, grad_a) in whole.items():
            assert got[f"{name}.value"] == pytest.approx(value, rel=1e-12, abs=1e-15), name
            assert value > 1e-3, name  # a test on a vanishing MI would prove nothing
            # the reduction's backward sums over the W processes (the gradient of Σ_processes loss)
            np.testing.assert_allclose(got[f"{name}.grad_theta"] / WORLD, grad_theta[part], rtol=1e-10, atol=1e-14)
            np.testing.assert_allclose(got[f"{name}.grad_a"], grad_a, rtol=1e-10, atol=1e-14)
        for name, (value, grad_a) in penalties.items():
            assert got[f"penalty {name}.value"] == pytest.approx(value, rel=1e-5), name
            np.testing.assert_allclose(got[f"penalty {name}.grad_a"], grad_a, rtol=1e-4, atol=1e-7)


def test_reduce_needs_the_number_of_values() -> None:
    theta = torch.rand(8, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="n_values"):
        info.factorized_mi(theta, torch.zeros(8, dtype=torch.long), reduce=lambda t: t)
    # an identity reduction (one process) changes nothing
    domain = torch.tensor([0, 1] * 4)
    assert float(info.joint_mi(theta, domain, n_values=2, reduce=lambda t: t)) == float(info.joint_mi(theta, domain, n_values=2))


def test_shards_partition_the_batch() -> None:
    for n in (0, 1, 5, 256, 257):
        for world in (1, 2, 3):
            parts = [range(n)[Context(rank, world).shard(n)] for rank in range(world)]
            assert [i for part in parts for i in part] == list(range(n))
            assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1


def test_objectives_that_need_every_event_are_refused() -> None:
    require_supported(make_objective("sqnn", 1.0))
    require_supported(make_objective("source-only"))
    for method in ("mmd", "disco", "dann", "bdt"):
        with pytest.raises(SqnnError, match=method):
            require_supported(make_objective(method))


def test_fit_distributed_without_a_process_group_says_how_to_start_one() -> None:
    from sqnn.training import fit

    from test_loop import toy_sample

    with pytest.raises(SqnnError, match="torchrun"):
        fit(toy_sample("sim", 100, 1, True), toy_sample("data", 100, 2, False), make_objective("sqnn", 1.0), distributed=True)


def _same_draws(size, *, generator=None, dtype=None, device=None) -> torch.Tensor:  # noqa: ANN001
    """Bernoulli 'draws' that do not depend on which process holds an event: T = 1[θ > 0.5]."""
    return torch.full(tuple(size), 0.5, dtype=dtype, device=device)


def _fit_samples():  # noqa: ANN202
    from sqnn.cases.toy import make_toy
    from sqnn.data import Sample

    samples = []
    for domain, seed in (("sim", 1), ("data", 2)):
        columns = make_toy(domain, 1500, seed)
        samples.append(
            Sample(
                features=np.column_stack([columns[f"x{i}"] for i in range(6)]), feature_names=[f"x{i}" for i in range(6)],
                weight=np.where(columns["event"] % 5 == 0, 2.0, 0.7), domain="simulation" if domain == "sim" else "data",
                source=f"<{domain}>", label=columns["is_signal"] if domain == "sim" else None,
            )
        )
    return samples


_FIT_CONFIG = {"epochs": 2, "batch_size": 201, "seed": 3, "patience": 5}
_FIT_OPTIONS = {"region": "class-conditional"}


def _fit_worker(rank: int, port: int, out: str) -> None:
    import torch.distributed as dist
    from safetensors.torch import save_file

    from sqnn.training import TrainConfig, fit

    torch.set_num_threads(1)
    torch.rand = _same_draws  # this process only
    _environment(rank, port)
    dist.init_process_group("gloo")
    try:
        result = fit(*_fit_samples(), make_objective("sqnn", 1.0, **_FIT_OPTIONS), config=TrainConfig(**_FIT_CONFIG), distributed=True)
    finally:
        dist.destroy_process_group()
    save_file({k: v.contiguous() for k, v in result.model.state_dict().items()}, str(Path(out) / f"rank{rank}.safetensors"))
    (Path(out) / f"rank{rank}.json").write_text(json.dumps(result.history))


def test_a_step_on_two_processes_is_the_step_of_one_process_on_the_whole_batch(tmp_path: Path, monkeypatch) -> None:
    """Same draws everywhere: the two-process model after two epochs (uneven slices) equals the one-process model."""
    from safetensors.torch import load_file

    from sqnn.training import TrainConfig, fit

    monkeypatch.setattr(torch, "rand", _same_draws)
    single = fit(*_fit_samples(), make_objective("sqnn", 1.0, **_FIT_OPTIONS), config=TrainConfig(**_FIT_CONFIG))
    monkeypatch.undo()
    mp.start_processes(_fit_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, start_method="spawn")
    expected = single.model.state_dict()
    moved = [k for k, v in expected.items() if not torch.equal(v, _initial_state()[k])]
    assert moved, "training did not move the parameters"
    for rank in range(WORLD):
        state = load_file(str(tmp_path / f"rank{rank}.safetensors"))
        for key, value in expected.items():
            np.testing.assert_allclose(state[key].numpy(), value.numpy(), rtol=1e-4, atol=1e-6, err_msg=key)
        history = json.loads((tmp_path / f"rank{rank}.json").read_text())
        for got, want in zip(history, single.history):
            for key in ("loss_classification", "loss_penalty", "val_loss", "mi_bits"):
                assert got[key] == pytest.approx(want[key], rel=1e-4), key


def _initial_state() -> dict[str, torch.Tensor]:
    from sqnn.methods import make_objective as objective_of

    torch.manual_seed(_FIT_CONFIG["seed"])
    objective = objective_of("sqnn", 1.0)
    return objective.build(6, objective.network_config()).state_dict()


def _train_worker(rank: int, port: int, sim: str, data: str, out: str) -> None:
    from sqnn.data import ColumnSpec
    from sqnn.training import TrainConfig
    from sqnn.workflows.train import train_run

    torch.set_num_threads(1)
    _environment(rank, port)
    spec = ColumnSpec(features=("x0", "x1", "x2", "x3", "x4", "x5"), label="is_signal", weight="weight")
    settings = Settings(
        columns=spec, method="sqnn", gamma=1.0, method_options={"region": "class-conditional"},
        train=TrainConfig(epochs=2, batch_size=128, seed=4),
    )
    run, metrics = train_run(sim, data, settings, Path(out) / "run", distributed=True)
    assert (run is None) == (rank != 0) and (metrics is None) == (rank != 0)


def test_train_run_on_two_processes_writes_one_run_from_rank_zero(tmp_path: Path) -> None:
    from sqnn.cases.toy import generate
    from sqnn.runs import load_run

    sim = generate("sim", 1000, 1, tmp_path / "sim.parquet")
    data = generate("data", 1000, 2, tmp_path / "data.parquet")
    mp.start_processes(
        _train_worker, args=(_free_port(), str(sim), str(data), str(tmp_path)), nprocs=WORLD, start_method="spawn"
    )
    run_dir = tmp_path / "run"
    run = load_run(run_dir)
    assert run.meta["distributed"] == {"world_size": WORLD, "backend": "gloo"}
    history = json.loads((run_dir / "history.json").read_text())
    assert len(history) == 2 and all(np.isfinite(h["loss_penalty"]) and h["loss_penalty"] > 0 for h in history)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["auc_source"] > 0.7
    # nothing but the run's own files: no per-process copies, no leftover temporary files
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(
        ["checkpoint.json", "checkpoint.safetensors", "history.json", "metrics.json", "model.json", "model.safetensors",
         "scores.parquet"]
    )
