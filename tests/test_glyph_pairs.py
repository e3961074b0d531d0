"""Generator v2: resolvable glyphs, no clipping or overlap, every sub-patch phase, transfer
glyphs covered by pre-training, deterministic labels; measured from the render parameters."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from vitrepro.data.generators.glyph_pairs import GlyphPairs, GlyphPairSpec, class_pairs

PATCH = 4  # the tiny ViTs' patch size
N = 4000


def _boxes(dataset: GlyphPairs, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, slots, 4) boxes x0, y0, x1, y1 in pixels of what each glyph changes (its strokes
    and their bilinear fade), and (B, slots) cells."""
    layout = dataset.layout(indices)
    half = layout["reach"][..., None]
    return torch.cat([layout["centre"] - half, layout["centre"] + half], -1), layout["cell"]


@pytest.mark.parametrize("relational", [False, True])
def test_no_glyph_is_clipped_or_overlapped(relational):
    spec = GlyphPairSpec(relational=relational)
    boxes, cells = _boxes(GlyphPairs(spec, "train", N), np.arange(N))
    assert (boxes[..., :2] >= 0).all() and (boxes[..., 2:] <= spec.image_size).all()
    cell = spec.image_size / spec.cells
    corner = torch.stack([cells % spec.cells, cells // spec.cells], -1) * cell
    assert (boxes[..., :2] >= corner).all() and (boxes[..., 2:] <= corner + cell).all()
    for a, b in itertools.combinations(range(spec.slots), 2):
        apart = (boxes[:, a, 2] <= boxes[:, b, 0]) | (boxes[:, b, 2] <= boxes[:, a, 0])
        apart |= (boxes[:, a, 3] <= boxes[:, b, 1]) | (boxes[:, b, 3] <= boxes[:, a, 1])
        assert apart.all()


def test_glyphs_are_resolvable_at_the_patch_scale():
    spec = GlyphPairSpec()
    layout = GlyphPairs(spec, "train", N).layout(np.arange(N))
    stroke = layout["side"] / 5  # one template cell of the 5x5 glyph
    assert stroke.min() >= 1.6 and stroke.max() <= 1.9
    assert layout["side"].min() > 2 * PATCH  # a glyph spans more than two patches


def test_positions_cover_every_sub_patch_phase():
    spec = GlyphPairSpec()
    assert spec.jitter_px > PATCH  # the centre moves over more than a whole patch in its cell
    boxes, _ = _boxes(GlyphPairs(spec, "train", N), np.arange(N))
    phase = torch.remainder((boxes[..., 0] + boxes[..., 2]) / 2, PATCH).flatten()
    counts = torch.histc(phase, bins=8, min=0, max=PATCH)
    assert (counts / counts.sum()).min() > 0.05  # every eighth of a patch occurs (uniform: 0.125)


@pytest.mark.parametrize("classes", [5, 10, 20])
def test_transfer_shares_every_glyph_but_no_class(classes):
    for seed in range(5):
        pretrain = class_pairs(GlyphPairSpec(seed=seed, num_classes=classes))
        transfer = class_pairs(GlyphPairSpec(seed=seed, task="transfer", num_classes=10))
        assert len(set(pretrain)) == classes and len(set(transfer)) == 10
        assert not set(pretrain) & set(transfer)
        assert {g for p in transfer for g in p} <= {g for p in pretrain for g in p}
        assert {g for p in pretrain for g in p} == set(range(10))


def test_images_are_a_function_of_seed_split_and_index():
    spec = GlyphPairSpec()
    small, large = GlyphPairs(spec, "train", 64), GlyphPairs(spec, "train", 10_000)
    images, labels = small.render(np.arange(64))
    again, same_labels = large.render(np.arange(64))
    assert torch.equal(images, again) and torch.equal(labels, same_labels)
    assert torch.equal(large[5][0], images[5])
    test_images, _ = GlyphPairs(spec, "test", 64).render(np.arange(64))
    assert not torch.isclose(test_images, images).all(dim=(1, 2, 3)).any()
    assert images.min() >= -1 and images.max() <= 1
    assert torch.equal(labels, torch.arange(64) % spec.num_classes)  # balanced prefixes


def test_class_glyphs_are_drawn_where_the_layout_puts_them():
    """Each class glyph changes the image inside its box and nowhere else; drawing it with
    another template changes the image there (the label is visible, not a shortcut)."""
    spec = GlyphPairSpec(noise_std=0.0, num_distractors=0)
    dataset = GlyphPairs(spec, "train", 16)
    images, _ = dataset.render(np.arange(16))
    boxes, _ = _boxes(dataset, np.arange(16))
    blank = GlyphPairs(spec, "train", 16)
    blank.class_glyphs = torch.zeros_like(blank.class_glyphs)
    background, _ = blank.render(np.arange(16))
    changed = (images - background).abs().amax(1) > 1e-4
    inside = torch.zeros_like(changed)
    for b, s in itertools.product(range(16), range(2)):
        x0, y0, x1, y1 = boxes[b, s].tolist()
        # pixel i is changed when its centre i + 0.5 lies in the box
        rows = slice(int(np.ceil(y0 - 0.5)), int(np.floor(y1 - 0.5)) + 1)
        inside[b, rows, int(np.ceil(x0 - 0.5)) : int(np.floor(x1 - 0.5)) + 1] = True
    assert changed.any(dim=(1, 2)).all() and not (changed & ~inside).any()


def test_relational_variant_labels_the_arrangement():
    spec = GlyphPairSpec(relational=True)
    dataset = GlyphPairs(spec, "train", N)
    labels = torch.from_numpy(dataset.labels(np.arange(N)))
    cells = dataset.layout(np.arange(N))["cell"][:, :2]
    same_row = (cells[:, 0] // 2) == (cells[:, 1] // 2)
    same_column = (cells[:, 0] % 2) == (cells[:, 1] % 2)
    assert same_row[labels % 2 == 0].all() and same_column[labels % 2 == 1].all()
    assert len(dataset.pairs) == spec.num_classes // 2


def test_too_many_classes_is_a_clear_error():
    with pytest.raises(ValueError, match="raise num_glyphs or change num_classes"):
        class_pairs(GlyphPairSpec(num_classes=30))
