"""Transfer after pre-training (Section 4.1; Figures 3 and 5): fine-tune the finished run's
weights on each downstream dataset of ``transfer`` as a child run.

A child is ``src/train.py`` in its own process, in ``<run dir>/transfer/<name>``, with the
parent's model (the config it composed, as an experiment file may choose it) and its model,
trainer, logger and path overrides, the transfer's own overrides (dataset,
recipe) and ``model.pretrained=<run dir>``. A child that already finished is not rerun; an
interrupted one resumes (``resume=auto``), so rerunning the parent completes its transfers.
One grid point of a study is then one command, as a W&B sweep runs it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from vitrepro.config.errors import ChildRunFailedError, ConfigError
from vitrepro.files import PROJECT_ROOT
from vitrepro.tracking.record import finished

log = logging.getLogger(__name__)

# Parent overrides the fine-tuning keeps: the same architecture, hardware and tracking.
INHERITED = ("model", "trainer", "logger", "paths", "seed", "compile", "rehearsal")


# A parent's launch that its child must not inherit: a distributed job's ranks and rendezvous
# (the child starts its own process group; inheriting MASTER_PORT fails with EADDRINUSE), a
# SLURM task's identity, and a W&B agent's run (the child is a run of its own).
LAUNCH_VARIABLES = {
    "MASTER_ADDR",
    "MASTER_PORT",
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "NODE_RANK",
    "GROUP_RANK",
    "WANDB_RUN_ID",
    "WANDB_RESUME",
    "WANDB_SWEEP_ID",
    "WANDB_SWEEP_PARAM_PATH",
    "WANDB_RUN_GROUP",
    "WANDB_JOB_TYPE",
}
LAUNCH_PREFIXES = ("TORCHELASTIC_", "PL_", "SLURM_")


def child_environment(parent_run: str | None = None) -> dict[str, str]:
    """This process's environment without its launch; the child's W&B run is a ``finetune``
    job grouped under ``parent_run`` (the parent's W&B id)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in LAUNCH_VARIABLES and not k.startswith(LAUNCH_PREFIXES)
    }
    env["WANDB_JOB_TYPE"] = "finetune"
    if parent_run:
        env["WANDB_RUN_GROUP"] = parent_run
    return env


def parent_overrides() -> list[str]:
    """The command-line overrides of this Hydra run ([] outside a Hydra app)."""
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0].split(".", 1)[0]


def _kept(inherited: list[str]) -> list[str]:
    """The parent's overrides a transfer keeps (``INHERITED`` groups)."""
    return [o for o in inherited if _key(o) in INHERITED]


def child_command(
    overrides: list[str], inherited: list[str], run_dir: Path, parent_model: str | None = None
) -> list[str]:
    """``src/train.py`` arguments of one transfer of the run in ``run_dir``; ``parent_model``
    is the model config the parent composed (its Hydra choice)."""
    # A fine-tune is scored on its test split, and few-shot reads the pre-trained model: no
    # few-shot pass in the child unless its transfer asks for one.
    asked = any(_key(o) == "evaluation" for o in overrides)
    # An experiment file may choose the parent's model, and the child composes no experiment:
    # name that model, or the weights meet the default one.
    chosen = any(o.lstrip("+~").split("=", 1)[0] == "model" for o in [*inherited, *overrides])
    model = [f"model={parent_model}"] if parent_model and not chosen else []
    return [
        sys.executable,
        str(PROJECT_ROOT / "src" / "train.py"),
        *model,
        *_kept(inherited),
        *overrides,
        f"model.pretrained={run_dir}",
        "transfer=none",
        *([] if asked else ["evaluation=none"]),
        "resume=auto",
    ]


def check_transfers(transfers: dict[str, list[str]] | DictConfig, inherited: list[str]) -> None:
    """Validate every transfer's config before pre-training starts: a missing downstream
    dataset costs seconds, not a pre-training run (inside a Hydra app; else a no-op)."""
    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from vitrepro.config.rules import validate_config
    from vitrepro.training.rehearsal import computed

    if not transfers or not GlobalHydra.instance().is_initialized():
        return
    for name, overrides in transfers.items():
        try:
            cfg = compose("train", overrides=[*_kept(inherited), *overrides, "transfer=none"])
            validate_config(computed(OmegaConf.to_container(cfg, resolve=True)))
        except ConfigError as error:
            raise ConfigError(f"transfer.{name}: {error.key}", error.value, error.fix) from error


def run_transfers(
    transfers: dict[str, list[str]] | DictConfig,
    run_dir: Path,
    inherited: list[str],
    parent_run: str | None = None,
    parent_model: str | None = None,
) -> dict[str, dict[str, Any]]:
    """Fine-tune on every transfer dataset, each in a clean environment (``child_environment``);
    ``{name: transfer_result}``."""
    results = {}
    for name, overrides in transfers.items():
        child_dir = run_dir / "transfer" / name
        if finished(child_dir) is None:
            command = child_command(list(overrides), inherited, run_dir, parent_model)
            command.append(f"hydra.run.dir={child_dir}")
            log.info("transfer %s: %s", name, " ".join(command[1:]))
            env = child_environment(parent_run)
            returncode = subprocess.run(command, cwd=PROJECT_ROOT, env=env).returncode
            if returncode != 0:
                message = f"transfer {name} failed (exit {returncode}); its log: {child_dir}"
                raise ChildRunFailedError(message, returncode)
        results[name] = transfer_result(child_dir)
    return results


def transfer_result(child_dir: Path) -> dict[str, Any]:
    """What a parent's record keeps of one finished fine-tune: ``{final, best, run_dir, data,
    lr}`` (the dataset and learning rate: a sweep over learning rates is selected per dataset,
    ``record.transfer_metrics``)."""
    summary = finished(child_dir)
    if summary is None:
        raise RuntimeError(f"the transfer in {child_dir} wrote no finished summary")
    return {
        "final": summary["final"],
        "best": summary["best"],
        "run_dir": str(child_dir),
        "data": summary["data"],
        "lr": summary["config"]["recipe"]["optimizer"]["lr"],
    }
