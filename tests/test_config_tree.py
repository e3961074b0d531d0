"""Every model x data config composes and passes (or fails) validation as it should."""

from __future__ import annotations

import csv

import pytest
import torch

from helpers import CONF, MODELS, PAPER_TABLE1, composed
from vitrepro.config.errors import ConfigError
from vitrepro.config.rules import check_model, validate_config
from vitrepro.models import build_model

DATASETS = sorted(p.stem for p in (CONF / "data").glob("*.yaml"))


@pytest.mark.parametrize("data", DATASETS)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_and_dataset_composes(model, data):
    cfg = composed(f"model={model}", f"data={data}")
    if cfg["data"]["image_size"] % cfg["model"].get("patch_size", 1):
        # e.g. ViT-H/14 on 32-px synthetic images: rejected, naming the key
        with pytest.raises(ConfigError, match=r"model.patch_size=14"):
            check_model(cfg["model"], cfg["data"])
        return
    check_model(cfg["model"], cfg["data"])
    if "root" in cfg["data"]:  # real datasets: absent here, so validation names the path
        with pytest.raises(ConfigError, match=r"data.root"):
            validate_config(cfg)
    else:
        validate_config(cfg)


def test_default_composition_is_the_tiny_profile():
    cfg = composed()
    assert cfg["data"]["name"] == "synthetic" and cfg["model"]["arch"] == "vit"
    assert cfg["trainer"]["devices"] == 1 and cfg["trainer"]["accelerator"] == "auto"
    validate_config(cfg)


@pytest.mark.parametrize(
    "model,row", [("vit_b16", "ViT-Base"), ("vit_l32", "ViT-Large"), ("vit_h14", "ViT-Huge")]
)
def test_vit_variants_match_table1(model, row):
    """Layers, widths and heads as Table 1; parameter counts within 2% of the paper's."""
    with PAPER_TABLE1.open() as handle:
        paper = {r["model"]: r for r in csv.DictReader(handle)}[row]
    cfg = composed(f"model={model}", "data.image_size=224")["model"]
    assert cfg["depth"] == int(paper["layers"])
    assert cfg["hidden_size"] == int(paper["hidden_size"])
    assert cfg["mlp_size"] == int(paper["mlp_size"])
    assert cfg["num_heads"] == int(paper["heads"])
    with torch.device("meta"):  # count parameters without allocating them
        net = build_model(cfg, num_classes=1000, image_size=224)
    encoder = sum(p.numel() for p in net.backbone.parameters())
    assert encoder / 1e6 == pytest.approx(float(paper["params_paper"].rstrip("M")), rel=0.02)


def test_pre_logits_head_and_zero_initialised_classifier():
    cfg = composed("model=vit_b32", "data.image_size=64")["model"]
    net = build_model(cfg, num_classes=10, image_size=64)
    hidden, activation = net.pre_logits
    assert hidden.out_features == cfg["hidden_size"] and isinstance(activation, torch.nn.Tanh)
    assert torch.count_nonzero(net.head.weight) == 0
    assert net(torch.randn(2, 3, 64, 64)).shape == (2, 10)
    net.reset_for_finetuning(num_classes=5)
    assert isinstance(net.pre_logits, torch.nn.Identity)
    assert net.head.in_features == cfg["hidden_size"] and torch.count_nonzero(net.head.weight) == 0
    assert net(torch.randn(2, 3, 64, 64)).shape == (2, 5)


def test_bit_baseline_is_resnet_v2_with_groupnorm_and_weight_standardisation():
    from timm.layers import GroupNormAct, StdConv2d

    cfg = composed("model=bit_r50x1")["model"]
    with torch.device("meta"):
        net = build_model(cfg, num_classes=1000, image_size=224)
    modules = list(net.modules())
    assert any(isinstance(m, StdConv2d) for m in modules)
    assert any(isinstance(m, GroupNormAct) for m in modules)
    params = sum(p.numel() for p in net.backbone.parameters())
    assert 23e6 < params < 24e6  # ResNet-50 body: 23.5M
