"""Thread defaults: one rule (compute.performance) for a single run, CPU data-parallel runs,
SLURM tasks and the study runner's jobs; DataLoader workers keep PyTorch's one thread each."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest

from vitrepro.compute.performance import cpu_threads, keep_freed_memory, threads_per_process
from vitrepro.studies.grid import GridPoint
from vitrepro.studies.jobs import Job, Launch, environment

CPU = {"accelerator": "cpu", "devices": 1}


@pytest.fixture
def bare_environment(monkeypatch):
    for variable in ("OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK"):
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


def test_cores_are_split_evenly_and_never_below_one():
    assert threads_per_process(1, cores=8) == 8
    assert threads_per_process(2, cores=8) == 4
    assert threads_per_process(3, cores=8) == 2
    assert threads_per_process(4, cores=2) == 1


def test_a_number_is_taken_as_given(bare_environment):
    bare_environment.setenv("OMP_NUM_THREADS", "7")
    assert cpu_threads(3, CPU) == 3


def test_auto_takes_the_launchers_thread_count(bare_environment):
    bare_environment.setenv("OMP_NUM_THREADS", "1")
    assert cpu_threads("auto", {"accelerator": "cpu", "devices": 1}) == 1


def test_auto_splits_the_cores_between_cpu_data_parallel_processes(bare_environment):
    alone = cpu_threads("auto", CPU)
    assert alone == threads_per_process(1)
    assert cpu_threads("auto", {"accelerator": "cpu", "devices": 2}) == max(1, alone // 2)


def test_auto_splits_slurms_cpus_per_task_between_the_tasks_processes(bare_environment):
    bare_environment.setenv("SLURM_CPUS_PER_TASK", "16")
    assert cpu_threads("auto", {"accelerator": "cpu", "devices": 4}) == 4
    assert cpu_threads("auto", {"accelerator": "cpu", "devices": "auto"}) == 16


def test_the_study_runner_gives_each_job_its_share(tmp_path):
    job = Job(GridPoint((("model", "vit_micro_p4"),)), Path(tmp_path), [], env={})
    for jobs, tasks in ((1, 1), (2, 1), (1, 2)):
        env = environment(job, Launch("local", jobs, tasks=tasks))
        assert env["OMP_NUM_THREADS"] == str(threads_per_process(jobs * tasks))


def test_a_study_runs_one_process_per_gpu_else_per_usable_core():
    import os

    from vitrepro.compute.performance import study_layout, threads_per_process

    cores = len(os.sched_getaffinity(0))
    assert study_layout(gpus=0) == cores
    assert study_layout(gpus=4) == 4
    assert threads_per_process(study_layout(gpus=0), cores=cores) == 1


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_glibc_takes_both_memory_settings():
    assert keep_freed_memory(True)  # for this process's life (as every training run sets it)
    assert not keep_freed_memory(False)  # off: glibc's adaptive defaults, left as they are
