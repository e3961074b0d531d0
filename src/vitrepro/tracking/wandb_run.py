"""Experiment tracking: the W&B logger (offline unless credentials exist), run metadata, summaries.

Every run writes ``summary.json`` in its run directory; the studies read only those (or the
same record from W&B), so a figure is a pure function of run summaries.
"""

from __future__ import annotations

import netrc
import os
import subprocess
from pathlib import Path

from pytorch_lightning.loggers import WandbLogger


def wandb_mode(requested: str = "auto") -> str:
    """``online`` only when asked, or in ``auto`` when an API key exists; else ``offline``.

    ``WANDB_MODE`` in the environment wins, as W&B users expect.
    """
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if requested != "auto":
        return requested
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        host = netrc.netrc().authenticators("api.wandb.ai")
    except (FileNotFoundError, netrc.NetrcParseError):
        host = None
    return "online" if host else "offline"


def make_wandb_logger(
    save_dir: str,
    project: str = "vitrepro",
    entity: str | None = None,
    mode: str = "auto",
    name: str | None = None,
    group: str | None = None,
    tags: list[str] | None = None,
    id: str | None = None,  # W&B's name for the run id (kept for resuming)
    job_type: str | None = None,  # pretrain | finetune (set by the run)
) -> WandbLogger:
    """A Lightning ``WandbLogger`` that needs no network unless credentials are configured."""
    resolved = wandb_mode(mode)
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        save_dir=save_dir,
        project=project,
        entity=entity,
        name=name,
        group=group or os.environ.get("WANDB_RUN_GROUP"),  # a fine-tune: its parent's id
        tags=list(tags or []),
        offline=resolved == "offline",
        mode=resolved,
        id=id,
        job_type=os.environ.get("WANDB_JOB_TYPE") or job_type,
    )


# What decides a run: the code and its config. A study pool's own outputs (committed records,
# figures, tables) change tracked files too, and do not make the runs after them "dirty".
RUN_DEFINING_PATHS = ("src", "conf", "sweeps", "experiments/*/study.yaml", "Makefile")


def git_revision(directory: str | Path) -> str:
    """The commit the code runs from, with ``-dirty`` when its code or config has changes."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=directory, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", *RUN_DEFINING_PATHS],
            cwd=directory,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def hydra_choices() -> dict[str, str]:
    """The config-group options of this Hydra run (``model: vit_b16``, ...), recorded with the
    run so studies can group runs by the names users typed ({} outside a Hydra app)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    choices = HydraConfig.get().runtime.choices
    return {k: v for k, v in choices.items() if not k.startswith("hydra/") and v is not None}
