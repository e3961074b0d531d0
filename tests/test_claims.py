"""One run pool, two launchers: a lock per job, free again when its launcher is gone, and two
real study launchers started together on one pool run each job once."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from helpers import micro_study
from vitrepro.studies import claims
from vitrepro.studies.claims import acquire, claim_path, held_by_another, release
from vitrepro.studies.grid import GridPoint, expand_grid, load_sweep
from vitrepro.studies.jobs import Launch, is_complete, pretrain_job, run_job
from vitrepro.tracking import record

HOLD = """
import sys, time
from pathlib import Path
from vitrepro.studies.claims import acquire
handle = acquire(Path(sys.argv[1]))
assert handle is not None
print("held", flush=True)
time.sleep(120)
"""


def test_a_claim_is_exclusive_and_free_again_when_its_launcher_is_killed(tmp_path):
    path = claim_path(tmp_path, "job-a")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"held"
        assert held_by_another(path) and acquire(path) is None  # a live launcher holds it
        assert f"pid {holder.pid}" in claims.holder(path)
    finally:
        holder.kill()  # no clean-up runs: the kernel drops the lock with the process
        holder.wait()
    assert not held_by_another(path)
    handle = acquire(path)
    assert handle is not None
    release(handle)


def test_two_launchers_sharing_a_pool_run_each_job_once(tmp_path, monkeypatch):
    args = micro_study(tmp_path, monkeypatch)
    launch = [sys.executable, "-m", "vitrepro.studies.pool", *args, "--jobs", "1"]
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
    locks = list((runs / "claims").glob("*.lock"))
    assert len(locks) == len(points) and not any(held_by_another(p) for p in locks)  # released


def test_a_run_of_the_same_command_under_another_studys_name_is_taken_not_rerun(tmp_path):
    # Figure 3 names a run after the axes its grid varies, Figure 5 after its own: the same
    # arguments (the same digest) under two names in one pool.
    args = (("model", "vit_micro_p8"), ("pretraining", "glyphs_37k5"), ("seed", 0))
    fig3 = GridPoint(args, ("model", "pretraining", "seed"))
    fig5 = GridPoint(args, ("model", "seed"))
    assert fig3.slug != fig5.slug and fig3.digest == fig5.digest
    pool = tmp_path / "pool"
    record.write(pool / fig3.slug, {"status": "finished", "config": {}})
    job = pretrain_job(fig5, pool / fig5.slug, Launch())
    assert job.claim == pretrain_job(fig3, pool / fig3.slug, Launch()).claim  # one lock
    assert run_job(job, pool / "logs", Launch())[1] == 0  # done: nothing was started
    assert (pool / fig5.slug).resolve() == (pool / fig3.slug).resolve()
    assert not (pool / "logs" / f"{fig5.slug}.log").exists()
