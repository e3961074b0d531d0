"""One run pool, two launchers: a claim file per job, taken over when its launcher is gone,
and two real study launchers started together on one pool run each job once."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from test_studies import _micro_study
from vitrepro.studies.claims import acquire, claim_path, held_by_another, release
from vitrepro.studies.grid import expand_grid, load_sweep
from vitrepro.studies.jobs import is_complete

HOLD = """
import sys, time
from pathlib import Path
from vitrepro.studies.claims import acquire
assert acquire(Path(sys.argv[1]))
print("held", flush=True)
time.sleep(120)
"""


def test_a_claim_is_exclusive_and_a_dead_launchers_claim_is_taken_over(tmp_path):
    path = claim_path(tmp_path / "logs", "job-a")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"held"
        assert held_by_another(path) and not acquire(path)  # a live launcher holds it
    finally:
        holder.kill()
        holder.wait()
    assert not held_by_another(path)  # its launcher is gone: the claim is stale
    assert acquire(path) and not held_by_another(path)  # taken over, now ours
    release(path)
    assert not path.exists()


def test_two_launchers_sharing_a_pool_run_each_job_once(tmp_path, monkeypatch):
    args = _micro_study(tmp_path, monkeypatch)
    launch = [sys.executable, "-m", "vitrepro.studies.run", *args, "--jobs", "1"]
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(launch, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(1.0)  # the second starts while the first holds its first job
    second = subprocess.Popen(launch, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    outputs = [p.communicate(timeout=600)[0].decode() for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs

    runs = tmp_path / "out" / "studies" / "micro" / "tiny"
    points = expand_grid(load_sweep(tmp_path / "micro.yaml"))
    assert all(is_complete(runs / p.slug) for p in points)  # none lost
    for point in points:  # none run twice: one training in each job's log
        log = (runs / "logs" / f"{point.slug}.log").read_text()
        assert log.count("`Trainer.fit` stopped") == 1, point.slug
    assert not list((runs / "logs").glob("*.claim"))  # every claim released
