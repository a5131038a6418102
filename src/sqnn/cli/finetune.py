"""`sqnn finetune`: a trained set model's object encoder with a new head, on another channel."""

from __future__ import annotations

from pathlib import Path

import click

from sqnn.cli.options import COUNT, EPOCHS, GAMMA, SEED, Checked, device_option
from sqnn.training.config import TRAIN_FIELDS
from sqnn.errors import SqnnError
from sqnn.methods import METHODS
from sqnn.schema import Real
from sqnn.training.subsets import FREEZE

__all__ = ["finetune"]


@click.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--sim", "simulation", required=True, help="Labelled simulation of the new channel.")
@click.option("--data", "data", help="Unlabelled data of the new channel (only methods with a penalty need it).")
@click.option("--n-train", type=COUNT, required=True, help="Train on the first N events of the training split.")
@click.option("--n-validation", type=COUNT, default=None, help="Validation events [default: max(N/3, min(200, 2N))].")
@click.option("--freeze", type=click.Choice(FREEZE), default="encoder", show_default=True,
              help="Keep the pretrained object encoder fixed, or train it too.")
@click.option("--method", type=click.Choice(sorted(METHODS)), default="source-only", show_default=True,
              help="Training objective of the fine-tuning.")
@click.option("--gamma", type=GAMMA, default=None, help="Strength of the domain penalty.")
@click.option("--epochs", type=EPOCHS, default=None, help="Maximum number of epochs [default: the pretrained run's].")
@click.option("--seed", type=SEED, default=None, help="Random seed (head initialisation, split) [default: the run's].")
@click.option("--learning-rate", type=Checked(TRAIN_FIELDS["learning_rate"]), default=None, help="Learning rate [default: the run's].")
@click.option("--encoder-learning-rate", type=Checked(Real(0.0, 1.0)), default=None,
              help="Learning rate of the pretrained encoder with --freeze none [default: as the head's].")
@click.option("--label", help="Class column [default: the run's].")
@click.option("--weight", help="Per-event weight column [default: the run's].")
@click.option("--control", help="Control-region column [default: the run's].")
@click.option("--signal-control", "signal_control", help="Signal-enriched (tag-and-probe) region column [default: the run's].")
@click.option("--observer", help="Observer column [default: the run's].")
@device_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="New run directory.")
def finetune(
    run_dir: Path,
    simulation: str,
    data: str | None,
    n_train: int,
    n_validation: int | None,
    freeze: str,
    method: str,
    gamma: float | None,
    epochs: int | None,
    seed: int | None,
    learning_rate: float | None,
    encoder_learning_rate: float | None,
    label: str | None,
    weight: str | None,
    control: str | None,
    signal_control: str | None,
    observer: str | None,
    device: str | None,
    quiet: bool,
    out: Path,
) -> None:
    """Fine-tune the set model of RUN_DIR on a new channel with few events.

    The pretrained object encoder (per-object network and pooling) is reused, the head
    starts fresh; the new channel's file is split as `sqnn train` splits it and its test
    split is used only for the metrics.
    """
    from sqnn.cli.summary import format_metrics
    from sqnn.workflows.finetune import finetune as run_finetune

    if n_validation is not None and n_validation < 1:
        raise SqnnError(f"--n-validation must be at least 1, got {n_validation}")
    if Path(out).resolve() == Path(run_dir).resolve():
        raise SqnnError(f"{out}: write the fine-tuned model to a new run directory, not over the pretrained one")
    run, metrics = run_finetune(
        run_dir,
        simulation,
        data,
        out,
        n_train=n_train,
        n_validation=n_validation,
        freeze=freeze,
        method=method,
        gamma=gamma,
        epochs=epochs,
        seed=seed,
        learning_rate=learning_rate,
        encoder_learning_rate=encoder_learning_rate,
        columns={"label": label, "weight": weight, "control": control, "signal_control": signal_control, "observer": observer},
        device=device,
        progress=not quiet,
    )
    click.echo(f"wrote {out}")
    click.echo(format_metrics({f"{run.meta['method']} (fine-tuned, freeze {freeze})": metrics}))
