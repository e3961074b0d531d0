"""How to split the cores between runs: the evidence behind ``performance.threads=auto``.

Several training processes run at once, each the bench's bare loop on the same case with a
given number of intra-op threads, released together after their warm-up (a file barrier, so
imports and warm-up do not overlap the timing); the figure is their combined images/s. The
layouts compared on C cores: one run of C threads (a single ``src/train.py``), C runs of one
thread (the study runner with ``JOBS=C``: each job gets cores / jobs) and C runs of C threads
each (what torch's default gives every process when nothing splits the cores).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from vitrepro.bench.training import TrainingCase, bare_loop_seconds, compose_case, fixed_batch
from vitrepro.compute.performance import threads_per_process


def _wait_for(barrier: Path, processes: int, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while len(list(barrier.glob("ready-*"))) < processes:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only some of {processes} bench processes became ready")
        time.sleep(0.01)


def worker(case: TrainingCase, threads: int, barrier: Path, processes: int) -> float:
    """One process's images/s over the case's timed steps, started with the others."""
    torch.set_num_threads(threads)
    model_cfg, recipe, performance = compose_case(case)
    batch = fixed_batch(case, torch.device("cpu"))
    warm = TrainingCase(**{**asdict(case), "steps": 1, "warmup_steps": 1})
    bare_loop_seconds(warm, model_cfg, recipe, batch, torch.device("cpu"), performance)
    (barrier / f"ready-{os.getpid()}").touch()
    _wait_for(barrier, processes)
    seconds, _ = bare_loop_seconds(case, model_cfg, recipe, batch, torch.device("cpu"), performance)
    return case.batch * case.steps / seconds


def combined_rate(case: TrainingCase, processes: int, threads: int) -> dict[str, Any]:
    """Combined images/s of ``processes`` runs of ``threads`` threads each, started together."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "vitrepro.bench.threads", json.dumps(asdict(case))]
        command += [str(threads), tmp, str(processes)]
        env = os.environ | {"OMP_NUM_THREADS": str(threads)}
        started = [
            subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
            for _ in range(processes)
        ]
        rates = []
        for process in started:
            out, _ = process.communicate(timeout=900)
            if process.returncode != 0:
                raise RuntimeError(f"a threads bench process failed ({process.returncode})")
            rates.append(float(out.strip().splitlines()[-1]))
    return {
        "processes": processes,
        "threads_each": threads,
        "images_per_s": round(sum(rates), 2),
        "images_per_s_each": [round(r, 2) for r in rates],
    }


def measure_threads(case: TrainingCase, cores: int | None = None) -> dict[str, Any]:
    """The three layouts on this machine's cores, each against one run of all cores."""
    cores = cores or threads_per_process(1)  # torch's core count, whatever --threads set
    layouts = {
        "one_run_all_cores": (1, cores),
        "one_thread_per_run": (cores, 1),
        "all_cores_per_run": (cores, cores),
    }
    results = {name: combined_rate(case, *layout) for name, layout in layouts.items()}
    base = results["one_run_all_cores"]["images_per_s"]
    for result in results.values():
        result["vs_one_run"] = round(result["images_per_s"] / base, 3)
    return {"case": case.name, "cores": cores, "layouts": results}


if __name__ == "__main__":  # one worker: CASE_JSON THREADS BARRIER_DIR PROCESSES
    spec = json.loads(sys.argv[1])
    spec["overrides"] = tuple(spec.get("overrides", ()))
    rate = worker(TrainingCase(**spec), int(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
    print(rate)
