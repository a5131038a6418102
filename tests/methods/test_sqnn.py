"""sqnn: the default penalty (exact joint I(T;S|Y)) computes what the per-value formula computes."""

from __future__ import annotations

import pytest
import torch

from sqnn import info
from sqnn.methods import Batch, make_objective
from test_info import _reference_conditional_mi

# float32 sums over 2^16 codes carry a relative error of ~1e-5 (the implementation before
# batching had the same against float64); float64 shows that the arithmetic is the same
TOLERANCES = {torch.float32: (2e-4, 1e-4), torch.float64: (1e-10, 1e-8)}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("condition", ["predicted", "truth"])
def test_default_penalty_and_its_gradient_equal_the_per_value_formula(
    monkeypatch: pytest.MonkeyPatch, condition: str, dtype: torch.dtype
) -> None:
    """Value and gradient with respect to every network parameter.

    The penalty's inputs (θ, domain, soft class, weights) are recorded on their way into
    :func:`sqnn.info.conditional_mi`; the listed per-class, per-value formula on the same
    inputs gives the same value and the same parameter gradients.
    """
    objective = make_objective("sqnn", condition=condition)
    assert (objective.region, objective.estimator) == ("class-conditional", "joint")
    model = objective.build(6, objective.network_config()).to(dtype)
    objective.sim_prior, objective.data_prior = 0.5, 0.3
    generator = torch.Generator().manual_seed(0)
    n = 48
    model.train()
    logit, theta, _ = model(torch.randn(2 * n, 6, generator=generator, dtype=dtype), outputs=True)
    weight = torch.rand(2 * n, generator=generator, dtype=dtype) + 0.5
    label = (torch.rand(n, generator=generator) < 0.5).to(dtype)
    batch = Batch(logit[:n], theta[:n], label, weight[:n], logit[n:], theta[n:], weight[n:])
    parameters = [p for p in model.parameters() if p.requires_grad]
    calls: list[tuple[tuple, dict]] = []
    recorded = info.conditional_mi

    def recording(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append((args, kwargs))
        return recorded(*args, **kwargs)

    monkeypatch.setattr(info, "conditional_mi", recording)
    value = objective.penalty(batch)["penalty"]
    gradients = torch.autograd.grad(value, parameters, retain_graph=True, allow_unused=True)
    (theta, domain, classes, weight), options = calls[0]
    assert theta.dtype == dtype and options["joint"] and options["prior"] == "balanced"
    expected = _reference_conditional_mi(theta, domain, classes, weight, True, options["n_values"], options["prior"])
    expected_gradients = torch.autograd.grad(expected, parameters, allow_unused=True)
    value_tolerance, gradient_tolerance = TOLERANCES[dtype]
    assert float(value.detach()) == pytest.approx(float(expected.detach()), rel=value_tolerance)
    assert float(expected.detach()) > 1e-3  # a vanishing penalty would prove nothing
    for got, want in zip(gradients, expected_gradients):
        if want is None:
            assert got is None or not got.any()
            continue
        torch.testing.assert_close(got, want, rtol=gradient_tolerance, atol=gradient_tolerance * float(want.abs().max()))
