"""Pre-train -> few-shot -> fine-tune on tiny synthetic data, standalone evaluation, resume."""

from __future__ import annotations

import json
import logging
import os

import pytest
import torch

from conftest import ROOT, TINY_DATA, TINY_TRANSFER_CHILD, TINY_VIT, run_script
from vitrepro.config.errors import ConfigError
from vitrepro.tracking import record

SHOTS = ["evaluation.shots=[1,5]", "evaluation.seeds=2"]


def test_pretrain_fewshot_then_finetune_at_higher_resolution(train, tmp_path):
    # 128 images at batch 32: the 4 steps are one epoch, so validation picks a best checkpoint
    pretrain = train(*TINY_DATA, *TINY_VIT, *SHOTS, "logger=none", "data.num_train=128")
    assert pretrain.returncode == 0, pretrain.stderr[-3000:]
    (run_dir,) = pretrain.run_dirs()
    summary = pretrain.summary()
    fewshot = summary["fewshot"]
    assert set(fewshot) == {"fewshot/synthetic_transfer/1shot", "fewshot/synthetic_transfer/5shot"}
    assert all(0.0 <= v <= 1.0 for v in fewshot.values())
    assert summary["recipe"] == "tiny" and summary["global_batch"] == 32
    assert summary["device"] == {"type": "CPUAccelerator", "count": 1}
    assert summary["best_checkpoint"] and "best-step" in summary["best_checkpoint"]

    # The standalone evaluator on the run directory gives the callback's numbers.
    out = run_dir / "fewshot_again.json"
    evaluation = run_script(
        "evaluate.py", f"checkpoint={run_dir}", *SHOTS, f"output={out}", output_dir=tmp_path
    )
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    again = json.loads(evaluation.stdout)
    assert again == pytest.approx(fewshot, abs=1e-6)
    assert json.loads(out.read_text()) == again

    tune = train(
        *TINY_DATA,
        *TINY_VIT,
        "logger=none",
        "evaluation=none",
        "recipe=finetune",
        "recipe.global_batch_size=32",
        "recipe.steps=4",
        "recipe.schedule.warmup_steps=1",
        "data.image_size=32",
        "data.task=transfer",
        f"model.pretrained={run_dir}",
    )
    assert tune.returncode == 0, tune.stderr[-3000:]
    (tuned,) = [d for d in tune.run_dirs() if d != run_dir]
    tuned_summary = record.read(tuned)
    assert tuned_summary["recipe"] == "finetune" and tuned_summary["global_steps"] == 4
    assert tuned_summary["config"]["recipe"]["optimizer"]["_target_"] == "torch.optim.SGD"
    assert tuned_summary["config"]["data"]["image_size"] == 32
    assert tuned_summary["fewshot"] == {}
    # a fine-tuned run (its pre-logits replaced by the fine-tuning head) evaluates too
    tuned_eval = run_script("evaluate.py", f"checkpoint={tuned}", *SHOTS, output_dir=tmp_path)
    assert tuned_eval.returncode == 0, tuned_eval.stderr[-3000:]
    assert set(json.loads(tuned_eval.stdout)) == set(fewshot)


def test_evaluate_needs_a_checkpoint(tmp_path):
    result = run_script("evaluate.py", "checkpoint=/nonexistent/run", output_dir=tmp_path)
    assert result.returncode == 2 and "checkpoint=/nonexistent/run" in result.stderr


def test_transfer_fine_tunes_the_finished_run_and_is_not_rerun(train):
    child = TINY_TRANSFER_CHILD
    transfer = "transfer.synthetic_transfer=[" + ",".join(f"'{o}'" for o in child) + "]"
    overrides = [*TINY_DATA, *TINY_VIT, *SHOTS, "logger=csv", "transfer=synthetic", transfer]
    first = train(*overrides, "hydra.run.dir=${paths.output_dir}/runs/pinned", "resume=auto")
    assert first.returncode == 0, first.stderr[-3000:]
    summary = first.summary()
    result = summary["transfer"]["synthetic_transfer"]
    assert 0 <= result["final"]["val/top1"] <= 1
    child_summary = record.read(ROOT / result["run_dir"])
    assert child_summary["config"]["model"]["pretrained"] == summary["run_dir"]
    assert child_summary["config"]["model"]["depth"] == 1  # the parent's model overrides
    assert child_summary["recipe"] == "finetune_tiny" and child_summary["global_steps"] == 2
    # rerunning the pinned parent resumes it and keeps the finished transfer
    child_mtime = (ROOT / result["run_dir"] / "summary.json").stat().st_mtime
    second = train(*overrides, "hydra.run.dir=${paths.output_dir}/runs/pinned", "resume=auto")
    assert second.returncode == 0, second.stderr[-3000:]
    assert (ROOT / result["run_dir"] / "summary.json").stat().st_mtime == child_mtime
    assert second.summary()["transfer"] == summary["transfer"]


