"""Attention weights, mean attention distance (Figure 7 right, Figure 11) and attention rollout
(Figure 6, Figure 14; Abnar & Zuidema 2020), for ViTs and hybrids.

Training keeps timm's fused attention, which never materialises the weights; inspecting records
each block's attention input with a hook and recomputes the softmax weights from it.
"""

from __future__ import annotations

import torch
from timm.models.vision_transformer import VisionTransformer
from torch import nn


def attention_weights(attn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, H, N, N) softmax weights of one timm ``Attention`` layer for its input ``x``,
    including the relative-position bias of ``RelativePositionAttention``."""
    batch, tokens, _ = x.shape
    qkv = attn.qkv(x).reshape(batch, tokens, 3, attn.num_heads, attn.head_dim)
    q, k, _ = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    logits = (q * attn.scale) @ k.transpose(-2, -1)
    if hasattr(attn, "relative_logits"):
        logits = logits + attn.relative_logits(q)
    return logits.softmax(dim=-1)


@torch.no_grad()
def record_attention(backbone: VisionTransformer, images: torch.Tensor) -> torch.Tensor:
    """(L, B, H, N, N): every block's attention weights for ``images`` (N includes the class
    token when the model has one)."""
    inputs: list[torch.Tensor] = []
    hooks = [
        block.attn.register_forward_pre_hook(lambda _, args: inputs.append(args[0]))
        for block in backbone.blocks
    ]
    try:
        backbone.forward_features(images)
    finally:
        for hook in hooks:
            hook.remove()
    return torch.stack(
        [attention_weights(block.attn, x) for block, x in zip(backbone.blocks, inputs, strict=True)]
    )


def patch_distances(grid: tuple[int, int], spacing: float) -> torch.Tensor:
    """(N, N) Euclidean distances in pixels between the centres of a grid's patches."""
    rows, cols = grid
    centres = torch.stack(
        torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij"), dim=-1
    )
    centres = centres.reshape(-1, 2).double() * spacing
    return torch.cdist(centres, centres)


def mean_attention_distance(
    attention: torch.Tensor, grid: tuple[int, int], spacing: float, num_prefix_tokens: int
) -> torch.Tensor:
    """(L, H) mean attention distance: for each patch query, the pixel distance to every patch
    key weighted by the attention between them, averaged over queries and images (Figure 7
    right). The class token has no position: it is dropped and the weights over patches are
    renormalised, so identity attention gives 0 and uniform attention the mean pairwise patch
    distance. ``spacing`` is the pixels between neighbouring patches (the patch size, or the
    CNN's stride for a hybrid)."""
    patches = attention[..., num_prefix_tokens:, num_prefix_tokens:].double()
    patches = patches / patches.sum(dim=-1, keepdim=True)
    distances = patch_distances(grid, spacing).to(patches.device)
    per_query = (patches * distances).sum(dim=-1)  # (L, B, H, N)
    return per_query.mean(dim=(1, 3)).float()


def rollout_matrix(attention: torch.Tensor) -> torch.Tensor:
    """(B, N, N) attention rollout (Abnar & Zuidema 2020): average the heads, add the identity
    for the residual path, renormalise the rows and multiply the layers' matrices. Identity
    attention rolls out to the identity."""
    tokens = attention.shape[-1]
    identity = torch.eye(tokens, dtype=attention.dtype, device=attention.device)
    rollout = identity.expand(attention.shape[1], tokens, tokens)
    for layer in attention:
        mixed = 0.5 * layer.mean(dim=1) + 0.5 * identity
        rollout = (mixed / mixed.sum(dim=-1, keepdim=True)) @ rollout
    return rollout


def attention_rollout(attention: torch.Tensor, num_prefix_tokens: int) -> torch.Tensor:
    """(B, N_patches) the map Figure 6 draws: the output token's rolled-out attention over the
    patches. The output token is the class token, or with global average pooling the mean over
    the patch rows."""
    rollout = rollout_matrix(attention)
    if num_prefix_tokens:
        return rollout[:, 0, num_prefix_tokens:]
    return rollout.mean(dim=1)
