"""Files written safely and read strictly.

- Atomic writes: a reader never sees a partial file, a killed job leaves none (its
  temporary file is removed by the next writer of the same target on this machine), two
  jobs writing the same target never touch each other's temporary file, and the file gets
  the permissions a plain ``open()`` would give it (the umask's), whatever library wrote it.
- Outputs never replace an input: :func:`refuse_overwriting` compares resolved paths and
  file identity (hard links, symbolic links) before anything is written.
- Strict JSON: :func:`read_json` refuses NaN/Infinity, nesting deeper than any file of
  sqnn has, and files larger than the caller allows; :func:`digest` is the SHA-256 of a
  value's canonical JSON, :func:`file_digest` of a file's bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sqnn.errors import SqnnError, phrase

__all__ = [
    "atomic_path",
    "digest",
    "file_digest",
    "json_safe",
    "read_json",
    "refuse_overwriting",
    "write_json",
    "write_text",
]

PathLike = str | os.PathLike[str]

# sqnn's JSON files are a few levels deep; far deeper is a hostile or broken file
MAX_JSON_DEPTH = 64


def _writer_tag() -> str:
    """This process on this machine, as it appears in the names of its temporary files."""
    host = "".join(c for c in socket.gethostname() if c.isalnum() or c in "-_")[:32] or "host"
    return f"{host}-{os.getpid()}"


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _remove_stale(target: Path) -> None:
    """Remove temporary files of ``target`` left by killed writers on this machine, never a live writer's."""
    host = _writer_tag().rpartition("-")[0]
    for stale in target.parent.glob(f".{target.name}.*.part"):
        writer = stale.name[len(target.name) + 2 :].split(".", 1)[0]
        stale_host, _, pid = writer.rpartition("-")
        if stale_host == host and pid.isdigit() and not _is_alive(int(pid)):
            stale.unlink(missing_ok=True)


def _umask() -> int:
    # os.umask can only be read by setting it; put it back at once
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``target``, unique to this writer; rename it over ``target`` on success.

    >>> with atomic_path("out.json") as tmp:  # doctest: +SKIP
    ...     tmp.write_text("{}")
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise SqnnError(f"{target}: cannot be written, a file is in the way of its folder {target.parent}") from None
    # a writer killed with SIGKILL cannot clean up: the next write to the same target does
    _remove_stale(target)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.{_writer_tag()}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp creates 0600 and some writers (safetensors) recreate the file 0600: give the final
        # file the permissions a plain open() would, so that a worker of another user can read it
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(target: PathLike, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return Path(target)


def json_safe(value: Any) -> Any:
    """Replace NaN/inf by None and numpy scalars by Python ones, recursively, for strict JSON."""
    import math

    import numpy as np

    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def write_json(target: PathLike, obj: Any) -> Path:
    return write_text(target, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def _depth(text: str) -> int:
    """How deeply the arrays and objects of a JSON text nest (brackets inside strings not counted)."""
    deepest = depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number of strict JSON")


def read_json(path: PathLike, max_bytes: int, what: str = "JSON file") -> Any:
    """The strict JSON content of ``path``; a file too large, too deep or not strict JSON is a :class:`SqnnError`."""
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise SqnnError(f"{path}: {size} bytes, larger than any {what} ({max_bytes} at most)")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise SqnnError(f"{path}: not valid JSON (not UTF-8 text)") from None
    if _depth(text) > MAX_JSON_DEPTH:
        raise SqnnError(f"{path}: nested more than {MAX_JSON_DEPTH} levels deep; not a {what}")
    try:
        return json.loads(text, parse_constant=_no_constant)
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise SqnnError(f"{path}: not valid JSON ({' '.join(str(exc).split())[:160]})") from None


def digest(value: Any) -> str:
    """SHA-256 of ``value``'s canonical JSON (sorted keys, no spaces): equal for equal content, whatever its layout."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def file_digest(path: PathLike, block: int = 1 << 20) -> str:
    """SHA-256 of the bytes of ``path``."""
    sha = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            sha.update(chunk)
    return sha.hexdigest()


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def refuse_overwriting(outputs: Iterable[PathLike], inputs: Iterable[PathLike]) -> None:
    """Refuse, before anything is written, an output that is one of the inputs (same path, link or hard link)."""
    sources = [Path(p) for p in inputs]
    for output in outputs:
        out = Path(output)
        for source in sources:
            if _same_file(out, source):
                raise SqnnError(
                    f"{out}: this output is the input {source}; writing it would destroy the input, "
                    f"choose another {phrase('output path', '--out')}"
                )
