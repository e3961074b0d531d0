"""A study's jobs: each grid point's pre-training, then each of its transfers as a job of its own.

A point runs ``src/train.py`` with ``transfer_jobs=separate`` in ``<pool>/<point>``: it only
pre-trains. Once it has finished, every fine-tune it asks for (its ``transfer`` group) is a job
in ``<pool>/<point>/transfer/<name>``, started in a clean environment (no rendezvous, SLURM or
W&B-agent variables of the parent: ``training.transfer.child_environment``), with its W&B run a
``finetune`` job grouped under the parent's. When the last one has finished, the results join
the parent's record. Every job runs under a claim file (``studies.claims``), so launchers that
share a pool run each job once. Locally a job is a process (or, rehearsing, ``tasks``
processes started as ``srun`` starts them); with ``launcher="slurm"`` a one-run Hydra multirun
through the submitit launcher (``conf/hydra/launcher/slurm.yaml``), which waits for the SLURM
job.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from vitrepro.compute.performance import threads_per_process
from vitrepro.files import PROJECT_ROOT
from vitrepro.studies import claims, committed
from vitrepro.studies.grid import GridPoint
from vitrepro.studies.srun import srun_tasks, wait_for_tasks
from vitrepro.tracking import record
from vitrepro.tracking.loggers import WANDB_ID_FILE
from vitrepro.training.transfer import child_command, child_environment, transfer_result

TRAIN = [sys.executable, str(PROJECT_ROOT / "src" / "train.py")]
CLAIM_POLL_S = 5.0  # how often a job another launcher holds is looked at again
STOP = threading.Event()  # set when a study stops: jobs waiting for a claim give up
STOPPED = -2  # run_job's exit code for such a job (neither done nor failed)


@dataclass(frozen=True)
class Job:
    """One ``src/train.py`` run of a study: a point's pre-training, or one of its transfers."""

    point: GridPoint
    run_dir: Path
    args: list[str]  # train.py arguments, without the run directory
    transfer: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # its whole environment

    @property
    def name(self) -> str:
        return f"{self.point.slug}__{self.transfer}" if self.transfer else self.point.slug

    @property
    def claim(self) -> str:
        """The job's claim: the same command (digest) in any study's grid takes the same one."""
        return f"{self.point.digest}__{self.transfer}" if self.transfer else self.point.digest


@dataclass(frozen=True)
class Launch:
    """How the jobs run: ``launcher`` local | slurm; ``jobs`` at a time, the cores split between
    them; ``extra`` arguments and ``env`` variables for every point (the rehearsal's; ``{slug}``
    in a value is the point's name); ``tasks``
    processes a job, as ``srun --ntasks`` starts them (local, rehearsing); ``committed``: the
    folder of the pool's committed runs, restored when their design matches and written as
    each run finishes."""

    launcher: str = "local"
    jobs: int = 1
    extra: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    tasks: int = 1
    committed: Path | None = None  # finished runs kept in the repository (studies.committed)


def is_complete(run_dir: Path) -> bool:
    """Finished, with every transfer the run asked for in its record."""
    summary = record.finished(run_dir)
    if summary is None:
        return False
    wanted = summary.get("config", {}).get("transfer") or {}
    return set(wanted) <= set(summary.get("transfer", {}))


def pretrain_job(point: GridPoint, run_dir: Path, launch: Launch) -> Job:
    """A point's pre-training: its arguments and the launch's, without its transfers."""
    args = [*point.args, *launch.extra, "transfer_jobs=separate", "resume=auto"]
    given = {key: value.format(slug=point.slug) for key, value in launch.env}
    return Job(point, run_dir, args, env=dict(os.environ) | given)


def transfer_jobs(point: GridPoint, run_dir: Path, launch: Launch) -> list[Job]:
    """The unfinished transfers of a finished pre-training run, each a job of its own."""
    summary = record.finished(run_dir) or {}
    wanted = summary.get("config", {}).get("transfer") or {}
    model = (summary.get("config", {}).get("choices") or {}).get("model")
    id_file = run_dir / WANDB_ID_FILE
    parent_run = id_file.read_text().strip() if id_file.exists() else None
    env = child_environment(parent_run)  # none of the point's launch (launch.env) either
    jobs = []
    for name, overrides in wanted.items():
        if record.finished(run_dir / "transfer" / name) is None:
            inherited = [*point.args, *launch.extra]
            args = child_command(list(overrides), inherited, run_dir, model)[2:]
            jobs.append(Job(point, run_dir / "transfer" / name, args, name, env))
    return jobs


