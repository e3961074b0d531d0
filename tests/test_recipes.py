"""The paper's recipes compose into the numbers of Tables 3 and 4."""

from __future__ import annotations

import pytest

from test_config_tree import composed
from vitrepro.validate import check_model, check_recipe


@pytest.mark.parametrize(
    "model,recipe,lr,weight_decay,dropout,epochs",
    [
        ("vit_b16", "pretrain_jft", 8e-4, 0.1, 0.0, 7),
        ("vit_l16", "pretrain_jft", 4e-4, 0.1, 0.0, 7),
        ("vit_h14", "pretrain_jft", 3e-4, 0.1, 0.0, 14),
        ("bit_r152x2", "pretrain_jft", 6e-4, 0.1, None, 7),
        ("r50_vit_l32", "pretrain_jft", 2e-4, 0.1, 0.0, 7),
        ("vit_l32", "pretrain_in21k", 1e-3, 0.03, 0.1, 90),
        ("vit_b32", "pretrain_in1k", 3e-3, 0.3, 0.1, 300),
    ],
)
def test_pretraining_recipes_follow_table3(model, recipe, lr, weight_decay, dropout, epochs):
    cfg = composed(f"model={model}", f"recipe={recipe}", "data=in21k")
    r = cfg["recipe"]
    assert r["optimizer"]["lr"] == pytest.approx(lr)
    assert r["optimizer"]["weight_decay"] == weight_decay
    assert r["optimizer"]["betas"] == [0.9, 0.999]
    assert r["global_batch_size"] == 4096 and r["schedule"]["warmup_steps"] == 10_000
    assert r["grad_clip_norm"] == 1.0 and cfg["data"]["image_size"] == 224
    assert r["epochs"] == epochs
    if dropout is not None:
        assert cfg["model"]["dropout"] == dropout
    assert r["schedule"]["decay"] == ("cosine" if recipe == "pretrain_in1k" else "linear")
    check_recipe(r)
    check_model(cfg["model"], cfg["data"])


def test_finetune_recipe_follows_table4():
    cfg = composed("model=vit_b16", "recipe=finetune", "data=imagenet")
    r = cfg["recipe"]
    assert r["optimizer"]["_target_"] == "torch.optim.SGD"
    assert r["optimizer"]["momentum"] == 0.9 and r["optimizer"]["weight_decay"] == 0.0
    assert r["global_batch_size"] == 512 and r["schedule"]["decay"] == "cosine"
    assert r["steps"] == 20_000  # ImageNet (Table 4)
    assert cfg["data"]["image_size"] == 384  # fine-tuning resolution
    assert cfg["model"]["pretrained_head"] == "drop"
