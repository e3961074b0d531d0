"""The embedded dataset: deterministic per (seed, index), disjoint splits, no shortcuts."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from vitrepro.data import MotifCompositions, MotifSpec, SyntheticDataModule


def _digest(image: torch.Tensor) -> str:
    return hashlib.sha1(image.numpy().tobytes()).hexdigest()


def test_same_index_same_image_across_instances_and_batches():
    a = MotifCompositions(MotifSpec(), "train", 1000)
    b = MotifCompositions(MotifSpec(), "train", 1000)
    batch, labels = a.render(np.array([7, 3, 999, 500]))
    single, label = b[999]
    assert torch.equal(batch[2], single) and labels[2].item() == label
    assert torch.equal(a.render(np.array([3]))[0][0], batch[1])


def test_nested_subsets_are_exact_prefixes():
    small = MotifCompositions(MotifSpec(), "train", 100)
    large = MotifCompositions(MotifSpec(), "train", 10_000)
    idx = np.arange(100)
    assert torch.equal(small.render(idx)[0], large.render(idx)[0])


def test_train_val_test_and_tasks_are_disjoint():
    spec = MotifSpec()
    digests = {}
    for split in ("train", "val", "test"):
        images, _ = MotifCompositions(spec, split, 500).render(np.arange(500))
        digests[split] = {_digest(img) for img in images}
        assert len(digests[split]) == 500  # no repeats within a split either
    assert not digests["train"] & digests["val"]
    assert not digests["train"] & digests["test"]
    assert not digests["val"] & digests["test"]


def test_transfer_task_uses_held_out_glyph_sets():
    pretrain = MotifCompositions(MotifSpec(num_classes=50), "train", 10)
    transfer = MotifCompositions(MotifSpec(num_classes=50, task="transfer"), "train", 10)
    seen = {tuple(c) for c in pretrain.compositions.tolist()}
    held_out = {tuple(c) for c in transfer.compositions.tolist()}
    assert len(seen) == len(held_out) == 50 and not seen & held_out


def test_seed_changes_the_world():
    a, _ = MotifCompositions(MotifSpec(seed=0), "train", 10).render(np.arange(10))
    b, _ = MotifCompositions(MotifSpec(seed=1), "train", 10).render(np.arange(10))
    assert not torch.equal(a, b)


@pytest.mark.parametrize("size", [16, 32, 64])
def test_any_image_size_in_unit_range(size):
    images, _ = MotifCompositions(MotifSpec(image_size=size), "val", 64).render(np.arange(64))
    assert images.shape == (64, 3, size, size) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    assert torch.isfinite(images).all()


def test_classes_are_balanced_in_every_prefix():
    ds = MotifCompositions(MotifSpec(num_classes=10), "train", 1000)
    counts = np.bincount(ds.labels(np.arange(250)), minlength=10)
    assert counts.max() - counts.min() <= 1


def test_no_colour_or_position_shortcut():
    """A nearest-class-mean classifier on the mean colour of each image quadrant is at chance."""
    ds = MotifCompositions(MotifSpec(num_classes=10), "train", 4000)
    images, labels = ds.render(np.arange(4000))
    feats = torch.nn.functional.adaptive_avg_pool2d(images, 2).flatten(1)
    train_x, train_y, test_x, test_y = feats[:3000], labels[:3000], feats[3000:], labels[3000:]
    means = torch.stack([train_x[train_y == c].mean(0) for c in range(10)])
    accuracy = (torch.cdist(test_x, means).argmin(1) == test_y).float().mean().item()
    assert accuracy < 0.15  # chance is 0.10


def test_glyphs_decide_the_class():
    """Control for the test above: the same probe on glyph masks does beat chance."""
    spec = MotifSpec(num_classes=10, num_distractors=0, noise_std=0.0)
    ds = MotifCompositions(spec, "train", 2000)
    images, labels = ds.render(np.arange(2000))
    # Glyph pixels differ from the smooth background: high-pass energy marks where glyphs are.
    edges = (images - torch.nn.functional.avg_pool2d(images, 3, 1, 1)).abs().sum(1)
    feats = torch.fft.rfft2(edges).abs().flatten(1)  # translation-invariant glyph signature
    feats = feats / feats.norm(dim=1, keepdim=True)
    means = torch.stack([feats[:1500][labels[:1500] == c].mean(0) for c in range(10)])
    accuracy = (torch.cdist(feats[1500:], means).argmin(1) == labels[1500:]).float().mean().item()
    assert accuracy > 0.2


def test_datamodule_exposes_what_the_run_needs():
    dm = SyntheticDataModule(num_classes=7, image_size=24, num_train=70, num_val=14, batch_size=8)
    dm.setup("fit")
    assert (dm.num_classes, dm.image_size, dm.num_train_samples) == (7, 24, 70)
    images, labels = next(iter(dm.train_dataloader()))
    assert images.shape == (8, 3, 24, 24) and labels.shape == (8,)
    assert sum(len(y) for _, y in dm.val_dataloader()) == 14  # every val image, once


@pytest.mark.parametrize("version", [1, 2])
def test_rendering_once_serves_bitwise_the_batches_rendered_every_epoch(version):
    # performance.render_once is a speed switch: the training order and every image and label
    # of an epoch are those the per-batch rendering gives, in shuffled batches of 16.
    def epoch(render_once: bool) -> list[tuple[torch.Tensor, torch.Tensor]]:
        dm = SyntheticDataModule(num_train=300, num_val=40, image_size=16, batch_size=16,
                                 generator={"version": version})  # fmt: skip
        dm.performance = {"render_once": render_once}
        dm.setup("fit")
        assert (type(dm.train_set).__name__ == "RenderedOnce") == render_once
        torch.manual_seed(0)
        return [*dm.train_dataloader(), *dm.val_dataloader()]

    cached, rendered = epoch(True), epoch(False)
    assert len(cached) == len(rendered) == 18 + 3  # full training batches, then validation
    for (images, labels), (images_ref, labels_ref) in zip(cached, rendered, strict=True):
        assert torch.equal(images, images_ref) and torch.equal(labels, labels_ref)