def join_transfers(run_dir: Path) -> None:
    """Add every finished transfer's result to the parent's record (once all have finished)."""
    summary = record.finished(run_dir)
    wanted = (summary or {}).get("config", {}).get("transfer") or {}
    summary["transfer"] = {name: transfer_result(run_dir / "transfer" / name) for name in wanted}
    record.write(run_dir, summary)


def command(job: Job, launcher: str) -> list[str]:
    """``src/train.py`` for the job, in its pinned run directory (on SLURM: a one-run multirun
    whose sweep directory is that run directory's parent)."""
    if launcher == "slurm":
        place = [f"hydra.sweep.dir={job.run_dir.parent}", f"hydra.sweep.subdir={job.run_dir.name}"]
        return [*TRAIN, "-m", "hydra/launcher=slurm", *job.args, *place]
    return [*TRAIN, *job.args, f"hydra.run.dir={job.run_dir}"]


def environment(job: Job, launch: Launch) -> dict[str, str]:
    """The job's environment with the cores split between the processes running at once (two
    runs of two threads on two cores are several times slower than two of one)."""
    threads = threads_per_process(launch.jobs * launch.tasks)
    return {"OMP_NUM_THREADS": str(threads)} | job.env


def _still_needed(job: Job, launch: Launch) -> bool:
    """Whether a job has yet to run: another launcher may have finished it meanwhile."""
    if job.transfer is None:
        return record.finished(job.run_dir) is None
    parent = job.run_dir.parent.parent
    return any(j.run_dir == job.run_dir for j in transfer_jobs(job.point, parent, launch))


def run_job(job: Job, log_dir: Path, launch: Launch) -> tuple[Job, int, float]:
    """Run one job to its end under its claim (``studies.claims``: a job another launcher
    holds is waited for, then run only if it is still needed; a run of the same command made
    under another study's name is taken as this one's); its output goes to
    ``<log_dir>/<job name>.log``. Exit code ``STOPPED`` when the study stopped while waiting."""
    path, started = claims.claim_path(log_dir.parent, job.claim), time.time()
    handle = claims.acquire(path)
    if handle is None:
        print(f"  waiting for {job.name}: {claims.holder(path)} runs it", flush=True)
    while handle is None:
        if STOP.wait(CLAIM_POLL_S):
            return job, STOPPED, time.time() - started
        handle = claims.acquire(path)
    try:
        _adopt_twin_run(job)
        if not _still_needed(job, launch):
            return job, 0, time.time() - started
        return _run_claimed(job, log_dir, launch)
    finally:
        claims.release(handle)


def _adopt_twin_run(job: Job) -> None:
    """A pre-training whose command another study's grid ran (or is running) under its own
    name: this run directory becomes a link to that one, so the run is made once."""
    if job.transfer is not None or job.run_dir.exists():
        return
    twins = sorted(d for d in job.run_dir.parent.glob(f"*__{job.point.digest}") if d.is_dir())
    if twins:
        job.run_dir.symlink_to(twins[0].resolve(), target_is_directory=True)


def _run_claimed(job: Job, log_dir: Path, launch: Launch) -> tuple[Job, int, float]:
    log_dir.mkdir(parents=True, exist_ok=True)
    env, started = environment(job, launch), time.time()
    with open(log_dir / f"{job.name}.log", "a") as log:
        if launch.tasks > 1 and launch.launcher == "local":
            tasks = [
                subprocess.Popen(
                    command(job, "local"),
                    cwd=PROJECT_ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=task_env,
                )
                for task_env in srun_tasks(env, launch.tasks)
            ]
            returncode = wait_for_tasks(tasks)
        else:
            returncode = subprocess.run(
                command(job, launch.launcher),
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            ).returncode
    return job, returncode, time.time() - started


