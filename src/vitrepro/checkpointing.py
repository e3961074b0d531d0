"""Where a run's checkpoints go and which one a resumed run continues from."""

from __future__ import annotations

from pathlib import Path

from pytorch_lightning.callbacks import ModelCheckpoint

from vitrepro.models.checkpoints import resolve_checkpoint

INTERRUPTED = "interrupted.ckpt"  # written on SIGTERM / Ctrl-C (guards.CheckpointOnInterrupt)


def resume_from(resume: str | None, run_dir: Path) -> str | None:
    """``resume=auto``: this run directory's last checkpoint, if there is one; or a given path."""
    if not resume:
        return None
    if resume == "auto":  # the newest of the periodic, on-interrupt and SLURM-requeue ones
        found = [run_dir / "checkpoints" / name for name in ("last.ckpt", INTERRUPTED)]
        # Lightning's SLURM plugin saves hpc_ckpt_<n>.ckpt on SIGUSR1 before it requeues the job
        found = [path for path in found if path.exists()] + list(run_dir.glob("hpc_ckpt_*.ckpt"))
        return str(max(found, key=lambda p: p.stat().st_mtime)) if found else None
    return str(resolve_checkpoint(resume, key="resume"))


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
    if keep_best:  # best-validation selection (Figure 4 uses early stopping on validation)
        callbacks.append(
            ModelCheckpoint(
                dirpath=folder, filename="best-{step}", monitor="val/top1", mode="max", save_top_k=1
            )
        )
    return callbacks
