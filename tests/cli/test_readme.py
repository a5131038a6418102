"""The README's examples work as written: the first section runs on the toy (fewer events and
epochs), and every `sqnn` command line anywhere in it names existing commands, options and choices."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from sqnn.cli import cli, main

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
# the examples' sizes, made small enough for the test suite
SMALLER = {"--n": "2000", "--epochs": "2"}


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end >= 0 else None]


def _blocks(text: str, *languages: str) -> list[str]:
    pattern = "|".join(languages)
    return [block for _, block in re.findall(rf"```({pattern})\n(.*?)```", text, re.S)]


def _lines(block: str) -> list[str]:
    """Command lines of a shell block: continuations joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    lines = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            lines.append(shlex.join(words))
    return lines


def test_the_first_commands_are_make_targets_and_the_sqnn_of_the_venv() -> None:
    top = README[: README.index("\n## ")]
    makefile = (ROOT / "Makefile").read_text()
    commands = [line for block in _blocks(top, "sh") for line in _lines(block)]
    assert commands[:2] == ["make demo", "make test"]
    for target in ("demo", "test", "install"):
        assert re.search(rf"^{target}:", makefile, re.M), target
    assert "VENV := .venv" in makefile and "source .venv/bin/activate" in commands
    assert ".venv/bin/sqnn" in top
    # each of the two commands says how long it takes
    assert all(re.search(r"\d+ min", line) for line in top.splitlines() if line.startswith(("make demo", "make test")))


def test_the_using_it_examples_run_on_the_toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    section = _section("Using it")
    commands = [line for block in _blocks(section, "sh") for line in _lines(block)]
    assert [c.split()[:2] for c in commands] == [["sqnn", "generate"], ["sqnn", "generate"], ["sqnn", "train"],
                                                  ["sqnn", "evaluate"], ["sqnn", "predict"]]
    for command in commands:
        words = shlex.split(command)[1:]
        args = [SMALLER.get(previous, word) for previous, word in zip(["", *words], words)]
        code = main(args)
        out, err = capsys.readouterr()
        assert code == 0, f"{command}\n{err}"
    assert Path("runs/sqnn/model.json").exists() and Path("metrics.json").exists() and Path("scores.parquet").exists()

    # the YAML of --config trains too
    (config,) = _blocks(section, "yaml")
    Path("run.yaml").write_text(config)
    code = main(["train", "--config", "run.yaml", "--sim", "sim.parquet", "--data", "data.parquet", "--epochs", "2",
                 "--quiet", "--out", "runs/config"])
    assert code == 0, capsys.readouterr().err

    # and so does the Python example, on the same files
    (example,) = _blocks(section, "python")
    scope: dict = {}
    exec(compile(example.replace("epochs=20", "epochs=2"), "README.md", "exec"), scope)
    assert scope["clf"].predict_proba(scope["X_data"]).shape == (2000, 2)


def _sqnn_commands() -> list[tuple[str, list[str]]]:
    """Every `sqnn …` command of the README's shell blocks and inline code, as (line, words after `sqnn`)."""
    lines = [line for block in _blocks(README, "sh", "bash") for line in _lines(block)]
    # inline code that is a command (not a message such as `sqnn train: Invalid value …`)
    lines += [code for code in re.findall(r"`([^`\n]+)`", README) if re.match(r"(\.venv/bin/)?sqnn [a-z-]+(\s|$)", code)]
    found = []
    for line in lines:
        words = [w.strip("[]") for w in shlex.split(line.replace("…", "..."), comments=True)]
        for index, word in enumerate(words):
            if word in ("sqnn", ".venv/bin/sqnn") and (index == 0 or words[index - 1] == "-m"):
                found.append((line, words[index + 1 :]))
                break
    return found


def test_every_sqnn_command_line_in_the_readme_names_real_commands_options_and_choices() -> None:
    commands = _sqnn_commands()
    assert len(commands) > 20
    problems = []
    for line, words in commands:
        if not words or words[0].startswith("-"):
            continue
        command = cli.commands.get(words[0])
        if command is None:
            problems.append(f"{line}: no command {words[0]!r}")
            continue
        # a group (`sqnn suite make …`): its sub-command takes the options
        while isinstance(command, click.Group) and len(words) > 1 and not words[1].startswith("-"):
            if "|" in words[1]:  # alternatives: each must be a sub-command
                problems += [f"{line}: {words[0]} has no sub-command {name!r}" for name in words[1].split("|")
                             if name not in command.commands]
                break
            sub = command.commands.get(words[1])
            if sub is None:
                problems.append(f"{line}: {words[0]} has no sub-command {words[1]!r}")
                break
            command, words = sub, [f"{words[0]} {words[1]}", *words[2:]]
        if isinstance(command, click.Group):
            continue
        options: dict[str, click.Parameter] = {"--help": command.get_help_option(click.Context(command))}  # type: ignore[dict-item]
        for param in command.params:
            for name in (*param.opts, *param.secondary_opts):
                options[name] = param
        for index, word in enumerate(words[1:], start=1):
            if not word.startswith("--"):
                continue
            name = word.split("=")[0]
            if name not in options:
                problems.append(f"{line}: {words[0]} has no option {name}")
                continue
            kind = getattr(options[name], "type", None)
            value = words[index + 1] if index + 1 < len(words) else ""
            placeholder = not value or "|" in value or value.isupper() or "..." in value or value.startswith("-")
            if isinstance(kind, click.Choice) and not placeholder and value not in kind.choices:
                problems.append(f"{line}: {name} {value!r} is not one of {', '.join(kind.choices)}")
    assert problems == []
