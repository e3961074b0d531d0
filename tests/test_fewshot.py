"""Linear few-shot evaluation against a direct least-squares solve, and on a separable toy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vitrepro.evaluation.fewshot import fewshot_accuracies, support_indices, symmetric_gram


def reference_accuracy(pool_x, pool_y, test_x, test_y, num_classes, shot, seed, l2_reg):
    """The same problem solved by numpy's lstsq on the ridge-augmented system."""
    idx = support_indices(pool_y, num_classes, shot, seed).numpy()
    x, y = pool_x.numpy()[idx].astype(np.float64), pool_y.numpy()[idx]
    mean, std = x.mean(0), x.std(0) + 1e-6
    design = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    targets = 2.0 * np.eye(num_classes)[y] - 1.0
    augmented = np.vstack([design, np.sqrt(l2_reg) * np.eye(design.shape[1])])
    rhs = np.vstack([targets, np.zeros((design.shape[1], num_classes))])
    weights = np.linalg.lstsq(augmented, rhs, rcond=None)[0]
    test = np.hstack([(test_x.numpy() - mean) / std, np.ones((len(test_x), 1))])
    return float(((test @ weights).argmax(1) == test_y.numpy()).mean())


@pytest.mark.parametrize("l2_reg", [1024.0, 1.0])
def test_matches_a_direct_least_squares_solve(l2_reg):
    torch.manual_seed(0)
    classes, dim = 7, 12
    centres = torch.randn(classes, dim)
    pool_y = torch.arange(classes).repeat(30)
    test_y = torch.arange(classes).repeat(20)
    pool_x = centres[pool_y] + 1.5 * torch.randn(len(pool_y), dim)
    test_x = centres[test_y] + 1.5 * torch.randn(len(test_y), dim)
    ours = fewshot_accuracies(pool_x, pool_y, test_x, test_y, classes, [1, 5, 10], 3, l2_reg)
    for shot in (1, 5, 10):
        expected = np.mean(
            [
                reference_accuracy(pool_x, pool_y, test_x, test_y, classes, shot, s, l2_reg)
                for s in range(3)
            ]
        )
        assert ours[shot] == pytest.approx(expected, abs=1e-9)


def test_separable_classes_are_solved_from_one_shot():
    classes = 5
    pool_y, test_y = torch.arange(classes).repeat(10), torch.arange(classes).repeat(4)
    centres = 10.0 * torch.eye(classes)
    pool_x = centres[pool_y] + 0.01 * torch.randn(len(pool_y), classes)
    test_x = centres[test_y] + 0.01 * torch.randn(len(test_y), classes)
    accuracy = fewshot_accuracies(pool_x, pool_y, test_x, test_y, classes, [1, 5], 2, l2_reg=1.0)
    assert accuracy[5] == 1.0 and accuracy[1] == 1.0


def test_random_features_are_at_chance():
    torch.manual_seed(1)
    classes = 10
    pool_y, test_y = torch.arange(classes).repeat(25), torch.randint(0, classes, (2000,))
    accuracy = fewshot_accuracies(
        torch.randn(250, 32), pool_y, torch.randn(2000, 32), test_y, classes, [5], 3
    )
    assert abs(accuracy[5] - 0.1) < 0.04


def test_support_sets_differ_by_seed_and_have_k_per_class():
    labels = torch.arange(4).repeat(10)
    a, b = support_indices(labels, 4, 3, 0), support_indices(labels, 4, 3, 1)
    assert torch.bincount(labels[a]).tolist() == [3, 3, 3, 3]
    assert not torch.equal(a, b)
    with pytest.raises(ValueError, match="fewer than 25 shots"):
        support_indices(labels, 4, 25, 0)


def scan_per_class(labels, num_classes, shots, seed):
    """The support sets as first written: one scan of the pool per class."""
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(num_classes):
        members = torch.nonzero(labels == c).flatten()
        chosen.append(members[torch.randperm(len(members), generator=generator)[:shots]])
    return torch.cat(chosen)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_support_sets_are_those_of_one_scan_per_class(seed):
    # Shuffled labels with unequal class sizes and a label outside the evaluated classes: the
    # sorted lookup must pick exactly the indices the per-class scan picked (same accuracies).
    generator = torch.Generator().manual_seed(10 + seed)
    labels = torch.cat([torch.arange(30).repeat(7), torch.arange(12), torch.full((5,), 31)])
    labels = labels[torch.randperm(len(labels), generator=generator)]
    for shots in (1, 5, 7):
        expected = scan_per_class(labels, 30, shots, seed)
        assert torch.equal(support_indices(labels, 30, shots, seed), expected)


def test_many_problems_in_many_dimensions_on_several_threads():
    # Batched LU (torch.linalg.solve over a batch) on several CPU threads trips MKL ("Parameter 6
    # was incorrect on entry to DLASWP", pytorch/pytorch#142815): from about 150 feature
    # dimensions it raised or hung. The systems are symmetric positive definite: Cholesky.
    threads = torch.get_num_threads()
    torch.set_num_threads(max(2, threads))
    try:
        torch.manual_seed(0)
        classes, dim = 4, 200
        centres = 0.5 * torch.randn(classes, dim)
        pool_y, test_y = torch.arange(classes).repeat(30), torch.arange(classes).repeat(10)
        pool_x = centres[pool_y] + torch.randn(len(pool_y), dim)
        test_x = centres[test_y] + torch.randn(len(test_y), dim)
        ours = fewshot_accuracies(pool_x, pool_y, test_x, test_y, classes, [1, 5, 10], 3)
    finally:
        torch.set_num_threads(threads)
    for shot in (1, 5, 10):
        expected = np.mean(
            [
                reference_accuracy(pool_x, pool_y, test_x, test_y, classes, shot, s, 1024.0)
                for s in range(3)
            ]
        )
        assert ours[shot] == pytest.approx(expected, abs=1e-9)


def test_float32_products_give_the_float64_solves_accuracies_at_scale():
    """The folded, float32 products against the float64 least-squares solve, at a size where
    rounding could flip predictions (100 classes, 256 dimensions, 5,000 test images)."""
    torch.manual_seed(1)
    classes, dim = 100, 256
    centres = 0.3 * torch.randn(classes, dim)
    pool_y, test_y = torch.arange(classes).repeat(25), torch.arange(classes).repeat(50)
    pool_x = 3.0 + centres[pool_y] + torch.randn(len(pool_y), dim)  # not centred: whitening works
    test_x = 3.0 + centres[test_y] + torch.randn(len(test_y), dim)
    ours = fewshot_accuracies(pool_x, pool_y, test_x, test_y, classes, [5, 25], 2)
    for shot in (5, 25):
        expected = np.mean(
            [
                reference_accuracy(pool_x, pool_y, test_x, test_y, classes, shot, s, 1024.0)
                for s in range(2)
            ]
        )
        assert ours[shot] == expected  # the same predictions, not merely close


@pytest.mark.parametrize("dim", [5, 128, 300])
def test_the_half_product_gram_is_the_full_one(dim):
    x = torch.randn(64, dim, generator=torch.Generator().manual_seed(dim))
    torch.testing.assert_close(symmetric_gram(x, block=128), x.T @ x, rtol=1e-5, atol=1e-4)
