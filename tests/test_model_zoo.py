"""The model zoo: every variant's size and shapes, weight loading, resampling, compute."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import timm
import torch

from conftest import ROOT, run_script
from helpers import MODELS, PAPER_TABLE1, model_cfg, randomised
from official_npz import write_official_npz
from vitrepro.compute.flops import model_card
from vitrepro.config.errors import ConfigError
from vitrepro.models import build_model
from vitrepro.models.pretrained import resample_position_embeddings

# Encoder parameters (no pre-logits, no classifier) at 224 px (32 px for the tiny profile),
# counted once and fixed here; timm's model of the same configuration where it has one.
PARAMS_WITHOUT_HEAD = {
    "bit_r50x1": (23_500_352, "resnetv2_50x1_bit"),
    "bit_r50x2": (93_891_712, "resnetv2_50x2_bit"),
    "bit_r101x1": (42_492_480, "resnetv2_101x1_bit"),
    "bit_r152x1": (58_136_128, "resnetv2_152x1_bit"),
    "bit_r152x2": (232_238_208, "resnetv2_152x2_bit"),
    "bit_r200x3": (562_488_000, None),
    "bit_cifar_r26": (13_930_816, None),
    "bit_micro": (127_024, None),
    "bit_tiny": (504_464, None),
    "hybrid_micro": (498_736, None),
    "hybrid_micro_p8": (601_904, None),  # ResNet-micro's 4-stage trunk + ViT-micro on its 4x4 map
    "hybrid_small": (25_149_504, None),
    "hybrid_tiny": (843_664, None),
    "r50_vit_b16": (97_890_112, "vit_base_r50_s16_224"),
    "r50_vit_b32": (110_176_832, None),
    "r50_vit_l16": (315_458_624, None),
    "r50_vit_l32": (327_969_856, "vit_large_r50_s32_224"),
    "vit_b16": (85_798_656, "vit_base_patch16_224"),
    "vit_b32": (87_455_232, "vit_base_patch32_224"),
    "vit_b8": (85_807_872, "vit_base_patch8_224"),
    "vit_bhalf32": (22_493_952, None),
    "vit_h14": (630_764_800, "vit_huge_patch14_224"),
    "vit_l16": (303_301_632, "vit_large_patch16_224"),
    "vit_l32": (305_510_400, "vit_large_patch32_224"),
    "vit_s16": (21_665_664, "vit_small_patch16_224"),
    "vit_s32": (22_493_952, "vit_small_patch32_224"),
    "vit_ti16": (5_524_416, "vit_tiny_patch16_224"),
    "vit_micro_p4": (458_592, None),
    "vit_micro_p8": (467_808, None),  # p4 + 8x8 patch weights - 48 position embeddings
    "vit_s4": (21_338_496, None),
    "vit_tiny_p4": (808_064, None),
    "vit_tiny_p8": (820_352, None),  # p4 + 8x8 patch weights - 48 position embeddings
}


AT_32_PX = {"vit_s4", "bit_cifar_r26", "hybrid_small"}  # the small profile's 32-px models


def test_every_config_has_a_fixed_parameter_count():
    assert sorted(PARAMS_WITHOUT_HEAD) == MODELS


@pytest.mark.parametrize("name", MODELS)
def test_parameter_counts(name):
    expected, timm_name = PARAMS_WITHOUT_HEAD[name]
    size = 32 if name in AT_32_PX or "tiny" in name or "micro" in name else 224
    card = model_card(model_cfg(name), size, num_classes=1000, images=None, epochs=None)
    assert card["params_without_head"] == expected
    if timm_name and timm_name in timm.list_models():
        with torch.device("meta"):
            reference = timm.create_model(timm_name, num_classes=0)
        assert sum(p.numel() for p in reference.parameters()) == expected


def test_cifar_stem_keeps_the_resolution_of_small_images():
    """BiT's stem (7x7/2 + max-pool) leaves a 1x1 map of a 32-px image after four stages; the
    CIFAR stem (3x3/1) leaves 4x4, and the hybrid's three stages an 8x8 grid of 64 tokens."""
    images = torch.zeros(1, 3, 32, 32)
    bit = build_model(model_cfg("bit_micro"), 10, 32)
    assert bit.backbone.forward_features(images).shape[-2:] == (4, 4)
    strided = build_model(model_cfg("bit_micro", "model.stem=bit"), 10, 32)
    assert strided.backbone.forward_features(images).shape[-2:] == (1, 1)
    hybrid = build_model(model_cfg("hybrid_micro"), 10, 32)
    assert hybrid.backbone.patch_embed.num_patches == 64


