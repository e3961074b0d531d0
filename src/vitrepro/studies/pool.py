"""Run a study's grid and draw its figure: ``python -m vitrepro.studies.pool fig3 --profile tiny``.

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
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from vitrepro.compute.performance import study_layout, threads_per_process
from vitrepro.config.errors import ConfigError
from vitrepro.files import PROJECT_ROOT, write_text_atomic
from vitrepro.studies.collect import local_records, study_table, wandb_records
from vitrepro.studies.committed import POOLS
from vitrepro.studies.curves_figure import draw_curves
from vitrepro.studies.figures import render
from vitrepro.studies.grid import (
    GridPoint,
    adopt_twins,
    expand_grid,
    in_run_order,
    load_sweep,
    with_seeds,
)
from vitrepro.studies.jobs import Launch, run_grid
from vitrepro.studies.paired import REFERENCE_KEYS, paired_differences
from vitrepro.studies.requirement import data_requirement, requirement_text
from vitrepro.studies.seeds import competence, competence_text, gaps, seed_summary
from vitrepro.tracking.artifacts import log_study

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
    for key in study["profiles"][profile].get("reference") or {}:
        if key not in REFERENCE_KEYS:
            raise ConfigError(
                f"{path}: reference", key, f"name it by {' and '.join(REFERENCE_KEYS)}"
            )
    return study


def study_points(
    profile: dict[str, Any], seeds: int | None = None, first_seed: int = 0
) -> list[GridPoint]:
    """Every run of the profile's sweep, or of its sweeps one after another (Figure 8 varies
    one model dimension per sweep); ``seeds``: each once per seed from ``first_seed`` instead
    of the sweep's own seeds; in the profile's ``run_order`` where it gives one."""
    sweeps = profile["sweep"] if isinstance(profile["sweep"], list) else [profile["sweep"]]
    points = [p for sweep in sweeps for p in expand_grid(load_sweep(PROJECT_ROOT / sweep))]
    points = with_seeds(points, seeds, first_seed) if seeds else points
    return in_run_order(points, profile.get("run_order"))


# The paper-scale rehearsal (``--rehearse``, ``make rehearse``): every full-profile run with
# tiny stand-ins (training.rehearsal), as 2 data-parallel processes started as ``srun`` starts
# them, each point in the environment a W&B agent gives its run.
REHEARSAL = Launch(
    extra=(
        "rehearsal=true",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        "trainer.enable_progress_bar=false",
    ),
    env=(
        ("WANDB_RUN_ID", "rehearsal-{slug}"),
        ("WANDB_SWEEP_ID", "rehearsal"),
        ("WANDB_MODE", "offline"),
    ),
    tasks=2,
)


REHEARSAL_NOTE = "rehearsal: the paper's runs with tiny stand-ins on CPU; the accuracies are noise"


def run_pool(study: dict[str, Any], output: str, profile: str, label: str | None = None) -> Path:
    """Where a study's runs live: ``runs`` names a pool that studies share (a run with the
    same arguments is then run once for all of them), else the study's own folder; in it, a
    folder named ``label`` (default: the profile)."""
    pool = study["profiles"][profile].get("runs", study["name"])
    return (Path(output) / "studies" / pool / (label or profile)).resolve()


def markdown_table(table: pd.DataFrame) -> str:
    cells = [[("" if pd.isna(v) else str(v)) for v in row] for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells]) + "\n"


def profile_requirement(results: pd.DataFrame, spec: dict[str, Any]) -> pd.DataFrame:
    """The data requirement (``vitrepro.studies.requirement``) of a profile that asks for one
    (``requirement: {accuracies, ceiling}``, over its numeric x axis and its gap's models)."""
    wanted = spec.get("requirement")
    if not wanted or not spec.get("gap") or results.empty:
        return pd.DataFrame()
    return data_requirement(
        results, spec["x_axis"], spec["gap"], wanted["accuracies"], wanted.get("ceiling", 99.0)
    )


def write_results(
    study: dict, profile: str, records: list, out_dir: Path, label: str | None = None
) -> Path:
    """Results CSV (every seed), the seed summary and the CNN-minus-ViT gaps (CSV), the figure
    (PNG) and the comparison table (Markdown) for one profile, named ``<study>_<label>``
    (default: the profile)."""
    spec = study["profiles"][profile]
    results = study_table(records, spec)
    summary, gap, fit = seed_summary(results), gaps(results, spec), competence(results, spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{study['name']}_{label or profile}"
    requirement = profile_requirement(results, spec)
    write_text_atomic(out_dir / f"{stem}.csv", results.to_csv(index=False))
    write_text_atomic(out_dir / f"{stem}_summary.csv", summary.to_csv(index=False))
    if len(gap):
        write_text_atomic(out_dir / f"{stem}_gap.csv", gap.to_csv(index=False))
    # against the reference's own runs: Figure 8's base, before it is drawn into every line
    paired = paired_differences(study_table(records, {**spec, "shared_series": None}), spec)
    if len(paired):
        write_text_atomic(out_dir / f"{stem}_paired.csv", paired.to_csv(index=False))
    note = REHEARSAL_NOTE if label == "rehearsal" else requirement_text(requirement) or None
    _, table = render(study, profile, summary, out_dir / f"{stem}.png", gap, fit, note)
    draw_curves(records, spec, out_dir / f"{stem}_curves.png", f"{study['title']}: learning curves")
    text = markdown_table(table)
    if len(gap):
        text += "\nCNN minus ViT (95% interval over seeds):\n\n" + markdown_table(gap)
    if len(paired):
        text += "\nEach setting minus the reference, paired by seed (95% t interval):\n\n"
        text += markdown_table(paired)
    if len(requirement):
        write_text_atomic(out_dir / f"{stem}_requirement.csv", requirement.to_csv(index=False))
        text += "\nData requirement (power-law fit, 95% bootstrap interval over seeds):\n\n"
        text += markdown_table(requirement.round(3))
    if fit:
        limited = "compute-limited" if fit["compute_limited"] else "competent"
        text += f"\nCompetence ({limited}): {competence_text(fit)}.\n"
    write_text_atomic(out_dir / f"{stem}_vs_paper.md", text)
    return out_dir / f"{stem}.png"


def log_study_outputs(study: dict, label: str, results: Path, output: Path) -> Path:
    """The files ``write_results`` wrote, as one W&B run of job type ``study``
    (``vitrepro.tracking.artifacts.log_study``), kept under ``<output>/studies/wandb``."""
    stem = f"{study['name']}_{label}"
    tables = {
        path.stem.removeprefix(stem).strip("_") or "results": pd.read_csv(path)
        for path in sorted(results.glob(f"{stem}*.csv"))
    }
    figures = sorted(results.glob(f"{stem}*.png"))
    config = {"study": study["name"], "profile": label, "title": study["title"]}
    return log_study(stem, tables, figures, output / "studies", config)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "study", help="a study (experiments/<name>/study.yaml: fig3, table8, ...) or a path"
    )
    parser.add_argument(
        "--profile", default="tiny", help="tiny (2 CPU cores) | small (one GPU) | full (the paper)"
    )
    parser.add_argument(
        "--jobs", type=int, help="runs at a time (default: one per GPU, else one per CPU core)"
    )
    parser.add_argument("--seeds", type=int, help="seeds per grid point (default: the sweep's)")
    parser.add_argument("--seed", type=int, default=0, help="the first seed, with --seeds")
    parser.add_argument("--launcher", default="local", choices=["local", "slurm"])
    parser.add_argument("--source", default="local", choices=["local", "wandb"])
    parser.add_argument(
        "--sweep", help="with --source wandb: ENTITY/PROJECT/SWEEP_ID (several: comma-separated)"
    )
    parser.add_argument("--collect-only", action="store_true", help="draw from existing runs")
    parser.add_argument(
        "--rehearse",
        action="store_true",
        help="with --profile full: every run with tiny stand-ins, 2 CPU processes each",
    )
    parser.add_argument("--output", default=os.environ.get("VITREPRO_OUTPUT", "outputs"))
    parser.add_argument("--results", default=str(PROJECT_ROOT / "experiments"))
    args = parser.parse_args(argv)
    try:
        study = load_study(args.study, args.profile)
        profile = study["profiles"][args.profile]
        points = study_points(profile, args.seeds, args.seed)
        label = "rehearsal" if args.rehearse else args.profile
        study_dir = run_pool(study, args.output, args.profile, label)
        if args.rehearse and args.profile != "full":
            raise ConfigError(
                "--rehearse", args.profile, "rehearse the paper's runs: --profile full"
            )
        failed = []
        if args.source == "wandb":
            history = profile["metric"] if profile["x_axis"] == "step" else ()
            records = wandb_records(args.sweep or "", history_keys=history)
        else:
            pools = Path(args.results) / POOLS.name  # committed runs beside the results
            kept = None if args.rehearse else pools / study_dir.parent.name / study_dir.name
            points = adopt_twins(points, study_dir, kept)
            if not args.collect_only:
                jobs = args.jobs or study_layout()
                launch = REHEARSAL if args.rehearse else Launch(args.launcher, jobs, committed=kept)
                threads = threads_per_process(launch.jobs * launch.tasks)
                print(f"layout: {launch.jobs} job(s) at a time, {launch.tasks} process(es) a job, "
                      f"{threads} thread(s) each")  # fmt: skip
                failed = run_grid(points, study_dir, launch)
            records = local_records(study_dir / p.slug for p in points)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results = Path(args.results) / study["name"]
    if not records:  # nothing to draw: a committed figure is not replaced by an empty one
        print(f"error: no finished run under {study_dir}; {results} left as it is", file=sys.stderr)
        return 1 if failed else 2
    figure = write_results(study, args.profile, records, results, label)
    if os.environ.get("WANDB_MODE") != "disabled":  # the tables and figures as a W&B run
        where = log_study_outputs(study, label, results, Path(args.output))
        print(f"W&B study run {where}")
    print(f"{len(records)} of {len(points)} runs collected; figure {figure}")
    if failed:
        print(f"{len(failed)} runs failed; rerun the same command to retry them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
