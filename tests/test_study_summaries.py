"""Studies read run summaries: a local grid (Hydra multirun) collected into one table."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT, TINY_DATA, TINY_VIT, clean_env
from vitrepro.studies.summaries import load_summaries


def test_multirun_grid_is_collected_from_summaries(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "src/train.py",
            "-m",
            *TINY_DATA,
            *TINY_VIT,
            "data.num_train=128,256",
        ],
        cwd=ROOT,
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "multirun").iterdir()
    # an unfinished run (no summary.json) must not show up in a study's table
    (sweep_dir / "killed_run" / ".hydra").mkdir(parents=True)

    table = load_summaries([sweep_dir], config_keys=["data.num_train"])
    assert sorted(table["data.num_train"]) == [128, 256]
    assert table["final/val/top1"].between(0, 1).all()
    assert (table["images_seen"] == 4 * 32).all()
    assert table["run_dir"].nunique() == 2
    # each run of the grid is its own W&B run, not the first one continued
    offline_runs = {p.name for p in sweep_dir.glob("*/wandb/offline-run-*")}
    assert len(offline_runs) == 2