def pending_jobs(points: list[GridPoint], study_dir: Path, launch: Launch) -> list[Job]:
    """The jobs the unfinished points still need: a pre-training, or the transfers of a
    finished one (whose results join its record once the last has finished)."""
    todo: list[Job] = []
    for point in points:
        run_dir = study_dir / point.slug
        kept = launch.committed / f"{point.slug}.json" if launch.committed else None
        if kept and kept.is_file() and not is_complete(run_dir):
            committed.restore(point, run_dir, kept.parent, committed.planned_fingerprint(point))
        if is_complete(run_dir):
            if kept and not kept.is_file():
                _commit(point, run_dir, launch)
            continue
        if record.finished(run_dir) is None:
            todo.append(pretrain_job(point, run_dir, launch))
        elif follow := transfer_jobs(point, run_dir, launch):
            todo += follow
        else:
            join_transfers(run_dir)
            _commit(point, run_dir, launch)
    return todo


def _commit(point: GridPoint, run_dir: Path, launch: Launch) -> None:
    """A complete run's record into the pool's committed folder (``studies.committed``)."""
    if launch.committed and is_complete(run_dir):
        committed.export(point, run_dir, launch.committed)


def run_grid(points: list[GridPoint], study_dir: Path, launch: Launch) -> list[str]:
    """Run every pending job, ``launch.jobs`` at a time, each transfer as soon as its parent
    has finished; returns the names of the jobs that failed."""
    pending = deque(pending_jobs(points, study_dir, launch))
    done_points = sum(is_complete(study_dir / p.slug) for p in points)
    print(f"{done_points} of {len(points)} runs complete; {len(pending)} jobs to start", flush=True)
    STOP.clear()
    with ThreadPoolExecutor(max_workers=max(1, launch.jobs)) as pool:
        try:
            return _schedule(pending, pool, study_dir / "logs", launch)
        finally:
            STOP.set()  # Ctrl-C or a user error: no job keeps waiting for another launcher


def _schedule(
    pending: deque[Job], pool: ThreadPoolExecutor, log_dir: Path, launch: Launch
) -> list[str]:
    failed: list[str] = []
    running: set = set()
    count, stop = 0, False
    while True:
        while not stop and pending and len(running) < max(1, launch.jobs):
            _free_job_first(pending, log_dir)
            job = pending.popleft()
            print(f"  started {job.name}: log {log_dir / job.name}.log", flush=True)
            running.add(pool.submit(run_job, job, log_dir, launch))
        if not running:
            return failed
        finished_now, running = wait(running, return_when=FIRST_COMPLETED)
        for future in finished_now:
            job, returncode, seconds = future.result()
            if returncode == STOPPED:
                continue
            count += 1
            status = "done" if returncode == 0 else f"FAILED (exit {returncode})"
            total = count + len(running) + len(pending)
            print(f"[{count}/{total}] {job.name}: {status} in {seconds:.0f} s", flush=True)
            if returncode == 0:
                pending.extendleft(reversed(_next_jobs(job, launch)))
                continue
            failed.append(job.name)
            if returncode == 2:  # a user error (bad config, missing data): the rest would too
                lines = (log_dir / f"{job.name}.log").read_text().strip().splitlines()
                print(f"    {lines[-1] if lines else ''}\nstopping the study", file=sys.stderr)
                stop = True
                STOP.set()


def _free_job_first(pending: deque[Job], log_dir: Path) -> None:
    """Rotate ``pending`` so that a job no other launcher holds comes first, if there is one."""
    for _ in range(len(pending)):
        if not claims.held_by_another(claims.claim_path(log_dir.parent, pending[0].claim)):
            return
        pending.rotate(-1)


def _next_jobs(job: Job, launch: Launch) -> list[Job]:
    """After a pre-training: its transfers. After a transfer: none; the parent's record gets
    the results when no transfer of it is left."""
    if job.transfer is None:
        follow = transfer_jobs(job.point, job.run_dir, launch)
        if not follow:  # a run without transfers is complete now
            _commit(job.point, job.run_dir, launch)
        return follow
    parent = job.run_dir.parent.parent
    if not transfer_jobs(job.point, parent, launch):
        join_transfers(parent)
        _commit(job.point, parent, launch)
    return []
