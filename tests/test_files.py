"""Files written atomically with the umask's permissions, temporary files per writer, strict JSON, inputs never replaced."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sqnn.errors import SqnnError
from sqnn.files import atomic_path, digest, read_json, refuse_overwriting, write_text


@pytest.fixture
def umask():
    def set_mask(mask: int) -> None:
        os.umask(mask)

    previous = os.umask(0o022)
    yield set_mask
    os.umask(previous)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_get_the_permissions_of_the_umask(tmp_path: Path, umask, mask: int, mode: int) -> None:
    umask(mask)
    write_text(tmp_path / "a.txt", "x")
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == mode
    # a writer that recreates the temporary file with its own permissions (as safetensors does) too
    with atomic_path(tmp_path / "b.bin") as tmp:
        tmp.unlink()
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    assert (tmp_path / "b.bin").stat().st_mode & 0o777 == mode


def test_two_writers_of_one_target_keep_their_own_temporary_files(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    with atomic_path(target) as first:
        first.write_text("first")
        # a second writer (another job) starts while the first is still writing
        code = (
            "import sys; from sqnn.files import write_text; write_text(sys.argv[1], 'second')"
        )
        subprocess.run([sys.executable, "-c", code, str(target)], check=True, env={**os.environ})
        assert first.exists() and first.read_text() == "first"
    assert target.read_text() == "first"  # the last writer to finish wins, with a complete file
    assert not list(tmp_path.glob(".out.parquet.*.part"))


def test_a_killed_writers_temporary_file_is_removed_by_the_next_writer(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    from sqnn.files import _writer_tag

    host = _writer_tag().rpartition("-")[0]
    stale = tmp_path / f".out.json.{host}-{process.pid}.abc123.part"
    live = tmp_path / f".out.json.{host}-{os.getpid()}.def456.part"
    foreign = tmp_path / f".out.json.otherhost-{process.pid}.ghi789.part"
    for path in (stale, live, foreign):
        path.write_text("partial")
    write_text(target, "{}")
    assert not stale.exists() and live.exists() and foreign.exists()


def test_strict_json_refuses_nan_depth_and_size(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text('{"temperature": NaN}')
    with pytest.raises(SqnnError, match="NaN is not a number of strict JSON"):
        read_json(path, 1 << 20)
    path.write_text("[" * 10_000 + "]" * 10_000)
    with pytest.raises(SqnnError, match="nested more than"):
        read_json(path, 1 << 20)
    path.write_text('{"a": "' + "[" * 10_000 + '"}')  # brackets inside a string are not nesting
    assert read_json(path, 1 << 20)["a"].startswith("[[")
    with pytest.raises(SqnnError, match="larger than"):
        read_json(path, 100)


def test_digest_is_that_of_the_content_not_of_its_layout() -> None:
    assert digest({"a": 1, "b": [1.5, None]}) == digest({"b": [1.5, None], "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})


def test_an_output_that_is_an_input_is_refused_whatever_names_it(tmp_path: Path) -> None:
    source = tmp_path / "data.parquet"
    source.write_bytes(b"PAR1")
    (tmp_path / "link.parquet").symlink_to(source)
    os.link(source, tmp_path / "hard.parquet")
    (tmp_path / "sub").mkdir()
    for output in (source, tmp_path / "link.parquet", tmp_path / "hard.parquet", tmp_path / "sub" / ".." / "data.parquet"):
        with pytest.raises(SqnnError, match="this output is the input"):
            refuse_overwriting([output], [source])
    refuse_overwriting([tmp_path / "scores.parquet"], [source])
    assert source.read_bytes() == b"PAR1"
