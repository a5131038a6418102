"""Library errors speak in Python terms (parameter names); the command line translates them into flags."""

from __future__ import annotations

import ast
import pickle
import re
from pathlib import Path

import pytest

from sqnn.cli import main
from sqnn.data import ColumnSpec, load_inputs
from sqnn.errors import DataError, SqnnError, option, phrase
from sqnn.training import TrainConfig
from sqnn.workflows.settings import Settings
from sqnn.workflows.train import train_run

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "sqnn"
TOY_FEATURES = ("x0", "x1", "x2", "x3", "x4", "x5")
SPEC = ColumnSpec(features=TOY_FEATURES, label="is_signal", weight="weight")
MARKERS = re.compile("[\x01\x02\x03]")
# a command-line flag: two dashes and a letter, not inside a word ("x--y") or a longer run of dashes
FLAG = re.compile(r"(?<![\w-])--[a-z]")


def _settings(**changes) -> Settings:
    return Settings(columns=SPEC, train=TrainConfig(epochs=1, seed=0), **changes)


def _clean(text: str) -> str:
    assert not MARKERS.search(text), repr(text)
    assert "\n" not in text
    return text


# ---------------------------------------------------------------- the mechanism


def test_an_option_is_a_parameter_in_python_and_a_flag_on_the_command_line() -> None:
    error = SqnnError(f"give {option('overwrite', python_value='True')} or {option('control', 'COL')}; "
                      f"{option('n_train')} must be positive; read {option('simulation', 'FILE', flag='--sim')}")
    assert str(error) == "give overwrite=True or control=...; n_train must be positive; read simulation=..."
    assert error.for_cli() == "give --overwrite or --control COL; --n-train must be positive; read --sim FILE"
    assert repr(error) == f"SqnnError({str(error)!r})"


def test_a_phrase_is_said_one_way_to_each() -> None:
    error = DataError("run it " + phrase("with scheduler=None", "without --scheduler"))
    assert (str(error), error.for_cli()) == ("run it with scheduler=None", "run it without --scheduler")


def test_a_message_without_options_reads_the_same_both_ways() -> None:
    error = SqnnError("a.parquet:  no   such file\n")
    assert str(error) == error.for_cli() == "a.parquet: no such file"


def test_the_markers_survive_a_wrapping_error_and_a_trip_to_another_process() -> None:
    inner = SqnnError(f"{option('chunk')} must be at least 1, got 0")
    for error in (SqnnError(inner), pickle.loads(pickle.dumps(inner)), SqnnError(f"train: {inner.marked}")):
        assert "chunk must be at least 1" in _clean(str(error)) and "--" not in str(error)
        assert "--chunk must be at least 1" in _clean(error.for_cli())


# ---------------------------------------------------------------- what a Python user and the command line read


def _python_and_cli(error: SqnnError, python: str, flag: str) -> None:
    shown, cli = _clean(str(error)), _clean(error.for_cli())
    assert python in shown and not FLAG.search(shown), shown
    assert flag in cli and "=True" not in cli and "=..." not in cli, cli


def test_a_missing_control_column_names_the_parameter(toy_files, tmp_path: Path) -> None:
    settings = _settings(method="sqnn", method_options={"region": "control"})
    with pytest.raises(SqnnError) as error:
        train_run(*toy_files, settings, tmp_path / "run")
    _python_and_cli(error.value, "control=...", "--control COL")
    assert str(error.value).startswith("method='sqnn' with these options needs control=...")


def test_a_run_directory_that_holds_a_run_asks_for_overwrite(toy_files, tmp_path: Path) -> None:
    (tmp_path / "model.json").write_text("{}")
    with pytest.raises(SqnnError) as error:
        train_run(*toy_files, _settings(), tmp_path)
    _python_and_cli(error.value, "overwrite=True", "--overwrite")
    assert "or resume=True to continue it" in str(error.value)


def test_resume_without_a_checkpoint_names_the_parameter(toy_files, tmp_path: Path) -> None:
    with pytest.raises(SqnnError) as error:
        train_run(*toy_files, _settings(), tmp_path, resume=True)
    _python_and_cli(error.value, "train without resume=True", "train without --resume")


