"""Runs that go wrong: stop a diverged run before it writes a checkpoint that later steps would
resume from; checkpoint an interrupted one before it exits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities.exceptions import SIGTERMException

from vitrepro.config.errors import TrainingDivergedError


class StopOnNonFiniteLoss(pl.Callback):
    """Flags a non-finite training loss on the device (no host sync per step) and checks the
    flag every ``check_every`` steps and before every checkpoint save, so the newest checkpoint
    on disk is always one from before the divergence."""

    def __init__(self, check_every: int = 50) -> None:
        self.check_every = check_every
        self.flag: torch.Tensor | None = None
        self.first_bad_step: torch.Tensor | None = None

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, *_: Any
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        bad = ~torch.isfinite(loss.detach())
        if self.flag is None:
            self.flag = torch.zeros((), dtype=torch.bool, device=loss.device)
            self.first_bad_step = torch.full((), -1, dtype=torch.long, device=loss.device)
        # The step goes in as a Python number: torch.tensor(step, device=cuda) would be a blocking
        # host-to-device copy, which waits for the GPU's queue every step.
        self.first_bad_step.masked_fill_(bad & ~self.flag, trainer.global_step)
        self.flag = self.flag | bad
        if trainer.global_step % self.check_every == 0:
            self._check(trainer)

    def on_save_checkpoint(self, trainer: pl.Trainer, *_: Any) -> None:
        self._check(trainer)  # raising here aborts the save

    def _check(self, trainer: pl.Trainer) -> None:
        if self.flag is not None and bool(self.flag):
            last = getattr(trainer.checkpoint_callback, "last_model_path", "") or "none yet"
            raise TrainingDivergedError(
                f"the training loss became NaN or infinite at step {int(self.first_bad_step)}; "
                f"stopped before saving it. Last good checkpoint: {last}. Lower "
                "recipe.optimizer.lr, raise recipe.schedule.warmup_steps or keep "
                "recipe.grad_clip_norm, then resume=auto or start again"
            )


class CheckpointOnInterrupt(pl.Callback):
    """SIGTERM (preemption, ``scancel``, a job's time limit) or Ctrl-C: save the current step
    to ``<checkpoints>/interrupted.ckpt`` before the process exits, so ``resume=auto`` loses
    nothing. Lightning turns SIGTERM into ``SIGTERMException`` at the next batch boundary."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_exception(
        self, trainer: pl.Trainer, _: pl.LightningModule, error: BaseException
    ) -> None:
        if isinstance(error, (SIGTERMException, KeyboardInterrupt)):
            trainer.save_checkpoint(self.path)
