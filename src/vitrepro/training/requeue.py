"""SLURM's warning before a time limit or a preemption: checkpoint, then requeue the job.

A job gets SIGUSR1 when submitted with ``sbatch --signal=USR1@90`` (Lightning's convention)
and SIGUSR2 from submitit (``hydra/launcher=slurm`` sends it ``signal_delay_s`` before the
limit), on every task. Each rank notes the signal; every ``check_every`` steps the ranks agree
on whether any got one (one all-reduce of a flag) and then all save
``checkpoints/interrupted.ckpt`` together at that step boundary. The job is then requeued: by
submitit's own handler where it installed one (it requeues and exits), else with ``scontrol
requeue``. The requeued job runs the same command, and ``resume=auto`` with a pinned run
directory continues from that checkpoint. Lightning's own requeue handler (SIGUSR1, a save from
inside the signal handler, mid-step) is switched off for these runs (``lightning_plugins``).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from vitrepro.config.errors import JobRequeued

REQUEUE_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)


def managed_by_slurm() -> bool:
    """Lightning's test: a SLURM job whose tasks it runs in (not an interactive shell)."""
    from lightning_fabric.plugins.environments import SLURMEnvironment

    interactive = os.environ.get("SLURM_JOB_NAME") in ("bash", "interactive")
    return SLURMEnvironment.detect() and not interactive


def lightning_plugins() -> list[Any] | None:
    """The SLURM environment without Lightning's requeue handler (this module's instead)."""
    if not managed_by_slurm():
        return None
    from lightning_fabric.plugins.environments import SLURMEnvironment

    return [SLURMEnvironment(auto_requeue=False)]


class CheckpointAndRequeue(pl.Callback):
    """SIGUSR1 / SIGUSR2 in a SLURM job: save at the next check, then requeue (module doc)."""

    def __init__(self, path: str | Path, check_every: int = 10) -> None:
        self.path, self.check_every = Path(path), check_every
        self.received: int | None = None
        self.previous: dict[int, Any] = {}

    def _note(self, signum: int, _frame: Any) -> None:
        self.received = signum

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for sig in REQUEUE_SIGNALS:
            self.previous[sig] = signal.getsignal(sig)
            signal.signal(sig, self._note)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)

    def on_train_batch_end(self, trainer: pl.Trainer, *_: Any) -> None:
        if trainer.global_step % self.check_every:
            return
        noted = self.received is not None
        if not trainer.strategy.reduce_boolean_decision(noted, all=False):
            return
        trainer.save_checkpoint(self.path)
        self._requeue(trainer, self.received or signal.SIGUSR1)

    def _requeue(self, trainer: pl.Trainer, signum: int) -> None:
        previous = self.previous.get(signum)
        step = trainer.global_step
        if callable(previous):  # submitit's handler: requeues on rank 0, then exits
            previous(signum, None)
            raise JobRequeued(f"saved step {step} to {self.path}; submitit requeued the job")
        if not trainer.is_global_zero:
            raise JobRequeued(f"saved step {step}; rank 0 requeues the job")
        job = os.environ.get("SLURM_JOB_ID", "")
        try:
            subprocess.run(["scontrol", "requeue", job], check=True, capture_output=True)
        except (OSError, subprocess.CalledProcessError) as error:
            raise JobRequeued(
                f"saved step {step} to {self.path}, but `scontrol requeue {job}` failed "
                f"({error}); resubmit the job (resume=auto continues it)",
                requeued=False,
            ) from None
        raise JobRequeued(f"saved step {step} to {self.path}; requeued SLURM job {job}")
