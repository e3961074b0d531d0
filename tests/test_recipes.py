"""The paper's recipes compose into the numbers of Tables 3 and 4."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

import vitrepro
from helpers import composed
from vitrepro.config.rules import check_model, check_recipe

TABLE3 = Path(vitrepro.__file__).parent / "paper" / "table3_pretrain_hparams.csv"
RECIPES = {
    "JFT-300M": "pretrain_jft",
    "ImageNet-21k": "pretrain_in21k",
    "ImageNet": "pretrain_in1k",
}
# Table 3's names -> our model configs (ResNets as "R50x1" there, hybrids as "R50+ViT-B/16")
CONFIGS = {
    **{f"ViT-{s}/{p}": f"vit_{s.lower()}{p}" for s in "BLH" for p in (14, 16, 32)},
    **{f"R{d}x{w}": f"bit_r{d}x{w}" for d in (50, 101, 152, 200) for w in (1, 2, 3)},
    **{f"R50+ViT-{s}/{p}": f"r50_vit_{s.lower()}{p}" for s in "BL" for p in (16, 32)},
}


def table3_rows() -> list[tuple[str, dict]]:
    """(our model config, Table 3 row) for every model a row names ("ViT-B/{16;32}" is two)."""
    rows = []
    for row in csv.DictReader(TABLE3.open()):
        names = [row["models"]]
        if match := re.fullmatch(r"(.*)\{(.*)\}", row["models"]):
            names = [match[1] + v for v in match[2].split(";")]
        if row["models"] == "ViT-*":
            names = ["ViT-B/16", "ViT-B/32", "ViT-L/16", "ViT-L/32"]
        rows += [(CONFIGS[n], row) for n in names if CONFIGS[n] in MODELS]
    return rows


MODELS = {p.stem for p in (Path(__file__).parents[1] / "conf" / "model").glob("*.yaml")}


@pytest.mark.parametrize("model,row", table3_rows(), ids=lambda v: v if isinstance(v, str) else "")
def test_pretraining_recipes_follow_table3(model, row):
    recipe = RECIPES[row["dataset"]]
    cfg = composed(f"model={model}", f"recipe={recipe}", "data=in21k")
    r = cfg["recipe"]
    assert r["optimizer"]["lr"] == pytest.approx(float(row["base_lr"]))
    assert r["optimizer"]["weight_decay"] == float(row["weight_decay"])
    assert r["optimizer"]["betas"] == [0.9, 0.999]
    assert r["global_batch_size"] == 4096 and r["schedule"]["warmup_steps"] == 10_000
    assert r["grad_clip_norm"] == 1.0 and cfg["data"]["image_size"] == 224
    assert str(r["epochs"]) in row["epochs"].split(" or ")  # "7 or 14": Table 6 runs both
    if cfg["model"]["arch"] != "bit":  # BiT ResNets have no dropout
        assert cfg["model"]["dropout"] == float(row["dropout"])
    assert r["schedule"]["decay"] == row["lr_decay"]
    check_recipe(r)
    check_model(cfg["model"], cfg["data"])


def test_table3_covers_the_paper_scale_models():
    covered = {model for model, _ in table3_rows()}
    assert {"vit_b16", "vit_l16", "vit_h14", "bit_r152x2", "r50_vit_l32"} <= covered
    assert len(table3_rows()) == 22  # 14 JFT, 4 ImageNet-21k, 4 ImageNet (model, dataset) pairs


def test_finetune_recipe_follows_table4():
    cfg = composed("model=vit_b16", "recipe=finetune", "data=imagenet")
    r = cfg["recipe"]
    assert r["optimizer"]["_target_"] == "torch.optim.SGD"
    assert r["optimizer"]["momentum"] == 0.9 and r["optimizer"]["weight_decay"] == 0.0
    assert r["global_batch_size"] == 512 and r["schedule"]["decay"] == "cosine"
    assert r["steps"] == 20_000  # ImageNet (Table 4)
    assert cfg["data"]["image_size"] == 384  # fine-tuning resolution
    assert cfg["model"]["pretrained_head"] == "drop"
