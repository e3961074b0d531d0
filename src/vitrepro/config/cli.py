"""What every entry script shares: user mistakes as one line and exit code 2, not a traceback."""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

# No Lightning import here: it must come after Hydra has set up logging (src/train.py).
from vitrepro.config.errors import (
    ChildRunFailedError,
    ConfigError,
    JobRequeued,
    TrainingDivergedError,
)

# A full disk, a quota, a file-size limit, a read-only file system; a forbidden path.
STORAGE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}
ACCESS_ERRORS = {errno.EACCES, errno.EPERM}


def positive_int(text: str) -> int:
    """An argparse type: a count of at least 1 (repeats, threads, shard sizes)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


class OneLineErrors(argparse.ArgumentParser):
    """A wrong argument is one line and exit code 2, as in the Hydra entry scripts."""

    def error(self, message: str) -> None:
        print(f"error: {message}; see --help", file=sys.stderr)
        sys.exit(2)


def drop_wandb_resume_args(argv: list[str]) -> list[str]:
    """W&B sweep agents pass ``_wandb={...}`` to resumed runs; Hydra would reject it."""
    return [arg for arg in argv if not arg.startswith("_wandb=")]


def check_overrides(config_dir: Path, config_name: str, argv: list[str]) -> None:
    """Compose the command line's overrides once before Hydra runs, so that a misspelt key or
    an unknown group option (``recipe.lrr=0.1``, ``model=vit_b99``) is one line and exit code 2
    instead of Hydra's multi-line report; multiruns and printing flags are left to Hydra."""
    if any(arg.startswith("-") for arg in argv):  # Hydra's flags (-m, --cfg, -sc, ...): its own
        return
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    overrides = [arg for arg in argv if not arg.startswith("hydra.")]
    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            cfg = compose(config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException, ValueError) as error:
        # ValueError: Hydra's own for a group option that is not a name (``transfer=0``)
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        message = str(error).split("Config search path")[0]  # Hydra's search path: noise here
        head, _, options = message.partition("Available options in")
        text = " ".join(head.split())
        if options:  # "'model':\n\tbit_r101x1\n\t..." -> choose one of bit_r101x1, ...
            text += " choose one of " + ", ".join(options.split()[1:])
        keys = [arg.partition("=")[0].lstrip("+~") for arg in overrides]
        if not any(key and key in text for key in keys):  # name the override Hydra did not
            culprit = _first_failing(config_dir, config_name, overrides)
            text = f"{culprit}: {text}" if culprit else text
        print(f"error: {text}", file=sys.stderr)
        sys.exit(2)
    run_dirs = [arg.partition("=")[2] for arg in argv if arg.startswith("hydra.run.dir=")]
    try:
        output = cfg.get("paths", {}).get("output_dir") if hasattr(cfg, "get") else None
    except OmegaConfBaseException as error:
        print(f"error: paths.output_dir: {str(error).splitlines()[0]}", file=sys.stderr)
        sys.exit(2)
    key, where = ("hydra.run.dir", run_dirs[-1]) if run_dirs else ("paths.output_dir", output)
    if where:
        _check_writable(key, Path(str(where)))


def _first_failing(config_dir: Path, config_name: str, overrides: list[str]) -> str | None:
    """The first override whose addition fails to compose (for an error that names none)."""
    from hydra import compose, initialize_config_dir

    for count, override in enumerate(overrides, start=1):  # growing prefixes: a key may need
        try:  # an earlier group choice (model.layers after model=bit_micro)
            with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
                compose(config_name, overrides=overrides[:count])
        except Exception:  # any failure names the culprit
            return override
    return None


def _check_writable(key: str, path: Path) -> None:
    """The run directory can be made: its nearest existing ancestor is a writable folder
    (Hydra makes it before any of our code runs, and its failure is a traceback)."""
    existing = path.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    problem = None
    if not existing.is_dir():
        problem = f"{existing} is a file, not a folder"
    elif not os.access(existing, os.W_OK | os.X_OK):
        problem = f"{existing} is not writable"
    if problem:
        print(f"error: {key}={path}: {problem}; choose a folder you can write to", file=sys.stderr)
        sys.exit(2)


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


def exit_on_user_error(
    task: Callable[[Any], Any] | None = None, *, schema: type | None = None
) -> Any:
    """The wrapper of every Hydra entry script: the resolved config is checked against
    ``vitrepro.config.schema`` before the task runs; a ``ConfigError`` is printed as one
    line on stderr with exit code 2, a diverged run (``TrainingDivergedError``) likewise with
    exit 3 (HYDRA_FULL_ERROR=1: the traceback), a failed fine-tuning child run with the child's
    exit code, a full disk or a forbidden path with exit 1, a SLURM requeue (``JobRequeued``)
    with 0.
    ``@exit_on_user_error`` or ``@exit_on_user_error(schema=...)``."""
    if task is None:
        return functools.partial(exit_on_user_error, schema=schema)

    @functools.wraps(task)
    def wrapper(cfg: Any) -> Any:
        try:
            return _checked_task(task, cfg, schema)
        except JobRequeued as error:
            print(f"stopped for a requeue: {error}", file=sys.stderr)
            sys.exit(0 if error.requeued else 4)
        except TrainingDivergedError as error:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"error: {error}", file=sys.stderr)
            sys.exit(3)
        except ChildRunFailedError as error:  # the child printed its own line above this one
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"error: {error}", file=sys.stderr)
            sys.exit(error.returncode if error.returncode > 0 else 1)
        except OSError as error:
            known = STORAGE_ERRORS | ACCESS_ERRORS
            if error.errno not in known or os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            run_dir = cfg.get("paths", {}).get("run_dir") if hasattr(cfg, "get") else None
            where = error.filename or run_dir or "the run directory"
            if error.errno in ACCESS_ERRORS:
                print(f"error: could not access {where}: {error.strerror}; check its "
                      "permissions or point the run elsewhere", file=sys.stderr)  # fmt: skip
                sys.exit(1)
            advice = ("free space there or give the run another directory (hydra.run.dir=DIR); "
                      "checkpoints and summary.json are written whole or not at all, so "
                      "resume=auto can continue")  # fmt: skip
            print(f"error: could not write {where}: {error.strerror}; {advice}", file=sys.stderr)
            sys.exit(1)
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


def _checked_task(task: Callable[[Any], Any], cfg: Any, schema: type | None) -> Any:
    """``task(cfg)`` after the schema check; a value that cannot be resolved (an interpolation
    naming no key, ``seed=${oops}``) becomes a ``ConfigError`` naming its key."""
    from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

    try:
        if schema is not None:
            _check_schema(cfg, schema)
        return task(cfg)
    except MissingMandatoryValue as error:
        key = getattr(error, "full_key", None) or "config"
        raise ConfigError(key, "???", f"required; give {key}=...") from None
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or "config"
        reason = str(error).splitlines()[0]
        raise ConfigError(key, "?", f"{reason}; fix the value or its ${{...}} reference") from None


def _check_schema(cfg: Any, schema: type) -> None:
    from omegaconf import OmegaConf

    from vitrepro.config.schema import check_types

    config = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    check_types(config, schema)
