"""Load pre-trained weights into any variant, at any image size and number of classes.

Every source is turned into a state dict of our ``Classifier`` and then
adapted to the target model the way the paper fine-tunes (Section 3.2): position embeddings
are resampled by 2-D interpolation to the new patch grid (``zoom``: bilinear with aligned
corners, as the official code's ``scipy.ndimage.zoom``; or timm's modes; the
class-token embedding is kept as is), and the pre-training head is dropped for a fresh
zero-initialised classifier, or kept when the classes are the same.

- our Lightning checkpoints, exports, and timm state dicts of the same architecture
  (``models.checkpoint_files``, read without pickle's code execution);
- the official google-research/vision_transformer ``*.npz`` files (ViT and R50 hybrids),
  read by timm's loader for the per-layer key layout, without pickle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import _load_weights as load_official_npz
from torch import nn

from vitrepro.config.errors import ConfigError
from vitrepro.models.registry import construct
from vitrepro.models.weight_files import (
    TORCH_SUFFIXES,
    read_weights,
    resolve_checkpoint,
)
from vitrepro.safe_load import check_npz

HEAD_PREFIXES = ("pre_logits.", "head.")
# drop: the paper's fine-tuning head (pre-logits and classifier replaced by a zero-init layer);
# keep: the checkpoint's head (same classes); features: keep pre-logits, new classifier.
HEAD_MODES = ("drop", "keep", "features")


def _from_official_npz(path: Path, model: nn.Module, model_cfg: dict[str, Any]) -> dict:
    """Build the model at the checkpoint's own grid, let timm load the npz, take its state."""
    check_npz(path, "model.pretrained")  # no Python objects: NumPy never unpickles
    weights = np.load(path, allow_pickle=False)
    if getattr(model.backbone, "pos_embed", None) is None:
        raise ConfigError(
            "model.position_embedding",
            model_cfg.get("position_embedding"),
            "official checkpoints have learned 1-D position embeddings; set "
            "model.position_embedding=learned_1d",
        )
    key = next(k for k in weights.files if k.endswith("posembed_input/pos_embedding"))
    prefix_tokens = model.backbone.num_prefix_tokens
    grid = round((weights[key].shape[1] - prefix_tokens) ** 0.5)
    stride = model.backbone.patch_embed.img_size[0] // model.backbone.patch_embed.grid_size[0]
    num_classes = weights["head/bias"].shape[-1] if "head/bias" in weights.files else 1
    native = construct(model_cfg, num_classes, grid * stride)
    blocks = {k.split("/")[1] for k in weights.files if k.startswith("Transformer/encoderblock_")}
    try:
        if len(blocks) != len(native.backbone.blocks):
            raise ValueError(
                f"{len(blocks)} encoder blocks, the model has {len(native.backbone.blocks)}"
            )
        load_official_npz(native.backbone, str(path))
    except (KeyError, RuntimeError, ValueError) as error:
        reason = str(error).splitlines()[0]
        raise ConfigError(
            "model.pretrained",
            path,
            f"does not match this model ({reason}); pick the model config it was trained with",
        ) from error
    state = native.state_dict()
    for ours, theirs in (("pre_logits.0", "pre_logits"), ("head", "head")):
        if f"{theirs}/kernel" in weights.files:
            state[f"{ours}.weight"] = torch.from_numpy(weights[f"{theirs}/kernel"].T.copy())
            state[f"{ours}.bias"] = torch.from_numpy(weights[f"{theirs}/bias"].copy())
        elif theirs == "pre_logits":  # released checkpoints without a representation layer
            state = {k: v for k, v in state.items() if not k.startswith("pre_logits.")}
    return state


def read_checkpoint(path: Path, model: nn.Module, model_cfg: dict[str, Any]) -> dict:
    """Any supported checkpoint as a state dict with our key names."""
    if path.suffix == ".npz":
        return _from_official_npz(path, model, model_cfg)
    if path.suffix in (*TORCH_SUFFIXES, ".safetensors"):
        return read_weights(path)
    raise ConfigError(
        "model.pretrained",
        path,
        "unknown checkpoint type; use .ckpt, .pth/.bin/.safetensors or .npz",
    )


