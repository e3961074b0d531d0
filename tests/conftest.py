"""Shared helpers: run the real entry point in a subprocess with tiny overrides."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from vitrepro.tracking import record

ROOT = Path(__file__).resolve().parents[1]

# A run small enough for seconds on a CPU: 16-px images, depth 1, a few steps.
TINY_DATA = [
    "data.image_size=16",
    "data.num_train=256",
    "data.num_val=64",
    "recipe.global_batch_size=32",
    "recipe.steps=4",
    "recipe.schedule.warmup_steps=1",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]
TINY_VIT = ["model.depth=1", "model.hidden_size=32", "model.mlp_size=64", "model.num_heads=2"]
TINY_BIT = ["model=bit_tiny", "model.channels=[32,64,64,64]", "model.stem_channels=8"]
# A two-step fine-tune on the held-out glyph sets: a transfer child of a tiny run.
TINY_TRANSFER_CHILD = [
    "data=synthetic",
    "data.task=transfer",
    "data.image_size=16",
    "data.num_train=64",
    "data.num_val=32",
    "recipe=finetune_tiny",
    "recipe.steps=2",
    "recipe.global_batch_size=16",
    "recipe.schedule.warmup_steps=1",
    "evaluation=none",
]


def few_steps(batch: int, steps: int) -> list[str]:
    """A short run without tracking or few-shot evaluation, for tests of the data paths."""
    return [
        f"recipe.global_batch_size={batch}",
        f"recipe.steps={steps}",
        "recipe.schedule.warmup_steps=1",
        "logger=none",
        "evaluation=none",
        "trainer.enable_progress_bar=false",
    ]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    output_dir: Path

    def run_dirs(self) -> list[Path]:
        return sorted(p for p in (self.output_dir / "runs").glob("*") if p.is_dir())

    def summary(self) -> dict:
        (run_dir,) = self.run_dirs()
        return record.read(run_dir)


def clean_env(output_dir: Path) -> dict[str, str]:
    """No W&B credentials or mode: the logger must choose offline by itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "HYDRA_"))}
    env["VITREPRO_OUTPUT"] = str(output_dir)
    env["HOME"] = str(output_dir)  # no ~/.netrc with W&B credentials
    return env


def run_script(
    script: str, *args: str, output_dir: Path, timeout: int = 600, env: dict | None = None
) -> Result:
    """Run one of the entry points in ``src/`` as a user would, outputs under ``output_dir``;
    ``env``: variables added to the clean environment."""
    proc = subprocess.run(
        [sys.executable, f"src/{script}", *args],
        cwd=ROOT,
        env={**clean_env(output_dir), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr, output_dir)


@pytest.fixture
def train(tmp_path: Path):
    """``train(*overrides)`` runs ``python src/train.py`` and returns its ``Result``."""

    def run(*overrides: str, timeout: int = 600) -> Result:
        return run_script("train.py", *overrides, output_dir=tmp_path, timeout=timeout)

    return run


def write_synthetic_shards(root: Path, train: int, val: int, shard_size: int) -> Path:
    """The embedded dataset at 16 px as train/ and val/ shards under ``root``."""
    from vitrepro.data.shards.write import synthetic_samples, write_shards

    for split, size in (("train", train), ("val", val)):
        samples, classes = synthetic_samples(size, split, image_size=16)
        write_shards(samples, classes, root / split, shard_size=shard_size, progress=False)
    return root
