"""Parts of a dataset: the few-shot support pool (at most k images a class) and the minival a
fine-tuning sweep selects on (Table 4)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, Subset


def per_class_subset(dataset: Dataset, per_class: int | None, seed: int = 0) -> Dataset:
    """At most ``per_class`` random examples of each class of a dataset with ``targets`` (the
    few-shot support pool: features are then extracted for classes x per_class images, not
    for a whole ImageNet training set). Datasets without ``targets`` are returned whole."""
    targets = getattr(dataset, "targets", None)
    if not per_class or targets is None:
        return dataset
    targets = torch.as_tensor(targets)
    order = torch.randperm(len(targets), generator=torch.Generator().manual_seed(seed))
    by_class = torch.argsort(targets[order], stable=True)
    sorted_labels = targets[order][by_class]
    first = torch.searchsorted(sorted_labels, sorted_labels, side="left")
    rank = torch.arange(len(sorted_labels)) - first  # position within its class
    keep = order[by_class[rank < per_class]]
    return Subset(dataset, torch.sort(keep).values.tolist())


def split_minival(
    train: Dataset, train_for_evaluation: Dataset, fraction: float, seed: int = 0
) -> tuple[Dataset, Dataset]:
    """(training part, minival) of a training set: a seeded ``fraction`` held out for model
    selection, as the paper selects fine-tuning learning rates (Table 4: 2% of ImageNet's
    training set, 10% of the others'). The minival reads the same images with the evaluation
    pre-processing (``train_for_evaluation``); the split does not depend on the run's seed, so
    every candidate of a sweep is selected on the same images."""
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed)).tolist()
    held = max(1, round(fraction * len(order)))
    return Subset(train, sorted(order[held:])), Subset(train_for_evaluation, sorted(order[:held]))
