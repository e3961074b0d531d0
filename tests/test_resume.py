"""A run killed (SIGKILL) at any step and resumed with ``resume=auto`` is the uninterrupted run:
same samples, same random draws, same final metrics; one metrics history, the whole wall time."""

from __future__ import annotations

import csv
import re

import pytest
import torch

from conftest import ROOT, TINY_VIT, Result, run_script, write_synthetic_shards
from helpers import on_rank, write_jpeg_tree
from vitrepro.data import ImageFolderDataModule

# 512 images at batch 32 are 16 steps an epoch; saves every 10 steps and after each epoch.
RUN = [
    "data.image_size=16",
    "data.num_train=512",
    "data.num_val=64",
    "data.num_workers=2",
    "recipe.global_batch_size=32",
    "recipe.steps=40",
    "recipe.schedule.warmup_steps=2",
    "model.dropout=0.1",  # a random draw per step: the restored generators must give it back
    "checkpoint.every_n_steps=10",
    "evaluation=none",
    "logger=csv",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "hydra.run.dir=${paths.output_dir}/runs/pinned",
    "resume=auto",
    *TINY_VIT,
]


def signalled_at(tmp_path, step: int, run: list[str], signal_name: str = "SIGKILL") -> Result:
    """The run with ``tests/killer.py``'s callback added as a user adds one (``+callbacks``)."""
    kill = ["+callbacks.kill._target_=killer.SignalAtStep", f"+callbacks.kill.step={step}"]
    kill.append(f"+callbacks.kill.signal_name={signal_name}")
    tests = {"PYTHONPATH": str(ROOT / "tests")}
    return run_script("train.py", *run, *kill, output_dir=tmp_path, env=tests)


def _metrics(run_dir) -> list[dict]:
    (metrics,) = (run_dir / "csv").glob("version_*/metrics.csv")
    with metrics.open(newline="") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("uninterrupted")
    result = run_script("train.py", *RUN, output_dir=out)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.summary(), _metrics(out / "runs" / "pinned")


