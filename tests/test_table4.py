"""Table 4's fine-tuning selection: each dataset's learning-rate grid, a minival held out of
its training set, the rate chosen on the minival and the test split reported."""

from __future__ import annotations

import csv

import torch
import yaml

from conftest import ROOT
from helpers import write_jpeg_tree
from vitrepro.data import ImageFolderDataModule
from vitrepro.tracking.record import select_on_minival, transfer_metrics

PAPER_NAMES = {
    "ImageNet": "imagenet",
    "CIFAR-10": "cifar10",
    "CIFAR-100": "cifar100",
    "Oxford-IIIT Pets": "pets",
    "Oxford Flowers-102": "flowers102",
}


def test_the_table4_transfer_sweeps_each_datasets_grid_with_its_minival():
    transfers = yaml.safe_load((ROOT / "conf" / "transfer" / "table4.yaml").read_text())
    grids: dict[str, set[float]] = {}
    for overrides in transfers.values():
        settings = dict(o.split("=", 1) for o in overrides)
        grids.setdefault(settings["data"], set()).add(float(settings["recipe.optimizer.lr"]))
        expected_fraction = 0.02 if settings["data"] == "imagenet" else 0.1
        assert float(settings["data.minival_fraction"]) == expected_fraction
        assert settings["recipe"] == "finetune"
    with (ROOT / "src" / "vitrepro" / "paper" / "table4_finetune_hparams.csv").open() as file:
        paper = {
            PAPER_NAMES[row["dataset"]]: {float(v) for v in row["lr_grid"].split(";")}
            for row in csv.DictReader(file)
            if row["dataset"] in PAPER_NAMES
        }
    assert grids == paper


def test_a_minival_is_held_out_of_train_and_the_official_split_becomes_the_test(tmp_path):
    write_jpeg_tree(tmp_path, classes=3, per_class=10)  # 30 training, 30 validation images
    dm = ImageFolderDataModule(
        name="f", root=str(tmp_path), num_classes=3, image_size=16, minival_fraction=0.2
    )
    dm.setup("fit")
    assert dm.num_train_samples == 24 and len(dm.val_set) == 6 and len(dm.test_set) == 30
    assert not set(dm.train_set.indices) & set(dm.val_set.indices)  # disjoint images
    first, again = dm.val_set[0][0], dm.val_set[0][0]
    assert torch.equal(first, again)  # the minival is read with the evaluation transform
    other = ImageFolderDataModule(
        name="f", root=str(tmp_path), num_classes=3, image_size=16, minival_fraction=0.2
    )
    other.setup("fit")
    assert other.val_set.indices == dm.val_set.indices  # the same minival for every candidate


def _result(minival: float, test: float, lr: float, data: str = "cifar10") -> dict:
    return {"final": {"val/top1": minival, "test/top1": test}, "best": {}, "data": data, "lr": lr}


def test_the_rate_is_chosen_on_the_minival_never_on_the_test_split():
    transfers = {
        "cifar10_lr1e-3": _result(0.80, 0.95, 0.001),  # the best test, not the best minival
        "cifar10_lr1e-2": _result(0.90, 0.85, 0.01),
        "pets": _result(0.70, 0.60, 0.01, data="pets"),  # one run: nothing to select
    }
    assert set(select_on_minival(transfers)) == {"cifar10"}
    metrics = transfer_metrics(transfers)
    assert metrics["transfer/cifar10/selected_lr"] == 0.01
    assert metrics["transfer/cifar10/selected_test_top1"] == 0.85
    assert "transfer/pets/selected_lr" not in metrics
