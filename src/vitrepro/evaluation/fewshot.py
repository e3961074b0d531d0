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


def symmetric_gram(x: torch.Tensor, block: int = 128) -> torch.Tensor:
    """``x.T @ x`` from the blocks on and right of the diagonal only, the rest mirrored: with
    ``d / block`` blocks about (1 + block / d) / 2 of a full product's work (58% at d = 768;
    torch has no symmetric rank-k product)."""
    dim = x.shape[1]
    gram = torch.empty(dim, dim, dtype=x.dtype)
    for start in range(0, dim, block):
        end = min(start + block, dim)
        gram[start:end, start:] = x[:, start:end].T @ x[:, start:]
        gram[end:, start:end] = gram[start:end, end:].T
    return gram


def _whitened_system(
    x: torch.Tensor, num_classes: int, shot: int, l2_reg: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(X'X + lambda I, X'Y, mean, std)`` of one support set, in float64, where X is the
    whitened support plus a bias column and Y its {-1, 1} one-hot targets; ``x`` holds the
    support as ``support_indices`` orders it (``shot`` rows of class 0, then of class 1, ...).

    The whitening is applied to the small results, not to the support: with C the centred
    support and s the std, Z'Z = C'C / (s s') and Z's class sums are C's divided by s. So the
    only pass over the support is one centring, then one float32 Gram (half a product). X'Y needs
    no product: with Y = 2 onehot - 1 it is twice the per-class sums minus the column sums, and
    the std is the Gram's diagonal (C'C's diagonal / n is the population variance), so ``x`` (a
    gathered copy) is centred in place and read once more, by the Gram."""
    n, dim = x.shape
    mean = x.mean(0)
    centred = x.sub_(mean)
    centred_gram = symmetric_gram(centred)
    std = (centred_gram.diagonal() / n).sqrt() + 1e-6  # as x.std(unbiased=False)
    inverse = 1.0 / std.double()
    gram = torch.empty(dim + 1, dim + 1, dtype=torch.float64)
    gram[:dim, :dim] = centred_gram.double() * inverse[:, None] * inverse[None, :]
    class_sums = centred.view(num_classes, shot, dim).sum(1).double() * inverse
    column_sums = class_sums.sum(0)  # zero up to rounding: the support is centred
    gram[dim, :dim] = gram[:dim, dim] = column_sums
    gram[dim, dim] = n
    gram.diagonal().add_(l2_reg)
    bias_row = torch.full((num_classes, 1), 2.0 * shot - n, dtype=torch.float64)
    rhs = torch.cat([2 * class_sums - column_sums, bias_row], dim=1).T
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
    test_chunk: int = 4096,
) -> dict[int, float]:
    """Mean test accuracy over ``seeds`` support sets drawn from the pool, for each shot count.

    The same solution as solving ``support_problem`` in float64 (big_vision's ``fewshot_lsr``
    formula), arranged so its cost is two float32 products per problem: the Gram of the support
    set and the test scores. The whitening is folded into the weights, so the test set is
    never copied per problem, and every problem's test scores come from one product per chunk
    of ``test_chunk`` test images (bounded memory whatever the number of classes)."""
    pool_features, test_features = pool_features.float(), test_features.float()
    # One support buffer for every problem: a fresh 25,000 x 768 copy per problem costs more in
    # page faults (the kernel zeroing new memory) than the gather itself.
    support = torch.empty(max(shots) * num_classes, pool_features.shape[1])
    grams, rhs, means, stds, problems = [], [], [], [], []
    for shot in shots:
        for seed in range(seeds):
            idx = support_indices(pool_labels, num_classes, shot, seed)
            x = torch.index_select(pool_features, 0, idx, out=support[: len(idx)])
            system = _whitened_system(x, num_classes, shot, l2_reg)
            for store, value in zip((grams, rhs, means, stds), system, strict=True):
                store.append(value)
            problems.append(shot)
    # X'X + lambda I is symmetric positive definite: Cholesky, half LU's work and no pivots.
    # (Batched LU on several CPU threads fails in MKL's xLASWP, pytorch/pytorch#142815.)
    factors = torch.linalg.cholesky(torch.stack(grams))
    weights = torch.cholesky_solve(torch.stack(rhs), factors)  # (P, d+1, K), float64
    # scores = ((t - mean) / std) @ w[:d] + w[d] = t @ (w[:d] / std) + (w[d] - mean @ ...)
    scaled = weights[:, :-1] / torch.stack(stds).double()[:, :, None]  # (P, d, K)
    bias = weights[:, -1] - torch.einsum("pd,pdk->pk", torch.stack(means).double(), scaled)
    folded = scaled.permute(1, 0, 2).reshape(scaled.shape[1], -1).float()  # (d, P*K)
    correct = torch.zeros(len(problems), dtype=torch.long)
    flat_bias = bias.flatten().float()
    buffer = torch.empty(min(test_chunk, len(test_features)), folded.shape[1])  # reused: no faults
    for start in range(0, len(test_features), test_chunk):
        chunk = test_features[start : start + test_chunk]
        scores = torch.addmm(flat_bias, chunk, folded, out=buffer[: len(chunk)])
        predicted = scores.view(len(chunk), len(problems), num_classes).argmax(-1)
        correct += (predicted == test_labels[start : start + test_chunk, None]).sum(0)
    results: dict[int, list[float]] = {}
    for shot, right in zip(problems, correct.tolist(), strict=True):
        results.setdefault(shot, []).append(right / len(test_features))
    return {shot: sum(values) / len(values) for shot, values in results.items()}
