"""The `sqnn` command line: a click group whose sub-commands live in their own modules."""

from __future__ import annotations

import os
import sys

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


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors are one line on stderr and exit code 2, never a traceback."""
    try:
        cli.main(args=argv, prog_name="sqnn", standalone_mode=False)
    except SqnnError as exc:
        click.echo(f"sqnn: error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("sqnn: interrupted; files already written are complete", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("sqnn: interrupted; files already written are complete", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return 2
    except OSError as exc:
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        click.echo(f"sqnn: error: {where}{exc.strerror or exc}", err=True)
        return 2
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if os.environ.get("SQNN_DEBUG"):
            raise
        click.echo(
            f"sqnn: internal error: {type(exc).__name__}: {' '.join(str(exc).split())[:300]} "
            "(set SQNN_DEBUG=1 for the traceback)",
            err=True,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
