"""Test helper: write a model in the official google-research/vision_transformer .npz layout.

The inverse of the key layout timm's loader reads (Transformer/encoderblock_i/..., and the
BiT-style block{i}/unit{j}/... keys of the R50 hybrid's backbone), so tests can make official
checkpoints from random models without downloading any.
"""

from __future__ import annotations

import numpy as np
import torch


def _np(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def _conv(weight: torch.Tensor) -> np.ndarray:
    return _np(weight.permute(2, 3, 1, 0))  # OIHW -> HWIO


def write_official_npz(model: torch.nn.Module, path: str) -> None:
    vit = model.backbone
    w: dict[str, np.ndarray] = {}
    cnn = getattr(vit.patch_embed, "backbone", None)
    if cnn is not None:
        w["conv_root/kernel"] = _conv(cnn.stem.conv.weight)
        w["gn_root/scale"], w["gn_root/bias"] = _np(cnn.stem.norm.weight), _np(cnn.stem.norm.bias)
        for i, stage in enumerate(cnn.stages):
            for j, block in enumerate(stage.blocks):
                unit = f"block{i + 1}/unit{j + 1}/"
                for r in (1, 2, 3):
                    w[f"{unit}conv{r}/kernel"] = _conv(getattr(block, f"conv{r}").weight)
                    w[f"{unit}gn{r}/scale"] = _np(getattr(block, f"norm{r}").weight)
                    w[f"{unit}gn{r}/bias"] = _np(getattr(block, f"norm{r}").bias)
                if block.downsample is not None:
                    w[f"{unit}conv_proj/kernel"] = _conv(block.downsample.conv.weight)
                    w[f"{unit}gn_proj/scale"] = _np(block.downsample.norm.weight)
                    w[f"{unit}gn_proj/bias"] = _np(block.downsample.norm.bias)
    w["embedding/kernel"] = _conv(vit.patch_embed.proj.weight)
    w["embedding/bias"] = _np(vit.patch_embed.proj.bias)
    w["cls"] = _np(vit.cls_token)
    w["Transformer/posembed_input/pos_embedding"] = _np(vit.pos_embed)
    w["Transformer/encoder_norm/scale"] = _np(vit.norm.weight)
    w["Transformer/encoder_norm/bias"] = _np(vit.norm.bias)
    dim = vit.embed_dim
    for i, block in enumerate(vit.blocks):
        p = f"Transformer/encoderblock_{i}/"
        heads = block.attn.num_heads
        w[f"{p}LayerNorm_0/scale"], w[f"{p}LayerNorm_0/bias"] = (
            _np(block.norm1.weight),
            _np(block.norm1.bias),
        )
        w[f"{p}LayerNorm_2/scale"], w[f"{p}LayerNorm_2/bias"] = (
            _np(block.norm2.weight),
            _np(block.norm2.bias),
        )
        qkv_w = block.attn.qkv.weight.chunk(3)
        qkv_b = block.attn.qkv.bias.chunk(3)
        for name, weight, bias in zip(("query", "key", "value"), qkv_w, qkv_b, strict=True):
            mha = f"{p}MultiHeadDotProductAttention_1/{name}/"
            w[mha + "kernel"] = _np(weight.T.reshape(dim, heads, dim // heads))
            w[mha + "bias"] = _np(bias.reshape(heads, dim // heads))
        out = f"{p}MultiHeadDotProductAttention_1/out/"
        w[out + "kernel"] = _np(
            block.attn.proj.weight.reshape(dim, heads, dim // heads).permute(1, 2, 0)
        )
        w[out + "bias"] = _np(block.attn.proj.bias)
        for r, fc in enumerate((block.mlp.fc1, block.mlp.fc2)):
            w[f"{p}MlpBlock_3/Dense_{r}/kernel"] = _np(fc.weight.T)
            w[f"{p}MlpBlock_3/Dense_{r}/bias"] = _np(fc.bias)
    if isinstance(model.pre_logits, torch.nn.Sequential):
        w["pre_logits/kernel"] = _np(model.pre_logits[0].weight.T)
        w["pre_logits/bias"] = _np(model.pre_logits[0].bias)
    w["head/kernel"], w["head/bias"] = _np(model.head.weight.T), _np(model.head.bias)
    np.savez(path, **w)
