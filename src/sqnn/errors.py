"""User-facing errors: one line, naming the file, the column and what to do."""

from __future__ import annotations

__all__ = ["SqnnError", "DataError", "ModelFileError"]


class SqnnError(Exception):
    """An error caused by the user's input; the CLI prints it on one line and exits with 2."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class DataError(SqnnError):
    """A sample file that cannot be used: missing column, bad values, wrong schema."""


class ModelFileError(SqnnError):
    """A run directory whose model files are missing, tampered with or inconsistent."""
