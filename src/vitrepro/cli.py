"""What every entry script shares: user mistakes as one line and exit code 2, not a traceback."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vitrepro.errors import ConfigError
from vitrepro.guards import TrainingDivergedError


def drop_wandb_resume_args(argv: list[str]) -> list[str]:
    """W&B sweep agents pass ``_wandb={...}`` to resumed runs; Hydra would reject it."""
    return [arg for arg in argv if not arg.startswith("_wandb=")]


def _remove_empty_run_dir(run_dir: str | None) -> None:
    """A run that failed validation leaves nothing a study could mistake for a result."""
    if not run_dir:
        return
    path = Path(run_dir).resolve()
    if path == Path.cwd().resolve() or not (path / ".hydra").is_dir():
        return  # only a run directory Hydra made for this run, never the working directory
    leftovers = {p.name for p in path.iterdir()}
    if leftovers <= {".hydra", "train.log"}:
        shutil.rmtree(path, ignore_errors=True)


def exit_on_user_error(task: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Print a ``ConfigError`` as one line on stderr, exit 2; a diverged run
    (``TrainingDivergedError``) likewise with exit 3 (HYDRA_FULL_ERROR=1: the traceback)."""

    @functools.wraps(task)
    def wrapper(cfg: Any) -> Any:
        try:
            return task(cfg)
        except TrainingDivergedError as error:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"error: {error}", file=sys.stderr)
            sys.exit(3)
        except ConfigError as error:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            run_dir = cfg.get("paths", {}).get("run_dir") if hasattr(cfg, "get") else None
            # The error line matters more than the clean-up.
            with contextlib.suppress(Exception):
                _remove_empty_run_dir(run_dir)
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)

    return wrapper
