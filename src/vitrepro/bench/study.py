"""``make bench``'s study section: what a tiny study pays per run, on one thread, as the study
runner gives each of its jobs.

1. **Step parity and MFU**: each model of the tiny studies in our Lightning step against the
   bare PyTorch loop on the same batch (``training.measure_training``), and its training FLOPs
   against this CPU's one-thread matmul rate.
2. **Overhead**: one real study point, pre-training then its fine-tune as a job of its own,
   run by the study runner (``python -m vitrepro.studies.pool``) in a fresh process: the whole
   command's wall time against the pre-training's steps alone, broken down by phase from the
   runs' ``timings`` (``vitrepro.tracking.phases``) and the runner's job times.
3. **Compile over a whole run**: each study model's pre-training run of the same point, eager
   and ``compile=true``, one after the other as one-thread jobs of the runner: each job's wall
   time, compilation included, so a per-step gain is weighed against what compiling costs.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import yaml

from vitrepro.bench.training import TrainingCase, measure_training
from vitrepro.compute.peak import matmul_tflops
from vitrepro.files import PROJECT_ROOT

PARITY_GOAL = 1.05  # our step may take at most 5% longer than the bare loop's
MFU_GOAL = 0.5  # the study ViT's training FLOPs against one core's matmul rate
OVERHEAD_GOAL = 1.15  # a study run's wall time against its training steps alone
PHASES = ("startup_s", "setup_s", "validation_s", "fewshot_s", "fit_other_s", "final_evaluation_s")


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch's intra-op threads at one (what the study runner gives each job), then restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def measure_parity(
    cases: tuple[TrainingCase, ...], repeats: int, matmul_n: int, matmul_seconds: float
) -> dict[str, Any]:
    """Each case's Lightning/bare step ratio and MFU on one thread."""
    cpu = torch.device("cpu")
    with one_thread():
        peak = matmul_tflops(cpu, torch.float32, matmul_n, repeats, matmul_seconds)
        models = [measure_training(case, cpu, repeats, peak["tflops"]) for case in cases]
    return {"threads": 1, "matmul": peak, "models": models}


def _sweep_values(value: Any) -> dict[str, Any]:
    """A sweep parameter: every value of a list, else the one value."""
    return {"values": value} if isinstance(value, list) else {"value": value}


def _study_files(folder: Path, point: dict[str, Any], fixed: list[str]) -> Path:
    """A one-point sweep and its study file in ``folder``; returns the study file."""
    sweep = {
        "program": "src/train.py",
        "method": "grid",
        "parameters": {k: _sweep_values(v) for k, v in point.items()}
        | {k: {"value": yaml.safe_load(v)} for k, v in (o.split("=", 1) for o in fixed)},
        "command": ["${env}", "python", "${program}", "${args_no_hyphens}"],
    }
    (folder / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    study = {
        "name": "bench_study",
        "figure": "fewshot_subsets",
        "title": "bench",
        "x": "-",
        "y": "-",
        "profiles": {
            "tiny": {
                "sweep": str(folder / "sweep.yaml"),
                "scale": "bench",
                "series_axis": "model",
                "x_axis": "seed",
                "metric": ["final/val/top1"],
            }
        },
    }
    (folder / "study.yaml").write_text(yaml.safe_dump(study))
    return folder / "study.yaml"


def _job_seconds(output: str) -> dict[str, float]:
    """The runner's ``[i/n] <job>: done in N s`` lines: seconds per job name."""
    found = re.findall(r"^\[\d+/\d+\] (\S+): done in (\d+) s", output, flags=re.MULTILINE)
    return {name: float(seconds) for name, seconds in found}


def _run_study(
    point: dict[str, Any], fixed: list[str], jobs: int
) -> tuple[float, list[tuple[str, dict[str, Any], int]], dict[str, float]]:
    """The grid ``point`` (a list value: every value) with ``fixed`` overrides through the
    study runner in a fresh process, ``jobs`` one-thread jobs at a time: its wall time, each
    run's (name, summary, fine-tunes) and the runner's seconds per job."""
    with tempfile.TemporaryDirectory(prefix="vitrepro-bench-study-") as tmp:
        folder = Path(tmp)
        study = _study_files(folder, point, fixed)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
        command = [sys.executable, "-m", "vitrepro.studies.pool", str(study), "--jobs", str(jobs)]
        command += ["--output", str(folder / "out"), "--results", str(folder / "results")]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"the study run failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        runs = [(p.name, json.loads((p / "summary.json").read_text()),
                 len(list((p / "transfer").glob("*/summary.json"))))
                for p in sorted((folder / "out" / "studies" / "bench_study" / "tiny").iterdir())
                if (p / "summary.json").is_file()]  # fmt: skip
    return wall, runs, _job_seconds(done.stdout)


