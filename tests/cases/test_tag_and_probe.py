"""The emulated tag-and-probe column: per-class rates, independence of the features, reproducibility."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sqnn.cases import wjets
from sqnn.cases.boosted import add_tag, tag_and_probe
from sqnn.cases.boosted.tag_and_probe import TagEfficiencies, positions, tag_column, with_tag
from sqnn.errors import SqnnError

DATASETS = Path(wjets.__file__).resolve().parents[1] / "datasets"
FEATURES = ("pt", "eta", "mass", "tau21")


def _synthetic(n_events: int = 150_000, seed: int = 0) -> pa.Table:
    """Jets laid out as the generators lay them out: ids by class, chunk and index, one or two jets per event."""
    rng = np.random.default_rng(seed)
    is_signal = rng.integers(0, 2, n_events)
    counter = np.arange(n_events)
    event = (is_signal.astype(np.int64) << 44) | ((counter // 200) << 12) | (counter % 200)
    # one or two selected jets per event: QCD dijets, and both tops of a ttbar event
    jets = rng.integers(1, 3, n_events)
    event = np.repeat(event, jets)
    signal = np.repeat(is_signal, jets)
    n = len(event)
    mass = np.where(signal == 1, rng.normal(82.0, 8.0, n), rng.exponential(60.0, n))
    columns = {
        "pt": rng.uniform(450.0, 650.0, n).astype(np.float32),
        "eta": rng.uniform(-2.0, 2.0, n).astype(np.float32),
        "mass": mass.astype(np.float32),
        "tau21": np.clip(np.where(signal == 1, rng.normal(0.37, 0.1, n), rng.normal(0.63, 0.12, n)), 0, 1)
        .astype(np.float32),
        "is_signal": signal.astype(np.int8),
        "weight": np.ones(n, dtype=np.float32),
        "control": (mass < 50) | (mass > 120),
        "event": event,
    }
    return pa.table(columns)


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    table = _synthetic()
    frame = table.to_pandas()
    frame["position"] = positions(frame["event"].to_numpy(), frame["pt"].to_numpy(), frame["eta"].to_numpy())
    frame["tag"] = tag_column(table, 1, "sim", TagEfficiencies(0.30, 0.02))
    return frame


def test_tag_rate_of_each_class_is_its_efficiency(synthetic):
    for is_signal, efficiency in ((1, 0.30), (0, 0.02)):
        tags = synthetic.loc[synthetic["is_signal"] == is_signal, "tag"]
        error = np.sqrt(efficiency * (1 - efficiency) / len(tags))
        assert abs(tags.mean() - efficiency) < 4 * error, (is_signal, tags.mean(), error)


def test_data_defaults_mismodel_the_tag_side():
    assert TagEfficiencies.of_domain("sim") == TagEfficiencies(0.30, 0.02)
    assert TagEfficiencies.of_domain("data") == TagEfficiencies(0.27, 0.025)
    assert TagEfficiencies.of_domain("data", background=0.1) == TagEfficiencies(0.27, 0.1)


@pytest.mark.parametrize("is_signal", [1, 0])
def test_tag_is_independent_of_the_features_given_the_class(synthetic, is_signal):
    jets = synthetic[synthetic["is_signal"] == is_signal]
    event = jets["event"].to_numpy()
    # the features, the jet's rank in its event and the parts of its event id
    jets = jets.assign(index=event & 0xFFF, chunk=(event >> 12) & 0xFFFFFF)
    tagged, untagged = jets[jets["tag"]], jets[~jets["tag"]]
    assert len(tagged) > 1000
    for column in (*FEATURES, "position", "index", "chunk"):
        a, b = tagged[column].astype(float), untagged[column].astype(float)
        error = np.sqrt(a.var() / len(a) + b.var() / len(b))
        assert abs(a.mean() - b.mean()) < 4 * error, (column, a.mean(), b.mean(), error)
    # and no trend of the rate along a feature: a chi2 over ten bins of equal population
    for column in FEATURES:
        bins = pd.qcut(jets[column], 10, labels=False)
        rate = jets["tag"].mean()
        counts = jets.groupby(bins)["tag"].agg(["sum", "count"])
        chi2 = (((counts["sum"] - rate * counts["count"]) ** 2) / (rate * (1 - rate) * counts["count"])).sum()
        assert chi2 < 30.0, (column, chi2)  # 9 degrees of freedom: p ~ 4e-4


def test_positions_rank_jets_by_pt_within_their_event():
    event = np.array([5, 7, 5, 9, 7, 7])
    pt = np.array([500.0, 480.0, 600.0, 470.0, 520.0, 520.0])
    eta = np.array([0.0, 0.0, 0.0, 0.0, 0.5, -0.5])
    # event 7: the two jets of equal pT are ordered by eta
    assert positions(event, pt, eta).tolist() == [1, 2, 0, 0, 1, 0]
    assert positions(event[:0], pt[:0], eta[:0]).tolist() == []


def test_tag_is_deterministic_and_keyed_by_seed_and_domain():
    table = _synthetic(20_000, seed=3)
    efficiencies = TagEfficiencies(0.30, 0.02)
    first = tag_column(table, 11, "sim", efficiencies)
    np.testing.assert_array_equal(first, tag_column(table, 11, "sim", efficiencies))
    signal = table.column("is_signal").to_numpy() == 1
    for other in (tag_column(table, 12, "sim", efficiencies), tag_column(table, 11, "data", efficiencies)):
        # another key draws anew: two independent draws differ with probability 2 t (1 - t)
        differ = (first != other)[signal].mean()
        assert differ == pytest.approx(2 * 0.3 * 0.7, abs=4 * np.sqrt(0.42 * 0.58 / signal.sum()))
    # the same draws, compared with another threshold: a lower efficiency tags a subset
    lower = tag_column(table, 11, "sim", TagEfficiencies(0.27, 0.01))
    assert not (lower & ~first).any() and (first & ~lower).any()


def test_tag_does_not_depend_on_row_order_or_on_how_the_jets_were_shared_out(synthetic):
    table = _synthetic(30_000, seed=4)
    efficiencies = TagEfficiencies(0.30, 0.02)
    whole = tag_column(table, 2, "data", efficiencies)
    event = table.column("event").to_numpy()
    for workers in (2, 3, 7):
        # each worker's chunks hold whole events
        pieces = np.empty(len(whole), dtype=bool)
        for worker in range(workers):
            rows = np.flatnonzero((event >> 12) % workers == worker)
            pieces[rows] = tag_column(table.take(pa.array(rows)), 2, "data", efficiencies)
        np.testing.assert_array_equal(pieces, whole)
    order = np.random.default_rng(0).permutation(len(whole))
    np.testing.assert_array_equal(tag_column(table.take(pa.array(order)), 2, "data", efficiencies), whole[order])


def test_with_tag_places_the_column_after_event_and_describes_it():
    table = _synthetic(1_000)
    tagged, metadata = with_tag(table, 3, "sim", TagEfficiencies(0.4, 0.1), {"seed": 3, "domain": "sim"})
    assert tagged.column_names == [*table.column_names, "tag"]
    assert tagged.schema.field("tag").type == pa.bool_()
    assert metadata["tag"]["efficiency"] == {"signal": 0.4, "background": 0.1}
    assert metadata["tag"]["seed_key"] == [tag_and_probe.TAG_CODE, 3, 0]
    with_constituents = table.append_column("constituents", pa.array([[1.0]] * table.num_rows))
    redrawn, again = with_tag(with_tag(with_constituents, 3, "sim", TagEfficiencies(0.4, 0.1), {})[0], 3, "sim",
                              TagEfficiencies(0.9, 0.9), metadata)
    assert redrawn.column_names == [*table.column_names, "tag", "constituents"]
    assert again["tag"]["efficiency"] == {"signal": 0.9, "background": 0.9}


@pytest.mark.parametrize(("signal", "background"), [(1.5, 0.02), (0.3, -0.1), (float("nan"), 0.1), (True, 0.1)])
def test_efficiencies_outside_zero_to_one_are_one_line_errors(signal, background):
    with pytest.raises(SqnnError, match=r"^tag_(signal|background) \(the tag efficiency") as error:
        TagEfficiencies(signal, background)
    assert "\n" not in str(error.value) and error.value.for_cli().startswith("--tag-")


# ---------------------------------------------------------------- files


def test_add_tag_to_a_copy_of_the_shipped_simulation(tmp_path):
    shipped = DATASETS / "wjets_sim.parquet"
    copy = tmp_path / "wjets_sim.parquet"
    shutil.copyfile(shipped, copy)
    assert add_tag(copy) == copy
    before, after = pd.read_parquet(shipped), pd.read_parquet(copy)
    if "tag" in before:
        before = before.drop(columns="tag")
    pd.testing.assert_frame_equal(after.drop(columns="tag"), before)
    assert list(after.columns)[-1] == "tag" == list(after.columns)[list(after.columns).index("event") + 1]
    metadata = json.loads(pq.read_schema(copy).metadata[b"sqnn"])
    assert metadata["tag"]["efficiency"] == {"signal": 0.30, "background": 0.02}
    assert metadata["tag"]["seed_key"] == [tag_and_probe.TAG_CODE, 1, 0]
    rates = after.groupby("is_signal")["tag"].mean()
    assert rates[1] == pytest.approx(0.30, abs=4 * np.sqrt(0.3 * 0.7 / 25_000))
    assert rates[0] == pytest.approx(0.02, abs=4 * np.sqrt(0.02 * 0.98 / 25_000))
    # a second call keeps the efficiencies the file records
    add_tag(copy, tmp_path / "again.parquet")
    assert (tmp_path / "again.parquet").read_bytes() == copy.read_bytes()


def test_add_tag_refuses_files_it_cannot_reproduce(tmp_path):
    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"x": [1.0]}), foreign)
    with pytest.raises(SqnnError, match="foreign.parquet"):
        add_tag(foreign)
    suite_file = tmp_path / "suite.parquet"
    table = _synthetic(100)
    metadata = {"case": "wjets", "seed": 0, "domain": "data", "sample": {"role": "data_eval"}}
    pq.write_table(table.replace_schema_metadata({"sqnn": json.dumps(metadata)}), suite_file)
    with pytest.raises(SqnnError, match="tag_signal and tag_background"):
        add_tag(suite_file)
    add_tag(suite_file, tag_signal=0.3, tag_background=0.02)
    assert pq.read_schema(suite_file).names[-1] == "tag"


@pytest.mark.physics
def test_add_tag_reproduces_the_column_of_a_fresh_generation(tmp_path):
    fresh = wjets.generate("data", 24, seed=6, out=tmp_path / "fresh.parquet", progress=False, tag_signal=0.5)
    table = pq.read_table(fresh)
    metadata = json.loads(table.schema.metadata[b"sqnn"])
    assert metadata["tag"]["efficiency"] == {"signal": 0.5, "background": 0.025}
    assert table.column_names[table.column_names.index("event") + 1] == "tag"
    # the file as the generator wrote it before the column existed
    old = {key: value for key, value in metadata.items() if key != "tag"}
    untagged = tmp_path / "untagged.parquet"
    pq.write_table(table.drop_columns(["tag"]).replace_schema_metadata({"sqnn": json.dumps(old)}), untagged,
                   compression="zstd")
    add_tag(untagged, tag_signal=0.5)
    assert pq.read_table(untagged).equals(table)
    assert json.loads(pq.read_schema(untagged).metadata[b"sqnn"]) == metadata
    assert untagged.read_bytes() == fresh.read_bytes()


def test_the_tag_column_is_never_a_default_feature(tmp_path):
    from sqnn.data.sample import ColumnSpec, columns_of

    path = tmp_path / "tagged.parquet"
    pq.write_table(with_tag(_synthetic(100), 1, "sim", TagEfficiencies(), {})[0], path)
    features, _ = columns_of(path, ColumnSpec(label="is_signal"))
    assert features == list(FEATURES)
