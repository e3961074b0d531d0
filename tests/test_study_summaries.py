"""Studies read run summaries: a local grid (Hydra multirun) collected into one table."""

from __future__ import annotations

from conftest import TINY_DATA, TINY_VIT, run_script
from vitrepro.studies.collect import load_summaries


def test_multirun_grid_is_collected_from_summaries(tmp_path):
    result = run_script(
        "train.py", "-m", *TINY_DATA, *TINY_VIT, "data.num_train=128,256", output_dir=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
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
