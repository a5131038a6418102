"""dann: the gradient reversal, the domain head's gradients and its training by the shared loop."""

from __future__ import annotations

import math

import pytest
import torch

from sqnn.methods import DANN, METHODS, make_objective
from sqnn.methods.dann import dann_lambda, domain_loss, reverse_gradient
from sqnn.training import fit


def test_registered() -> None:
    assert METHODS["dann"] is DANN
    assert make_objective("dann", 0.3).gamma == 0.3


def test_reversal_is_identity_forward_and_flips_the_gradient() -> None:
    x = torch.randn(5, 3, requires_grad=True)
    upstream = torch.randn(5, 3)
    y = reverse_gradient(x, 0.7)
    assert torch.equal(y, x)
    (y * upstream).sum().backward()
    assert torch.allclose(x.grad, -0.7 * upstream)


def _served(inference: str) -> tuple[str, str]:
    """The Batch fields the penalty reads: θ under mean inference, the drawn bits otherwise."""
    return ("sim_theta", "data_theta") if inference == "mean" else ("sim_output", "data_output")


def _head_and_features(forward_batch, inference: str = "mean"):
    objective = DANN(1.0)
    config = objective.network_config({"inference": inference})
    model = objective.build(6, config)
    batch = forward_batch(model, n=32)
    return objective, batch


def test_domain_head_receives_nonzero_gradients(forward_batch) -> None:
    objective, batch = _head_and_features(forward_batch)
    objective.penalty(batch)["penalty"].backward()
    head = objective.extra["domain_head"]
    grads = [p.grad for p in head.parameters()]
    assert all(g is not None for g in grads)
    assert all(float(g.abs().sum()) > 0 for g in grads)


@pytest.mark.parametrize("inference", ["mean", "deterministic"])
@pytest.mark.parametrize(("schedule", "factor"), [("constant", 1.0), ("dann", dann_lambda(0.1))])
def test_feature_gradient_is_the_reversed_domain_gradient(forward_batch, schedule: str, factor: float, inference: str) -> None:
    objective = DANN(1.0, schedule=schedule)
    model = objective.build(6, objective.network_config({"inference": inference}))
    batch = forward_batch(model, n=32)
    sim_field, data_field = _served(inference)
    sim = getattr(batch, sim_field).detach().clone().requires_grad_(True)
    data = getattr(batch, data_field).detach().clone().requires_grad_(True)
    setattr(batch, sim_field, sim)
    setattr(batch, data_field, data)
    objective.penalty(batch)["penalty"].backward()
    reversed_grad = torch.cat([sim.grad, data.grad])

    sim_plain = sim.detach().clone().requires_grad_(True)
    data_plain = data.detach().clone().requires_grad_(True)
    domain_loss(objective.extra["domain_head"], sim_plain, data_plain, batch.sim_weight, batch.data_weight).backward()
    plain_grad = torch.cat([sim_plain.grad, data_plain.grad])

    assert float(plain_grad.abs().sum()) > 0
    assert torch.allclose(reversed_grad, -factor * plain_grad, atol=1e-7)


@pytest.mark.parametrize("inference", ["mean", "deterministic"])
def test_head_gradient_descends_the_domain_loss(forward_batch, inference: str) -> None:
    """The head is not reversed: its gradient is that of the domain loss itself, on what the classifier head reads."""
    objective, batch = _head_and_features(forward_batch, inference)
    objective.penalty(batch)["penalty"].backward()
    head = objective.extra["domain_head"]
    through_penalty = [p.grad.clone() for p in head.parameters()]
    head.zero_grad()
    sim, data = (getattr(batch, f).detach() for f in _served(inference))
    domain_loss(head, sim, data, batch.sim_weight, batch.data_weight).backward()
    for a, p in zip(through_penalty, head.parameters()):
        assert torch.allclose(a, p.grad, atol=1e-7)


def test_penalty_value_is_the_heads_advantage_over_guessing(forward_batch) -> None:
    objective, batch = _head_and_features(forward_batch)
    terms = objective.penalty(batch)
    assert float(terms["penalty"].detach()) == pytest.approx(math.log(2) - float(terms["domain_loss"]), abs=1e-6)
    # a head that cannot tell the domains apart scores ln 2: advantage 0
    with torch.no_grad():
        for p in objective.extra["domain_head"].parameters():
            p.zero_()
    assert float(objective.penalty(batch)["penalty"].detach()) == pytest.approx(0.0, abs=1e-7)


def test_domain_loss_weights_an_event_like_its_copies() -> None:
    head = torch.nn.Linear(2, 1).requires_grad_(False)
    sim, data = torch.randn(4, 2), torch.randn(3, 2)
    weighted = domain_loss(head, sim, data, torch.tensor([2.0, 1.0, 1.0, 1.0]), torch.ones(3))
    copied = domain_loss(head, torch.cat([sim[:1], sim]), data, torch.ones(5), torch.ones(3))
    assert float(weighted) == pytest.approx(float(copied), rel=1e-6)
    unweighted = domain_loss(head, sim, data, torch.ones(4), torch.ones(3))
    assert float(weighted) != pytest.approx(float(unweighted), rel=1e-6)


def test_schedule() -> None:
    assert dann_lambda(0.0) == 0.0
    assert dann_lambda(1.0) == pytest.approx(0.99991, abs=1e-5)
    values = [dann_lambda(p / 10) for p in range(11)]
    assert values == sorted(values)
    objective = DANN(0.5, schedule="dann", schedule_epochs=4)
    assert objective.reversal_at(0) == pytest.approx(dann_lambda(0.25))
    assert objective.reversal_at(10) == pytest.approx(dann_lambda(1.0))
    assert DANN(0.5).reversal_at(0) == 1.0
    with pytest.raises(ValueError, match="schedule"):
        DANN(0.5, schedule="linear")


def test_shared_loop_trains_the_domain_head(toy, quick) -> None:
    simulation, data = toy
    objective = DANN(1.0)
    initial: dict[str, torch.Tensor] = {}
    build = objective.build

    def spy(n_inputs, config):
        model = build(n_inputs, config)
        initial.update({k: v.clone() for k, v in objective.extra.state_dict().items()})
        return model

    objective.build = spy  # type: ignore[method-assign]
    result = fit(simulation, data, objective, config=quick)
    after = objective.extra.state_dict()
    assert initial and set(initial) == set(after)
    assert any(not torch.equal(initial[k], after[k]) for k in initial)
    record = result.history[-1]
    assert "val_domain_loss" in record
    assert record["val_penalty"] == pytest.approx(math.log(2) - record["val_domain_loss"], abs=1e-5)


def test_domain_head_can_read_the_drawn_bits(forward_batch) -> None:
    objective = DANN(1.0, reads="drawn")
    model = objective.build(6, objective.network_config())
    batch = forward_batch(model, n=16)
    sim, data = objective.served_representation(batch)
    assert sim is batch.sim_output and data is batch.data_output
    with pytest.raises(ValueError, match="reads"):
        DANN(1.0, reads="both")
