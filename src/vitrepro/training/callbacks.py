"""The Lightning callbacks of a run: its own (checkpoints, the guards, state kept in
checkpoints, SLURM requeue), the ``callbacks`` config group's, and the few-shot evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.callbacks import LearningRateMonitor

from vitrepro.tracking.curves import LearningCurves
from vitrepro.training.checkpointing import (
    INTERRUPTED,
    FlushLogsWithCheckpoints,
    RandomStateInCheckpoint,
    RunClock,
    checkpoint_callbacks,
)
from vitrepro.training.guards import CheckpointOnInterrupt, StopOnNonFiniteLoss
from vitrepro.training.requeue import CheckpointAndRequeue


def configured_callbacks(entries: DictConfig | None, has_logger: bool) -> list[pl.Callback]:
    """The ``callbacks`` group's entries (null ones switched off); a LearningRateMonitor only
    when the run has a logger to write to (Lightning refuses it otherwise)."""
    built = [instantiate(entry) for entry in (entries or {}).values() if entry]
    return [c for c in built if has_logger or not isinstance(c, LearningRateMonitor)]


def run_callbacks(
    cfg: DictConfig, config: dict[str, Any], run_dir: Path, started: float, has_logger: bool
) -> list[pl.Callback]:
    """The run's own callbacks (checkpoints, guards, state kept in checkpoints), the
    ``callbacks`` group's and the few-shot evaluation; throughput is added by the run."""
    checkpointing = config.get("checkpoint") or {}
    every_n_steps = checkpointing.get("every_n_steps") or config["recipe"].get(
        "checkpoint_every_steps"
    )
    callbacks = checkpoint_callbacks(run_dir, every_n_steps, checkpointing.get("keep_best", True))
    callbacks += [
        StopOnNonFiniteLoss(),
        RandomStateInCheckpoint(),
        RunClock(started),
        LearningCurves(),
        FlushLogsWithCheckpoints(),
        CheckpointOnInterrupt(run_dir / "checkpoints" / INTERRUPTED),
        CheckpointAndRequeue(run_dir / "checkpoints" / INTERRUPTED),
    ]
    callbacks += configured_callbacks(cfg.get("callbacks"), has_logger=has_logger)
    if cfg.get("evaluation") and "_target_" in cfg.evaluation:
        callbacks.append(instantiate(cfg.evaluation))
    return callbacks
