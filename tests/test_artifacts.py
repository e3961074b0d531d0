"""What W&B users find beside the metrics: a run's final and best checkpoints as model
artifacts (safetensors exports), and a study's tables and figures as a run of its own; read
back from the offline run files with the W&B CLI, as a user would before `wandb sync`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from conftest import TINY_DATA, TINY_VIT
from vitrepro.tracking.artifacts import log_study


def _records(offline_run: Path) -> list[dict]:
    """Every record of an offline run: `wandb leet inspect --json`."""
    cli = [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(offline_run)]
    proc = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def test_a_run_logs_its_final_and_best_checkpoints_as_model_artifacts(train):
    result = train(*TINY_DATA, *TINY_VIT, "recipe.eval_every_steps=2")
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = result.run_dirs()
    (offline_run,) = (run_dir / "wandb").glob("offline-run-*")
    artifacts = [r["artifact"] for r in _records(offline_run) if r["type"] == "artifact"]
    by_alias = {alias: a for a in artifacts for alias in a["aliases"]}
    assert set(by_alias) == {"final", "latest", "best"}
    for artifact in artifacts:
        assert artifact["type"] == "model" and artifact["name"].startswith("model-")
        files = {entry["path"] for entry in artifact["manifest"]["contents"]}
        assert files == {"model.safetensors", "config.json"}  # the export: nothing to unpickle
        assert json.loads(artifact["metadata"])["final"]["val/top1"] >= 0
    assert (run_dir / "export" / "final" / "model.safetensors").is_file()
    assert (run_dir / "export" / "best" / "config.json").is_file()


def test_a_study_logs_its_tables_and_figures_as_a_study_run(tmp_path, monkeypatch):
    for variable in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no W&B credentials: offline
    figure, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    figure.savefig(tmp_path / "fig3_tiny.png")
    table = pd.DataFrame({"model": ["vit", "cnn"], "value": [80.0, 99.0], "sd": [1.0, None]})
    where = log_study("fig3_tiny", {"results": table}, [tmp_path / "fig3_tiny.png"],
                      tmp_path / "studies", {"study": "fig3"})  # fmt: skip
    assert where.name.startswith("offline-run-") and where.parent == tmp_path / "studies" / "wandb"
    records = _records(where)
    assert any(r["type"] == "run" and r["run"].get("job_type") == "study" for r in records)
    logged = json.dumps([r for r in records if r["type"] == "history"])
    assert "table-file" in logged and "image-file" in logged
