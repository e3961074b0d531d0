"""Run a study's grid and draw its figure: ``python -m vitrepro.studies.run fig3 [--profile tiny]``.

The grid is the profile's W&B sweep file, expanded and rendered as the agent does; each point
runs ``src/train.py`` in ``<output>/studies/<study>/<profile>/<point>`` with ``resume=auto``.
Finished points (a finished ``summary.json`` with every transfer) are skipped and interrupted
ones resume, so rerunning completes a study without duplicating a run. Then the results CSV,
the figure PNG and the measured-vs-paper table are written to ``experiments/<study>/``, from
the local run summaries or (``--source wandb --sweep ENTITY/PROJECT/ID``) from W&B.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from vitrepro.errors import ConfigError
from vitrepro.files import write_text_atomic
from vitrepro.record import finished
from vitrepro.studies.collect import local_records, study_table, wandb_records
from vitrepro.studies.figures import render
from vitrepro.studies.grid import GridPoint, expand_grid, load_sweep, with_seeds
from vitrepro.studies.seeds import competence, competence_text, gaps, seed_summary
from vitrepro.transfer import PROJECT_ROOT

STUDIES = PROJECT_ROOT / "experiments"  # one folder a study: study.yaml, README, results


def load_study(name: str, profile: str) -> dict[str, Any]:
    """``experiments/<name>/study.yaml``, or a study file given by its path."""
    path = Path(name) if name.endswith(".yaml") else STUDIES / name / "study.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.parent.name for p in STUDIES.glob("*/study.yaml")))
        raise ConfigError("study", name, f"choose one of {known}")
    study = yaml.safe_load(path.read_text())
    if profile not in study["profiles"]:
        raise ConfigError("profile", profile, f"choose one of {', '.join(study['profiles'])}")
    return study


def study_points(
    profile: dict[str, Any], seeds: int | None = None, first_seed: int = 0
) -> list[GridPoint]:
    """Every run of the profile's sweep, or of its sweeps one after another (Figure 8 varies
    one model dimension per sweep); ``seeds``: each once per seed from ``first_seed`` instead
    of the sweep's own seeds."""
    sweeps = profile["sweep"] if isinstance(profile["sweep"], list) else [profile["sweep"]]
    points = [p for sweep in sweeps for p in expand_grid(load_sweep(PROJECT_ROOT / sweep))]
    return with_seeds(points, seeds, first_seed) if seeds else points


def run_pool(study: dict[str, Any], output: str, profile: str) -> Path:
    """Where a study's runs live: ``runs`` names a pool that studies share (a run with the
    same arguments is then run once for all of them), else the study's own folder."""
    pool = study["profiles"][profile].get("runs", study["name"])
    return (Path(output) / "studies" / pool / profile).resolve()


def child_environment(jobs: int) -> dict[str, str]:
    """The runs' environment: the CPU cores split between the ``jobs`` running at once
    (two runs of two threads on two cores are several times slower than two of one)."""
    env = dict(os.environ)
    threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
    env.setdefault("OMP_NUM_THREADS", str(threads))
    return env


def is_complete(run_dir: Path) -> bool:
    """Finished, with every transfer the run asked for."""
    summary = finished(run_dir)
    if summary is None:
        return False
    wanted = summary.get("config", {}).get("transfer") or {}
    return set(wanted) <= set(summary.get("transfer", {}))


def point_command(point: GridPoint, run_dir: Path, launcher: str = "local") -> list[str]:
    """``src/train.py`` for one grid point in ``run_dir``; on SLURM a one-run multirun through
    Hydra's submitit launcher (``conf/hydra/launcher/slurm.yaml``), which waits for the job."""
    train = [sys.executable, str(PROJECT_ROOT / "src" / "train.py")]
    if launcher == "slurm":
        place = [f"hydra.sweep.dir={run_dir.parent}", f"hydra.sweep.subdir={run_dir.name}"]
        return [*train, "-m", "hydra/launcher=slurm", *point.args, *place, "resume=auto"]
    return [*train, *point.args, f"hydra.run.dir={run_dir}", "resume=auto"]


def run_point(
    point: GridPoint, run_dir: Path, log_dir: Path, launcher: str = "local", jobs: int = 1
) -> tuple[GridPoint, int, float]:
    """Run one grid point; its output goes to ``<log_dir>/<point>.log``."""
    command = point_command(point, run_dir, launcher)
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with open(log_dir / f"{point.slug}.log", "a") as log:
        returncode = subprocess.run(
            command,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_environment(jobs),
        ).returncode
    return point, returncode, time.time() - started


