"""Every sweep file is a valid W&B sweep whose runs compose as Hydra overrides of src/train.py."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml

from helpers import composed
from vitrepro.config.rules import validate_config
from vitrepro.studies.grid import expand_grid as study_grid
from vitrepro.studies.grid import load_sweep
from vitrepro.studies.spec import study_overlays

with warnings.catch_warnings():  # sweeps 0.2.0 warns about pydantic v1-style config names
    warnings.simplefilter("ignore")
    import sweeps
    from sweeps import RunState, SweepRun
from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

SWEEP_DIR = Path(__file__).resolve().parents[1] / "sweeps"
SWEEPS = sorted(SWEEP_DIR.rglob("*.yaml"))
SWEEP_IDS = [str(p.relative_to(SWEEP_DIR)) for p in SWEEPS]


def expand_grid(sweep: dict) -> list[dict]:
    """The runs W&B's own sweep engine proposes, in order, with no server."""
    runs: list[SweepRun] = []
    while (proposal := sweeps.next_run(sweep, runs)) is not None:
        runs.append(
            SweepRun(name=f"run{len(runs)}", config=proposal.config, state=RunState.finished)
        )
    return [run.config for run in runs]


@pytest.mark.parametrize("path", SWEEPS, ids=SWEEP_IDS)
def test_sweep_is_valid_and_every_run_composes(path):
    sweep = yaml.safe_load(path.read_text())
    assert sweeps.schema_violations_from_proposed_config(sweep) == []
    assert sweep["method"] == "grid" and "${args_no_hyphens}" in sweep["command"]
    grid = expand_grid(sweep)
    expected = 1
    for spec in sweep["parameters"].values():
        expected *= len(spec.get("values", [None]))
    assert len(grid) == expected
    # the study runner expands and renders the grid exactly as the W&B agent does
    ours = study_grid(load_sweep(path))
    assert sorted(p.args for p in ours) == sorted(
        create_sweep_command_args({"args": run})["args_no_hyphens"] for run in grid
    )
    paper_scale = "tiny" not in path.parts and path.stem != "synthetic_sanity"
    for run in grid:
        argv = create_sweep_command_args({"args": run})["args_no_hyphens"]  # as the agent does
        # paper-scale grids are planned here, run elsewhere: skip data locations and GPUs
        validate_config(composed(*argv), paths=not paper_scale, devices=not paper_scale)


@pytest.mark.parametrize("path", SWEEPS, ids=SWEEP_IDS)
def test_sweep_names_its_project(path):
    """`wandb sweep FILE` then creates the sweep where the runs log (logger.project)."""
    assert yaml.safe_load(path.read_text()).get("project") == "vitrepro"


STUDY_EXPERIMENTS = SWEEP_DIR.parent / "conf" / "experiment" / "study"
NAMES_A_SWEEP = {"logger.group", "recipe.epochs"}  # a fixed value telling sibling sweeps apart


@pytest.mark.parametrize("path", SWEEPS, ids=SWEEP_IDS)
def test_a_sweep_holds_its_axes_and_its_study_experiment_the_rest(path):
    parameters = yaml.safe_load(path.read_text())["parameters"]
    fixed = {key for key, spec in parameters.items() if "values" not in spec}
    assert fixed <= {"experiment"} | NAMES_A_SWEEP, (
        f"fixed settings belong in the experiment: {fixed}"
    )
    if path.stem == "synthetic_sanity":  # nothing fixed: the defaults
        return
    name = parameters["experiment"]["value"]
    overlay = STUDY_EXPERIMENTS.parent / f"{name}.yaml"
    assert name.startswith("study/") and overlay.is_file()
    header = overlay.read_text()
    assert header.startswith("# @package _global_") and "make reproduce" in header


def test_every_study_experiment_is_used_by_a_sweep_or_is_a_study_file():
    used = {yaml.safe_load(p.read_text())["parameters"].get("experiment", {}).get("value")
            for p in SWEEPS}  # fmt: skip
    overlays = {f"study/{p.stem}" for p in STUDY_EXPERIMENTS.glob("*.yaml")}
    studies = {f"study/{p.stem}" for p, _ in study_overlays()}  # whose grids name another
    assert used - {None} <= overlays and overlays - used <= studies
    assert {"study/fig3_tiny", "study/fig4_tiny", "study/fig5_tiny"} <= overlays - used
