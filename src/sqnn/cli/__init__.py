"""The `sqnn` command line: a click group whose sub-commands live in their own modules."""

from __future__ import annotations

import os
import sys
import warnings

import click

from sqnn.errors import SqnnError

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sqnn")
def cli() -> None:
    """Classifiers trained on simulation that keep working on data."""


def _register() -> None:
    from sqnn.cli import compare, demo, deploy, evaluate, finetune, generate, predict, stream, suite, train

    cli.add_command(generate.generate)
    cli.add_command(train.train)
    cli.add_command(evaluate.evaluate)
    cli.add_command(predict.predict)
    cli.add_command(finetune.finetune)
    cli.add_command(demo.demo)
    cli.add_command(deploy.export)
    cli.add_command(deploy.bench)
    cli.add_command(compare.compare)
    cli.add_command(stream.stream)
    cli.add_command(suite.suite)


_register()


def _one_line(text: object, limit: int = 400) -> str:
    return " ".join(str(text).split())[:limit]


def _usage_error(exc: click.exceptions.UsageError) -> str:
    """A usage error on one line: the command, what is wrong, where to look."""
    command = exc.ctx.command_path if exc.ctx is not None else "sqnn"
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        return f"{command}: missing command or arguments; see '{command} --help'"
    return f"{command}: {_one_line(exc.format_message()).rstrip('.')}; see '{command} --help'"


def _run(argv: list[str] | None) -> int:
    try:
        cli.main(args=argv, prog_name="sqnn", standalone_mode=False)
    except SqnnError as exc:
        click.echo(f"sqnn: error: {_one_line(exc.for_cli(), 2000)}", err=True)
        return exc.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("sqnn: interrupted; files already written are complete", err=True)
        return 130
    except click.exceptions.UsageError as exc:
        click.echo(f"sqnn: error: {_usage_error(exc)}", err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"sqnn: error: {_one_line(exc.format_message())}", err=True)
        return 2
    except MemoryError:
        click.echo("sqnn: error: out of memory: the request needs more memory than this machine gives; "
                   "use fewer events or read them in chunks (--chunk, --chunked)", err=True)
        return 2
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        click.echo(f"sqnn: error: {_one_line(where + str(exc.strerror or exc))}", err=True)
        return 2
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if os.environ.get("SQNN_DEBUG"):
            raise
        click.echo(
            f"sqnn: internal error: {type(exc).__name__}: {_one_line(exc, 300)} (set SQNN_DEBUG=1 for the traceback)",
            err=True,
        )
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors are one line on stderr and exit code 2, never a traceback.

    Warnings are held back while the command runs (they would print source lines on
    stderr): after a command that succeeded each distinct one is one ``sqnn: warning:``
    line; after an error only the error's line is printed. The warning filters in force
    are kept (a filter that turns warnings into errors still does).
    """
    if os.environ.get("SQNN_DEBUG"):
        return _run(argv)
    with warnings.catch_warnings(record=True) as caught:
        code = _run(argv)
    if code == 0:
        seen: set[str] = set()
        for warning in caught:
            line = f"sqnn: warning: {warning.category.__name__}: {_one_line(warning.message)}"
            if line not in seen:
                seen.add(line)
                click.echo(line, err=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
