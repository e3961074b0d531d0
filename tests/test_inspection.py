"""Section 4.5 / Appendix D analyses: constructed attention with known answers, shapes and
finite numbers on tiny random models, and ``src/inspect_model.py`` on real checkpoints."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch

from conftest import TINY_DATA, TINY_VIT, run_script
from vitrepro.inspection.attention import (
    attention_rollout,
    attention_weights,
    mean_attention_distance,
    record_attention,
    rollout_matrix,
)
from vitrepro.inspection.embeddings import (
    NotApplicableError,
    patch_filter_components,
    patch_grid_position_embeddings,
    position_similarity,
)
from vitrepro.models.vit import hybrid_classifier, vit_classifier

SIZES = dict(num_classes=10, image_size=32, hidden_size=32, depth=2, mlp_size=64, num_heads=4)


def tiny_vit(**overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return vit_classifier(**{**SIZES, "patch_size": 8, **overrides}).eval()


def test_identity_attention_has_zero_mean_distance():
    grid, tokens = (3, 4), 12
    identity = torch.eye(tokens + 1).expand(2, 5, 3, tokens + 1, tokens + 1)  # (L, B, H, N, N)
    distances = mean_attention_distance(identity, grid, spacing=16.0, num_prefix_tokens=1)
    assert distances.shape == (2, 3)
    assert torch.equal(distances, torch.zeros(2, 3))


def test_uniform_attention_distance_is_the_mean_pairwise_patch_distance():
    grid, spacing = (3, 4), 16.0
    centres = [(r * spacing, c * spacing) for r in range(3) for c in range(4)]
    expected = sum(math.dist(a, b) for a, b in itertools.product(centres, centres)) / 144
    uniform = torch.full((1, 2, 2, 13, 13), 1 / 13)  # class token included, then dropped
    distances = mean_attention_distance(uniform, grid, spacing, num_prefix_tokens=1)
    assert distances == pytest.approx(torch.full((1, 2), expected), rel=1e-6)


def test_rollout_of_identity_attention_is_the_identity():
    identity = torch.eye(5).expand(3, 2, 4, 5, 5)
    assert torch.allclose(rollout_matrix(identity), torch.eye(5).expand(2, 5, 5))
    # the class token then attends only to itself: nothing of any patch
    assert torch.equal(attention_rollout(identity, num_prefix_tokens=1), torch.zeros(2, 4))


def test_rollout_rows_are_distributions():
    attention = torch.rand(3, 2, 4, 5, 5).softmax(dim=-1)
    rollout = rollout_matrix(attention)
    assert torch.allclose(rollout.sum(dim=-1), torch.ones(2, 5))
    assert attention_rollout(attention, num_prefix_tokens=0).shape == (2, 5)  # GAP: mean row


@pytest.mark.parametrize("position_embedding", ["learned_1d", "relative"])
def test_recorded_attention_is_what_the_fused_layer_computed(position_embedding):
    model = tiny_vit(position_embedding=position_embedding)
    images = torch.randn(2, 3, 32, 32)
    attention = record_attention(model.backbone, images)
    assert attention.shape == (2, 2, 4, 17, 17)  # (layers, images, heads, tokens, tokens)
    assert torch.allclose(attention.sum(-1), torch.ones(2, 2, 4, 17))
    block = model.backbone.blocks[0]
    x = block.norm1(model.backbone._pos_embed(model.backbone.patch_embed(images)))
    weights = attention_weights(block.attn, x)
    v = block.attn.qkv(x).reshape(2, 17, 3, 4, 8).permute(2, 0, 3, 1, 4)[2]
    by_hand = block.attn.proj((weights @ v).transpose(1, 2).reshape(2, 17, 32))
    assert torch.allclose(by_hand, block.attn(x), atol=1e-5)


def test_relative_position_attention_without_offsets_is_no_position_embedding():
    relative, none = tiny_vit(position_embedding="relative"), tiny_vit(position_embedding="none")
    for block in relative.backbone.blocks:
        torch.nn.init.zeros_(block.attn.relative_keys)
    none.load_state_dict(relative.state_dict(), strict=False)
    images = torch.randn(2, 3, 32, 32)
    assert torch.allclose(relative.backbone(images), none.backbone(images), atol=1e-5)
    relative.train()
    relative.backbone(images).square().sum().backward()
    assert relative.backbone.blocks[0].attn.relative_keys.grad.abs().sum() > 0  # it learns


def test_relative_position_attention_keeps_a_key_mask():
    attention = tiny_vit(position_embedding="relative").backbone.blocks[0].attn.eval()
    x = torch.randn(2, 17, 32)
    hidden = torch.ones(17, 17, dtype=torch.bool)
    hidden[:, 5] = False  # no query may attend to token 5
    changed = x.clone()
    changed[:, 5] += 1.0
    with torch.no_grad():
        masked, masked_changed = (
            attention(x, attn_mask=hidden),
            attention(changed, attn_mask=hidden),
        )
        additive = attention(x, attn_mask=torch.zeros(17, 17))
        assert torch.allclose(additive, attention(x), atol=1e-6)  # a zero bias changes nothing
    others = [i for i in range(17) if i != 5]
    assert torch.allclose(masked[:, others], masked_changed[:, others], atol=1e-6)
    assert not torch.allclose(attention(x), attention(changed), atol=1e-3)  # unmasked, it does


def test_filter_components_are_orthonormal_rgb_patches():
    components = patch_filter_components(tiny_vit().backbone, count=28)
    assert components.shape == (28, 3, 8, 8)
    flat = components.flatten(1)
    assert torch.allclose(flat @ flat.T, torch.eye(28), atol=1e-4)


def test_hybrid_has_no_pixel_filters():
    torch.manual_seed(0)
    hybrid = hybrid_classifier(backbone_layers=[1, 1], backbone_channels=[16, 32],
                               backbone_stem_channels=8, backbone_norm_groups=8,
                               **SIZES, patch_size=1)  # fmt: skip
    with pytest.raises(NotApplicableError, match="hybrid"):
        patch_filter_components(hybrid.backbone)
    attention = record_attention(hybrid.eval().backbone, torch.randn(1, 3, 32, 32))
    assert attention.shape[-1] == 1 + 4 * 4  # 32 px / stride 8 of the two-stage CNN: 4x4 grid


@pytest.mark.parametrize("position_embedding", ["learned_1d", "learned_2d"])
def test_position_similarity_is_a_grid_of_grids(position_embedding):
    backbone = tiny_vit(position_embedding=position_embedding).backbone
    similarity = position_similarity(patch_grid_position_embeddings(backbone))
    assert similarity.shape == (4, 4, 4, 4)
    assert torch.allclose(torch.einsum("ijij->ij", similarity), torch.ones(4, 4), atol=1e-5)
    assert similarity.abs().max() <= 1 + 1e-5


@pytest.mark.parametrize("position_embedding", ["none", "relative"])
def test_no_absolute_position_embeddings_is_not_applicable(position_embedding):
    with pytest.raises(NotApplicableError, match="no absolute position embeddings"):
        patch_grid_position_embeddings(tiny_vit(position_embedding=position_embedding).backbone)


def test_inspect_model_on_a_trained_run(train, tmp_path):
    trained = train(*TINY_DATA, *TINY_VIT, "model.num_heads=2", "logger=none")
    assert trained.returncode == 0, trained.stderr[-2000:]
    (run_dir,) = trained.run_dirs()
    result = run_script("inspect_model.py", f"checkpoint={run_dir}", "num_images=8",
                        "rollout_images=3", output_dir=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    out = run_dir / "inspection"
    assert {p.name for p in out.iterdir()} == {
        "filters.png", "position_embeddings.png", "attention_distance.png", "rollout.png",
        "inspection.json",
    }  # fmt: skip
    numbers = json.loads((out / "inspection.json").read_text())
    assert numbers["grid"] == [4, 4] and numbers["filters"]["patch_size"] == [4, 4]
    assert numbers["model"] == "ViT-tiny/4 pre-trained on synthetic (16 px)"  # plot titles
    per_head = numbers["attention_distance"]["per_layer_per_head"]
    assert len(per_head) == 1 and len(per_head[0]) == 2  # depth 1, 2 heads
    assert all(0 <= d <= 16 * math.sqrt(2) for d in per_head[0])
    assert math.isfinite(numbers["position_embeddings"]["mean_similarity_to_neighbours"])
    assert "mean attention distance per layer" in result.stdout


def test_inspect_model_on_a_timm_hybrid_state_dict_skips_the_filters(tmp_path):
    hybrid = ["model=hybrid_tiny", "model.depth=1", "model.hidden_size=32", "model.num_heads=2",
              "model.mlp_size=64", "model.representation_size=null"]  # fmt: skip
    from helpers import composed
    from vitrepro.models import build_model

    cfg = composed(*hybrid, "data.image_size=32")
    model = build_model(dict(cfg["model"]), num_classes=10, image_size=32)
    torch.save({k.removeprefix("backbone."): v for k, v in model.state_dict().items()
                if k.startswith("backbone.")}, tmp_path / "hybrid.pth")  # fmt: skip
    result = run_script("inspect_model.py", f"checkpoint={tmp_path / 'hybrid.pth'}",
                        *hybrid, "num_classes=10", "data.image_size=32", "num_images=4",
                        f"output={tmp_path / 'out'}", output_dir=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    numbers = json.loads((tmp_path / "out" / "inspection.json").read_text())
    assert "hybrid" in numbers["filters"]["skipped"]
    assert numbers["model"] == "R-tiny+ViT-tiny from hybrid.pth (32 px)"
    assert len(numbers["attention_distance"]["per_layer_per_head"]) == 1
    assert (tmp_path / "out" / "rollout.png").is_file()
    assert not (tmp_path / "out" / "filters.png").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (["analyses=[filters,saliency]"], "analyses.1=saliency"),
        (["checkpoint=/nonexistent/run"], "checkpoint=/nonexistent/run"),
    ],
)
def test_inspect_model_user_errors_are_one_line(tmp_path, args, message):
    (tmp_path / "fake.pth").write_bytes(b"")
    result = run_script("inspect_model.py", f"checkpoint={tmp_path / 'fake.pth'}",
                        "num_classes=10", *args, output_dir=tmp_path)  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_attention_statistics_do_not_depend_on_the_chunk_size():
    from vitrepro.inspection.report import attention_statistics

    backbone = tiny_vit().backbone
    images = torch.randn(5, 3, 32, 32)
    whole = attention_statistics(backbone, images, (4, 4), 8.0, rollout_images=3, chunk=16)
    chunked = attention_statistics(backbone, images, (4, 4), 8.0, rollout_images=3, chunk=2)
    assert whole[0].shape == (2, 4) and whole[1].shape == (3, 16)
    for a, b in zip(whole, chunked, strict=True):
        torch.testing.assert_close(a, b)
