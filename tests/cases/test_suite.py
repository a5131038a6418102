"""The simulation/data suite: the registry, the plan's honesty and a tiny suite end to end."""

from __future__ import annotations

import json
import os

import pandas as pd
import pyarrow.parquet as pq
import pytest

from sqnn.cases import boosted, suite
from sqnn.cases.boosted import sequences
from sqnn.cli import main
from sqnn.errors import SqnnError

PROCESSES = ("wjets", "topjets")


# ---------------------------------------------------------------- the registry


@pytest.mark.parametrize("process", PROCESSES)
def test_every_process_has_single_factor_and_combined_pairs(process):
    cases = [case for case in suite.CASES.values() if case.process == process]
    single = [case for case in cases if len(case.factors) == 1]
    combined = [case for case in cases if len(case.factors) > 1]
    assert len(single) >= 6 and len(combined) >= 2
    assert {factor for case in single for factor in case.factors} == set(suite.FACTORS)
    prefix = suite.PREFIX[process]
    for name in ("tune", "fsr", "isr", "hadronisation", "mpi", "detector", "jes", "pileup", "pileup-nochs",
                 "fraction", "tag", "combined"):
        assert f"{prefix}-{name}" in suite.CASES


@pytest.mark.parametrize("case", list(suite.CASES.values()), ids=list(suite.CASES))
def test_each_case_names_exactly_what_its_data_side_changes(case):
    assert case.sim == suite.SIMULATION
    assert case.factors == suite.changed_factors(case.sim, case.data)
    if len(case.factors) == 1:
        assert case.name.split("-", 1)[1].startswith(case.factors[0])
    if not case.factors:
        assert case.data.reconstruction(case.process) == case.sim.reconstruction(case.process)
        assert case.data.setting == case.sim.setting and case.data.signal_fraction == case.sim.signal_fraction
    # the tag side is mismodelled in the tag case and every combined case, and nowhere else
    assert case.sim.tag == suite.SIMULATION_TAG == boosted.TagEfficiencies(0.30, 0.02)
    mismodelled = case.factors == ("tag",) or case.combined
    assert ("tag" in case.factors) == mismodelled
    assert case.data.tag == (suite.MISMODELLED_TAG if mismodelled else suite.SIMULATION_TAG)
    assert suite.MISMODELLED_TAG == boosted.TagEfficiencies(0.27, 0.025)


def test_changed_factors_sees_each_kind_of_difference():
    base = suite.SIMULATION
    assert suite.changed_factors(base, base) == ()
    assert suite.changed_factors(base, suite.Side(setting="modelling")) == ("fsr", "isr", "hadronisation", "mpi")
    assert suite.changed_factors(base, suite.Side(detector=suite.JES_DETECTOR)) == ("jes",)
    assert suite.changed_factors(base, suite.Side(detector=suite.RESOLUTION_DETECTOR)) == ("detector",)
    assert suite.changed_factors(base, suite.Side(tag=suite.MISMODELLED_TAG)) == ("tag",)
    assert suite.changed_factors(base, suite.Side(tag=boosted.TagEfficiencies(0.30, 0.03))) == ("tag",)
    # without pileup, subtraction changes nothing
    assert suite.changed_factors(base, suite.Side(chs=False)) == ()
    assert suite.changed_factors(suite.Side(pileup_mu=15.0), suite.Side(pileup_mu=15.0, chs=False)) == ("pileup",)


def test_select_expands_groups_and_refuses_unknown_names():
    assert [case.name for case in suite.select(["topjets"])] == list(suite.GROUPS["topjets"])
    assert len(suite.select(["all", "w-fsr"])) == len(suite.CASES)
    with pytest.raises(SqnnError, match="w-nothing"):
        suite.select(["w-nothing"])


# ---------------------------------------------------------------- the plan


