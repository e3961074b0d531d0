"""User-facing errors: one line that names the key, the value and the fix."""

from __future__ import annotations


class ConfigError(ValueError):
    """A user mistake found before compute; the entry points print it as one line, exit code 2."""

    def __init__(self, key: str, value: object, fix: str) -> None:
        self.key, self.value, self.fix = key, value, fix
        super().__init__(f"{key}={value}: {fix}")


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the entry points print it as one line, exit code 3."""
