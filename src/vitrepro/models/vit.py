"""Vision Transformer (Section 3.1) and the hybrid (Sections 3.1, 4.1), built on timm.

What timm already does as the paper says: patch embedding as a PxP conv with stride P, a
learnable class token, learned 1-D position embeddings (N(0, 0.02)), pre-LN blocks with GELU
MLPs, a final LayerNorm with eps 1e-6, the official ("jax") weight initialisation, and the
hybrid's ``HybridEmbed`` (1x1 patches on a CNN feature map). What is ours: the config
vocabulary of Table 1 (layers, hidden size D, MLP size, heads), the 2-D position embedding of
the Table 8 ablation, the BiT-R50 hybrid backbones, and the pre-logits head
(``heads.Classifier``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch
from timm.layers import GroupNormAct, HybridEmbed, StdConv2dSame
from timm.models.resnetv2 import ResNetV2
from timm.models.vision_transformer import Attention, VisionTransformer
from torch import nn
from torch.nn import functional as F

from vitrepro.models.bit import cifar_stem
from vitrepro.models.heads import Classifier
from vitrepro.models.registry import register

POSITION_EMBEDDINGS = ("learned_1d", "learned_2d", "relative", "none")  # Table 8


class RelativePositionAttention(Attention):
    """Self-attention with the 1-D relative position embeddings of Table 8 (Appendix D.4).

    Every offset ``j - i`` between a query token and a key token has a learned embedding; the
    query attends to those embeddings as keys ("extra attention") and the resulting logits are
    added to the content logits as a bias before the softmax. The class token is position 0 of
    the 1-D sequence, as it is for the learned 1-D embeddings. Still one fused
    ``scaled_dot_product_attention`` call: the bias goes in as its float mask.
    """

    def __init__(self, dim: int, num_heads: int, num_tokens: int, **kwargs) -> None:
        super().__init__(dim, num_heads=num_heads, **kwargs)
        self.relative_keys = nn.Parameter(torch.randn(2 * num_tokens - 1, self.head_dim) * 0.02)
        positions = torch.arange(num_tokens)
        offsets = positions[None, :] - positions[:, None] + num_tokens - 1  # [i, j] -> j - i
        self.register_buffer("offset_index", offsets, persistent=False)

    def relative_logits(self, q: torch.Tensor) -> torch.Tensor:
        """(B, H, N, N) logits of each query against the embedding of each offset."""
        logits = (q * self.scale) @ self.relative_keys.T  # (B, H, N, 2N - 1)
        return logits.gather(-1, self.offset_index.expand(*q.shape[:2], -1, -1))

    def forward(
        self, x: torch.Tensor, attn_mask: torch.Tensor | None = None, is_causal: bool = False
    ) -> torch.Tensor:
        if is_causal:
            raise ValueError("a ViT's attention is bidirectional: is_causal is not supported")
        batch, tokens, _ = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        bias = self.relative_logits(q)
        if attn_mask is not None:  # timm's mask (boolean: True attends; or additive) on top
            boolean = attn_mask.dtype == torch.bool
            bias = bias.masked_fill(~attn_mask, float("-inf")) if boolean else bias + attn_mask
        x = F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=self.attn_drop.p if self.training else 0.0
        )
        x = self.norm(x.transpose(1, 2).reshape(batch, tokens, self.attn_dim))
        return self.proj_drop(self.proj(x))


class PaperVisionTransformer(VisionTransformer):
    """timm's ``VisionTransformer`` with the position-embedding options of Table 8.

    ``learned_2d`` (Appendix D.4): the patch grid's rows and columns each get a learned
    embedding of size D/2; a patch's embedding is its row's and column's concatenated. The
    class token gets none, as in the paper's 2-D variant. ``relative`` (Appendix D.4): no
    absolute embedding; every block's attention is a ``RelativePositionAttention`` with its own
    offset embeddings.
    """

    def __init__(self, position_embedding: str = "learned_1d", **kwargs) -> None:
        if position_embedding not in POSITION_EMBEDDINGS:
            raise ValueError(
                f"position_embedding must be one of {POSITION_EMBEDDINGS}: {position_embedding!r}"
            )
        super().__init__(
            pos_embed="learn" if position_embedding == "learned_1d" else "none", **kwargs
        )
        if position_embedding == "relative":
            tokens = self.patch_embed.num_patches + self.num_prefix_tokens
            for block in self.blocks:
                block.attn = _with_relative_positions(block.attn, tokens)
        if position_embedding == "learned_2d":
            rows, cols = self.patch_embed.grid_size
            half = self.embed_dim // 2
            self.pos_embed_rows = nn.Parameter(torch.randn(1, rows, 1, half) * 0.02)
            self.pos_embed_cols = nn.Parameter(
                torch.randn(1, 1, cols, self.embed_dim - half) * 0.02
            )

    def _pos_embed(self, x: torch.Tensor) -> torch.Tensor:
        if hasattr(self, "pos_embed_rows"):
            rows, cols = self.pos_embed_rows, self.pos_embed_cols
            grid = torch.cat(
                [rows.expand(-1, -1, cols.shape[2], -1), cols.expand(-1, rows.shape[1], -1, -1)],
                dim=-1,
            )
            x = x.view(x.shape[0], -1, x.shape[-1]) + grid.flatten(1, 2)
        if self.pos_embed is None:  # timm skips its dropout then; the paper drops out here too
            return self.pos_drop(super()._pos_embed(x))
        return super()._pos_embed(x)

    def no_weight_decay(self) -> set[str]:
        relative = {f"blocks.{i}.attn.relative_keys" for i in range(len(self.blocks))}
        return super().no_weight_decay() | {"pos_embed_rows", "pos_embed_cols"} | relative


def _with_relative_positions(attn: Attention, num_tokens: int) -> RelativePositionAttention:
    """The same attention layer (its initialised weights kept) with relative positions."""
    relative = RelativePositionAttention(
        attn.qkv.in_features,
        num_heads=attn.num_heads,
        num_tokens=num_tokens,
        qkv_bias=attn.qkv.bias is not None,
        attn_drop=attn.attn_drop.p,
        proj_drop=attn.proj_drop.p,
    )
    relative.load_state_dict(attn.state_dict(), strict=False)
    return relative.to(attn.qkv.weight.device)


def vit_classifier(
    *,
    num_classes: int,
    image_size: int,
    patch_size: int,
    hidden_size: int,
    depth: int,
    mlp_size: int,
    num_heads: int,
    representation_size: int | None = None,
    classifier: str = "token",
    gap_norm: str = "tokens",
    position_embedding: str = "learned_1d",
    dropout: float = 0.0,
    attention_dropout: float = 0.0,
    head_bias_init: float = 0.0,
    weight_init: str = "jax",
    embed_layer: Callable[..., nn.Module] | None = None,
) -> Classifier:
    """A ViT whose sizes are the Table 1 columns; ``classifier`` is ``token`` or ``gap``.

    With ``gap``, ``gap_norm="tokens"`` is the paper's code (the final LayerNorm on every token,
    then the mean: official GAP checkpoints load their encoder norm); ``"pooled"`` is timm's
    default (the mean, then a LayerNorm).
    """
    pool = {"token": "token", "gap": "avg"}[classifier]
    fc_norm = gap_norm == "pooled" if classifier == "gap" else None
    extra = {"embed_layer": embed_layer} if embed_layer is not None else {}
    backbone = PaperVisionTransformer(
        position_embedding=position_embedding,
        img_size=image_size,
        patch_size=patch_size,
        num_classes=0,  # pooled features out; the head is ours
        global_pool=pool,
        fc_norm=fc_norm,
        class_token=classifier == "token",
        embed_dim=hidden_size,
        depth=depth,
        num_heads=num_heads,
        mlp_ratio=mlp_size / hidden_size,
        # Dropout after the position embeddings and after every dense layer except qkv.
        pos_drop_rate=dropout,
        proj_drop_rate=dropout,
        attn_drop_rate=attention_dropout,
        weight_init=weight_init,
        **extra,
    )
    return Classifier(
        backbone,
        num_features=hidden_size,
        num_classes=num_classes,
        representation_size=representation_size,
        head_bias_init=head_bias_init,
    )


register("vit")(vit_classifier)


@register("hybrid")
def hybrid_classifier(
    *,
    backbone_layers: list[int],
    backbone_channels: list[int] = (256, 512, 1024, 2048),
    backbone_stem_channels: int = 64,
    backbone_norm_groups: int = 32,
    backbone_stem: str = "bit",
    **vit_kwargs,
) -> Classifier:
    """R50+ViT (Sections 3.1 and 4.1): a BiT ResNet-v2 feature map cut into 1x1 patches.

    ``backbone_layers`` [3, 4, 9] is the /16 variant (stage 4 removed, its blocks moved into
    stage 3) and [3, 4, 6, 3] the /32 variant (stage-4 output of a regular ResNet-50);
    ``backbone_stem="cifar"`` gives small images a 3x3/1 stem (``models.bit.cifar_stem``).
    """
    layers = list(backbone_layers)
    cnn = ResNetV2(
        layers=layers,
        channels=tuple(backbone_channels)[: len(layers)],
        num_classes=0,
        global_pool="",  # the feature map, not a pooled vector
        preact=False,
        stem_chs=backbone_stem_channels,
        stem_type="same",  # as the official hybrids: TF "SAME" padding
        conv_layer=partial(StdConv2dSame, eps=1e-8),
        norm_layer=partial(GroupNormAct, num_groups=backbone_norm_groups),
    )
    if backbone_stem == "cifar":  # 3x3/1 for small images (models/bit.py)
        cifar_stem(cnn, backbone_stem_channels, partial(StdConv2dSame, eps=1e-8))
    return vit_classifier(embed_layer=partial(HybridEmbed, backbone=cnn), **vit_kwargs)
