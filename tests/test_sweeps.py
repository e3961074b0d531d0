"""Every sweep file is a valid W&B sweep whose runs compose as Hydra overrides of src/train.py."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml

from test_config_tree import composed
from vitrepro.validate import validate_config

with warnings.catch_warnings():  # sweeps 0.2.0 warns about pydantic v1-style config names
    warnings.simplefilter("ignore")
    import sweeps
    from sweeps import RunState, SweepRun
from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

SWEEPS = sorted((Path(__file__).resolve().parents[1] / "sweeps").glob("*.yaml"))


def expand_grid(sweep: dict) -> list[dict]:
    """The runs W&B's own sweep engine proposes, in order, with no server."""
    runs: list[SweepRun] = []
    while (proposal := sweeps.next_run(sweep, runs)) is not None:
        runs.append(
            SweepRun(name=f"run{len(runs)}", config=proposal.config, state=RunState.finished)
        )
    return [run.config for run in runs]


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_sweep_is_valid_and_every_run_composes(path):
    sweep = yaml.safe_load(path.read_text())
    assert sweeps.schema_violations_from_proposed_config(sweep) == []
    assert sweep["method"] == "grid" and "${args_no_hyphens}" in sweep["command"]
    grid = expand_grid(sweep)
    expected = 1
    for spec in sweep["parameters"].values():
        expected *= len(spec["values"])
    assert len(grid) == expected
    for run in grid:
        argv = create_sweep_command_args({"args": run})["args_no_hyphens"]  # as the agent does
        validate_config(composed(*argv))
