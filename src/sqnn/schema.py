"""Typed fields with bounds: the one checker of settings (flags, YAML, the estimator) and of ``model.json``.

A rule checks the type and range of one value and returns it in its plain form; nothing
is coerced (``"64"`` is not a width, ``"false"`` is not a boolean, ``1.5`` is not an epoch
count, NaN is no number). :class:`Fields` checks a mapping key by key and refuses keys it
does not know. The first wrong value raises a :class:`SchemaError` that names its path:

>>> try:
...     check({"hidden": [64, "16"]}, Fields({"hidden": Sequence(Integer(1, 4096), 1, 64)}), "network")
... except SchemaError as error:
...     print(error)
network.hidden[1] must be an integer in [1, 4096], got '16'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from numbers import Integral, Real as RealNumber
from typing import Any

from sqnn.errors import SqnnError

__all__ = [
    "Choice",
    "Fields",
    "Flag",
    "Integer",
    "Name",
    "Nullable",
    "Real",
    "Rule",
    "Satisfying",
    "SchemaError",
    "Sequence",
    "Text",
    "Unchecked",
    "check",
    "check_fields",
]


class SchemaError(SqnnError, ValueError):
    """A value of the wrong type or out of range; the message starts with its path.

    A user error (one line, exit code 2 on the command line) and a ``ValueError`` (what
    scikit-learn expects of a bad parameter).
    """

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path or 'the value'} {message}")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Rule:
    """One kind of value; :meth:`check` returns it in plain form or raises :class:`SchemaError`."""

    def describe(self) -> str:  # pragma: no cover - every rule says what it takes
        raise NotImplementedError

    def check(self, value: Any, path: str) -> Any:  # pragma: no cover
        raise NotImplementedError

    def fail(self, value: Any, path: str) -> SchemaError:
        return SchemaError(path, f"must be {self.describe()}, got {_shown(value)}")


def _is_bool(value: Any) -> bool:
    return type(value).__name__ in ("bool", "bool_")


class Integer(Rule):
    """An integer (numpy integers too, never a bool or a float) in ``[low, high]``."""

    def __init__(self, low: int | None = None, high: int | None = None) -> None:
        self.low, self.high = low, high

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"an integer in [{self.low}, {self.high}]"
        if self.low is not None:
            return f"an integer ≥ {self.low}"
        if self.high is not None:
            return f"an integer ≤ {self.high}"
        return "an integer"

    def check(self, value: Any, path: str) -> int:
        if _is_bool(value) or not isinstance(value, Integral):
            raise self.fail(value, path)
        number = int(value)
        if (self.low is not None and number < self.low) or (self.high is not None and number > self.high):
            raise self.fail(value, path)
        return number


class Real(Rule):
    """A finite real number (integers too, never a bool, NaN or ±inf) within the bounds."""

    def __init__(
        self, low: float | None = None, high: float | None = None, *, low_open: bool = False, high_open: bool = False
    ) -> None:
        self.low, self.high, self.low_open, self.high_open = low, high, low_open, high_open

    def describe(self) -> str:
        if self.low is None and self.high is None:
            return "a finite number"
        left = "-inf" if self.low is None else f"{self.low:g}"
        right = "inf" if self.high is None else f"{self.high:g}"
        opening = "(" if self.low is None or self.low_open else "["
        closing = ")" if self.high is None or self.high_open else "]"
        return f"a finite number in {opening}{left}, {right}{closing}"

    def check(self, value: Any, path: str) -> float:
        if _is_bool(value) or not isinstance(value, RealNumber):
            raise self.fail(value, path)
        number = float(value)
        if not math.isfinite(number):
            raise self.fail(value, path)
        if self.low is not None and (number < self.low or (self.low_open and number == self.low)):
            raise self.fail(value, path)
        if self.high is not None and (number > self.high or (self.high_open and number == self.high)):
            raise self.fail(value, path)
        return number


class Flag(Rule):
    """``true`` or ``false`` (a bool, numpy's too; never a string or a number)."""

    def describe(self) -> str:
        return "true or false"

    def check(self, value: Any, path: str) -> bool:
        if not _is_bool(value):
            raise self.fail(value, path)
        return bool(value)


class Text(Rule):
    """A string of at most ``max_length`` characters, without control characters (and not empty)."""

    def __init__(self, max_length: int = 256) -> None:
        self.max_length = max_length

    def describe(self) -> str:
        return f"a non-empty string of at most {self.max_length} printable characters"

    def check(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value or len(value) > self.max_length or not value.isprintable():
            raise self.fail(value, path)
        return str(value)


class Name(Text):
    """A column name: a non-empty string that does not start or end with spaces."""

    def describe(self) -> str:
        return "a column name (a non-empty string without surrounding spaces)"

    def check(self, value: Any, path: str) -> str:
        name = super().check(value, path)
        if name != name.strip():
            raise self.fail(value, path)
        return name


class Choice(Rule):
    """One of the given strings."""

    def __init__(self, *options: str) -> None:
        self.options = tuple(options)

    def describe(self) -> str:
        return "one of " + ", ".join(self.options)

    def check(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or value not in self.options:
            raise self.fail(value, path)
        return value


class Nullable(Rule):
    """``null`` or a value of ``rule``."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule

    def describe(self) -> str:
        return f"null or {self.rule.describe()}"

    def check(self, value: Any, path: str) -> Any:
        return None if value is None else self.rule.check(value, path)


class Sequence(Rule):
    """A list (or tuple) of ``min_length`` to ``max_length`` values of ``item``; a string is not a list."""

    def __init__(self, item: Rule, min_length: int = 0, max_length: int = 1 << 16, *, unique: bool = False) -> None:
        self.item, self.min_length, self.max_length, self.unique = item, min_length, max_length, unique

    def describe(self) -> str:
        size = f"{self.min_length} to {self.max_length}" if self.min_length else f"at most {self.max_length}"
        distinct = "distinct " if self.unique else ""
        return f"a list of {size} {distinct}entries, each {self.item.describe()}"

    def check(self, value: Any, path: str) -> tuple[Any, ...]:
        if not isinstance(value, (list, tuple)):
            raise self.fail(value, path)
        if not self.min_length <= len(value) <= self.max_length:
            raise SchemaError(path, f"must have {self.min_length} to {self.max_length} entries, got {len(value)}")
        items = tuple(self.item.check(v, f"{path}[{i}]") for i, v in enumerate(value))
        if self.unique:
            seen: set[Any] = set()
            for i, item in enumerate(items):
                if item in seen:
                    raise SchemaError(f"{path}[{i}]", f"repeats {_shown(item)}; each entry may appear once")
                seen.add(item)
        return items


class Fields(Rule):
    """A mapping with string keys: each known key checked by its rule; unknown keys refused.

    ``required`` keys must be present; ``open`` lets unknown keys through unchecked.
    """

    def __init__(self, fields: Mapping[str, Rule], *, required: tuple[str, ...] = (), open: bool = False) -> None:
        self.fields, self.required, self.open = dict(fields), tuple(required), open

    def describe(self) -> str:
        return "a mapping of settings"

    def check(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise self.fail(value, path)
        unknown = sorted(set(value) - set(self.fields))
        if unknown and not self.open:
            allowed = ", ".join(sorted(self.fields)) or "none"
            raise SchemaError(path or "the settings", f"has unknown settings {', '.join(unknown)}; allowed: {allowed}")
        for key in self.required:
            if key not in value:
                raise SchemaError(_join(path, key), "is missing")
        return {k: self.fields[k].check(v, _join(path, k)) if k in self.fields else v for k, v in value.items()}


class Unchecked(Rule):
    """Anything; for values another rule or loader checks in full (kept here so their key is known)."""

    def __init__(self, described: str = "a value") -> None:
        self.described = described

    def describe(self) -> str:
        return self.described

    def check(self, value: Any, path: str) -> Any:
        return value


class Satisfying(Rule):
    """A value of ``rule`` for which ``test`` holds (e.g. a device name of a pattern)."""

    def __init__(self, rule: Rule, test: Callable[[Any], bool], described: str) -> None:
        self.rule, self.test, self.described = rule, test, described

    def describe(self) -> str:
        return self.described

    def check(self, value: Any, path: str) -> Any:
        checked = self.rule.check(value, path)
        if not self.test(checked):
            raise self.fail(value, path)
        return checked


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def check(value: Any, rule: Rule, path: str = "") -> Any:
    """``value`` checked by ``rule`` (its plain form); :class:`SchemaError` names the first wrong entry."""
    return rule.check(value, path)


def check_fields(owner: Any, rules: Mapping[str, Rule], path: str) -> dict[str, Any]:
    """The attributes ``rules`` names of ``owner`` (a dataclass), each checked; the plain values by name."""
    return {name: rule.check(getattr(owner, name), _join(path, name)) for name, rule in rules.items()}