def test_a_missing_transfer_dataset_stops_before_pre_training(train):
    result = train(*TINY_DATA, *TINY_VIT, "transfer=imagenet", "paths.data_root=/nonexistent")
    assert result.returncode == 2
    assert result.stderr.startswith("error: transfer.imagenet: data.root=/nonexistent/imagenet")
    assert result.run_dirs() == []


def test_a_diverged_run_stops_with_one_line_and_keeps_the_last_good_checkpoint(train):
    # a finite but absurd learning rate: the first update overflows the weights, so the loss
    # is infinite from step 2 on; stopped before any checkpoint save
    result = train(*TINY_DATA, *TINY_VIT, "logger=none", "recipe.optimizer.lr=1e30")
    assert result.returncode == 3, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "error: the training loss became NaN or infinite at step 2" in result.stderr
    (run_dir,) = result.run_dirs()
    assert list((run_dir / "checkpoints").glob("*.ckpt")) == []  # no NaN checkpoint
    assert not (run_dir / "summary.json").exists()  # nothing a study would take as a result


def test_resume_auto_takes_the_newest_checkpoint_of_any_kind(tmp_path):
    from vitrepro.training.checkpointing import resume_from

    (tmp_path / "checkpoints").mkdir()
    assert resume_from("auto", tmp_path) is None  # nothing yet: a fresh start
    paths = [
        tmp_path / "checkpoints" / "last.ckpt",
        tmp_path / "checkpoints" / "interrupted.ckpt",
        tmp_path / "hpc_ckpt_1.ckpt",  # Lightning's SLURM requeue checkpoint
    ]
    for age, path in enumerate(reversed(paths)):
        torch.save({"global_step": age}, path)
        os.utime(path, (1000 - age, 1000 - age))
        assert resume_from("auto", tmp_path) == str(paths[-1])
    os.utime(paths[0], (2000, 2000))
    assert resume_from("auto", tmp_path) == str(paths[0])


@pytest.mark.parametrize("damage", ["zero-byte", "truncated", "text"])
def test_resume_auto_skips_a_damaged_newest_checkpoint_with_one_warning(tmp_path, damage, caplog):
    from vitrepro.training.checkpointing import resume_from

    (tmp_path / "checkpoints").mkdir()
    older, newest = tmp_path / "checkpoints" / "interrupted.ckpt", tmp_path / "hpc_ckpt_2.ckpt"
    torch.save({"global_step": 3, "weights": torch.zeros(1000)}, older)
    whole = older.read_bytes()
    damage = {"zero-byte": b"", "truncated": whole[: len(whole) // 2], "text": b"oops"}[damage]
    newest.write_bytes(damage)
    os.utime(older, (1000, 1000))
    os.utime(newest, (2000, 2000))
    with caplog.at_level(logging.WARNING):
        assert resume_from("auto", tmp_path) == str(older)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert str(newest) in warning and "\n" not in warning
    older.write_bytes(damage)  # none loadable: the run stops, it does not start over
    with pytest.raises(ConfigError, match="no loadable checkpoint"):
        resume_from("auto", tmp_path)


def test_glyph_runs_score_their_held_out_test_split_after_training(train):
    """Pre-training and its fine-tune each measure the test split once, at the end."""
    data = ["data=glyphs", "data.num_train=64", "data.num_val=32", "data.num_test=48"]
    child = [*data, "data.task=transfer", "recipe=finetune_tiny", "recipe.steps=2"]
    child += ["recipe.global_batch_size=16", "recipe.schedule.warmup_steps=1", "evaluation=none"]
    transfer = "transfer.glyphs_transfer=[" + ",".join(f"'{o}'" for o in child) + "]"
    overrides = [*data, *TINY_VIT, "recipe.global_batch_size=16", "recipe.steps=2"]
    overrides += ["recipe.schedule.warmup_steps=1", "evaluation=none", "logger=none"]
    result = train(*overrides, "trainer.enable_progress_bar=false", "transfer=glyphs", transfer)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = result.summary()
    assert 0 <= summary["final"]["test/top1"] <= 1 and "val/top1" in summary["final"]
    fine_tuned = summary["transfer"]["glyphs_transfer"]["final"]
    assert 0 <= fine_tuned["test/top1"] <= 1
    child_summary = json.loads(
        (ROOT / summary["transfer"]["glyphs_transfer"]["run_dir"] / "summary.json").read_text()
    )
    assert child_summary["config"]["data"]["num_test"] == 48
