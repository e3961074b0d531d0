"""Files written atomically: a reader (a study, a resumed run, a W&B sync) never sees half of
one, even when the writer is killed mid-write."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The checkout: the package is installed editable, its scripts and config tree beside it.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = PROJECT_ROOT / "conf"

_UMASK = os.umask(0)  # read once at import (os.umask can only be read by setting it)
os.umask(_UMASK)


def write_file_atomic(path: str | Path, write: Callable[[str], None]) -> None:
    """``write(name)`` writes the file under a temporary name beside ``path``, which is then
    renamed to ``path``: a reader never sees half a file even if the writer is killed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # as open() would create it: readable by the team
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """``text`` to ``path`` through ``write_file_atomic``, flushed to disk before the rename."""

    def write(tmp: str) -> None:
        with open(tmp, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())

    write_file_atomic(path, write)


def save_figure_atomic(figure: Any, path: str | Path, dpi: int = 110) -> None:
    """Save a matplotlib figure to ``path`` (PNG) through a temporary file: no half figures."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(tmp, dpi=dpi)
    tmp.replace(path)


def write_json_atomic(path: str | Path, payload: dict[str, Any]) -> None:
    """``summary.json`` and manifests: atomically, as ``write_text_atomic``."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, default=str))
