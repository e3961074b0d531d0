"""The embeddings a ViT learns (Figure 7 left and centre, Section 4.5)."""

from __future__ import annotations

import torch
from timm.layers import HybridEmbed
from timm.models.vision_transformer import VisionTransformer
from torch.nn import functional as F


class NotApplicableError(Exception):
    """An analysis that does not apply to this model; the message says why."""


def patch_filter_components(backbone: VisionTransformer, count: int = 28) -> torch.Tensor:
    """(count, C, P, P) the top principal components of the patch-embedding filters, each a
    P x P image (Figure 7 left shows the top 28 of ViT-L/32's RGB filters)."""
    if isinstance(backbone.patch_embed, HybridEmbed):
        raise NotApplicableError(
            "a hybrid's patch embedding projects 1x1 patches of CNN features, not pixels "
            "(Section 3.1), so it has no image-space filters"
        )
    weight = backbone.patch_embed.proj.weight.detach().float()  # (D, C, P, P)
    flat = weight.flatten(1)
    flat = flat - flat.mean(dim=0, keepdim=True)
    _, _, components = torch.linalg.svd(flat, full_matrices=False)
    count = min(count, components.shape[0])
    return components[:count].reshape(count, *weight.shape[1:])


def patch_grid_position_embeddings(backbone: VisionTransformer) -> torch.Tensor:
    """(rows, cols, D) the absolute position embedding of each patch (learned 1-D, or the 2-D
    variant's row and column halves concatenated); the class token's is left out."""
    rows, cols = backbone.patch_embed.grid_size
    if hasattr(backbone, "pos_embed_rows"):
        row_half = backbone.pos_embed_rows[0].expand(rows, cols, -1)
        col_half = backbone.pos_embed_cols[0].expand(rows, cols, -1)
        return torch.cat([row_half, col_half], dim=-1).detach().float()
    if backbone.pos_embed is None:
        raise NotApplicableError(
            "the model has no absolute position embeddings (model.position_embedding is "
            "none or relative)"
        )
    prefix = 0 if backbone.no_embed_class else backbone.num_prefix_tokens
    embeddings = backbone.pos_embed[0, prefix:].detach().float()
    return embeddings.reshape(rows, cols, -1)


def position_similarity(embeddings: torch.Tensor) -> torch.Tensor:
    """(rows, cols, rows, cols): cosine similarity of each patch's position embedding with
    every other's (Figure 7 centre: one small grid per patch)."""
    rows, cols, _ = embeddings.shape
    flat = F.normalize(embeddings.reshape(rows * cols, -1), dim=-1)
    return (flat @ flat.T).reshape(rows, cols, rows, cols)