def test_missing_data_names_the_parameters(toy_files) -> None:
    with pytest.raises(SqnnError) as error:
        load_inputs(toy_files[0], None, SPEC)
    _python_and_cli(error.value, "data=... (or one mixed file with domain_column=...)", "--data FILE")
    assert error.value.for_cli().endswith("(or one mixed file with --domain COL)")


def test_a_chunk_below_one_names_the_parameter(toy_files, tmp_path: Path) -> None:
    with pytest.raises(SqnnError) as error:
        train_run(*toy_files, _settings(method="source-only"), tmp_path, chunked=True, chunk=0)
    _python_and_cli(error.value, "chunk must be at least 1", "--chunk must be at least 1")


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert not MARKERS.search(err)
    return err


def _train(toy_files, out: Path, *extra: str) -> list[str]:
    return ["train", "--sim", str(toy_files[0]), "--data", str(toy_files[1]), "--features", ",".join(TOY_FEATURES),
            "--label", "is_signal", "--weight", "weight", "--epochs", "1", "--quiet", "--out", str(out), *extra]


def test_the_command_line_names_the_flags(toy_files, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _cli_error(_train(toy_files, tmp_path / "a", "--method", "sqnn", "--region", "control"), capsys)
    assert "--method sqnn with these options needs --control COL in both simulation and data" in err

    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "model.json").write_text("{}")
    err = _cli_error(_train(toy_files, tmp_path / "b"), capsys)
    assert "give --overwrite to replace it or --resume to continue it" in err and "=True" not in err

    err = _cli_error(_train(toy_files, tmp_path / "c", "--resume"), capsys)
    assert "no checkpoint to resume from" in err and "train without --resume" in err

    argv = _train(toy_files, tmp_path / "d")
    del argv[3:5]  # no --data
    err = _cli_error(argv, capsys)
    assert "give the data sample with --data FILE (or one mixed file with --domain COL)" in err

    # the flag's own type refuses a chunk below 1 before the library sees it; it names the flag all the same
    err = _cli_error(_train(toy_files, tmp_path / "e", "--chunked", "--chunk", "0"), capsys)
    assert "--chunk" in err and "chunk=" not in err


# ---------------------------------------------------------------- the repository


def _error_texts(tree: ast.AST) -> list[str]:
    """The string constants a module puts into errors: in ``raise`` statements and in calls of ``...Error``/``..._error``.

    Those inside :func:`~sqnn.errors.option` and :func:`~sqnn.errors.phrase` are the command line's
    rendering and do not count.
    """
    texts: list[str] = []

    def called(node: ast.AST) -> str:
        if isinstance(node, ast.Call):
            func = node.func
            return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        return ""

    def visit(node: ast.AST, in_error: bool) -> None:
        if called(node) in ("option", "phrase"):
            return
        in_error = in_error or isinstance(node, ast.Raise) or called(node).endswith(("Error", "_error"))
        if in_error and isinstance(node, ast.Constant) and isinstance(node.value, str):
            texts.append(node.value)
        for child in ast.iter_child_nodes(node):
            visit(child, in_error)

    visit(tree, False)
    return texts


def _flags_in_errors(path: Path) -> list[str]:
    return [text for text in _error_texts(ast.parse(path.read_text(), str(path))) if FLAG.search(text)]


def test_no_library_module_puts_a_flag_into_an_error() -> None:
    offenders = {
        str(path.relative_to(PACKAGE)): found
        for path in sorted(PACKAGE.rglob("*.py"))
        if "cli" not in path.relative_to(PACKAGE).parts[:1] and (found := _flags_in_errors(path))
    }
    assert not offenders, offenders


def test_the_repository_check_finds_the_flags_of_the_command_line() -> None:
    # the command line speaks in flags: the check that keeps them out of the library sees them there
    assert any("--objects" in text for text in _flags_in_errors(PACKAGE / "cli" / "train.py"))
    tree = ast.parse('raise SqnnError(f"{x}: give --data FILE or " + option("data", "FILE"))\n'
                     '"""a docstring may say --data"""\n')
    assert _error_texts(tree) == [": give --data FILE or "]
