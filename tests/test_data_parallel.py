"""Data-parallel correctness: ranks train on disjoint samples, validation holds every sample
once (no padding with duplicates), and accumulation or two ranks give the large batch's update."""

from __future__ import annotations

import pytest

from conftest import TINY_DATA, TINY_VIT
from helpers import on_rank, write_jpeg_tree
from vitrepro.data import ImageFolderDataModule, SyntheticDataModule
from vitrepro.tracking import record


def _synthetic(rank: int, world: int) -> SyntheticDataModule:
    dm = SyntheticDataModule(num_train=203, num_val=61, image_size=16, batch_size=8)
    dm.setup("fit")
    return on_rank(dm, rank, world)


def _image_folder(root, rank: int, world: int) -> ImageFolderDataModule:
    dm = ImageFolderDataModule(name="f", root=str(root), num_classes=3, image_size=16, batch_size=2)
    dm.setup("fit")
    return on_rank(dm, rank, world)


@pytest.mark.parametrize("kind", ["synthetic", "image_folder"])
def test_ranks_train_on_disjoint_samples_and_validate_each_sample_once(kind, tmp_path):
    write_jpeg_tree(tmp_path, classes=3, per_class=7)  # 21 training and 21 validation images
    build = _synthetic if kind == "synthetic" else lambda r, w: _image_folder(tmp_path, r, w)
    size = 203 if kind == "synthetic" else 21
    val_size = 61 if kind == "synthetic" else 21
    train, val = [], []
    for rank in range(3):
        dm = build(rank, 3)
        train.append(list(dm.train_dataloader().sampler))
        val.append(list(dm.val_dataloader().sampler))
    assert len({len(share) for share in train}) == 1  # equal shares: the same steps per rank
    flat = [i for share in train for i in share]
    assert len(flat) == len(set(flat)) == size // 3 * 3  # disjoint, nothing repeated
    assert sorted(i for share in val for i in share) == list(range(val_size))  # once each


def test_a_rank_share_continues_where_a_resumed_run_stopped():
    order = _synthetic(1, 2).train_dataloader().sampler
    whole = list(order)
    order.resume_at(0, 24)
    assert list(order) == whole[24:]  # this epoch: after the 24 samples already trained on
    assert list(order) == whole  # the next pass starts at the beginning again


def _summary(train, name: str, *overrides: str, tracked: bool = False) -> dict:
    pinned = f"hydra.run.dir=${{paths.output_dir}}/runs/{name}"
    untracked = [] if tracked else ["logger=none", "evaluation=none"]
    result = train(*TINY_DATA, *TINY_VIT, *untracked, pinned, *overrides)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [d.name for d in result.run_dirs()].count(name) == 1  # rank 1 joined rank 0's run
    return record.read(result.output_dir / "runs" / name)


@pytest.mark.slow
def test_accumulation_and_two_ranks_give_the_update_of_the_large_batch(train, tmp_path):
    # 256 images at a global batch of 32: 8 steps, one epoch (TINY_DATA); dropout off
    large = _summary(train, "large")["final"]
    accumulated = _summary(train, "accumulated", "recipe.per_device_batch_size=8")["final"]
    ddp = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp"]
    # tracked as a user runs it: W&B and few-shot evaluation on rank 0, one run record
    shots = ["logger=wandb", "evaluation.shots=[1,5]", "evaluation.seeds=2"]
    summary = _summary(train, "two_ranks", *ddp, *shots, tracked=True)
    assert summary["device"] == {"type": "CPUAccelerator", "count": 2}
    assert summary["global_batch"] == 32 and summary["images_seen"] == 32 * summary["global_steps"]
    assert set(summary["fewshot"]) == {f"fewshot/synthetic_transfer/{k}shot" for k in (1, 5)}
    run_dir = tmp_path / "runs" / "two_ranks"
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1  # one W&B run
    two_ranks = summary["final"]
    for key in ("val/loss", "val/top1"):
        assert accumulated[key] == pytest.approx(large[key], abs=1e-5), key
        assert two_ranks[key] == pytest.approx(large[key], abs=1e-5), key
