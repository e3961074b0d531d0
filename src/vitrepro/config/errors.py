"""User-facing errors: one line that names the key, the value and the fix."""

from __future__ import annotations


class ConfigError(ValueError):
    """A user mistake found before compute; the entry points print it as one line, exit code 2."""

    def __init__(self, key: str, value: object, fix: str) -> None:
        self.key, self.value, self.fix = key, value, fix
        super().__init__(f"{key}={value}: {fix}")


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the entry points print it as one line, exit code 3."""


class ChildRunFailedError(RuntimeError):
    """A fine-tuning child run failed; it printed its own error. The parent adds one line naming
    the child's directory and exits with the child's code."""

    def __init__(self, message: str, returncode: int) -> None:
        self.returncode = returncode
        super().__init__(message)


class JobRequeued(Exception):  # noqa: N818 - an outcome, not an error
    """A SLURM job stopped at a checkpoint for its requeue (``training.requeue``); the entry
    points print it as one line, exit code 0 when the job was requeued, else 4."""

    def __init__(self, message: str, requeued: bool = True) -> None:
        self.requeued = requeued
        super().__init__(message)


class RefusedFileError(ConfigError):
    """A file the weights-only loader refuses: it holds Python objects that would need pickle
    (and its code execution) to be read; a ``ConfigError`` like any other to the user."""
