"""Checkpoints: a bound pair, resumed only with the settings and inputs they were written with."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sqnn.data import ColumnSpec
from sqnn.errors import ModelFileError, SqnnError
from sqnn.training import TrainConfig
from sqnn.training.checkpoint import (
    CHECKPOINT_STATE,
    CHECKPOINT_TENSORS,
    load_checkpoint,
    settings_differences,
)
from sqnn.workflows.settings import Settings
from sqnn.workflows.train import train_run

FEATURES = ("x0", "x1", "x2", "x3", "x4", "x5")
SPEC = ColumnSpec(features=FEATURES, label="is_signal")


def _settings(epochs: int = 1, seed: int = 0, gamma: float = 1.0, features: tuple[str, ...] = FEATURES) -> Settings:
    network = {"hidden": [8, 4], "stochastic": [False, True], "binary_weights": [False, False]}
    return Settings(columns=ColumnSpec(features=features, label="is_signal"), method="sqnn", gamma=gamma,
                    network=network, train=TrainConfig(epochs=epochs, seed=seed, batch_size=512, patience=50))


@pytest.fixture(scope="module")
def two_epochs(toy_files, tmp_path_factory) -> dict[str, Path]:
    """A run trained one epoch (its checkpoint kept aside), then resumed to a second."""
    folder = tmp_path_factory.mktemp("checkpoints")
    run = folder / "run"
    train_run(*toy_files, _settings(1), run)
    first = folder / "first"
    first.mkdir()
    for name in (CHECKPOINT_STATE, CHECKPOINT_TENSORS):
        shutil.copy(run / name, first / name)
    train_run(*toy_files, _settings(2), run, resume=True)
    return {"run": run, "first": first}


def test_the_pair_resumes_when_written_together(two_epochs) -> None:
    tensors, state = load_checkpoint(two_epochs["run"])
    assert state["epoch"] == 1 and any(k.startswith("current.") for k in tensors)


@pytest.mark.parametrize("newer", [CHECKPOINT_TENSORS, CHECKPOINT_STATE])
def test_a_pair_from_two_epochs_is_refused(two_epochs, tmp_path: Path, newer: str) -> None:
    """A job killed between the two writes leaves the new tensors with the old state (or the reverse)."""
    mixed = tmp_path / "mixed"
    shutil.copytree(two_epochs["first"], mixed)
    shutil.copy(two_epochs["run"] / newer, mixed / newer)
    with pytest.raises(ModelFileError, match="cannot be resumed"):
        load_checkpoint(mixed)


def test_an_edited_state_is_refused(two_epochs, tmp_path: Path) -> None:
    edited = tmp_path / "edited"
    shutil.copytree(two_epochs["first"], edited)
    state = json.loads((edited / CHECKPOINT_STATE).read_text())
    state["epoch"] = 7  # the digest of the tensors is kept; the state no longer matches their metadata
    (edited / CHECKPOINT_STATE).write_text(json.dumps(state))
    with pytest.raises(ModelFileError, match="not the state the tensors were written with"):
        load_checkpoint(edited)
    (edited / CHECKPOINT_TENSORS).unlink()
    with pytest.raises(ModelFileError, match="only checkpoint.json exists"):
        load_checkpoint(edited)


@pytest.mark.parametrize(
    ("changed", "named"),
    [
        ({"seed": 4}, "train.seed"),
        ({"gamma": 3.0}, "gamma"),
        ({"features": ("x1", "x0", "x2", "x3", "x4", "x5")}, "features"),
    ],
)
def test_resume_refuses_other_settings_and_names_them(two_epochs, toy_files, tmp_path: Path, changed, named) -> None:
    run = tmp_path / "run"
    shutil.copytree(two_epochs["run"], run)
    before = (run / CHECKPOINT_TENSORS).read_bytes()
    with pytest.raises(SqnnError, match=rf"differ from the checkpoint's \({named}\)"):
        train_run(*toy_files, _settings(3, **changed), run, resume=True)
    assert (run / CHECKPOINT_TENSORS).read_bytes() == before


def test_resume_refuses_other_inputs(two_epochs, toy_files, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(two_epochs["run"], run)
    sim, data = toy_files
    with pytest.raises(SqnnError, match="inputs.data"):
        train_run(sim, sim, _settings(3), run, resume=True)


def test_settings_differences_allow_more_epochs_only() -> None:
    recorded = {"train": {"epochs": 2, "seed": 0, "threads": 1}, "gamma": 1.0}
    assert settings_differences(recorded, {"train": {"epochs": 5, "seed": 0, "threads": 2}, "gamma": 1.0}) == []
    assert settings_differences(recorded, {"train": {"epochs": 2, "seed": 1, "threads": 1}, "gamma": 2.0}) == [
        "gamma", "train.seed"]
    assert settings_differences(None, recorded) == ["all (the checkpoint records no settings)"]


def test_resume_without_a_checkpoint_is_an_error(toy_files, tmp_path: Path) -> None:
    with pytest.raises(SqnnError, match="no checkpoint to resume from"):
        train_run(*toy_files, _settings(1), tmp_path / "fresh", resume=True)
    assert not (tmp_path / "fresh" / "model.json").exists()


def test_an_existing_run_is_replaced_only_with_overwrite(two_epochs, toy_files, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(two_epochs["run"], run)
    before = (run / "model.json").read_bytes()
    with pytest.raises(SqnnError, match="already holds a run"):
        train_run(*toy_files, _settings(1, seed=9), run)
    assert (run / "model.json").read_bytes() == before
    with pytest.raises(SqnnError, match="give one of them"):
        train_run(*toy_files, _settings(1, seed=9), run, resume=True, overwrite=True)
    train_run(*toy_files, _settings(1, seed=9), run, overwrite=True)
    assert json.loads((run / "model.json").read_text())["train"]["seed"] == 9
    assert json.loads((run / CHECKPOINT_STATE).read_text())["settings"]["train"]["seed"] == 9
