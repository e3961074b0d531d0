"""Optimiser parameter groups and the learning-rate schedule of the paper (Appendix B.1).

Pre-training uses a linear warmup of ``warmup_steps`` followed by linear decay (JFT,
ImageNet-21k) or cosine decay (ImageNet-1k), counted in optimizer steps (Table 3).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import nn


def warmup_then_decay(
    total_steps: int, warmup_steps: int, decay: str, end_factor: float = 0.0
) -> Callable[[int], float]:
    """LR multiplier at an optimizer step: 0 -> 1 linearly, then down to ``end_factor``."""
    if decay not in ("linear", "cosine", "constant"):
        raise ValueError(f"decay must be linear, cosine or constant, got {decay!r}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        if decay == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        shape = 1.0 - progress if decay == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
        return end_factor + (1.0 - end_factor) * shape

    return factor


def weight_decay_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Decay only weight matrices and conv kernels, as the official code decays only kernels.

    Biases, normalisation scales and whatever a module lists in ``no_weight_decay()`` (timm's
    convention: class token, position embeddings) are left undecayed.
    """
    exempt = set()
    for prefix, module in model.named_modules():
        if hasattr(module, "no_weight_decay"):
            exempt |= {f"{prefix}.{name}" if prefix else name for name in module.no_weight_decay()}
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim <= 1 or name in exempt else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
