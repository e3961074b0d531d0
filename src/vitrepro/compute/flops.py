"""Compute accounting as the paper's Figure 5 / Table 6 count it.

Forward FLOPs per image are counted by ``torch.utils.flop_counter`` on the meta device (no
weights allocated), with one multiply-add as 2 FLOPs. Training compute is 3 x forward FLOPs
(forward + backward) x images seen, reported in exaFLOPs (1e18).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def forward_flops(model: nn.Module, image_size: int, channels: int = 3) -> int:
    """FLOPs of one forward pass on one ``image_size`` x ``image_size`` image."""
    device = next(model.parameters()).device
    images = torch.empty(1, channels, image_size, image_size, device=device)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(images)
    return int(counter.get_total_flops())


def train_exaflops(flops_per_image: int, images_seen: int) -> float:
    """Pre-training compute: 3 x forward FLOPs x images seen, in units of 1e18."""
    return 3 * flops_per_image * images_seen / 1e18


def sequence_length(model: nn.Module) -> int | None:
    """Tokens the transformer sees (patches + class token); ``None`` for a CNN."""
    embed = getattr(model.backbone, "patch_embed", None)
    if embed is None:
        return None
    return embed.num_patches + model.backbone.num_prefix_tokens


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """All parameters, and those left when the whole pre-training head (pre-logits + classifier)
    is removed, which is how Table 1 counts them."""
    total = sum(p.numel() for p in model.parameters())
    return {
        "params": total,
        "params_without_head": sum(p.numel() for p in model.backbone.parameters()),
    }


def model_card(
    model_cfg: dict, image_size: int, num_classes: int, images: int | None, epochs: float | None
) -> dict:
    """Parameters, sequence length, forward FLOPs and (given images x epochs) training exaFLOPs.

    The model is built on the meta device, so even ViT-H/14 and R200x3 answer in seconds.
    """
    from vitrepro.models import build_model

    with torch.device("meta"):
        model = build_model(model_cfg, num_classes=num_classes, image_size=image_size)
    flops = forward_flops(model, image_size)
    card = {
        "model": model_cfg.get("name", model_cfg["arch"]),
        "image_size": image_size,
        "num_classes": num_classes,
        **parameter_counts(model),
        "seq_len": sequence_length(model),
        "forward_flops": flops,
        "forward_gflops": round(flops / 1e9, 3),
    }
    if images and epochs:
        card["images_seen"] = int(images * epochs)
        card["train_exaflops"] = round(train_exaflops(flops, card["images_seen"]), 3)
    return card
