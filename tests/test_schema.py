"""The settings schema: types and ranges checked, nothing coerced; a property test over settings from any source."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqnn.data import ColumnSpec
from sqnn.errors import SqnnError
from sqnn.methods import METHODS
from sqnn.nn import NetworkConfig
from sqnn.nn.set_model import SetConfig
from sqnn.schema import Choice, Fields, Flag, Integer, Name, Nullable, Real, SchemaError, Sequence
from sqnn.training import TrainConfig
from sqnn.workflows.settings import Settings, read_config


@pytest.mark.parametrize(
    ("rule", "value"),
    [
        (Integer(1, 10), "3"),
        (Integer(1, 10), 3.0),
        (Integer(1, 10), True),
        (Integer(1, 10), 11),
        (Real(0, 1), "0.5"),
        (Real(0, 1), math.nan),
        (Real(), math.inf),
        (Real(0, 1, low_open=True), 0.0),
        (Flag(), "false"),
        (Flag(), 0),
        (Name(), ""),
        (Name(), " x"),
        (Name(), "a\nb"),
        (Choice("a", "b"), "c"),
        (Sequence(Integer(1, 100)), "64"),
        (Sequence(Name(), unique=True), ["a", "a"]),
        (Fields({"a": Integer()}), {"b": 1}),
    ],
)
def test_a_wrong_value_is_refused_never_coerced(rule, value) -> None:
    with pytest.raises(SchemaError):
        rule.check(value, "x")


def test_plain_values_come_back_in_plain_form() -> None:
    assert Integer(0, 9).check(np.int64(3), "n") == 3 and type(Integer(0, 9).check(np.int64(3), "n")) is int
    assert Real(0, 1).check(1, "r") == 1.0 and Flag().check(np.bool_(True), "f") is True
    assert Sequence(Integer(1, 99)).check([64, 16], "h") == (64, 16)
    assert Nullable(Integer()).check(None, "n") is None


def test_errors_name_the_path_of_the_value() -> None:
    with pytest.raises(SchemaError, match=r"^network.hidden\[1\] must be an integer in \[1, 65536\], got '16'$"):
        NetworkConfig(hidden=(64, "16"))
    with pytest.raises(SchemaError, match=r"network.stochastic\[0\] must be true or false, got 'false'"):
        NetworkConfig(stochastic=("false", "true"))
    with pytest.raises(SchemaError, match="train.epochs must be an integer"):
        TrainConfig(epochs=1.5)  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="train.learning_rate must be a finite number"):
        TrainConfig(learning_rate="fast")  # type: ignore[arg-type]
    with pytest.raises(SchemaError, match="train.seed"):
        TrainConfig(seed=-1)
    with pytest.raises(SchemaError, match="train.seed"):
        TrainConfig(seed=2**64)
    with pytest.raises(SchemaError, match="network.samples"):
        NetworkConfig(samples=0)
    with pytest.raises(SchemaError, match="network.temperature"):
        NetworkConfig(temperature=math.nan)
    with pytest.raises(SchemaError, match="network.object_hidden"):
        SetConfig(object_hidden="64")  # type: ignore[arg-type]


def test_a_schema_error_is_a_user_error_and_a_value_error() -> None:
    error = SchemaError("train.epochs", "must be an integer")
    assert isinstance(error, SqnnError) and isinstance(error, ValueError) and error.exit_code == 2


def test_every_method_option_has_a_rule_that_the_objective_applies() -> None:
    for name, cls in METHODS.items():
        for option, rule in cls.option_rules.items():
            assert rule.describe(), (name, option)
        with pytest.raises(SchemaError, match="method_options"):
            cls(**{"no_such_option": 1})


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ('network: {hidden: "64"}', r"network.hidden must be a list"),
        ('network: {stochastic: ["false", "true"]}', r"network.stochastic\[0\] must be true or false"),
        ("train: {epochs: 1.5}", "train.epochs must be an integer"),
        ("train: {learning_rate: fast}", "train.learning_rate must be a finite number"),
        ("features: 5", "features must be a list"),
        ("network: {samples: 0}", "network.samples must be an integer in"),
        ("gamma: .nan", "gamma must be a finite number"),
        ("gamma: -1", "gamma must be a finite number"),
        ('method_options: {warmup: "3"}', "method_options.warmup must be an integer"),
        ("method_options: {bandwidths: [1, .inf]}", "method_options.bandwidths"),
        ("label: [a]", "label must be a column name"),
        ("features: [x0, x0]", r"features\[1\] repeats 'x0'"),
        ("train: [1]", "train must be a mapping"),
    ],
)
def test_yaml_settings_are_checked_before_any_work(tmp_path, yaml_text: str, expected: str) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(yaml_text + "\n" + ("method: mmd\n" if "bandwidths" in yaml_text else ""))
    from sqnn.workflows.settings import columns_from, train_config_from

    with pytest.raises(SqnnError, match=expected) as caught:
        config = read_config(path)
        columns = columns_from(config, label="is_signal") if "label" not in config else columns_from(config)
        Settings.from_config(config, columns=columns, train=train_config_from(config))
    assert "\n" not in str(caught.value)


def test_a_deeply_nested_config_is_one_line(tmp_path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("network: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(SqnnError, match="deep.yaml"):
        read_config(path)


# ---- property test: any value, in any setting, from any source -------------------------------------

_ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.one_of(st.integers(-5, 70000), st.booleans(), st.text(max_size=3)), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
_SETTINGS = {
    "train": [f for f in TrainConfig.__dataclass_fields__],
    "network": ["hidden", "stochastic", "binary_weights", "temperature", "samples", "representation", "inference",
                "input_fixed", "first_layer_fixed", "fixed_point"],
    "method_options": sorted({k for cls in METHODS.values() for k in cls.option_rules}),
    "top": ["gamma", "method", "features", "label", "weight", "control", "observer"],
}


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    method=st.sampled_from(sorted(METHODS)),
    where=st.sampled_from(sorted(_SETTINGS)),
    index=st.integers(0, 100),
    value=_ANY_VALUE,
)
def test_any_value_in_any_setting_is_a_valid_setting_or_one_user_error(method, where, index, value) -> None:
    """Whatever a YAML file or a caller puts in one setting: valid settings of the right types, or one SqnnError line."""
    name = _SETTINGS[where][index % len(_SETTINGS[where])]
    config: dict = {"method": method, "features": ["a", "b"], "label": "y"}
    if where == "top":
        config[name] = value
    else:
        config[where] = {name: value}
    from sqnn.workflows.settings import CONFIG_RULES, columns_from, train_config_from

    try:
        config = CONFIG_RULES.check(config, "")
        built = Settings.from_config(config, columns=columns_from(config), train=train_config_from(config))
    except SqnnError as error:
        assert "\n" not in str(error) and str(error)
        return
    # accepted: every value is of its declared type and in range
    assert isinstance(built.train, TrainConfig) and isinstance(built.columns, ColumnSpec)
    assert built.gamma is None or (isinstance(built.gamma, float) and math.isfinite(built.gamma) and built.gamma >= 0)
    objective = built.objective()
    if not objective.own_trainer:
        network = built.network_config(objective)
        assert all(type(h) is int and h >= 1 for h in network.hidden)
        assert all(type(s) is bool for s in (*network.stochastic, *network.binary_weights))
        assert math.isfinite(network.temperature) and network.temperature > 0 and network.samples >= 1
    for key, option in built.method_options.items():
        METHODS[built.method].option_rules[key].check(option, key)
    train = built.train
    assert type(train.epochs) is int and train.epochs >= 1 and 0 <= train.seed < 2**32
    assert math.isfinite(train.learning_rate) and train.learning_rate > 0
