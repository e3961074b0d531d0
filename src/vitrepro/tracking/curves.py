"""A run's learning curves, kept in its record: the training loss averaged over windows of
optimizer steps, and every validation's loss and top-1 with its step.

The studies' competence bar reads them (has the training loss flattened?), and the pilot draws
them to choose a step budget from validation data (never from the test split).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback


class LearningCurves(Callback):
    """``train``: ``{"step", "loss"}`` every ``window`` optimizer steps (the mean over those
    steps); ``val``: ``{"step", "loss", "top1"}`` after every validation outside the sanity
    check. Kept in checkpoints, so a resumed run records the whole curve."""

    def __init__(self, window: int = 50) -> None:
        self.window = window
        self.train: list[dict[str, float]] = []
        self.val: list[dict[str, float]] = []
        self._sum, self._count = 0.0, 0

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, *_: Any
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor):
            return
        self._sum += float(loss.detach())
        self._count += 1
        if self._count == self.window:
            self.train.append({"step": trainer.global_step, "loss": self._sum / self._count})
            self._sum, self._count = 0.0, 0

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        # the run's last validation repeats the in-training one made at the same step
        repeated = self.val and self.val[-1]["step"] == trainer.global_step
        if "val/top1" in metrics and not repeated:
            self.val.append(
                {
                    "step": trainer.global_step,
                    "loss": float(metrics["val/loss"]),
                    "top1": float(metrics["val/top1"]),
                }
            )

    def history(self) -> dict[str, list[dict[str, float]]]:
        return {"train": list(self.train), "val": list(self.val)}

    def state_dict(self) -> dict[str, Any]:
        return {**self.history(), "sum": self._sum, "count": self._count}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.train, self.val = list(state_dict["train"]), list(state_dict["val"])
        self._sum, self._count = float(state_dict["sum"]), int(state_dict["count"])


def loss_flattened(
    train: list[dict[str, float]], relative: float, absolute: float = 0.0
) -> tuple[bool, float]:
    """The competence bar's second half: the mean training loss over the last 10% of the run
    against the mean over the 10% before it, flat when within ``relative`` of it or within
    ``absolute`` nats (a loss near zero, as a model at its ceiling has, moves by large ratios of
    nothing). Returns (flattened, relative change); a curve too short to tell is not flat."""
    if len(train) < 4:
        return False, float("nan")
    tenth = max(1, len(train) // 10)
    last = sum(p["loss"] for p in train[-tenth:]) / tenth
    before = sum(p["loss"] for p in train[-2 * tenth : -tenth]) / tenth
    change = abs(last - before) / max(before, 1e-12)
    return change <= relative or abs(last - before) <= absolute, change
