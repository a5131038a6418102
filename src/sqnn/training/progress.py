"""What a person watching a training sees: bars on a terminal, one plain line per update in a log.

The training loop and the trees' own fit report to a :class:`FitProgress`: the start of
a fit, each epoch's validation record, and at the end the epoch that was kept. A
comparison shows one overall line over all its fits ("fit 7/18 · sqnn γ=1 seed 0", the
time elapsed and an estimate of the time left) with each fit's epochs below it
(:class:`Board`). When the output is not a terminal (a log file, CI) nothing is redrawn:
every update is one line, so a log holds no carriage-return fragments.

The penalty shown is the quantity the method minimises, in its unit (:func:`penalty_of`):
the sqnn information measure in bits — I(T;S|Y) for the default class-conditional
region —, the DANN domain head's advantage over guessing in nats, DisCo's dCor², MMD's
MMD². It is the ``val_penalty`` of ``history.json``, on the validation split.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from sqnn import labels
from sqnn.labels import Penalty
from sqnn.methods import Objective, strength_of

__all__ = ["Board", "FitProgress", "Penalty", "duration", "fit_progress", "penalty_of", "setting_label"]


def penalty_of(objective: Objective) -> Penalty | None:
    """The penalty ``objective`` minimises, or None for a method without one (source-only, mlp, bdt)."""
    return objective.penalty_measure


def setting_label(method: str, gamma: float | None, seed: int | None = None) -> str:
    """``sqnn γ=1 seed 0``, as the method names its strength; methods without a strength have none."""
    return labels.setting_label(method, strength_of(method, gamma), seed)


def duration(seconds: float) -> str:
    """``42 s``, ``4 min 12 s``, ``1 h 03 min``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class Board:
    """Where progress goes: bars on a terminal, one line per update otherwise.

    ``fits`` (a comparison) adds the overall line: which fit of how many, time elapsed
    and an estimate of the time left from the fraction of fits done so far.
    """

    def __init__(self, *, fits: int | None = None, out: TextIO | None = None, terminal: bool | None = None) -> None:
        self.out = out if out is not None else sys.stderr
        self.terminal = bool(terminal if terminal is not None else getattr(self.out, "isatty", lambda: False)())
        self.fits = fits
        self.fits_done = 0
        self.fit_fraction = 0.0
        self.title = ""
        self.started = time.monotonic()
        # the part done before the clock started (a resumed training)
        self._done_before = 0.0
        self._overall: Any = None
        self._bar: Any = None

    # the overall line of a comparison
    def begin_fit(self, index: int, title: str) -> None:
        """Fit ``index`` (0-based) of ``fits`` starts."""
        self.title = f"fit {index + 1}/{self.fits} · {title}" if self.fits else title
        self.fit_fraction = 0.0
        if self.terminal:
            self._overall_bar().set_description_str(self.title, refresh=True)

    def end_fit(self, line: str) -> None:
        """The fit in hand is done (trained and evaluated); ``line`` says how it went (in a log, with the time)."""
        self.fits_done += 1
        self.fit_fraction = 0.0
        self._close_bar()
        if self._overall is not None:
            self._overall.n = self.fits_done
            self._overall.refresh()
        self.write(line if self.terminal else f"{line} · {100 * self.fraction:.0f} % done, {self.timing()}")

    @property
    def fraction(self) -> float:
        if not self.fits:
            return self.fit_fraction
        return min(1.0, (self.fits_done + self.fit_fraction) / self.fits)

    def timing(self) -> str:
        elapsed = time.monotonic() - self.started
        text = f"{duration(elapsed)} elapsed"
        progressed = self.fraction - self._done_before
        if progressed > 0 and self.fraction < 1:
            text += f", ~{duration(elapsed * (1 - self.fraction) / progressed)} left"
        return text

    # one fit's steps (epochs or trees)
    def begin(self, total: int, done: int, unit: str) -> None:
        self.fit_fraction = done / total if total else 0.0
        if not self.fits:
            self.started, self._done_before = time.monotonic(), self.fit_fraction
        if self.terminal:
            from tqdm import tqdm

            self._close_bar()
            position = 1 if self.fits else 0
            # the status goes in the description: tqdm puts a comma before a postfix
            indent = "  " if self.fits else f"{self.title} "
            self._bar = tqdm(total=total, initial=done, unit=unit, desc=f"{unit} {done}/{total}", position=position,
                             leave=False, file=self.out, dynamic_ncols=True, bar_format=indent + "|{bar:16}| {desc}")

    def update(self, done: int, total: int, status: str) -> None:
        self.fit_fraction = done / total if total else 1.0
        if self.terminal:
            if self._bar is not None:
                self._bar.n = done
                self._bar.set_description_str(status, refresh=True)
            if self._overall is not None:
                self._overall.n = self.fits_done + self.fit_fraction
                self._overall.refresh()
        else:
            where = f"{self.title} · {100 * self.fraction:.0f} %, {self.timing()}" if self.fits else f"{self.title} · {self.timing()}"
            self.write(f"[{where}] {status}")

    def status(self, text: str) -> None:
        """A passing state (e.g. evaluating); on a terminal only."""
        if self.terminal and self._bar is not None:
            self._bar.set_description_str(text, refresh=True)

    def write(self, line: str) -> None:
        if self.terminal and (self._overall is not None or self._bar is not None):
            from tqdm import tqdm

            tqdm.write(line, file=self.out)
        else:
            print(line, file=self.out, flush=True)

    def close(self) -> None:
        self._close_bar()
        if self._overall is not None:
            self._overall.close()
            self._overall = None

    def _overall_bar(self) -> Any:
        if self._overall is None:
            from tqdm import tqdm

            self._overall = tqdm(total=self.fits, file=self.out, position=0, dynamic_ncols=True,
                                 bar_format="{desc} |{bar:16}| {percentage:3.0f}% · {elapsed} elapsed, ~{remaining} left")
        return self._overall

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class FitProgress:
    """The progress of one fit, told to a :class:`Board`; without one nothing is shown (``progress=False``)."""

    def __init__(self, board: Board | None = None, *, title: str | None = None) -> None:
        self.board = board
        self.title = title
        self.total = 0
        self.penalty: Penalty | None = None
        self.outcome: str | None = None

    def start_fit(self, objective: Objective, epochs: int, first_epoch: int = 0) -> None:
        self.penalty = penalty_of(objective)
        self.total = epochs
        self._begin(objective, epochs, first_epoch, "epoch")

    def epoch_done(self, record: Mapping[str, Any], best_epoch: int) -> None:
        """After each epoch: its validation record and the best epoch so far (0-based, as ``history.json``)."""
        if self.board is None:
            return
        done = int(record["epoch"]) + 1
        parts = [f"epoch {done}/{self.total}"]
        if self.penalty is not None and isinstance(record.get("val_penalty"), (int, float)):
            parts.append(self.penalty.format(record["val_penalty"]))
        if isinstance(record.get("val_auc"), (int, float)):
            parts.append(f"val AUC {record['val_auc']:.4f}")
        parts.append(f"best epoch {best_epoch + 1}")
        self.board.update(done, self.total, " · ".join(parts))

    def fit_done(self, best_epoch: int, epochs_run: int, stopped_early: bool, patience: int) -> None:
        """The fit ended: which epoch (0-based) its model is from, and why it stopped."""
        ran = (f"stopped at epoch {epochs_run} of {self.total} (no better validation objective in {patience})"
               if stopped_early else f"{epochs_run} epochs")
        self._end(f"{ran}, kept epoch {best_epoch + 1}")

    def start_trees(self, objective: Any, max_trees: int) -> None:
        self.penalty = None
        self.total = max_trees
        self._begin(objective, max_trees, 0, "tree")
        if self.board is not None:
            self.board.status(f"boosting up to {max_trees} trees")
            if not self.board.terminal:
                self.board.update(0, max_trees, f"boosting up to {max_trees} trees")

    def trees_done(self, trees: int, stopped_early: bool, patience: int) -> None:
        why = f"stopped early: no better validation loss in {patience}" if stopped_early else "the maximum"
        if self.board is not None and self.board.terminal:
            self.board.update(trees, trees, f"{trees} trees")
        self._end(f"{trees} trees ({why})")

    def _begin(self, objective: Any, total: int, done: int, unit: str) -> None:
        self.outcome = None
        if self.board is None:
            return
        if self.title is None:
            self.title = setting_label(objective.name, objective.gamma)
        if not self.board.fits:
            self.board.title = self.title
        self.board.begin(total, done, unit)

    def _end(self, text: str) -> None:
        self.outcome = text
        if self.board is None:
            return
        if self.board.fits:
            self.board.status("evaluating on the test split")
        else:
            self.board.close()
            self.board.write(f"{self.title}: {text}")


def fit_progress(progress: bool | FitProgress) -> FitProgress:
    """``progress`` as a :class:`FitProgress`: ``True`` shows it on stderr, ``False`` shows nothing."""
    if isinstance(progress, FitProgress):
        return progress
    return FitProgress(Board() if progress else None)