def _zoom_pos_embed(posemb: torch.Tensor, grid: list[int], prefix: int) -> torch.Tensor:
    """The official code's resampling (``scipy.ndimage.zoom(order=1)`` of the square grid):
    bilinear with aligned corners; the class token's embedding is kept as it is."""
    tokens, patches = posemb[:, :prefix], posemb[:, prefix:]
    side = round(patches.shape[1] ** 0.5)
    square = patches.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    resized = F.interpolate(square.float(), size=grid, mode="bilinear", align_corners=True)
    resized = resized.to(posemb.dtype).permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1)
    return torch.cat([tokens, resized], dim=1)


def resample_position_embeddings(
    state: dict[str, torch.Tensor], model: nn.Module, mode: str = "zoom"
) -> dict[str, torch.Tensor]:
    """Interpolate position embeddings to the model's patch grid (Section 3.2); tokens kept."""
    target = model.state_dict()
    state = dict(state)
    backbone = model.backbone
    for key in ("backbone.pos_embed", "backbone.pos_embed_rows", "backbone.pos_embed_cols"):
        if key not in state or key not in target or state[key].shape == target[key].shape:
            continue
        aligned = mode == "zoom"  # scipy.ndimage.zoom(order=1): corners map onto corners
        if key == "backbone.pos_embed":
            prefix = 0 if backbone.no_embed_class else backbone.num_prefix_tokens
            grid = list(backbone.patch_embed.grid_size)
            if aligned:
                state[key] = _zoom_pos_embed(state[key], grid, prefix)
            else:
                state[key] = resample_abs_pos_embed(
                    state[key], new_size=grid, num_prefix_tokens=prefix, interpolation=mode,
                    antialias=False,
                )  # fmt: skip
        else:  # the 2-D ablation's row / column tables: 1-D interpolation along their axis
            axis = 1 if key.endswith("rows") else 2
            table = state[key].movedim(axis, -1).flatten(0, -2)[:, None]
            size = target[key].shape[axis]
            resized = F.interpolate(table, size=size, mode="linear", align_corners=aligned)
            shape = [*state[key].movedim(axis, -1).shape[:-1], size]
            state[key] = resized[:, 0].reshape(shape).movedim(-1, axis)
    return state


def load_pretrained(
    model: nn.Module,
    model_cfg: dict[str, Any],
    path: str | Path,
    head: str = "drop",
    interpolation: str = "zoom",
) -> dict[str, list[str]]:
    """Load ``path`` into ``model``; ``head`` is one of ``HEAD_MODES``.

    Any missing or unexpected key outside the dropped head is a ``ConfigError`` naming them.
    """
    if head not in HEAD_MODES:
        raise ConfigError("model.pretrained_head", head, f"must be one of {HEAD_MODES}")
    checkpoint = resolve_checkpoint(path)
    state = read_checkpoint(checkpoint, model, model_cfg)
    if head == "drop":
        model.reset_for_finetuning(model.head.out_features)
        state = {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIXES)}
    elif head == "features":  # keep pre-logits (the few-shot representation), new classifier
        state = {k: v for k, v in state.items() if not k.startswith("head.")}
    state = resample_position_embeddings(state, model, interpolation)
    target = model.state_dict()
    mismatched = [k for k, v in state.items() if k in target and v.shape != target[k].shape]
    result = model.load_state_dict(
        {k: v for k, v in state.items() if k not in mismatched}, strict=False
    )
    missing = [k for k in result.missing_keys if not (head != "keep" and k.startswith("head."))]
    problems = {"missing": missing, "unexpected": result.unexpected_keys, "shape": mismatched}
    if any(problems.values()):
        detail = "; ".join(
            f"{len(v)} {k} (e.g. {', '.join(v[:3])})" for k, v in problems.items() if v
        )
        raise ConfigError(
            "model.pretrained",
            checkpoint,
            f"does not match this model: {detail}; pick the model config it was trained with",
        )
    return problems