def run_grid(
    points: list[GridPoint], study_dir: Path, jobs: int = 1, launcher: str = "local"
) -> list[str]:
    """Run the unfinished points (``jobs`` at a time); returns the slugs that failed."""
    todo = [p for p in points if not is_complete(study_dir / p.slug)]
    print(
        f"{len(points) - len(todo)} of {len(points)} runs already finished; running {len(todo)}",
        flush=True,
    )
    failed: list[str] = []
    pending, running, finished, stop = iter(todo), set(), 0, False
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        while True:
            while not stop and len(running) < max(1, jobs):  # start runs only as slots free up
                point = next(pending, None)
                if point is None:
                    break
                log_dir = study_dir / "logs"
                running.add(
                    pool.submit(run_point, point, study_dir / point.slug, log_dir, launcher, jobs)
                )
            if not running:
                return failed
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                point, returncode, seconds = future.result()
                finished += 1
                status = "done" if returncode == 0 else f"FAILED (exit {returncode})"
                args = " ".join(point.args)
                print(f"[{finished}/{len(todo)}] {args}: {status} in {seconds:.0f} s", flush=True)
                if returncode == 0:
                    continue
                failed.append(point.slug)
                log = study_dir / "logs" / f"{point.slug}.log"
                print(f"    log: {log}")
                if returncode == 2:  # a user error (bad config, missing data): the rest would too
                    lines = log.read_text().strip().splitlines()
                    print(f"    {lines[-1] if lines else ''}\nstopping the study", file=sys.stderr)
                    stop = True
    return failed


def markdown_table(table: pd.DataFrame) -> str:
    cells = [[("" if pd.isna(v) else str(v)) for v in row] for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells]) + "\n"


def write_results(study: dict, profile: str, records: list, out_dir: Path) -> Path:
    """Results CSV (every seed), the seed summary and the CNN-minus-ViT gaps (CSV), the figure
    (PNG) and the comparison table (Markdown) for one profile."""
    spec = study["profiles"][profile]
    results = study_table(records, spec)
    summary, gap, fit = seed_summary(results), gaps(results, spec), competence(results, spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{study['name']}_{profile}"
    write_text_atomic(out_dir / f"{stem}.csv", results.to_csv(index=False))
    write_text_atomic(out_dir / f"{stem}_summary.csv", summary.to_csv(index=False))
    if len(gap):
        write_text_atomic(out_dir / f"{stem}_gap.csv", gap.to_csv(index=False))
    _, table = render(study, profile, summary, out_dir / f"{stem}.png", gap, fit)
    text = markdown_table(table)
    if len(gap):
        text += "\nCNN minus ViT (95% interval over seeds):\n\n" + markdown_table(gap)
    if fit:
        limited = "compute-limited" if fit["compute_limited"] else "competent"
        text += f"\nCompetence ({limited}): {competence_text(fit)}.\n"
    write_text_atomic(out_dir / f"{stem}_vs_paper.md", text)
    return out_dir / f"{stem}.png"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "study", help="a study (experiments/<name>/study.yaml: fig3, table8, ...) or a path"
    )
    parser.add_argument(
        "--profile", default="tiny", help="tiny (2 CPU cores) | small (one GPU) | full (the paper)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time")
    parser.add_argument("--seeds", type=int, help="seeds per grid point (default: the sweep's)")
    parser.add_argument("--seed", type=int, default=0, help="the first seed, with --seeds")
    parser.add_argument("--launcher", default="local", choices=["local", "slurm"])
    parser.add_argument("--source", default="local", choices=["local", "wandb"])
    parser.add_argument(
        "--sweep", help="with --source wandb: ENTITY/PROJECT/SWEEP_ID (several: comma-separated)"
    )
    parser.add_argument("--collect-only", action="store_true", help="draw from existing runs")
    parser.add_argument("--output", default=os.environ.get("VITREPRO_OUTPUT", "outputs"))
    parser.add_argument("--results", default=str(PROJECT_ROOT / "experiments"))
    args = parser.parse_args(argv)
    try:
        study = load_study(args.study, args.profile)
        profile = study["profiles"][args.profile]
        points = study_points(profile, args.seeds, args.seed)
        study_dir = run_pool(study, args.output, args.profile)
        failed = []
        if args.source == "wandb":
            history = profile["metric"] if profile["x_axis"] == "step" else ()
            records = wandb_records(args.sweep or "", history_keys=history)
        else:
            if not args.collect_only:
                failed = run_grid(points, study_dir, args.jobs, args.launcher)
            records = local_records(study_dir / p.slug for p in points)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    figure = write_results(study, args.profile, records, Path(args.results) / study["name"])
    print(f"{len(records)} of {len(points)} runs collected; figure {figure}")
    if failed:
        print(f"{len(failed)} runs failed; rerun the same command to retry them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
