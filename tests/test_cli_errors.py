"""User mistakes stop before compute with one line naming the key, exit code 2, nothing left.

The table runs in-process through the checks every run makes before compute (the config
composed as ``src/train.py`` composes it); a few cases run the real entry scripts to show the
mistake reaches the user as one line and exit code 2.
"""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import ROOT, TINY_DATA, TINY_VIT, clean_env, run_script
from vitrepro.config.cli import _checked_task, check_overrides
from vitrepro.config.errors import ConfigError
from vitrepro.training.run import check_before_compute

TINY = [*TINY_DATA, *TINY_VIT]
BAD_INPUTS = {
    # the README's paper-scale command on a machine without GPUs (and without the dataset)
    "no-cuda": (["model=vit_l16", "data=in21k", "trainer.devices=8"], "trainer.devices=8"),
    "gpu-requested": ([*TINY, "trainer.accelerator=gpu"], "trainer.accelerator=gpu"),
    "missing-dataset": (["data=imagenet", "paths.data_root=/nonexistent"], "data.root="),
    "missing-shards": (["data=jft_like", "paths.data_root=/nonexistent"], "data.root="),
    "patch-does-not-divide": ([*TINY, "model.patch_size=5"], "model.patch_size=5"),
    # rules between keys: both keys in the one line
    "heads-do-not-divide-width": ([*TINY, "model.num_heads=5"], "model.hidden_size=32"),
    "warmup-longer-than-run": (
        [*TINY, "recipe.steps=4", "recipe.schedule.warmup_steps=10"],
        "recipe.steps=4",
    ),
    "bad-batch": (
        [*TINY, "recipe.global_batch_size=30", "recipe.per_device_batch_size=8"],
        "recipe.global_batch_size=30",
    ),
    "negative-lr": ([*TINY, "recipe.optimizer.lr=-0.1"], "recipe.optimizer.lr=-0.1"),
    # found by make fuzz: an infinite rate trained until the divergence guard stopped it
    "infinite-lr": ([*TINY, "recipe.optimizer.lr=inf"], "recipe.optimizer.lr=inf"),
    "infinite-weight-decay": (
        [*TINY, "recipe.optimizer.weight_decay=inf"],
        "recipe.optimizer.weight_decay=inf",
    ),
    "infinite-head-bias": ([*TINY, "model.head_bias_init=-inf"], "model.head_bias_init=-inf"),
    # found by make fuzz: one class reached torchmetrics, which refused it with a traceback
    "one-class": ([*TINY, "data.num_classes=1"], "data.num_classes=1"),
    "per-model-typo": ([*TINY, "+recipe.per_model.x.lrr=1"], "recipe.per_model.x.lrr=1"),
    "per-model-negative-lr": ([*TINY, "+recipe.per_model.x.lr=-1"], "recipe.per_model.x.lr=-1"),
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
    "glyphs-more-than-cells": (
        ["data=glyphs", "data.generator.num_distractors=3"],
        "data.generator.num_distractors=3",
    ),
    "relational-on-3x3-cells": (
        ["data=glyphs", "data.generator.relational=true", "data.generator.cells=3"],
        "data.generator.cells=3",
    ),
    "relational-odd-classes": (
        ["data=glyphs", "data.generator.relational=true", "data.num_classes=11"],
        "data.num_classes=11",
    ),
    "glyphs-left-out-of-every-class": (["data=glyphs", "data.num_classes=3"], "data.num_classes=3"),
    "negative-glyph-count": (["data=glyphs", "data.generator.num_glyphs=-1"], "num_glyphs=-1"),
    "empty-glyph-count": (["data=glyphs", "data.generator.num_glyphs="], "num_glyphs="),
    "bad-prefetch": ([*TINY, "performance.prefetch_factor=0"], "performance.prefetch_factor=0"),
    "bad-threads": ([*TINY, "performance.threads=0"], "performance.threads=0"),
    "bad-switch": ([*TINY, "performance.channels_last=yes"], "performance.channels_last=yes"),
    "zero-devices": ([*TINY, "trainer.accelerator=cpu", "trainer.devices=0"], "trainer.devices=0"),
    "seed-not-an-integer": ([*TINY, "seed=1.5"], "seed=1.5"),
    "unknown-gap-norm": ([*TINY, "model.classifier=gap", "model.gap_norm=x"], "model.gap_norm=x"),
    "unknown-stem": ([*TINY_DATA, "model=bit_micro", "model.stem=deep"], "model.stem=deep"),
    # a wrong type and an out-of-range value in every top-level group
    "model-type": ([*TINY, "model.depth=2.5"], "model.depth=2.5"),
    "model-range": ([*TINY, "model.dropout=1.5"], "model.dropout=1.5"),
    "model-missing-size": ([*TINY, "model.num_heads=null"], "model.num_heads=None"),
    "data-type": ([*TINY, "data.image_size=large"], "data.image_size=large"),
    "data-range": ([*TINY, "data.num_workers=-1"], "data.num_workers=-1"),
    "recipe-type": ([*TINY, "recipe.global_batch_size=many"], "recipe.global_batch_size=many"),
    "recipe-range": ([*TINY, "recipe.label_smoothing=1.0"], "recipe.label_smoothing=1.0"),
    "trainer-type": ([*TINY, "trainer.log_every_n_steps=often"], "trainer.log_every_n_steps="),
    "trainer-range": ([*TINY, "trainer.num_nodes=0"], "trainer.num_nodes=0"),
    "trainer-precision": ([*TINY, "trainer.precision=8-bit"], "trainer.precision=8-bit"),
    "logger-type": ([*TINY, "logger.tags=5"], "logger.tags=5"),
    "logger-range": ([*TINY, "logger.mode=sometimes"], "logger.mode=sometimes"),
    "evaluation-type": ([*TINY, "evaluation.seeds=three"], "evaluation.seeds=three"),
    "evaluation-range": ([*TINY, "evaluation.shots=[0,5]"], "evaluation.shots.0=0"),
    "callbacks-type": ([*TINY, "callbacks.lr_monitor=5"], "callbacks.lr_monitor=5"),
    "callbacks-target": (
        [*TINY, "+callbacks.stop._target_=no.such.Callback"],
        "callbacks.stop._target_=no.such.Callback",
    ),
    "transfer-type": ([*TINY, "+transfer.pets=5"], "transfer.pets=5"),
    "paths-type": ([*TINY, "paths.data_root=[a]"], "paths.data_root=['a']"),
    "checkpoint-type": ([*TINY, "checkpoint.keep_best=maybe"], "checkpoint.keep_best=maybe"),
    "checkpoint-range": ([*TINY, "checkpoint.every_n_steps=0"], "checkpoint.every_n_steps=0"),
    "checkpoint-unknown-key": ([*TINY, "+checkpoint.every=5"], "checkpoint.every=5"),
    "performance-unknown-key": ([*TINY, "+performance.turbo=true"], "performance.turbo=True"),
    "seed-range": ([*TINY, "seed=-1"], "seed=-1"),
    "compile-type": ([*TINY, "compile=sometimes"], "compile=sometimes"),
    "resume-type": ([*TINY, "resume=[a]"], "resume=['a']"),
    "stage-lists-disagree": (
        ["model=hybrid_tiny", "model.backbone_layers=[1,1,1,1]", "model.backbone_channels=[8,16]"],
        "model.backbone_channels=[8, 16]",
    ),
    "unresolvable-interpolation": ([*TINY, "seed=${oops}"], "seed=?"),
    # raised by the few-shot solve after training: the check must come before compute
    "shots-over-the-pool": ([*TINY, "evaluation.shots=[500]"], "evaluation.shots=[500]"),
    "bad-fewshot-target": (
        [*TINY, "data.fewshot_datasets.synthetic_transfer.task=x"],
        "data.fewshot_datasets.synthetic_transfer.task=x",
    ),
}


