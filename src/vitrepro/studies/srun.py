"""A job as ``srun --ntasks=N`` starts it on one node (the rehearsal's local stand-in for a
SLURM job): N processes with SLURM's variables, the first failure stopping the others."""

from __future__ import annotations

import itertools
import subprocess
import time

_job_ids = itertools.count(4000)  # SLURM job ids of rehearsed jobs (each its own rendezvous port)


def srun_tasks(env: dict[str, str], tasks: int) -> list[dict[str, str]]:
    """The variables ``srun --ntasks=N`` gives each task on one node: Lightning's SLURM
    environment then takes ranks and the rendezvous from them, as on a cluster."""
    job_id = str(next(_job_ids))
    common = {
        "SLURM_JOB_ID": job_id,
        "SLURM_JOB_NAME": "vitrepro",
        "SLURM_NTASKS": str(tasks),
        "SLURM_NTASKS_PER_NODE": str(tasks),
        "SLURM_NODEID": "0",
        "SLURM_NODELIST": "localhost",
    }
    return [env | common | {"SLURM_PROCID": str(i), "SLURM_LOCALID": str(i)} for i in range(tasks)]


def wait_for_tasks(tasks: list[subprocess.Popen]) -> int:
    """The exit code of the first of a job's tasks to fail (0 when none does); a task that
    fails stops the others, which would wait for it at the next collective until the
    rendezvous times out. Its own code is kept (2: a user error stops the study)."""
    first_failure = 0
    while any(task.poll() is None for task in tasks):
        failed = [task.returncode for task in tasks if task.returncode not in (None, 0)]
        if failed and not first_failure:
            first_failure = abs(failed[0])
            for task in tasks:
                if task.poll() is None:
                    task.terminate()
        time.sleep(0.2)
    return first_failure or max(abs(task.returncode) for task in tasks)
