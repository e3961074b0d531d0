"""Checkpoint intervals: every N steps and after every validation, both kept."""

from __future__ import annotations

import csv

from conftest import TINY_VIT


def test_step_interval_keeps_the_save_after_validation(train):
    # 2 steps per epoch, 5 steps: validation after steps 2, 4 and 5, a step save at step 3
    result = train(
        "data.image_size=16",
        "data.num_train=64",
        "data.num_val=32",
        "recipe.global_batch_size=32",
        "recipe.steps=5",
        "recipe.schedule.warmup_steps=1",
        "checkpoint.every_n_steps=3",
        "checkpoint.keep_best=false",
        "evaluation=none",
        "logger=none",
        "trainer.enable_progress_bar=false",
        *TINY_VIT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = result.run_dirs()
    names = {p.name for p in (run_dir / "checkpoints").iterdir()}
    assert "step-step=3.ckpt" in names  # the step interval
    # the after-validation save is still on: the last validation (at step 5, the end) saved
    assert "epoch=2-step=5.ckpt" in names
    assert (run_dir / "checkpoints" / "last.ckpt").is_symlink()


def test_recipe_step_intervals_validate_and_save_across_epochs(train):
    # 2 steps per epoch, 7 steps; accumulation 2 (batch 16 of 32): the intervals count steps
    result = train(
        "data.image_size=16",
        "data.num_train=64",
        "data.num_val=32",
        "recipe.global_batch_size=32",
        "recipe.per_device_batch_size=16",
        "recipe.steps=7",
        "recipe.schedule.warmup_steps=1",
        "recipe.eval_every_steps=3",
        "recipe.checkpoint_every_steps=5",
        "checkpoint.keep_best=false",
        "evaluation=none",
        "logger=csv",
        "trainer.enable_progress_bar=false",
        *TINY_VIT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = result.run_dirs()
    (metrics,) = (run_dir / "csv").glob("version_*/metrics.csv")
    with metrics.open() as file:
        validated = [int(r["step"]) for r in csv.DictReader(file) if r.get("val/top1")]
    # at steps 3 and 6 (logged at the step's last batch index), not at the ends of epochs
    assert validated[:2] == [2, 5]
    names = {p.name for p in (run_dir / "checkpoints").iterdir()}
    assert "step-step=5.ckpt" in names and "epoch=2-step=6.ckpt" in names
