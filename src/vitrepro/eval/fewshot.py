"""Linear few-shot evaluation (Section 4.1; Figure 4 reports ImageNet 5-shot).

The frozen representation of a few examples per class is mapped to {-1, 1}^K targets by
closed-form L2-regularised least squares. As the authors' later public code does: features are
whitened with the support set's mean and standard deviation, a constant bias feature is
appended, lambda = 1024, and accuracies are averaged over several random support sets.

All (shots x seeds) problems of a dataset are solved in one batched call: in the primal form
every system is (d+1) x (d+1) whatever the number of support examples, so they stack.
"""

from __future__ import annotations

import torch


def support_indices(labels: torch.Tensor, num_classes: int, shots: int, seed: int) -> torch.Tensor:
    """``shots`` random examples of every class, reproducibly from ``seed``.

    Each class's members are found once by a stable sort (ascending indices, as
    ``nonzero(labels == c)`` lists them), not by one scan of the pool per class: 1000 classes
    cost one sort instead of 1000 passes (``python -m vitrepro.bench`` measures it).
    """
    generator = torch.Generator().manual_seed(seed)
    sorted_labels, order = torch.sort(labels, stable=True)
    classes = torch.arange(num_classes, dtype=sorted_labels.dtype)
    starts = torch.searchsorted(sorted_labels, classes).tolist()
    ends = torch.searchsorted(sorted_labels, classes, right=True).tolist()
    chosen = []
    for c, (start, end) in enumerate(zip(starts, ends, strict=True)):
        if end - start < shots:
            raise ValueError(f"class {c} has {end - start} examples, fewer than {shots} shots")
        members = order[start:end]
        chosen.append(members[torch.randperm(len(members), generator=generator)[:shots]])
    return torch.cat(chosen)


def support_problem(
    pool_features: torch.Tensor, pool_labels: torch.Tensor, num_classes: int, shot: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One support set as a regression problem: (design matrix: whitened features plus a bias
    column, {-1, 1} targets, the whitening mean and std to apply to test features)."""
    idx = support_indices(pool_labels, num_classes, shot, seed)
    x, y = pool_features[idx], pool_labels[idx]
    mean, std = x.mean(0), x.std(0, unbiased=False) + 1e-6
    design = torch.cat([(x - mean) / std, torch.ones(len(x), 1, dtype=x.dtype)], dim=1)
    targets = 2.0 * torch.nn.functional.one_hot(y, num_classes).to(x.dtype) - 1.0
    return design, targets, mean, std


def _whitened_system(
    x: torch.Tensor, y: torch.Tensor, num_classes: int, l2_reg: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(X'X + lambda I, X'Y, mean, std)`` of one support set, in float64, where X is the
    whitened support plus a bias column and Y its {-1, 1} one-hot targets.

    The Gram is one float32 product; X'Y needs no product at all: with Y = 2 onehot - 1 it is
    twice the per-class sums of X minus its column sums (an index_add over the examples)."""
    mean, std = x.mean(0), x.std(0, unbiased=False) + 1e-6
    z = (x - mean) / std
    n, dim = z.shape
    gram = torch.empty(dim + 1, dim + 1, dtype=torch.float64)
    gram[:dim, :dim] = (z.T @ z).double()
    column_sums = z.double().sum(0)  # zero up to rounding: the support is centred
    gram[dim, :dim] = gram[:dim, dim] = column_sums
    gram[dim, dim] = n
    gram += l2_reg * torch.eye(dim + 1, dtype=torch.float64)
    class_sums = torch.zeros(num_classes, dim, dtype=torch.float64).index_add_(0, y, z.double())
    counts = torch.bincount(y, minlength=num_classes).double()
    rhs = torch.cat([2 * class_sums - column_sums, (2 * counts - n)[:, None]], dim=1).T
    return gram, rhs, mean, std


def fewshot_accuracies(
    pool_features: torch.Tensor,
    pool_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    num_classes: int,
    shots: list[int],
    seeds: int = 3,
    l2_reg: float = 1024.0,
) -> dict[int, float]:
    """Mean test accuracy over ``seeds`` support sets drawn from the pool, for each shot count.

    The same solution as solving ``support_problem`` in float64 (big_vision's ``fewshot_lsr``
    formula), arranged so its cost is two float32 products per problem: the Gram of the support
    set and the test scores. The whitening is folded into the weights, so the test set is
    never copied per problem."""
    pool_features, test_features = pool_features.float(), test_features.float()
    grams, rhs, means, stds, problems = [], [], [], [], []
    for shot in shots:
        for seed in range(seeds):
            idx = support_indices(pool_labels, num_classes, shot, seed)
            system = _whitened_system(pool_features[idx], pool_labels[idx], num_classes, l2_reg)
            for store, value in zip((grams, rhs, means, stds), system, strict=True):
                store.append(value)
            problems.append(shot)
    # X'X + lambda I is symmetric positive definite: Cholesky, half LU's work and no pivots.
    # (Batched LU on several CPU threads fails in MKL's xLASWP, pytorch/pytorch#142815.)
    factors = torch.linalg.cholesky(torch.stack(grams))
    weights = torch.cholesky_solve(torch.stack(rhs), factors)  # (P, d+1, K), float64
    correct = []
    for w, mean, std in zip(weights, means, stds, strict=True):
        # scores = ((t - mean) / std) @ w[:d] + w[d] = t @ (w[:d] / std) + (w[d] - ...)
        scaled = w[:-1] / std.double()[:, None]
        bias = w[-1] - mean.double() @ scaled
        scores = torch.addmm(bias.float(), test_features, scaled.float())
        correct.append((scores.argmax(-1) == test_labels).double().mean())
    results: dict[int, list[float]] = {}
    for shot, accuracy in zip(problems, torch.stack(correct).tolist(), strict=True):
        results.setdefault(shot, []).append(accuracy)
    return {shot: sum(values) / len(values) for shot, values in results.items()}
