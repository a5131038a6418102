"""The permutation-invariant set model: invariance, masking, preprocessing, transfer hooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sqnn.data import Standardizer
from sqnn.nn.layers import BernoulliActivation
from sqnn.nn.set_model import SetConfig, SetModel, build_set_model

FIELDS = ("pt", "eta", "phi", "e", "type", "btag")


def _objects(n_events: int, max_objects: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Raw objects (N, K, F) with zeros in padded slots, and the presence mask (N, K)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, max_objects + 1, n_events)
    present = np.arange(max_objects)[None, :] < counts[:, None]
    pt = rng.exponential(60.0, (n_events, max_objects)) + 20.0
    eta = rng.uniform(-2.5, 2.5, (n_events, max_objects))
    phi = rng.uniform(-np.pi, np.pi, (n_events, max_objects))
    e = pt * np.cosh(eta)
    kind = rng.integers(0, 5, (n_events, max_objects))
    btag = (rng.random((n_events, max_objects)) < 0.3) & (kind == 0)
    objects = np.stack([pt, eta, phi, e, kind, btag], axis=-1)
    return np.where(present[..., None], objects, 0.0), present


def _flat(objects: np.ndarray, present: np.ndarray, global_features: np.ndarray | None = None) -> np.ndarray:
    block = np.concatenate([objects, present[..., None].astype(float)], axis=-1).reshape(len(objects), -1)
    if global_features is not None:
        block = np.hstack([global_features, block])
    return block.astype(np.float32)


def _model(max_objects: int = 6, **settings) -> SetModel:
    torch.manual_seed(3)
    config = SetConfig(fields=FIELDS, max_objects=max_objects, **settings)
    model = SetModel(config.n_inputs, config)
    model.eval()
    return model


def _permute_slots(objects: np.ndarray, present: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle all K slots of every event independently: objects and padding move."""
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random(present.shape), axis=1)
    return np.take_along_axis(objects, order[..., None], axis=1), np.take_along_axis(present, order, axis=1)


@pytest.mark.parametrize("pooling", [("sum", "mean"), ("sum", "mean", "max", "attention")])
def test_output_does_not_depend_on_the_order_of_objects_or_padding(pooling):
    model = _model(pooling=pooling, bottleneck=0)
    objects, present = _objects(200, 6)
    shuffled, shuffled_present = _permute_slots(objects, present, seed=1)
    assert not np.array_equal(shuffled_present, present)  # padding really moved
    with torch.no_grad():
        before = model(torch.from_numpy(_flat(objects, present)))
        after = model(torch.from_numpy(_flat(shuffled, shuffled_present)))
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)
    # a model that reads slots in order would not be invariant: the test can fail
    reordered = _flat(objects[:, ::-1], present[:, ::-1])
    dense = torch.nn.Linear(reordered.shape[1], 1)
    assert not torch.allclose(dense(torch.from_numpy(reordered)), dense(torch.from_numpy(_flat(objects, present))))


def test_bernoulli_probabilities_are_permutation_invariant_too():
    model = _model(bottleneck=8, pooling=("sum", "mean", "attention"))
    objects, present = _objects(100, 6, seed=2)
    shuffled, shuffled_present = _permute_slots(objects, present, seed=5)
    with torch.no_grad():
        theta = model.representation(torch.from_numpy(_flat(objects, present)))
        theta_shuffled = model.representation(torch.from_numpy(_flat(shuffled, shuffled_present)))
    assert theta.shape == (100, 8)
    torch.testing.assert_close(theta_shuffled, theta, rtol=1e-5, atol=1e-6)


def test_padded_objects_have_no_influence():
    model = _model(pooling=("sum", "mean", "max", "attention"), bottleneck=0)
    objects, present = _objects(150, 6, seed=4)
    garbage = np.random.default_rng(9).normal(0.0, 1e3, objects.shape)
    polluted = np.where(present[..., None], objects, garbage)
    with torch.no_grad():
        clean = model(torch.from_numpy(_flat(objects, present)))
        dirty = model(torch.from_numpy(_flat(polluted, present)))
    torch.testing.assert_close(dirty, clean, rtol=0, atol=0)
    # and a real object does have influence
    changed = objects.copy()
    changed[:, 0, 0] *= 2.0
    with torch.no_grad():
        assert not torch.allclose(model(torch.from_numpy(_flat(changed, present))), clean)


def test_max_objects_padding_length_does_not_change_the_output():
    short = _model(max_objects=4, bottleneck=0)
    long = SetModel(SetConfig(fields=FIELDS, max_objects=9, bottleneck=0).n_inputs,
                    SetConfig(fields=FIELDS, max_objects=9, bottleneck=0))
    long.load_state_dict({k: v for k, v in short.state_dict().items() if not k.startswith("input_")}, strict=False)
    long.eval()
    objects, present = _objects(50, 4, seed=6)
    padded = np.concatenate([objects, np.zeros((50, 5, len(FIELDS)))], axis=1)
    padded_present = np.concatenate([present, np.zeros((50, 5), dtype=bool)], axis=1)
    with torch.no_grad():
        torch.testing.assert_close(long(torch.from_numpy(_flat(padded, padded_present))),
                                   short(torch.from_numpy(_flat(objects, present))), rtol=1e-5, atol=1e-5)


