"""Few-shot evaluation time (the linear few-shot evaluation of Section 4.1).

``vitrepro.evaluation.fewshot.fewshot_accuracies`` solves every (shots x seeds) ridge-regression
problem of a dataset in one batched call in the primal form. The baseline solves each problem
separately with ``torch.linalg.lstsq`` (QR, LAPACK's ``gels``: the fastest of its drivers here)
on the ridge-augmented design matrix, as a direct implementation (and the project's test
reference) would. Both see the same features and support sets; their accuracies must agree.

The floor is the matrix products the batched form cannot avoid, timed alone in the same run on
inputs of the same shapes: each problem's support Gram (``symmetric_gram``), the batched
Cholesky factorisation and solve, and the test scores of every problem.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from vitrepro.evaluation.fewshot import fewshot_accuracies, support_problem, symmetric_gram


def synthetic_features(
    ways: int, dim: int, pool_per_class: int, test_per_class: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gaussian class clusters in ``dim`` dimensions: (pool x, pool y, test x, test y).

    The class-mean spread is chosen so 25-shot accuracy is well away from 0 and 1.
    """
    generator = torch.Generator().manual_seed(seed)
    centres = 0.2 * torch.randn(ways, dim, generator=generator)
    pool_y = torch.arange(ways).repeat_interleave(pool_per_class)
    test_y = torch.arange(ways).repeat_interleave(test_per_class)
    pool_x = centres[pool_y] + torch.randn(len(pool_y), dim, generator=generator)
    test_x = centres[test_y] + torch.randn(len(test_y), dim, generator=generator)
    return pool_x, pool_y, test_x, test_y


def per_problem_lstsq(
    pool_features: torch.Tensor,
    pool_labels: torch.Tensor,
    test_features: torch.Tensor,
    test_labels: torch.Tensor,
    num_classes: int,
    shots: list[int],
    seeds: int = 3,
    l2_reg: float = 1024.0,
) -> dict[int, float]:
    """The baseline: the same problems as ``fewshot_accuracies``, one ``lstsq`` each."""
    pool_features, test_features = pool_features.double(), test_features.double()
    dim = pool_features.shape[1]
    results: dict[int, list[float]] = {}
    for shot in shots:
        for seed in range(seeds):
            design, targets, mean, std = support_problem(
                pool_features, pool_labels, num_classes, shot, seed
            )
            # min |Xw - t|^2 + l2_reg |w|^2 as one least-squares problem on [X; sqrt(l2_reg) I].
            ridge = l2_reg**0.5 * torch.eye(dim + 1, dtype=design.dtype)
            augmented = torch.cat([design, ridge])
            rhs = torch.cat([targets, torch.zeros(dim + 1, num_classes, dtype=design.dtype)])
            weights = torch.linalg.lstsq(augmented, rhs, driver="gels").solution
            test = torch.cat(
                [(test_features - mean) / std, torch.ones(len(test_features), 1, dtype=mean.dtype)],
                dim=1,
            )
            accuracy = ((test @ weights).argmax(-1) == test_labels).double().mean()
            results.setdefault(shot, []).append(float(accuracy))
    return {shot: sum(values) / len(values) for shot, values in results.items()}


def unavoidable_products(
    supports: list[int], test_size: int, ways: int, dim: int, seed: int = 0
) -> float:
    """Seconds of the few-shot solve's own matrix products alone, for one problem per support
    size in ``supports`` (inputs and the scores' memory made before the clock starts): each
    support's Gram, the batched Cholesky factorisation and solve, and every problem's test
    scores."""
    generator = torch.Generator().manual_seed(seed)
    support = torch.randn(max(supports), dim, generator=generator)
    problems = len(supports)
    spd = torch.eye(dim + 1, dtype=torch.float64) * dim + 0.01
    systems = spd.expand(problems, dim + 1, dim + 1).contiguous()
    rhs = torch.randn(problems, dim + 1, ways, dtype=torch.float64, generator=generator)
    test = torch.randn(test_size, dim, generator=generator)
    folded = torch.randn(dim, problems * ways, generator=generator)
    scores = torch.empty(min(4096, test_size), problems * ways)  # products only, no page faults
    scores.zero_()
    start = time.perf_counter()
    for size in supports:
        symmetric_gram(support[:size])
    torch.cholesky_solve(rhs, torch.linalg.cholesky(systems))
    for chunk in test.split(4096):
        torch.mm(chunk, folded, out=scores[: len(chunk)])
    return time.perf_counter() - start


def measure_fewshot(
    ways: int = 1000,
    shots: tuple[int, ...] = (25,),
    seeds: int = 3,
    dim: int = 768,
    test_per_class: int = 10,
    repeats: int = 3,
    l2_reg: float = 1024.0,
) -> dict[str, Any]:
    """Seconds for one few-shot evaluation, batched (ours) and per problem (baseline); median
    of ``repeats`` interleaved repetitions, and the largest accuracy difference between them."""
    pool_x, pool_y, test_x, test_y = synthetic_features(
        ways, dim, max(shots) * seeds, test_per_class
    )
    args = (pool_x, pool_y, test_x, test_y, ways, list(shots), seeds, l2_reg)
    times: dict[str, list[float]] = {"batched": [], "per_problem": [], "products": []}
    sizes = ([shot * ways for shot in shots for _ in range(seeds)], len(test_y), ways, dim)
    accuracies: dict[str, dict[int, float]] = {}
    for repeat in range(repeats):
        order = [("batched", fewshot_accuracies), ("per_problem", per_problem_lstsq)]
        for name, solve in order if repeat % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            accuracies[name] = solve(*args)
            times[name].append(time.perf_counter() - start)
        times["products"].append(unavoidable_products(*sizes))
    median = {name: statistics.median(values) for name, values in times.items()}
    difference = max(abs(accuracies["batched"][s] - accuracies["per_problem"][s]) for s in shots)
    return {
        "ways": ways,
        "shots": list(shots),
        "seeds": seeds,
        "dim": dim,
        "pool_size": len(pool_y),
        "test_size": len(test_y),
        "l2_reg": l2_reg,
        "repeats": repeats,
        "batched_s": round(median["batched"], 4),
        "per_problem_lstsq_s": round(median["per_problem"], 4),
        "batched_s_runs": [round(t, 4) for t in times["batched"]],
        "per_problem_lstsq_s_runs": [round(t, 4) for t in times["per_problem"]],
        "speedup_vs_per_problem": round(median["per_problem"] / median["batched"], 3),
        "products_s": round(median["products"], 4),
        "products_s_runs": [round(t, 4) for t in times["products"]],
        "vs_products": round(median["batched"] / median["products"], 3),
        "accuracy": {str(s): round(a, 6) for s, a in accuracies["batched"].items()},
        "baseline_accuracy": {str(s): round(a, 6) for s, a in accuracies["per_problem"].items()},
        "max_accuracy_difference": difference,
        "accuracies_agree": difference <= 1e-6,
    }
