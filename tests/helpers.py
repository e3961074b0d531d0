"""Helpers shared by several test modules: composed configs, small files on disk, commands as a
user runs them, the micro study."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from PIL import Image

from conftest import ROOT, TINY_VIT, Result, clean_env

CONF = Path(__file__).resolve().parents[1] / "conf"
PAPER_TABLE1 = Path(__file__).resolve().parents[1] / "src/vitrepro/paper/table1_variants.csv"
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))


def composed(*overrides: str) -> dict:
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                "paths.root_dir=/tmp/vitrepro",
                "paths.run_dir=/tmp/vitrepro/run",
                *overrides,
            ],
        )
    return OmegaConf.to_container(cfg, resolve=True)


def model_cfg(name: str, *overrides: str) -> dict:
    return composed(f"model={name}", *overrides)["model"]


def randomised(net: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn_like(p) * 0.1)
    return net.eval()


def write_jpeg_tree(root: Path, classes: int = 3, per_class: int = 4) -> None:
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in range(classes):
            folder = root / split / f"class_{c}"
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 255, size=(40, 48, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)


def export_command(*args: str, output_dir: Path) -> Result:
    """``python -m vitrepro.export ARGS`` as a user runs it."""
    env = {**clean_env(output_dir), "PYTHONPATH": str(ROOT / "src")}
    command = [sys.executable, "-m", "vitrepro.export", *map(str, args)]
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    return Result(proc.returncode, proc.stdout, proc.stderr, output_dir)


def on_rank(datamodule, rank: int, world: int):
    """The datamodule as Lightning hands it to rank ``rank`` of ``world`` (epoch 0)."""
    datamodule.trainer = SimpleNamespace(
        global_rank=rank, world_size=world, current_epoch=0, accelerator=None
    )
    return datamodule


MICRO_SWEEP = {
    "program": "src/train.py",
    "method": "grid",
    "parameters": {
        "model": {"values": ["vit_tiny_p8", "vit_tiny_p4"]},
        "recipe.steps": {"value": 3},
    },
    "command": ["${env}", "python", "${program}", "${args_no_hyphens}"],
}
MICRO_FIXED = [
    *TINY_VIT,
    "data.image_size=16",
    "data.num_train=64",
    "data.num_val=32",
    "recipe.global_batch_size=16",
    "recipe.schedule.warmup_steps=1",
    "evaluation.shots=[1,2]",
    "evaluation.seeds=1",
    "logger=csv",
]


def micro_study(tmp_path: Path, monkeypatch) -> list[str]:
    """The micro study's files in ``tmp_path``; returns its command-line arguments."""
    sweep = json.loads(json.dumps(MICRO_SWEEP))
    for override in MICRO_FIXED:
        key, value = override.split("=", 1)
        sweep["parameters"][key] = {"value": yaml.safe_load(value)}
    (tmp_path / "micro.yaml").write_text(yaml.safe_dump(sweep))
    study = {
        "name": "micro",
        "figure": "fewshot_subsets",
        "title": "micro study",
        "x": "steps",
        "y": "5-shot",
        "profiles": {
            "tiny": {
                "sweep": str(tmp_path / "micro.yaml"),
                "scale": "test",
                "series_axis": "model",
                "x_axis": "recipe.steps",
                "metric": ["fewshot/synthetic_transfer/2shot"],
                "labels": {"model": {"vit_tiny_p8": "ViT-B/32", "vit_tiny_p4": "ViT-L/16"}},
            }
        },
    }
    (tmp_path / "micro_study.yaml").write_text(yaml.safe_dump(study))
    for key, value in clean_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    args = [str(tmp_path / "micro_study.yaml"), "--output", str(tmp_path / "out")]
    args += ["--results", str(tmp_path / "results")]
    return args
