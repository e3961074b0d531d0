"""The console commands ``pip install -e .`` installs run the entry scripts as typed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, clean_env

BIN = Path(sys.executable).parent


def _run(tmp_path: Path, command: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / command), *args],
        cwd=tmp_path,  # anywhere: the commands find the checkout's conf/
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        timeout=300,
    )


def test_train_command_composes_and_rejects_like_the_script(tmp_path):
    shown = _run(tmp_path, "vitrepro-train", "--cfg", "job", "model=vit_b16")
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert "name: ViT-B/16" in shown.stdout and "hidden_size: 768" in shown.stdout
    wrong = _run(tmp_path, "vitrepro-train", "model=vit_b99")
    assert wrong.returncode == 2 and len(wrong.stderr.strip().splitlines()) == 1
    assert "vit_b99" in wrong.stderr  # the option it names


def test_the_other_commands_are_the_entry_scripts(tmp_path):
    shards = _run(tmp_path, "vitrepro-shards", "--help")
    assert shards.returncode == 0 and "Write a dataset as WebDataset shards" in shards.stdout
    card = _run(tmp_path, "vitrepro-model-card", "model=vit_b16", "num_classes=1000")
    assert card.returncode == 0, card.stderr[-2000:]
    assert round(json.loads(card.stdout)["params_without_head"] / 1e6) == 86  # ViT-B (Table 1)
    study = _run(tmp_path, "vitrepro-study", "fig3", "--profile", "tiny", "--rehearse")
    assert study.returncode == 2 and "--profile full" in study.stderr


def test_hydra_tab_completion_installs(tmp_path):
    script = subprocess.run(
        [sys.executable, "src/train.py", "-sc", "install=bash"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        timeout=120,
    )
    assert script.returncode == 0 and "hydra_bash_completion" in script.stdout