def test_the_loops_standardisation_is_undone_exactly():
    objects, present = _objects(300, 5, seed=7)
    raw = _flat(objects, present)
    model = _model(max_objects=5, bottleneck=0)
    with torch.no_grad():
        expected = model(torch.from_numpy(raw))
    standardizer = Standardizer.fit(raw)
    model.set_input_standardization(standardizer.mean, standardizer.scale)
    with torch.no_grad():
        got = model(torch.from_numpy(standardizer.transform(raw)))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_object_scaling_standardises_real_objects_only():
    objects, present = _objects(400, 6, seed=8)
    model = _model(bottleneck=0)
    model.fit_object_scaling(_flat(objects, present))
    with torch.no_grad():
        inputs, mask = model.object_inputs(torch.from_numpy(_flat(objects, present)))
    real = inputs[mask]
    n_scaled = model.object_mean.numel()
    torch.testing.assert_close(real[:, :n_scaled].mean(0), torch.zeros(n_scaled), atol=1e-4, rtol=0)
    torch.testing.assert_close(real[:, :n_scaled].std(0, unbiased=False), torch.ones(n_scaled), atol=1e-3, rtol=0)
    assert (inputs[~mask] == 0).all()
    # the category becomes one-hot: exactly one 1 per real object
    torch.testing.assert_close(real[:, n_scaled:].sum(1), torch.ones(len(real)))


def test_global_features_join_after_pooling():
    config = SetConfig(fields=FIELDS, max_objects=4, n_global=2, bottleneck=0)
    model = SetModel(config.n_inputs, config)
    objects, present = _objects(20, 4)
    x = torch.from_numpy(_flat(objects, present, np.random.default_rng(1).normal(size=(20, 2))))
    assert model.encode(x).shape == (20, model.pooled_width)
    x2 = x.clone()
    x2[:, 0] += 1.0
    with torch.no_grad():
        assert not torch.allclose(model(x), model(x2))


def test_training_api_matches_the_sqnn_network():
    model = _model(bottleneck=8)
    assert model.representation_is_stochastic
    assert len(model.bernoulli_layers()) == 1 and isinstance(model.bernoulli_layers()[0], BernoulliActivation)
    objects, present = _objects(64, 6)
    x = torch.from_numpy(_flat(objects, present))
    model.train()
    model.set_training_generator(torch.Generator().manual_seed(0))
    logit, theta, output = model(x, outputs=True)
    assert theta.shape == (64, 8)
    assert set(output.unique().tolist()) <= {0.0, 1.0}
    torch.nn.functional.binary_cross_entropy_with_logits(logit, torch.ones(64)).backward()
    assert model.object_layers[0].weight.grad is not None and model.object_layers[0].weight.grad.abs().sum() > 0
    model.eval()
    model.set_inference("stochastic", seed=4)
    first = model(x)
    model.set_inference("stochastic", seed=4)
    torch.testing.assert_close(model(x), first)
    assert not _model(bottleneck=0).representation_is_stochastic


def test_encoder_moves_to_a_new_model_and_freezes():
    pretrained = _model(bottleneck=8, pooling=("sum", "attention"))
    torch.manual_seed(11)
    fresh = SetModel(pretrained.config.n_inputs, pretrained.config)
    fresh.load_encoder(pretrained.encoder_state())
    for key, value in pretrained.encoder_state().items():
        torch.testing.assert_close(fresh.state_dict()[key], value)
    assert "attention.weight" in pretrained.encoder_state()
    assert not torch.equal(fresh.head.weight, pretrained.head.weight)
    fresh.freeze_encoder()
    frozen = {name for name, p in fresh.named_parameters() if not p.requires_grad}
    assert frozen == {name for name in dict(fresh.named_parameters()) if name.startswith(("object_layers.", "attention."))}
    other = SetModel(SetConfig(fields=FIELDS, max_objects=6, object_hidden=(32,)).n_inputs,
                     SetConfig(fields=FIELDS, max_objects=6, object_hidden=(32,)))
    with pytest.raises(ValueError, match="encoder"):
        other.load_encoder(pretrained.encoder_state())


def test_config_round_trip_and_validation():
    config = SetConfig.for_objects(["pt", "deta", "dphi", "charge"], 10, n_global=3, pooling=["sum", "max"])
    assert config.log_fields == ("pt",) and config.angle_field is None and config.category_field is None
    assert SetConfig.from_dict(config.to_dict()) == config
    assert build_set_model(config.n_inputs, config.to_dict()).n_inputs == 3 + 10 * 5
    with pytest.raises(ValueError, match="pooling"):
        SetConfig(pooling=("median",))
    with pytest.raises(ValueError, match="unknown"):
        SetConfig.from_dict({"hidden": [3]})
    with pytest.raises(ValueError, match="not one of the object fields"):
        SetConfig(fields=("pt", "eta"), angle_field="phi")
    with pytest.raises(ValueError, match="reads"):
        SetModel(5, SetConfig())


def test_several_outputs_give_one_logit_per_class_and_stay_invariant():
    model = _model(outputs=3)
    objects, present = _objects(5, 6, seed=4)
    x = torch.from_numpy(_flat(objects, present))
    order = np.random.default_rng(1).permutation(6)
    shuffled = torch.from_numpy(_flat(objects[:, order], present[:, order]))
    model.eval()
    with torch.no_grad():
        logits, again = model(x), model(shuffled)
    assert logits.shape == (5, 3)
    torch.testing.assert_close(logits, again, rtol=1e-5, atol=1e-5)
    # the encoder of a several-output model moves to a one-output model: only the head differs
    single = _model()
    single.load_encoder(model.encoder_state())
    assert single.head.weight.shape == (1, single.head.in_features)
    with pytest.raises(ValueError, match="outputs must lie in 1..256"):
        SetConfig(fields=FIELDS, outputs=0)
    assert SetConfig.from_dict({k: v for k, v in SetConfig(fields=FIELDS).to_dict().items() if k != "outputs"}).outputs == 1