def test_simulation_data_training_and_evaluation_never_share_a_sequence(tmp_path):
    planned = suite.plan(suite.select(["all"]), tmp_path, n_train=100, n_eval=200)
    roles_of: dict[str, set[str]] = {}
    codes: dict[int, str] = {}
    for case, files in planned.items():
        names = {role: item.sequence_name for role, item in files.items()}
        assert len(set(names.values())) == 4, case
        for role, item in files.items():
            roles_of.setdefault(item.sequence_name, set()).add(role)
            assert codes.setdefault(item.sequence.code, item.sequence_name) == item.sequence_name
            assert item.output.domain == role.split("_")[0]
            if role.startswith("sim"):
                assert item.sequence_name.split("-")[1] == "nominal"
    # a sequence serves one role only, whichever case asks for it
    assert all(len(roles) == 1 for roles in roles_of.values())
    keys = {item.sequence.keys for files in planned.values() for item in files.values()}
    assert len(keys) == len(roles_of)


def test_single_factor_pairs_share_one_simulation_and_data_variants_share_sequences(tmp_path):
    planned = suite.plan(suite.select(["w-fsr", "w-jes", "w-fraction", "w-null", "w-tag"]), tmp_path)
    sims = {planned[name]["sim_eval"].output.path for name in planned}
    assert len(sims) == 1
    # the tag case: the null case's jets, another file with another tag column
    tag, null = planned["w-tag"]["data_eval"], planned["w-null"]["data_eval"]
    assert tag.sequence_name == null.sequence_name and tag.output.reconstruction == null.output.reconstruction
    assert tag.output.path != null.output.path and tag.request != null.request
    assert (tag.output.tag, null.output.tag) == (suite.MISMODELLED_TAG, suite.SIMULATION_TAG)
    assert planned["w-tag"]["sim_eval"].output.tag == suite.SIMULATION_TAG
    fraction, null, jes = (planned[name]["data_eval"] for name in ("w-fraction", "w-null", "w-jes"))
    assert fraction.sequence_name == null.sequence_name == jes.sequence_name
    assert fraction.output.reconstruction == null.output.reconstruction != jes.output.reconstruction
    assert fraction.output.path != null.output.path
    assert (fraction.output.n, fraction.output.n_signal) == (110_000, 22_000)
    assert planned["w-fsr"]["sim_train"].output.n == suite.RECOMMENDED_SIZES["wjets"]["train"]


def test_sizes_and_seed_are_checked(tmp_path):
    with pytest.raises(SqnnError, match="^n_eval must be a positive number") as error:
        suite.plan(suite.select(["w-fsr"]), tmp_path, n_eval=0)
    assert error.value.for_cli().startswith("--n-eval must be a positive number")
    with pytest.raises(SqnnError, match="^seed must be"):
        suite.plan(suite.select(["w-fsr"]), tmp_path, seed=-1)