def measure_overhead(point: dict[str, Any], fixed: list[str]) -> dict[str, Any]:
    """One study point (grid values ``point``, fixed overrides ``fixed``) through the study
    runner with one job of one thread: wall time, its parts, and the ratio to the steps."""
    wall, [(name, summary, transfers)], jobs = _run_study(point, fixed, jobs=1)
    timings = summary["timings"]
    pretrain_job = jobs.get(name, wall)
    transfer_jobs = sum(s for job, s in jobs.items() if job != name)
    parts = {f"pretrain_{k}": timings.get(k) or 0.0 for k in PHASES}
    parts["pretrain_exit_s"] = max(0.0, pretrain_job - timings["total_s"])
    parts["transfer_jobs_s"] = transfer_jobs
    parts["runner_s"] = max(0.0, wall - pretrain_job - transfer_jobs)
    return {
        "point": point,
        "fixed": fixed,
        "steps": summary["global_steps"],
        "transfers": transfers,
        "wall_s": round(wall, 2),
        "steps_s": round(timings["steps_s"], 2),
        "overhead_ratio": round(wall / max(timings["steps_s"], 1e-9), 4),
        "parts_s": {k: round(v, 2) for k, v in parts.items()},
    }


def measure_compile(point: dict[str, Any], fixed: list[str], models: list[str]) -> dict[str, Any]:
    """Each of ``models`` at the study ``point`` (pre-training only), eager then compiled, as
    one-thread jobs: per model each job's wall time and steps time, and the compiled/eager
    ratio of the whole job (below 1: compiling wins over the whole run)."""
    results = []
    for model in models:
        grid = {**point, "model": model, "compile": [False, True]}
        pretraining_only = [o for o in fixed if not o.startswith("transfer.")] + ["transfer=none"]
        _, runs, jobs = _run_study(grid, pretraining_only, jobs=1)
        sides = {bool(s["config"]["compile"]): (jobs.get(n, 0.0), s) for n, s, _ in runs}
        (eager_s, eager), (compiled_s, compiled) = sides[False], sides[True]
        results.append({
            "model": model,
            "steps": eager["global_steps"],
            "eager_job_s": eager_s,
            "compiled_job_s": compiled_s,
            "eager_steps_s": round(eager["timings"]["steps_s"], 2),
            "compiled_steps_s": round(compiled["timings"]["steps_s"], 2),
            "ratio": round(compiled_s / max(eager_s, 1e-9), 4),
            "compile_wins": compiled_s < eager_s,
        })  # fmt: skip
    return {"point": point, "fixed": fixed, "models": results}


def measure_study(
    study: dict[str, Any],
    repeats: int,
    matmul_n: int,
    matmul_seconds: float,
    into: dict[str, Any],
    save: Callable[[], None],
) -> None:
    """The section for a profile's ``study`` settings, written ``into`` a record part by part
    (``save`` after each): parity, the study run's overhead, compile over whole runs."""
    into["parity"] = measure_parity(study["cases"], repeats, matmul_n, matmul_seconds)
    save()
    into["overhead"] = measure_overhead(study["point"], study["fixed"])
    print(f"[bench] study run: {into['overhead']['overhead_ratio']:.3f}x its steps",
          file=sys.stderr)  # fmt: skip
    save()
    if study.get("compile_models"):
        models = list(study["compile_models"])
        into["compile"] = measure_compile(study["point"], study["fixed"], models)


def study_rows(record: dict[str, Any], row: Any) -> list[dict[str, Any]]:
    """The study section's rows of the bench table (``row``: ``report._row``)."""
    study = record.get("study")
    if not study:
        return []
    rows = []
    for t in study["parity"]["models"]:
        label = f"{t['model_name']} b{t['case']['batch']}, 1 thread"
        ratio = t["time_ratio_lightning_vs_bare"]
        spread = f"runs {min(t['time_ratio_runs']):.3f}-{max(t['time_ratio_runs']):.3f}"
        rows.append(row(f"study step {label}: Lightning vs bare (time; {spread})",
                        f"{t['lightning_images_per_s']:.1f} img/s",
                        f"{t['bare_images_per_s']:.1f} img/s", ratio, f"<= {PARITY_GOAL}",
                        ratio <= PARITY_GOAL))  # fmt: skip
        goal = MFU_GOAL if t["case"]["model"].startswith("vit") else None
        rows.append(row(f"study MFU {label} (vs 1-thread matmul {t['matmul_tflops']:.3f} "
                        "TFLOP/s)", f"{t['lightning_tflops']:.3f} TFLOP/s",
                        f"bare loop MFU {t['mfu_bare']:.3f}", t["mfu"],
                        None if goal is None else f">= {goal}",
                        None if goal is None else t["mfu"] >= goal))  # fmt: skip
    overhead = study["overhead"]
    parts = ", ".join(f"{k.removesuffix('_s')} {v:.1f}" for k, v in overhead["parts_s"].items())
    rows.append(row(f"study run of {overhead['steps']} steps + transfer: wall vs steps ({parts} s)",
                    f"{overhead['wall_s']:.1f} s", f"{overhead['steps_s']:.1f} s of steps",
                    overhead["overhead_ratio"], f"<= {OVERHEAD_GOAL}",
                    overhead["overhead_ratio"] <= OVERHEAD_GOAL))  # fmt: skip
    for c in (study.get("compile") or {}).get("models", []):
        rows.append(row(f"study run of {c['model']}, {c['steps']} steps: compile=true vs eager, "
                        f"whole job with compilation (steps {c['compiled_steps_s']:.1f} vs "
                        f"{c['eager_steps_s']:.1f} s)", f"{c['compiled_job_s']:.1f} s",
                        f"{c['eager_job_s']:.1f} s", c["ratio"], "< 1 to be the default",
                        c["compile_wins"]))  # fmt: skip
    return rows
