"""User mistakes stop before compute with one line naming the key, exit code 2, nothing left."""

from __future__ import annotations

import pytest

from conftest import TINY_DATA, TINY_VIT

TINY = [*TINY_DATA, *TINY_VIT]
BAD_INPUTS = {
    # the README's paper-scale command on a machine without GPUs (and without the dataset)
    "no-cuda": (["model=vit_l16", "data=in21k", "trainer.devices=8"], "trainer.devices=8"),
    "gpu-requested": ([*TINY, "trainer.accelerator=gpu"], "trainer.accelerator=gpu"),
    "missing-dataset": (["data=imagenet", "paths.data_root=/nonexistent"], "data.root="),
    "missing-shards": (["data=jft_like", "paths.data_root=/nonexistent"], "data.root="),
    "patch-does-not-divide": ([*TINY, "model.patch_size=5"], "model.patch_size=5"),
    "bad-batch": (
        [*TINY, "recipe.global_batch_size=30", "recipe.per_device_batch_size=8"],
        "recipe.global_batch_size=30",
    ),
    "negative-lr": ([*TINY, "recipe.optimizer.lr=-0.1"], "recipe.optimizer.lr=-0.1"),
    "unknown-arch": ([*TINY, "model.arch=transformer9000"], "model.arch=transformer9000"),
    "missing-checkpoint": ([*TINY, "model.pretrained=/nonexistent/x.npz"], "model.pretrained="),
    "missing-resume": ([*TINY, "resume=/nonexistent/run"], "resume=/nonexistent/run"),
    "unknown-classifier": ([*TINY, "model.classifier=avg"], "model.classifier=avg"),
    "unknown-posemb": ([*TINY, "model.position_embedding=sin"], "model.position_embedding=sin"),
    "unknown-loss": ([*TINY, "recipe.loss=sigmoid"], "recipe.loss=sigmoid"),
    "unknown-decay": ([*TINY, "recipe.schedule.decay=cosin"], "recipe.schedule.decay=cosin"),
    "unknown-task": ([*TINY, "data.task=finetune"], "data.task=finetune"),
    "too-many-synthetic-classes": ([*TINY, "data.num_classes=1000"], "data.num_classes=1000"),
    "unknown-format": ([*TINY, "data.format=lmdb"], "data.format=lmdb"),
    "bad-prefetch": ([*TINY, "performance.prefetch_factor=0"], "performance.prefetch_factor=0"),
    "bad-switch": ([*TINY, "performance.channels_last=yes"], "performance.channels_last=yes"),
    "misspelt-key": ([*TINY, "recipe.lrr=0.1"], "+recipe.lrr=0.1"),
    "unknown-model": (["model=vit_b99"], "model/vit_b99"),
    "zero-devices": ([*TINY, "trainer.accelerator=cpu", "trainer.devices=0"], "trainer.devices=0"),
    "seed-not-an-integer": ([*TINY, "seed=1.5"], "seed=1.5"),
    "unknown-gap-norm": ([*TINY, "model.classifier=gap", "model.gap_norm=x"], "model.gap_norm=x"),
    "unknown-stem": ([*TINY_DATA, "model=bit_micro", "model.stem=deep"], "model.stem=deep"),
    "bad-fewshot-target": (
        [*TINY, "data.fewshot_datasets.synthetic_transfer.task=x"],
        "data.fewshot_datasets.synthetic_transfer.task=x",
    ),
}


@pytest.mark.parametrize("overrides,key", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_fails_with_one_line(train, overrides, key):
    result = train(*overrides)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and key in lines[0]
    assert "Traceback" not in result.stderr
    assert result.run_dirs() == []  # nothing a study could mistake for a result


def test_a_file_that_is_not_a_checkpoint_is_a_one_line_error(train, tmp_path):
    notes = tmp_path / "notes.ckpt"
    notes.write_text("not weights\n")
    for key in ("resume", "model.pretrained"):
        result = train(*TINY, f"{key}={notes}")
        assert result.returncode == 2, result.stderr[-2000:]
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith(f"error: {key}=") and "not a checkpoint" in line


def test_missing_dataset_names_the_setting_to_change(train):
    result = train("data=in21k", "paths.data_root=/nonexistent")
    assert result.returncode == 2
    assert "/nonexistent/imagenet21k" in result.stderr and "paths.data_root" in result.stderr


def test_paper_scale_command_composes(train):
    result = train("model=vit_l16", "data=in21k", "trainer.devices=8", "--cfg", "job")
    assert result.returncode == 0, result.stderr
    assert "num_classes: 21843" in result.stdout
    assert "hidden_size: 1024" in result.stdout and "patch_size: 16" in result.stdout
    assert "devices: 8" in result.stdout


def test_help_lists_config_groups(train):
    result = train("--help")
    assert result.returncode == 0
    for group in ("model:", "data:", "recipe:", "trainer:", "logger:", "paths:"):
        assert group in result.stdout
    assert "vit_b16" in result.stdout and "synthetic" in result.stdout
