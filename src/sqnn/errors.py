"""User-facing errors: one line, naming the file, the column and what to do.

A library message names a setting once, with :func:`option`; the reader sees it in the terms
of the way they called sqnn. ``str(error)`` (what a Python user and a traceback see) gives the
Python parameter, :meth:`SqnnError.for_cli` (what the command line prints) gives the flag:

>>> error = SqnnError(f"runs/a: already holds a run; give {option('overwrite', python_value='True')} to replace it")
>>> str(error)
'runs/a: already holds a run; give overwrite=True to replace it'
>>> error.for_cli()
'runs/a: already holds a run; give --overwrite to replace it'
>>> str(SqnnError(f"a set model needs {option('objects', 'COL')}"))
'a set model needs objects=...'
"""

from __future__ import annotations

import re

__all__ = ["SqnnError", "DataError", "ModelFileError", "option", "phrase"]

# a phrase said two ways is START python SEPARATOR cli END inside a message; none of the three is
# whitespace (a message's whitespace is collapsed) and none is printable, so no message holds one
_START, _SEPARATOR, _END = "\x02", "\x01", "\x03"
_PHRASE = re.compile(f"{_START}([^{_START}{_END}]*?){_SEPARATOR}([^{_START}{_END}]*?){_END}")


def phrase(python: str, cli: str) -> str:
    """A part of a message said one way to a Python user and another on the command line.

    >>> error = SqnnError("start it with " + phrase("torchrun SCRIPT.py", "torchrun -m sqnn train --distributed ..."))
    >>> str(error), error.for_cli()
    ('start it with torchrun SCRIPT.py', 'start it with torchrun -m sqnn train --distributed ...')
    """
    return f"{_START}{python}{_SEPARATOR}{cli}{_END}"


def option(name: str, cli_value: str = "", python_value: str | None = None, *, flag: str | None = None) -> str:
    """A setting named once in a message: the parameter ``name`` in Python, its flag on the command line.

    The flag is ``--`` and ``name`` with dashes for underscores unless ``flag`` says otherwise
    (``option("simulation", "FILE", flag="--sim")``). ``cli_value`` follows the flag
    (``--control COL``); ``python_value`` follows ``name=`` (``overwrite=True``). Without either
    the setting is named alone (``n`` / ``--n``, the subject of "... must be positive"); with
    only ``cli_value`` its Python value is shown as ``...`` (``control=...``).
    """
    flag = flag or "--" + name.replace("_", "-")
    cli = f"{flag} {cli_value}" if cli_value else flag
    if python_value is None:
        python_value = "..." if cli_value else ""
    python = f"{name}={python_value}" if python_value else name
    return phrase(python, cli)


def _rendered(text: str, cli: bool) -> str:
    return _PHRASE.sub(lambda said: said.group(2 if cli else 1), text)


class SqnnError(Exception):
    """An error caused by the user's input; the CLI prints it on one line and exits with 2.

    ``str()`` says the settings it names in Python terms, :meth:`for_cli` as flags.
    """

    exit_code = 2

    def __init__(self, message: object) -> None:
        text = message.marked if isinstance(message, SqnnError) else str(message)
        super().__init__(" ".join(text.split()))

    @property
    def marked(self) -> str:
        """The message with its settings still unrendered: for a message built from this one
        (``SqnnError(f"{file}: {error.marked}")``) or sent to another process."""
        return str(self.args[0]) if self.args else ""

    def __str__(self) -> str:
        return _rendered(self.marked, cli=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def for_cli(self) -> str:
        """The message as the command line prints it: every setting it names is a flag."""
        return _rendered(self.marked, cli=True)


class DataError(SqnnError):
    """A sample file that cannot be used: missing column, bad values, wrong schema."""


class ModelFileError(SqnnError):
    """A run directory whose model files are missing, tampered with or inconsistent."""