@pytest.mark.parametrize(
    ("kill_at", "resumed_step"),
    [(27, 20), (18, 16)],  # mid-epoch (4 batches into epoch 1) and at the end of epoch 0
)
def test_killed_and_resumed_run_ends_as_the_uninterrupted_one(
    tmp_path, uninterrupted, kill_at, resumed_step
):
    expected, expected_rows = uninterrupted
    killed = signalled_at(tmp_path, kill_at, RUN)
    assert killed.returncode == -9, killed.stderr[-3000:]  # SIGKILL: no clean shutdown
    run_dir = tmp_path / "runs" / "pinned"
    assert not (run_dir / "summary.json").exists()

    resumed = run_script("train.py", *RUN, output_dir=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = resumed.summary()
    assert re.search(r"/last(-v\d+)?\.ckpt$", summary["resumed_from"])  # the newest save
    assert summary["resumed_at_step"] == resumed_step
    assert summary["global_steps"] == expected["global_steps"] == 40
    for key in ("val/loss", "val/top1", "val/top5"):
        assert summary["final"][key] == pytest.approx(expected["final"][key], abs=1e-6), key

    # one history: every training step logged once, the same losses as without the kill
    rows = [r for r in _metrics(run_dir) if r.get("train/loss")]
    steps = [int(r["step"]) for r in rows]
    assert steps == sorted(set(steps)) and len(steps) == 40
    expected_losses = [float(r["train/loss"]) for r in expected_rows if r.get("train/loss")]
    assert [float(r["train/loss"]) for r in rows] == pytest.approx(expected_losses, abs=1e-5)
    # the wall time covers the killed segment too: more than the resumed segment's fit
    assert summary["wall_time_s"] > summary["throughput"]["fit_seconds"]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_synthetic_shards(tmp_path_factory.mktemp("shards"), 320, 64, 40)


def _shard_run(root) -> list[str]:
    """320 shard samples at batch 16 from 2 workers: 10 steps an epoch (5 per worker), with
    the Inception crop and flip drawn per sample; saves every 13 steps (3 batches into epoch
    1: two from worker 0, one from worker 1) and after each epoch."""
    return [
        "data=synthetic_shards",
        f"data.root={root}",
        "data.image_size=16",
        "data.num_workers=2",
        "recipe.global_batch_size=16",
        "recipe.steps=24",
        "checkpoint.every_n_steps=13",
        *[o for o in RUN if o.split("=")[0] in KEPT_FOR_SHARDS],
    ]


KEPT_FOR_SHARDS = {
    "recipe.schedule.warmup_steps",
    "model.dropout",
    "evaluation",
    "logger",
    "trainer.log_every_n_steps",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "hydra.run.dir",
    "resume",
    *(o.split("=")[0] for o in TINY_VIT),
}


def test_killed_shard_run_resumes_mid_epoch_as_the_uninterrupted_one(tmp_path, shards):
    run = _shard_run(shards)
    expected = run_script("train.py", *run, output_dir=tmp_path / "whole")
    assert expected.returncode == 0, expected.stderr[-3000:]
    killed = signalled_at(tmp_path / "split", 14, run)
    assert killed.returncode == -9, killed.stderr[-3000:]
    resumed = run_script("train.py", *run, output_dir=tmp_path / "split")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary, reference = resumed.summary(), expected.summary()
    assert summary["resumed_at_step"] == 13 and summary["global_steps"] == 24
    for key in ("val/loss", "val/top1", "val/top5"):
        assert summary["final"][key] == pytest.approx(reference["final"][key], abs=1e-6), key


def _with(run: list[str], **replaced: str) -> list[str]:
    return [
        f"{o.split('=')[0]}={replaced[o.split('=')[0]]}" if o.split("=")[0] in replaced else o
        for o in run
    ]


def test_a_killed_run_continues_its_wandb_run(tmp_path):
    run = _with(RUN, logger="wandb", **{"data.num_workers": "0", "recipe.steps": "24"})
    assert signalled_at(tmp_path, 12, run).returncode == -9
    run_dir = tmp_path / "runs" / "pinned"
    first_id = (run_dir / "wandb_run_id.txt").read_text()
    resumed = run_script("train.py", *run, output_dir=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.summary()["resumed_at_step"] == 10
    assert (run_dir / "wandb_run_id.txt").read_text() == first_id
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert runs and all(r.name.endswith(first_id) for r in runs)


def test_sigterm_checkpoints_the_current_step_and_resume_continues_from_it(tmp_path):
    run = _with(RUN, **{"data.num_workers": "0", "recipe.steps": "24"})
    first = signalled_at(tmp_path, 13, run, "SIGTERM")  # what SLURM sends at preemption
    interrupted = tmp_path / "runs" / "pinned" / "checkpoints" / "interrupted.ckpt"
    assert interrupted.exists(), first.stderr[-3000:]
    assert "Traceback" not in first.stderr
    resumed = run_script("train.py", *run, output_dir=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    summary = resumed.summary()
    assert summary["resumed_from"].endswith("interrupted.ckpt")
    assert summary["resumed_at_step"] == 13 and summary["global_steps"] == 24


SLURM_JOB = {  # what a one-task SLURM job sets (Lightning reads these as a SLURM-managed run)
    "SLURM_JOB_ID": "4242",
    "SLURM_JOB_NAME": "vitrepro",
    "SLURM_NTASKS": "1",
    "SLURM_NTASKS_PER_NODE": "1",
    "SLURM_PROCID": "0",
    "SLURM_LOCALID": "0",
    "SLURM_NODEID": "0",
    "SLURM_NODELIST": "localhost",
}


@pytest.mark.parametrize("signal_name", ["SIGUSR1", "SIGUSR2"])  # sbatch --signal, submitit
def test_slurm_warning_signal_checkpoints_then_asks_for_a_requeue(tmp_path, signal_name):
    run = _with(RUN, **{"data.num_workers": "0", "recipe.steps": "24"})
    kill = ["+callbacks.kill._target_=killer.SignalAtStep", "+callbacks.kill.step=12"]
    kill.append(f"+callbacks.kill.signal_name={signal_name}")
    env = {"PYTHONPATH": str(ROOT / "tests"), **SLURM_JOB}
    first = run_script("train.py", *run, *kill, output_dir=tmp_path, env=env)
    # no scontrol on this machine: the checkpoint is saved and the failed requeue reported
    assert first.returncode == 4, first.stderr[-3000:]
    assert "Traceback" not in first.stderr
    assert "stopped for a requeue: saved step 20" in first.stderr  # the check after step 12
    assert "scontrol requeue 4242" in first.stderr
    run_dir = tmp_path / "runs" / "pinned"
    assert (run_dir / "checkpoints" / "interrupted.ckpt").exists()
    assert not (run_dir / "summary.json").exists()  # not a finished run
    resumed = run_script("train.py", *run, output_dir=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.summary()["resumed_at_step"] == 20


def _image_folder_batches(root, workers: int, resume_after: int | None = None) -> list:
    torch.manual_seed(3)  # the run's seed
    dm = ImageFolderDataModule(
        name="f", root=str(root), num_classes=3, image_size=16, batch_size=4, num_workers=workers
    )
    dm.setup("fit")
    on_rank(dm, 0, 1)
    loader = dm.train_dataloader()
    if resume_after is not None:  # what Lightning hands back from the checkpoint
        loader.load_state_dict({"epoch": 0, "batches": resume_after})
    return [images for images, _ in loader]


def test_image_folder_crops_are_the_same_after_a_resume_and_on_any_worker_count(tmp_path):
    write_jpeg_tree(tmp_path, classes=3, per_class=8)  # 24 images: 6 batches of 4
    whole = _image_folder_batches(tmp_path, workers=0)
    assert len(whole) == 6
    on_two_workers = _image_folder_batches(tmp_path, workers=2)
    resumed = _image_folder_batches(tmp_path, workers=2, resume_after=2)
    assert all(torch.equal(a, b) for a, b in zip(whole, on_two_workers, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(whole[2:], resumed, strict=True))
