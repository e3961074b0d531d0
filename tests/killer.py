"""A Lightning callback for the resume tests: at a given step the run signals its own process,
exactly where a dead node (SIGKILL: no clean shutdown) or a scheduler's preemption (SIGTERM)
would stop it. Added to a run as a user adds a callback: ``+callbacks.kill._target_=...``."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytorch_lightning as pl


class SignalAtStep(pl.Callback):
    def __init__(self, step: int, signal_name: str = "SIGKILL") -> None:
        self.step, self.signal = step, getattr(signal, signal_name)
        self.sent = False

    def on_train_batch_end(self, trainer: pl.Trainer, *_: Any) -> None:
        # Lightning runs checkpoint callbacks after this one: the newest save is an earlier step
        if trainer.global_step >= self.step and not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.signal)
