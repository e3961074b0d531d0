"""Learning-rate schedule, weight-decay groups and the global-batch plan."""

from __future__ import annotations

import csv
import math

import pytest

from study_records import composed_values
from vitrepro.config.errors import ConfigError
from vitrepro.files import PROJECT_ROOT
from vitrepro.models import build_model
from vitrepro.training.budget import plan_batch, total_steps
from vitrepro.training.schedule import warmup_then_decay, weight_decay_groups


def test_linear_warmup_then_linear_decay():
    f = warmup_then_decay(total_steps=110, warmup_steps=10, decay="linear", end_factor=0.0)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.5) and f(110) == pytest.approx(0.0)


def test_cosine_decay_ends_at_end_factor():
    f = warmup_then_decay(total_steps=100, warmup_steps=0, decay="cosine", end_factor=0.01)
    assert f(0) == pytest.approx(1.0) and f(50) == pytest.approx(0.505)
    assert f(100) == pytest.approx(0.01) and f(500) == pytest.approx(0.01)


def test_weight_decay_skips_biases_norms_and_embeddings():
    vit = build_model(
        {
            "arch": "vit",
            "patch_size": 4,
            "hidden_size": 16,
            "depth": 1,
            "mlp_size": 32,
            "num_heads": 2,
        },
        num_classes=3,
        image_size=8,
    )
    decayed, plain = weight_decay_groups(vit, 0.1)
    names = {id(p): n for n, p in vit.named_parameters()}
    plain_names = {names[id(p)] for p in plain["params"]}
    assert {"backbone.pos_embed", "backbone.cls_token", "head.bias"} <= plain_names
    assert all(p.ndim >= 2 for p in decayed["params"]) and decayed["weight_decay"] == 0.1


@pytest.mark.parametrize(
    "devices,nodes,per_device,expected",
    [(8, 1, None, (512, 1)), (8, 1, 64, (64, 8)), (4, 2, None, (512, 1)), (1, 1, 256, (256, 16))],
)
def test_global_batch_holds_on_any_device_count(devices, nodes, per_device, expected):
    recipe = {"global_batch_size": 4096, "per_device_batch_size": per_device}
    plan = plan_batch(recipe, {"devices": devices, "num_nodes": nodes, "accelerator": "cpu"})
    assert (plan.per_device, plan.accumulate) == expected
    assert plan.per_device * plan.accumulate * plan.world_size == 4096


def test_impossible_batch_split_is_a_config_error():
    with pytest.raises(ConfigError, match=r"recipe.global_batch_size=4096"):
        plan_batch({"global_batch_size": 4096, "per_device_batch_size": 3}, {"devices": 1})


def test_epochs_convert_to_optimizer_steps():
    # Table 3: 7 epochs of JFT-300M (303M images) at batch 4096.
    steps = total_steps({"epochs": 7, "global_batch_size": 4096, "steps": None}, 303_000_000)
    assert steps == 517_823
    assert total_steps({"steps": 1000, "global_batch_size": 8}, 10) == 1000


def test_table3_rule_gives_fewer_epochs_to_larger_sets():
    rule = {"steps": 15000, "at_num_train": 37500, "exponent": 0.3}
    recipe = {"steps": None, "steps_scaling": rule, "global_batch_size": 64}
    steps = [total_steps(recipe, n) for n in (1500, 4500, 12000, 37500)]
    assert steps == [5711, 7940, 10657, 15000]  # more steps, fewer epochs, on larger sets
    epochs = [s * 64 / n for s, n in zip(steps, (1500, 4500, 12000, 37500), strict=True)]
    assert epochs == sorted(epochs, reverse=True)
    assert total_steps({**recipe, "steps": 7}, 1500) == 7  # a fixed count still wins


def test_the_tiny_studies_exponent_is_table3s():
    # Table 3: 300 epochs of ImageNet (1.3M images), 90 of ImageNet-21k (14M), 7 of JFT-300M
    # (303M); the images seen against the set's size, least squares in log-log.
    epochs = {}
    with (PROJECT_ROOT / "src/vitrepro/paper/table3_pretrain_hparams.csv").open() as table:
        for row in csv.DictReader(table):
            if row["models"] == "ViT-B/{16;32}" or row["models"] == "ViT-*":
                epochs[row["dataset"]] = float(row["epochs"])
    sizes = {"ImageNet": 1.3e6, "ImageNet-21k": 14e6, "JFT-300M": 303e6}
    x = [math.log(sizes[d]) for d in sizes]
    y = [math.log(sizes[d] * epochs[d]) for d in sizes]
    mx, my = sum(x) / 3, sum(y) / 3
    slope = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True)) / sum(
        (a - mx) ** 2 for a in x
    )
    key = "recipe.steps_scaling.exponent"
    ((_, exponent),) = composed_values(("experiment=study/data_requirement_tiny",), (key,))
    assert exponent == pytest.approx(slope, abs=0.005)
