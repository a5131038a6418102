"""Bernoulli activation, binary weights and the network builder."""

from __future__ import annotations

import pytest
import torch

from sqnn.nn import BernoulliActivation, BinaryLinear, NetworkConfig, build_network


def test_training_samples_bernoulli_with_mean_theta_and_straight_through_gradient() -> None:
    layer = BernoulliActivation(temperature=6.0)
    layer.train()
    layer.generator = torch.Generator().manual_seed(0)
    z = torch.full((20000, 1), 0.1, requires_grad=True)
    t = layer(z)
    theta = torch.sigmoid(torch.tensor(0.6))
    assert set(t.detach().unique().tolist()) <= {0.0, 1.0}
    assert float(t.detach().mean()) == pytest.approx(float(theta), abs=0.01)
    t.sum().backward()
    # straight-through: d t / d z = τ θ (1 − θ)
    assert torch.allclose(z.grad, torch.full_like(z, float(6 * theta * (1 - theta))))


def test_k_samples_average_and_lower_the_variance() -> None:
    z = torch.zeros(5000, 1)
    spread = []
    for k in (1, 16):
        layer = BernoulliActivation(samples=k)
        layer.generator = torch.Generator().manual_seed(1)
        layer.train()
        spread.append(float(layer(z).std()))
    assert spread[1] < spread[0] / 3


def test_inference_is_a_threshold_or_a_seeded_draw() -> None:
    layer = BernoulliActivation()
    layer.eval()
    z = torch.tensor([[-0.2, 0.0, 0.3]])
    assert layer(z).tolist() == [[0.0, 0.0, 1.0]]
    net = build_network(3, {"hidden": [32], "stochastic": [True], "binary_weights": [False]})
    net.eval()
    x = torch.randn(100, 3)
    net.set_inference("stochastic", seed=5)
    first = net(x)
    net.set_inference("stochastic", seed=5)
    assert torch.equal(first, net(x))
    net.set_inference("deterministic")
    assert torch.equal(net(x), net(x))


def test_mean_inference_is_the_exact_expected_logit_over_all_codes() -> None:
    torch.manual_seed(3)
    net = build_network(4, {"hidden": [6, 3], "stochastic": [False, True], "binary_weights": [False, False]})
    net.eval()
    assert net.config.inference == "mean"
    x = torch.randn(50, 4)
    with torch.no_grad():
        mean_logit, theta, _ = net(x, outputs=True)
        # brute force: Σ over the 2^3 codes t of p(t|x) · head(t)
        codes = torch.tensor([[(c >> i) & 1 for i in range(3)] for c in range(8)], dtype=theta.dtype)
        p_code = (theta[:, None, :] ** codes * (1 - theta[:, None, :]) ** (1 - codes)).prod(-1)  # (N, 8)
        expected = p_code @ net.head(codes).squeeze(-1)
    assert torch.allclose(mean_logit, expected, atol=1e-5)
    net.set_inference("stochastic", seed=0)
    with torch.no_grad():
        average = torch.stack([net(x) for _ in range(4000)]).mean(0)
    assert torch.allclose(average, expected, atol=0.05)


def test_scoring_mode_is_part_of_the_config() -> None:
    net = build_network(3, {"hidden": [4], "stochastic": [True], "binary_weights": [False], "inference": "deterministic"})
    net.eval()
    assert set(net(torch.randn(20, 3)).tolist()) <= set(net.head(torch.tensor([[float((c >> i) & 1) for i in range(4)] for c in range(16)])).squeeze(-1).tolist())
    with pytest.raises(ValueError, match="inference must be one of"):
        NetworkConfig(inference="stochastic")
    with pytest.raises(ValueError, match="inference must be one of"):
        net.set_inference("median")  # type: ignore[arg-type]


def test_binary_linear_uses_sign_times_layer_scale() -> None:
    layer = BinaryLinear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.5, -1.0, 2.0], [-0.1, 0.2, -0.3]]))
        layer.bias.zero_()
    scale = float(layer.weight.detach().abs().mean())
    out = layer(torch.tensor([[1.0, 1.0, 1.0]]))
    assert torch.allclose(out, torch.tensor([[scale, -scale]]))
    out.sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_builder_places_stochastic_layers_and_representation() -> None:
    net = build_network(5, NetworkConfig(hidden=(8, 4, 6), stochastic=(True, True, False), binary_weights=(False, True, False)))
    assert isinstance(net.layers[1], BinaryLinear)
    assert [type(a).__name__ for a in net.activations] == ["BernoulliActivation", "BernoulliActivation", "ReLU"]
    assert net.representation_index == 1
    theta = net.representation(torch.randn(7, 5))
    assert theta.shape == (7, 4) and ((theta >= 0) & (theta <= 1)).all()
    with pytest.raises(ValueError, match="one entry per hidden layer"):
        NetworkConfig(hidden=(8, 4), stochastic=(True,), binary_weights=(False, False))
    with pytest.raises(ValueError, match="unknown network settings"):
        NetworkConfig.from_dict({"hidden": [4], "stochastic": [True], "binary_weights": [False], "dropout": 0.1})
