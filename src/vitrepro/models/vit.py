"""Vision Transformer (Section 3.1) built on timm's ``VisionTransformer``.

What timm already does as the paper says: patch embedding as a PxP conv with stride P, a
learnable class token, learned 1-D position embeddings (N(0, 0.02)), pre-LN blocks with GELU
MLPs, a final LayerNorm with eps 1e-6, and the official ("jax") weight initialisation. What is
ours: the config vocabulary of Table 1 (layers, hidden size D, MLP size, heads) and the
pre-logits head (``heads.Classifier``).
"""

from __future__ import annotations

from timm.models.vision_transformer import VisionTransformer
from torch import nn

from vitrepro.models.heads import Classifier
from vitrepro.models.registry import register


@register("vit")
def build_vit(
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
    dropout: float = 0.0,
    attention_dropout: float = 0.0,
    head_bias_init: float = 0.0,
    weight_init: str = "jax",
) -> nn.Module:
    """A ViT whose sizes are the Table 1 columns; ``classifier`` is ``token`` or ``gap``."""
    pool = {"token": "token", "gap": "avg"}[classifier]
    backbone = VisionTransformer(
        img_size=image_size,
        patch_size=patch_size,
        num_classes=0,  # pooled features out; the head is ours
        global_pool=pool,
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
    )
    return Classifier(
        backbone,
        num_features=hidden_size,
        num_classes=num_classes,
        representation_size=representation_size,
        head_bias_init=head_bias_init,
    )