def test_table1_rounding_holds():
    with PAPER_TABLE1.open() as handle:
        paper = {r["model"]: float(r["params_paper"].rstrip("M")) for r in csv.DictReader(handle)}
    for name, row in (("vit_b16", "ViT-Base"), ("vit_l16", "ViT-Large"), ("vit_h14", "ViT-Huge")):
        assert PARAMS_WITHOUT_HEAD[name][0] / 1e6 == pytest.approx(paper[row], rel=0.02)


def _one_block(name: str) -> list[str]:
    cfg = model_cfg(name)
    if cfg["arch"] == "bit":
        return [f"model.layers=[{','.join('1' * len(cfg['layers']))}]"]
    extra = ["model.depth=1"]
    if cfg["arch"] == "hybrid":
        extra.append(f"model.backbone_layers=[{','.join('1' * len(cfg['backbone_layers']))}]")
    return extra


@pytest.mark.parametrize("name", MODELS)
def test_forward_shape_at_a_tiny_size(name):
    cfg = model_cfg(name, *_one_block(name))
    size = 64 if cfg["arch"] != "vit" else cfg["patch_size"] * 2
    net = build_model(cfg, num_classes=7, image_size=size).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 3, size, size)).shape == (2, 7)
        assert net.features(torch.randn(1, 3, size, size)).ndim == 2


@pytest.mark.parametrize("position_embedding", ["learned_1d", "learned_2d", "none"])
@pytest.mark.parametrize("classifier", ["token", "gap"])
def test_head_and_position_embedding_options(position_embedding, classifier):
    cfg = model_cfg(
        "vit_tiny_p4",
        f"model.position_embedding={position_embedding}",
        f"model.classifier={classifier}",
        "model.depth=1",
    )
    net = build_model(cfg, num_classes=3, image_size=16)
    calls = []
    net.backbone.pos_drop.register_forward_hook(lambda *_: calls.append(1))
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 3)
    assert calls == [1]  # dropout after the position embeddings, whichever kind (Appendix B)
    assert (net.backbone.pos_embed is not None) == (position_embedding == "learned_1d")
    assert hasattr(net.backbone, "pos_embed_rows") == (position_embedding == "learned_2d")
    assert (net.backbone.cls_token is not None) == (classifier == "token")


def test_head_bias_init_for_sigmoid_pretraining():
    net = build_model(model_cfg("vit_tiny_p4", "model.head_bias_init=-10"), 5, 16)
    assert torch.all(net.head.bias == -10) and torch.count_nonzero(net.head.weight) == 0


@pytest.mark.parametrize("name", ["vit_tiny_p4", "hybrid_tiny"])
def test_official_npz_reproduces_logits(tmp_path, name):
    cfg = model_cfg(name, "model.depth=2")
    source = randomised(build_model(cfg, num_classes=5, image_size=32))
    write_official_npz(source, tmp_path / "official.npz")
    loaded = build_model(
        {**cfg, "pretrained": str(tmp_path / "official.npz"), "pretrained_head": "keep"}, 5, 32
    ).eval()
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), source(images), atol=1e-5, rtol=1e-4)


def test_official_npz_at_higher_resolution_for_finetuning(tmp_path):
    cfg = model_cfg("vit_tiny_p4", "model.depth=1")
    source = randomised(build_model(cfg, num_classes=5, image_size=16))
    write_official_npz(source, tmp_path / "official.npz")
    tuned = build_model({**cfg, "pretrained": str(tmp_path / "official.npz")}, 9, 32)
    assert tuned.backbone.pos_embed.shape == (1, 1 + 8 * 8, 128)
    # the class token's embedding is kept as is; the fine-tuning head is fresh and zero
    torch.testing.assert_close(tuned.backbone.pos_embed[:, 0], source.backbone.pos_embed[:, 0])
    assert isinstance(tuned.pre_logits, torch.nn.Identity)
    assert torch.count_nonzero(tuned.head.weight) == 0 and tuned.head.out_features == 9


