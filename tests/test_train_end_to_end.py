"""The real entry point, end to end, with tiny overrides: fit, validate, summary, W&B files."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from conftest import TINY_BIT, TINY_DATA, TINY_VIT


def _wandb_summary(offline_run_dir) -> dict:
    """Read an offline run back as a user would: `wandb leet inspect --summary`."""
    wandb_cli = [sys.executable, "-m", "wandb", "leet", "inspect", "--summary", "--json"]
    proc = subprocess.run([*wandb_cli, str(offline_run_dir)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("model", [TINY_VIT, TINY_BIT], ids=["vit", "bit"])
def test_train_writes_summary_and_offline_wandb_run(train, model):
    result = train(*TINY_DATA, *model)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = result.run_dirs()
    summary = result.summary()

    assert summary["status"] == "finished"
    assert summary["global_steps"] == 4
    assert summary["images_seen"] == 4 * 32
    assert 0.0 <= summary["final"]["val/top1"] <= 1.0
    assert summary["final"]["val/top5"] >= summary["final"]["val/top1"]
    assert summary["num_params"] > 0
    assert summary["forward_flops"] > 0  # Table 6 accounting: 3 x forward FLOPs x images
    assert summary["train_exaflops"] == pytest.approx(3 * summary["forward_flops"] * 128 / 1e18)
    assert summary["config"]["data"]["image_size"] == 16
    assert summary["git_revision"]
    assert "val top-1" in result.stdout and str(run_dir) in result.stdout
    log = (run_dir / "train.log").read_text()  # few-shot progress reaches the run's log
    assert "few-shot synthetic_transfer: extracting features" in log
    assert "support and" in log and "5-shot" in log
    assert (run_dir / "checkpoints" / "last.ckpt").resolve().is_file()
    assert summary["checkpoint"].endswith("last.ckpt")
    # where the wall time went: every phase measured, the steps one part of the fit
    timings = summary["timings"]
    phases = ("startup_s", "setup_s", "steps_s", "validation_s", "fewshot_s", "fit_other_s")
    assert all((timings[p] or 0) >= 0 for p in (*phases, "final_evaluation_s"))  # start-up: Linux
    assert timings["steps_s"] > 0 and timings["fewshot_s"] > 0
    parts = [timings[p] or 0 for p in timings if p != "total_s"]
    assert timings["total_s"] == pytest.approx(sum(parts), abs=0.01)

    (offline_run,) = (run_dir / "wandb").glob("offline-run-*")
    assert list(offline_run.glob("run-*.wandb"))
    tracked = _wandb_summary(offline_run)
    flat = json.dumps(tracked)
    assert "final/val/top1" in flat and "num_params" in flat


def test_csv_logger_records_metrics(train):
    result = train(*TINY_DATA, *TINY_VIT, "logger=csv")
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = result.run_dirs()
    (metrics,) = run_dir.glob("csv/*/metrics.csv")
    header = metrics.read_text().splitlines()[0]
    assert "train/loss" in header and "val/top1" in header
    assert not (run_dir / "wandb").exists()


def test_no_logger_still_writes_summary(train):
    result = train(*TINY_DATA, *TINY_VIT, "logger=none")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.summary()["tracker"] == []


def test_wandb_resume_argument_is_ignored(train):
    """W&B sweep agents append `_wandb={...}` to resumed runs; it must not break the run."""
    result = train(*TINY_DATA, *TINY_VIT, "logger=none", "_wandb={'resumed': True}")
    assert result.returncode == 0, result.stderr[-3000:]


def test_bf16_autocast(train):
    result = train(*TINY_DATA, *TINY_VIT, "logger=none", "trainer.precision=bf16-mixed")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.summary()["config"]["trainer"]["precision"] == "bf16-mixed"


@pytest.mark.slow
def test_torch_compile_keeps_plain_checkpoint_keys(train):
    import torch

    result = train(*TINY_DATA, *TINY_VIT, "logger=none", "evaluation=none", "compile=true")
    assert result.returncode == 0, result.stderr[-3000:]
    state = torch.load(result.summary()["checkpoint"], map_location="cpu", weights_only=True)
    assert all(k.startswith("model.") for k in state["state_dict"])  # no _orig_mod prefixes


def test_fewshot_history_records_every_evaluation_and_survives_a_checkpoint(train):
    result = train(*TINY_DATA, *TINY_VIT, "logger=none", "evaluation.every_n_steps=2",
                   "evaluation.shots=[1]", "model.position_embedding=relative")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    summary = result.summary()
    history = summary["fewshot_history"]
    assert [point["step"] for point in history] == [2, 4]  # every 2 steps, and at the end
    assert {k: v for k, v in history[-1].items() if k != "step"} == summary["fewshot"]
    (run_dir,) = result.run_dirs()
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["callbacks"]
    saved = next(v for k, v in state.items() if "FewShotEvaluation" in k)
    # the last checkpoint is written before the final evaluation: it keeps the one before, so
    # a run resumed from it still has its whole curve
    assert [point["step"] for point in saved["history"]] == [2]


def test_summary_records_the_training_throughput(train):
    result = train(*TINY_DATA, *TINY_VIT, "logger=csv", "evaluation=none", "performance.threads=1")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = result.summary()
    rate = summary["throughput"]
    assert rate["images_per_s"] > 0 and rate["fit_seconds"] > 0
    assert rate["cpu_threads"] == 1  # the fit ran on the threads performance.threads gave
    expected = rate["images_per_s"] * 3 * summary["forward_flops"] / 1e12  # Table 6 accounting
    assert rate["tflops_per_s"] == pytest.approx(expected)
    assert "mfu" not in rate  # no peak FLOP/s known for a CPU
    (run_dir,) = result.run_dirs()
    logged = (run_dir / "csv" / "version_0" / "metrics.csv").read_text().splitlines()[0]
    assert "throughput/images_per_s" in logged


def test_debug_limit_preset_runs_a_short_look(train):
    result = train("debug=limit", "data.image_size=16", "data.num_val=64", *TINY_VIT)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = result.summary()
    assert summary["global_steps"] == 20 and summary["tracker"] == []  # no W&B run
    assert summary["config"]["trainer"]["limit_train_batches"] == 10
