"""Where a run's wall time goes, recorded in ``summary.json`` as ``timings``: the process's
start-up before the run began (interpreter, imports, Hydra's composition), the set-up (data
rendering or opening, the model), the training steps themselves, the validations during the
fit, the few-shot evaluations, the rest of the fit (batches loaded between steps,
checkpoints, logging) and the final evaluation. ``make bench``'s study section reads it to
break a study run's overhead down.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl


def process_age_s() -> float | None:
    """Seconds since this process started (Linux ``/proc``; None elsewhere)."""
    try:
        stat = Path("/proc/self/stat").read_text()
        started_ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22: starttime
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - started_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


class PhaseTimer(pl.Callback):
    """Times the fit's phases; put it first among the callbacks, so that a step's time ends
    before other callbacks' end-of-step work (a few-shot evaluation) begins."""

    def __init__(self, run_started: float, startup_s: float | None) -> None:
        self.run_started, self.startup_s = run_started, startup_s
        self.steps_s = self.validation_s = 0.0
        self.fit_started = self.fit_ended = None
        self._mark: float | None = None
        self._validation_mark = 0.0

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.fit_started = time.time()

    def on_train_batch_start(self, *_: Any) -> None:
        self._mark = time.perf_counter()

    def on_train_batch_end(self, *_: Any) -> None:
        if self._mark is not None:
            self.steps_s += time.perf_counter() - self._mark
            self._mark = None

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._validation_mark = time.perf_counter()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            self.validation_s += time.perf_counter() - self._validation_mark

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.fit_ended = time.time()

    def timings(self, fewshot_s: float, finished: float) -> dict[str, float | None]:
        """Seconds per phase; ``fewshot_s``: the few-shot evaluations' (inside the fit),
        ``finished``: when the final evaluation ended (``time.time()``)."""
        fit_s = (self.fit_ended or finished) - (self.fit_started or self.run_started)
        other = fit_s - self.steps_s - self.validation_s - fewshot_s
        parts = {
            "startup_s": self.startup_s,
            "setup_s": (self.fit_started or self.run_started) - self.run_started,
            "steps_s": self.steps_s,
            "validation_s": self.validation_s,
            "fewshot_s": fewshot_s,
            "fit_other_s": max(0.0, other),
            "final_evaluation_s": finished - (self.fit_ended or finished),
        }
        parts["total_s"] = sum(v for v in parts.values() if v is not None)
        return {k: None if v is None else round(v, 3) for k, v in parts.items()}