def check(*overrides: str) -> str | None:
    """The checks of ``vitrepro.training.run.run`` before compute, on the config Hydra composes."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, "paths.run_dir=/nonexistent/run"])

        def checks(cfg: object) -> str | None:  # as src/train.py runs them, under its wrapper
            return check_before_compute(OmegaConf.to_container(cfg, resolve=True), inherited=[])

        return _checked_task(checks, cfg, None)


def test_the_default_config_and_the_tiny_one_pass_the_checks():
    assert check() is None and check(*TINY) is None  # nothing to resume from


@pytest.mark.parametrize("overrides,key", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_one_error_naming_the_key(overrides, key):
    with pytest.raises(ConfigError) as raised:
        check(*overrides)
    line = str(raised.value)
    assert key in line and "\n" not in line


@pytest.mark.parametrize(
    "overrides,key",
    [
        (["recipe.lrr=0.1"], "+recipe.lrr=0.1"),
        (["model=vit_b99"], "model/vit_b99"),
        (["transfer=0"], "transfer"),  # found by tests/test_fuzz.py: Hydra's ValueError
    ],
    ids=["misspelt-key", "unknown-model", "group-option-not-a-name"],
)
def test_composition_errors_are_one_line(overrides, key, capsys):
    with pytest.raises(SystemExit) as stopped:
        check_overrides(ROOT / "conf", "train", overrides)
    assert stopped.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and key in line


@pytest.mark.parametrize(
    "overrides,key",
    [
        (["trainer.accelerator=cpu", "trainer.devices=0"], "trainer.devices=0"),
        (["recipe.lrr=0.1"], "+recipe.lrr=0.1"),
        (["model.num_heads=5"], "model.num_heads=5"),  # timm's assertion, before this rule
    ],
    ids=["schema", "composition", "rule-between-keys"],
)
def test_train_py_prints_one_line_and_leaves_nothing(train, overrides, key):
    result = train(*TINY, *overrides)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and key in lines[0]
    assert "Traceback" not in result.stderr
    assert result.run_dirs() == []  # nothing a study could mistake for a result


def test_a_file_that_is_not_a_checkpoint_is_a_one_line_error(tmp_path):
    notes = tmp_path / "notes.ckpt"
    notes.write_text("not weights\n")
    for key in ("resume", "model.pretrained"):
        with pytest.raises(ConfigError) as raised:
            check(*TINY, f"{key}={notes}")
        assert str(raised.value).startswith(f"{key}=") and "not a checkpoint" in str(raised.value)


def test_missing_dataset_names_the_setting_to_change():
    with pytest.raises(ConfigError) as raised:
        check("data=in21k", "paths.data_root=/nonexistent")
    assert "/nonexistent/imagenet21k" in str(raised.value) and "paths.data_root" in str(
        raised.value
    )


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


@pytest.mark.parametrize(
    "script,args,key",
    [
        ("evaluate.py", ["checkpoint=/x", "evaluation.seeds=three"], "evaluation.seeds=three"),
        ("evaluate.py", [], "checkpoint=???"),  # the required key not given
        ("model_card.py", ["num_classes=0"], "num_classes=0"),
        ("model_card.py", ["model.depth=deep"], "model.depth=deep"),
        ("inspect_model.py", ["checkpoint=/x", "num_images=-5"], "num_images=-5"),
        ("make_shards.py", ["synthetic", "/tmp/unused", "--shard-size", "0"], "--shard-size"),
        ("make_shards.py", ["synthetic", "/tmp/unused", "--image-size", "big"], "--image-size"),
    ],
)
def test_every_entry_script_reports_a_bad_value_in_one_line(script, args, key, tmp_path):
    result = run_script(script, *args, output_dir=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: ") and key in line


def test_a_run_folder_that_cannot_be_made_is_one_line(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("")
    for key in ("hydra.run.dir", "paths.output_dir"):
        with pytest.raises(SystemExit) as stopped:
            check_overrides(ROOT / "conf", "train", [*TINY, f"{key}={afile}/run"])
        assert stopped.value.code == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(f"error: {key}=") and "is a file, not a folder" in line


def test_a_full_disk_is_one_line_and_leaves_no_partial_checkpoint(tmp_path):
    # A file-size limit (RLIMIT_FSIZE) fails every write past 64 KiB with EFBIG, as a full disk
    # fails it with ENOSPC: the first checkpoint cannot be written.
    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    run_dir = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "src/train.py", *TINY, "model.hidden_size=64", f"hydra.run.dir={run_dir}"],
        cwd=ROOT,
        env={**clean_env(tmp_path), "WANDB_MODE": "disabled"},
        preexec_fn=limit_file_size,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    (line,) = [x for x in proc.stderr.strip().splitlines() if x.startswith("error: ")]
    assert "File too large" in line and "hydra.run.dir" in line and "Traceback" not in proc.stderr
    left = {p.name for p in run_dir.rglob("*") if p.is_file()}
    assert not any(name.endswith(".ckpt") for name in left), left  # no half-written checkpoint
    assert "summary.json" not in left
