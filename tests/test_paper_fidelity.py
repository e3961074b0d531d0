"""Where the paper's code and timm differ, ours follows the paper: position-embedding
resampling as the official scipy zoom, and GAP as the norm on the tokens, then the mean."""

from __future__ import annotations

import torch

from helpers import model_cfg, randomised
from vitrepro.models import build_model
from vitrepro.models.pretrained import resample_position_embeddings


def test_zoom_resampling_equals_the_official_codes_scipy_zoom():
    """The official code resizes the 14x14 grid with scipy.ndimage.zoom(order=1); timm's
    bilinear (corners not aligned) differs from it by up to a quarter of the largest value."""
    from scipy import ndimage

    cfg = model_cfg("vit_tiny_p4", "model.depth=1")
    small = randomised(build_model(cfg, 5, 56))  # a 14x14 grid
    large = build_model(cfg, 5, 96)  # 24x24
    state = small.state_dict()
    grid = state["backbone.pos_embed"][0, 1:].reshape(14, 14, -1).numpy()
    expected = ndimage.zoom(grid, (24 / 14, 24 / 14, 1), order=1)
    zoomed = resample_position_embeddings(state, large, mode="zoom")["backbone.pos_embed"]
    torch.testing.assert_close(zoomed[0, 1:].reshape(24, 24, -1), torch.from_numpy(expected))
    torch.testing.assert_close(zoomed[0, 0], state["backbone.pos_embed"][0, 0])
    timm_way = resample_position_embeddings(state, large, mode="bilinear")["backbone.pos_embed"]
    assert (timm_way - zoomed).abs().max() > 0.05 * zoomed.abs().max()


def test_gap_normalises_the_tokens_then_averages_as_the_paper():
    cfg = model_cfg("vit_tiny_p4", "model.depth=1", "model.classifier=gap")
    paper = build_model(cfg, 5, 16).backbone
    assert isinstance(paper.fc_norm, torch.nn.Identity)
    assert isinstance(paper.norm, torch.nn.LayerNorm)
    images = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        tokens = paper.forward_features(images)  # after the encoder norm
        torch.testing.assert_close(paper.forward_head(tokens), tokens.mean(1))
    pooled_cfg = model_cfg("vit_tiny_p4", "model.classifier=gap", "model.gap_norm=pooled")
    pooled = build_model(pooled_cfg, 5, 16).backbone
    assert isinstance(pooled.norm, torch.nn.Identity)
    assert isinstance(pooled.fc_norm, torch.nn.LayerNorm)
