"""Where a run's checkpoints go, which one a resumed run continues from, and what else they
hold so that the resumed run is the uninterrupted one: random states (here) and the data
position (``data/order.py``)."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint

from vitrepro.config.errors import ConfigError, RefusedFileError
from vitrepro.models.weight_files import verify_checkpoint
from vitrepro.safe_load import load_torch

log = logging.getLogger(__name__)
INTERRUPTED = "interrupted.ckpt"  # written on SIGTERM / Ctrl-C (guards.CheckpointOnInterrupt)


def resume_from(resume: str | None, run_dir: Path) -> str | None:
    """``resume=auto``: this run directory's last checkpoint, if there is one; or a given path.
    The checkpoint is opened with the weights-only loader here, before compute: a refused
    file is one error line (Lightning's own load is weights-only too: ``train.py``)."""
    if not resume:
        return None
    if resume == "auto":  # the newest of the periodic, on-interrupt and SLURM-requeue ones
        folder = run_dir / "checkpoints"
        # last*.ckpt: one link per saving callback (after validation, every N steps); Lightning's
        # SLURM plugin saves hpc_ckpt_<n>.ckpt on SIGUSR1 before it requeues the job
        found = [*folder.glob("last*.ckpt"), folder / INTERRUPTED, *run_dir.glob("hpc_ckpt_*.ckpt")]
        found = [path for path in found if path.exists()]
        if not found:
            return None
        return str(_newest_loadable(found, run_dir))  # the link's name, as the run records it
    path = verify_checkpoint(resume, key="resume")
    if path.suffix in (".npz", ".safetensors"):
        raise ConfigError(
            "resume", resume, "weights only, no training state; start from them with "
            "model.pretrained=..., or resume from a run dir or its .ckpt",
        )  # fmt: skip
    return str(path)


def _newest_loadable(found: list[Path], run_dir: Path) -> Path:
    """The newest checkpoint that loads; a damaged one (truncated, empty, not a torch file) is
    skipped with one warning line. A file the weights-only loader refuses is never skipped
    (``RefusedFileError``), and with none loadable the run stops rather than start over."""
    for path in sorted(found, key=lambda p: p.stat().st_mtime_ns, reverse=True):
        try:
            verify_checkpoint(path, key="resume")
        except RefusedFileError:
            raise
        except ConfigError as error:
            log.warning(f"resume=auto: skipped {error}")
            continue
        return path
    raise ConfigError(
        "resume", "auto", f"no loadable checkpoint in {run_dir}; to start over, delete its "
        "checkpoints or give another run directory",
    )  # fmt: skip


def checkpoint_callbacks(run_dir: Path, every_n_steps: int | None, keep_best: bool) -> list:
    """The newest checkpoint after each validation, with ``last.ckpt`` linking to the newest
    of all (one copy on disk, not two); with ``every_n_steps`` also one every N optimizer steps
    (a separate callback: one with both intervals would stop saving after validation)."""
    folder = run_dir / "checkpoints"
    callbacks = [ModelCheckpoint(dirpath=folder, save_last="link")]
    if every_n_steps:
        callbacks.append(
            ModelCheckpoint(
                dirpath=folder,
                filename="step-{step}",
                save_last="link",
                every_n_train_steps=every_n_steps,
            )
        )
    if keep_best:  # best-validation selection for users' own runs; the studies switch it off
        callbacks.append(
            ModelCheckpoint(
                dirpath=folder, filename="best-{step}", monitor="val/top1", mode="max", save_top_k=1
            )
        )
    return callbacks


class RandomStateInCheckpoint(Callback):
    """Saves the random generators (torch CPU and CUDA, NumPy, Python) in every checkpoint and
    restores them at the first training batch after a resume: dropout, stochastic depth and
    in-process augmentation then draw what the uninterrupted run drew. Restoring at load time
    would be too early: what runs between the load and the first batch may draw from them."""

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        kind, keys, position, has_gauss, gauss = np.random.get_state()
        state = {  # tensors and plain numbers only: resumes load with weights_only=True
            "torch": torch.get_rng_state(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
            "python": random.getstate(),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if self._pending is None:
            return
        state, self._pending = self._pending, None
        torch.set_rng_state(state["torch"])
        kind, keys, position, has_gauss, gauss = state["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
        random.setstate(state["python"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


class RunClock(Callback):
    """Wall time of the whole run across its resumed segments: each checkpoint holds the time
    spent up to its save, and a resumed run adds its own (``summary.json``'s ``wall_time_s``)."""

    def __init__(self, started: float) -> None:
        self.started, self.before = started, 0.0

    def seconds(self) -> float:
        return self.before + time.time() - self.started

    def state_dict(self) -> dict[str, float]:
        return {"seconds": self.seconds()}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self.before = float(state_dict["seconds"])


def checkpoint_step(path: str | Path) -> int:
    """The optimizer step a Lightning checkpoint was saved at (memory-mapped: no weights read)."""
    state = load_torch(path, "resume", mmap=True)
    return int(state["global_step"])


class FlushLogsWithCheckpoints(Callback):
    """Writes the loggers' buffered metrics whenever a checkpoint is saved (the CSV logger
    buffers 100 steps): a run killed later resumes with its history up to that checkpoint."""

    def on_save_checkpoint(self, trainer: pl.Trainer, *_: Any) -> None:
        for logger in trainer.loggers:
            logger.save()
