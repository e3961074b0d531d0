"""One run, one launcher: a claim file per job in the pool's log folder, so that two study
launchers sharing a run pool (``make reproduce-fig3`` and ``make reproduce-fig4`` started
together, or two sessions) neither run a job twice nor lose one.

A claim is made with ``O_CREAT | O_EXCL`` (atomic on local and NFS v3+ filesystems) and holds
the host and process id of the launcher that runs the job. A claim whose process is gone (the
same host, no such pid) is stale: the next launcher removes it and the job resumes from its
last checkpoint (``resume=auto``).
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path


def claim_path(log_dir: Path, job_name: str) -> Path:
    return log_dir / f"{job_name}.claim"


def _alive(owner: dict) -> bool:
    """Whether the claiming launcher still runs (a claim from another host counts as alive)."""
    if owner.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(owner.get("pid", -1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError):
        return True  # someone else's live process, or an unreadable claim: leave it
    return True


def held_by_another(path: Path) -> bool:
    """A live launcher other than this process holds ``path``."""
    try:
        owner = json.loads(path.read_text() or "{}")
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True  # being written: its maker is alive
    mine = owner.get("pid") == os.getpid() and owner.get("host") == socket.gethostname()
    return not mine and _alive(owner)


def acquire(path: Path) -> bool:
    """Claim ``path`` for this process; False when a live launcher holds it. A stale claim
    (its launcher gone) is taken over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    owner = {"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if held_by_another(path):
                return False
            path.unlink(missing_ok=True)  # stale: its launcher was killed
            continue
        with os.fdopen(fd, "w") as file:
            json.dump(owner, file)
        return True
    return False


def release(path: Path) -> None:
    path.unlink(missing_ok=True)
