"""One run, one launcher: a lock per job in the run pool, so that two study launchers
sharing a run pool (``make reproduce-fig3`` and ``make reproduce-fig5`` started together, or from
two shells) neither run a job twice nor lose one.

A claim is an exclusive ``flock`` on ``<pool>/claims/<job>.lock``, held by the launcher while
the job runs. The kernel drops it when the launcher's process ends, however it ends, so a killed
launcher leaves nothing to clean up and the next one resumes the run from its last checkpoint
(``resume=auto``). The files stay (removing a lock file races with a launcher about to lock
it); each holds the host and process id of its last holder, for people to read.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import IO


def claim_path(pool: Path, claim: str) -> Path:
    """The lock file of a job's ``claim`` (``Job.claim``) in a run pool."""
    return pool / "claims" / f"{claim}.lock"


def acquire(path: Path) -> IO[str] | None:
    """Lock ``path`` for this process: the open claim (keep it until ``release``), or None
    when another launcher holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 - held open for the job's life
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    json.dump({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}, handle)
    handle.flush()
    return handle


def held_by_another(path: Path) -> bool:
    """Whether a launcher holds ``path`` now (a look: the lock is taken and dropped at once)."""
    if not path.exists():
        return False
    handle = acquire(path)
    if handle is None:
        return True
    release(handle)
    return False


def holder(path: Path) -> str:
    """Who last held ``path`` (host and pid), for a waiting launcher's message."""
    try:
        owner = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return "another launcher"
    return f"{owner.get('host', '?')} pid {owner.get('pid', '?')}"


def release(handle: IO[str]) -> None:
    fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()
