"""What a run and a study hand to W&B beyond metrics, as its users expect to find them.

- A finished run logs its final checkpoint, and its best-validation one where it kept one, as
  W&B model artifacts (aliases ``final``/``latest`` and ``best``). A shared model is the
  safetensors export (``vitrepro.export``): weights and ``config.json``, nothing to unpickle.
- A study logs its results as a run of its own (job type ``study``): every table as a
  ``wandb.Table`` and every figure as an image. Offline by default, like every run
  (``wandb sync`` uploads it later).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from vitrepro.export import export_checkpoint

log = logging.getLogger(__name__)


def log_model_artifacts(logger: Any, summary: dict[str, Any], run_dir: Path) -> list[str]:
    """Export the run's final and best checkpoints and log each as a version of the model
    artifact ``model-<run id>``; returns the aliases logged."""
    import wandb

    run = logger.experiment
    checkpoints = {"final": summary.get("checkpoint"), "best": summary.get("best_checkpoint")}
    metadata = {
        "model": summary.get("model"),
        "data": summary.get("data"),
        "final": summary.get("final", {}),
        "git_revision": summary.get("git_revision"),
    }
    logged: list[str] = []
    for alias, checkpoint in checkpoints.items():
        if not checkpoint or not Path(checkpoint).is_file():
            continue
        folder = export_checkpoint(checkpoint, run_dir / "export" / alias)
        artifact = wandb.Artifact(f"model-{run.id}", type="model", metadata=metadata)
        artifact.add_dir(str(folder))
        aliases = [alias, "latest"] if alias == "final" else [alias]
        run.log_artifact(artifact, aliases=aliases)
        logged += aliases
    return logged


def log_study(
    name: str,
    tables: dict[str, pd.DataFrame],
    figures: list[Path],
    save_dir: Path,
    config: dict[str, Any],
) -> Path:
    """One W&B run of job type ``study`` holding the study's tables and figures; returns its
    local directory."""
    import wandb

    from vitrepro.tracking.wandb_run import wandb_mode

    save_dir.mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project="vitrepro",
        job_type="study",
        name=name,
        dir=str(save_dir),
        mode=wandb_mode(),
        config=config,
        reinit="create_new",
    )
    try:
        for key, table in tables.items():
            if len(table):
                run.log(
                    {key: wandb.Table(dataframe=table.astype(object).where(table.notna(), None))}
                )
        for figure in figures:
            if figure.is_file():
                run.log({figure.stem: wandb.Image(str(figure))})
    finally:
        run.finish()
    return Path(run.dir).parent