def test_resampling_is_identity_at_the_same_size_and_resizes_otherwise():
    cfg = model_cfg("vit_tiny_p4", "model.depth=1")
    small = randomised(build_model(cfg, 5, 16))
    state = small.state_dict()
    same = resample_position_embeddings(state, small)
    assert torch.equal(same["backbone.pos_embed"], state["backbone.pos_embed"])
    large = build_model(cfg, 5, 48)
    resized = resample_position_embeddings(state, large)
    assert resized["backbone.pos_embed"].shape == (1, 1 + 12 * 12, 128)
    cfg2d = model_cfg("vit_tiny_p4", "model.depth=1", "model.position_embedding=learned_2d")
    state2d = build_model(cfg2d, 5, 16).state_dict()
    resized2d = resample_position_embeddings(state2d, build_model(cfg2d, 5, 48))
    assert resized2d["backbone.pos_embed_rows"].shape == (1, 12, 1, 64)
    assert resized2d["backbone.pos_embed_cols"].shape == (1, 1, 12, 64)


def test_timm_state_dict_loads(tmp_path):
    reference = randomised(
        timm.create_model("vit_tiny_patch16_224", num_classes=4, img_size=32, patch_size=8)
    )
    torch.save(reference.state_dict(), tmp_path / "timm.pth")
    cfg = model_cfg(
        "vit_ti16",
        "model.patch_size=8",
        "model.representation_size=null",
        "model.weight_init=''",
    )
    ours = build_model(
        {**cfg, "pretrained": str(tmp_path / "timm.pth"), "pretrained_head": "keep"}, 4, 32
    ).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(images), reference(images), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("change", ["model.hidden_size=64", "model.depth=3", "model.depth=1"])
def test_mismatched_checkpoint_is_one_clear_error(tmp_path, change):
    source = build_model(model_cfg("vit_tiny_p4", "model.depth=2"), 5, 16)
    write_official_npz(source, tmp_path / "official.npz")
    with pytest.raises(ConfigError, match=r"model.pretrained=.*does not match") as error:
        build_model(
            {
                **model_cfg("vit_tiny_p4", "model.depth=2", change),
                "pretrained": str(tmp_path / "official.npz"),
            },
            5,
            16,
        )
    assert "\n" not in str(error.value)


# Table 6's exaFLOPs: 3 x forward FLOPs x 303M images x epochs; ours within 5% for every row.
TABLE6_CONFIGS = {
    "ViT-B/32": "vit_b32",
    "ViT-B/16": "vit_b16",
    "ViT-L/32": "vit_l32",
    "ViT-L/16": "vit_l16",
    "ViT-H/14": "vit_h14",
    "ResNet50x1": "bit_r50x1",
    "ResNet50x2": "bit_r50x2",
    "ResNet101x1": "bit_r101x1",
    "ResNet152x1": "bit_r152x1",
    "ResNet152x2": "bit_r152x2",
    "ResNet200x3": "bit_r200x3",
    "R50x1+ViT-B/32": "r50_vit_b32",
    "R50x1+ViT-B/16": "r50_vit_b16",
    "R50x1+ViT-L/32": "r50_vit_l32",
    "R50x1+ViT-L/16": "r50_vit_l16",
}
TABLE6 = list(csv.DictReader((ROOT / "src/vitrepro/paper/table6_fig5_scaling.csv").open()))


@pytest.mark.parametrize("row", TABLE6, ids=[f"{r['model']}-{r['epochs']}ep" for r in TABLE6])
def test_training_compute_matches_table6(row):
    card = model_card(
        model_cfg(TABLE6_CONFIGS[row["model"]]), 224, 1000, 303_000_000, float(row["epochs"])
    )
    assert card["train_exaflops"] == pytest.approx(float(row["exaflops"]), rel=0.05)


def test_forward_flops_of_vit_b_at_224():
    """timm's benchmark tables list 17.58 and 4.41 GMACs (x2 = FLOPs) for B/16 and B/32."""
    b16 = model_card(model_cfg("vit_b16"), 224, 1000, None, None)["forward_flops"]
    b32 = model_card(model_cfg("vit_b32"), 224, 1000, None, None)["forward_flops"]
    assert b16 / 2e9 == pytest.approx(17.58, rel=0.01)
    assert b32 / 2e9 == pytest.approx(4.41, rel=0.01)


def test_model_card_command_prints_one_json_object(tmp_path):
    result = run_script(
        "model_card.py",
        "model=vit_h14",
        "model.image_size=392",
        "images=303000000",
        "epochs=14",
        output_dir=tmp_path,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    card = json.loads(result.stdout)
    assert card["seq_len"] == (392 // 14) ** 2 + 1
    assert {"params", "params_without_head", "forward_flops", "train_exaflops"} <= set(card)
    assert not Path(ROOT / ".hydra").exists()