def test_suite_list_prints_every_case(capsys):
    assert main(["suite", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == list(suite.CASES)
    assert main(["suite", "make", "w-nothing", "--out", "x"]) == 2
    assert "unknown suite case" in capsys.readouterr().err


def test_estimate_counts_each_sequence_once_and_scales_with_size():
    small = suite.estimate(["w-fsr", "w-jes"], n_train=1000, n_eval=2000)
    large = suite.estimate(["w-fsr", "w-jes"], n_train=2000, n_eval=4000)
    assert sorted(small["streams"]) == sorted([
        "wjets-nominal-sim_train", "wjets-nominal-sim_eval", "wjets-fsr-data_train", "wjets-fsr-data_eval",
        "wjets-nominal-data_train", "wjets-nominal-data_eval"])
    assert large["cpu_seconds"] == pytest.approx(2 * small["cpu_seconds"], rel=0.01)
    both = suite.estimate(["w-fsr", "w-jes", "w-null", "w-fraction"], n_train=1000, n_eval=2000)
    # the null and fraction pairs add a reconstruction, not a Pythia run
    assert small["cpu_seconds"] < both["cpu_seconds"] < 1.2 * small["cpu_seconds"]


# ---------------------------------------------------------------- a tiny suite end to end


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite")
    # chunks of 50 events: one chunk per class and sequence is enough for these sizes
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sequences, "CHUNK_EVENTS", 50)
        folders = suite.make(["w-jes", "w-fraction", "w-null", "w-tag"], out, n_train=20, n_eval=30, seed=1,
                             progress=False)
    return out, folders


def _events(path):
    return set(pq.read_table(path, columns=["event"]).column("event").to_pylist())


def _metadata(path):
    return json.loads(pq.read_schema(path).metadata[b"sqnn"])


@pytest.mark.physics
def test_tiny_suite_files_share_no_event_or_seed_across_roles(tiny):
    out, folders = tiny
    files = {(name, role): folder / f"{role}.parquet" for name, folder in folders.items() for role in suite.ROLES}
    for (name_a, role_a), path_a in files.items():
        for (name_b, role_b), path_b in files.items():
            if role_a != role_b:
                assert not _events(path_a) & _events(path_b), (name_a, role_a, name_b, role_b)
                assert not suite._pythia_seeds(_metadata(path_a)) & suite._pythia_seeds(_metadata(path_b))
    for folder in folders.values():
        suite.verify(folder)
        description = json.loads((folder / "case.json").read_text())
        assert description["factors"] == list(suite.CASES[folder.name].factors)
        assert description["command"].startswith(f"sqnn suite make {folder.name} --n-train 20 --n-eval 30")


@pytest.mark.physics
def test_tiny_suite_sizes_fractions_and_subsampling(tiny):
    _, folders = tiny
    for name, folder in folders.items():
        for role in suite.ROLES:
            table = pd.read_parquet(folder / f"{role}.parquet")
            assert len(table) == (20 if role.endswith("train") else 30)
            fraction = 0.2 if (name == "w-fraction" and role.startswith("data")) else 0.5
            assert table["is_signal"].sum() == round(len(table) * fraction)
            assert _metadata(folder / f"{role}.parquet")["sample"]["role"] == role
    fraction = pd.read_parquet(folders["w-fraction"] / "data_eval.parquet")
    null = pd.read_parquet(folders["w-null"] / "data_eval.parquet")
    # the same reconstruction of the same sequence: the smaller signal sample is the first part of the larger
    assert set(fraction.loc[fraction["is_signal"] == 1, "event"]) <= set(null.loc[null["is_signal"] == 1, "event"])
    jes = pd.read_parquet(folders["w-jes"] / "data_eval.parquet")
    assert _metadata(folders["w-jes"] / "data_eval.parquet")["detector"]["energy_scale"] == 1.03
    assert os.readlink(folders["w-jes"] / "sim_eval.parquet") == os.readlink(folders["w-null"] / "sim_eval.parquet")
    assert len(jes) == 30


@pytest.mark.physics
def test_tiny_suite_tag_case_differs_from_the_null_case_in_the_tag_column_only(tiny):
    _, folders = tiny
    for role in suite.ROLES:
        tag = pd.read_parquet(folders["w-tag"] / f"{role}.parquet")
        null = pd.read_parquet(folders["w-null"] / f"{role}.parquet")
        assert list(tag.columns)[-1] == "tag"
        pd.testing.assert_frame_equal(tag.drop(columns="tag"), null.drop(columns="tag"))
        efficiency = _metadata(folders["w-tag"] / f"{role}.parquet")["tag"]["efficiency"]
        if role.startswith("sim"):
            pd.testing.assert_series_equal(tag["tag"], null["tag"])
            assert efficiency == {"signal": 0.30, "background": 0.02}
        else:
            assert efficiency == {"signal": 0.27, "background": 0.025}
            # the same draws against other thresholds: fewer signal jets tagged, more background
            signal = tag["is_signal"] == 1
            assert not (tag["tag"] & ~null["tag"])[signal].any()
            assert not (null["tag"] & ~tag["tag"])[~signal].any()


@pytest.mark.physics
def test_rerun_keeps_finished_files_and_verify_catches_shared_events(tiny, monkeypatch, tmp_path):
    out, folders = tiny
    before = {path: path.stat().st_mtime_ns for path in (out / "files").iterdir()}

    def refuse(*args, **kwargs):
        raise AssertionError("a finished file was made again")

    monkeypatch.setattr(boosted, "produce", refuse)
    assert suite.make(["w-jes", "w-fraction", "w-null", "w-tag"], out, n_train=20, n_eval=30, seed=1,
                      progress=False) == folders
    assert {path: path.stat().st_mtime_ns for path in (out / "files").iterdir()} == before

    forged = tmp_path / "forged"
    forged.mkdir()
    for role in suite.ROLES:
        source = "sim_train" if role == "data_train" else role
        (forged / f"{role}.parquet").symlink_to(os.path.realpath(folders["w-null"] / f"{source}.parquet"))
    with pytest.raises(SqnnError, match="sim_train and data_train share"):
        suite.verify(forged)
