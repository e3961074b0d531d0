"""Inspect a checkpoint: ``python src/inspect_model.py checkpoint=<run dir or file>``.

Writes one PNG per analysis and ``inspection.json`` with the numbers behind them. An analysis
that does not apply to the model (a hybrid's pixel filters, a model without absolute position
embeddings) is recorded as skipped, with the reason; a ResNet has nothing to inspect here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from timm.models.vision_transformer import VisionTransformer
from torch.utils.data import DataLoader

from vitrepro.config.errors import ConfigError
from vitrepro.data.build import build_datamodule
from vitrepro.files import write_json_atomic
from vitrepro.inspection.attention import (
    attention_rollout,
    mean_attention_distance,
    patch_distances,
    record_attention,
)
from vitrepro.inspection.embeddings import (
    NotApplicableError,
    patch_filter_components,
    patch_grid_position_embeddings,
    position_similarity,
)
from vitrepro.inspection.plots import (
    plot_attention_distance,
    plot_filters,
    plot_position_similarity,
    plot_rollout,
)
from vitrepro.models.build import model_from_checkpoint
from vitrepro.models.weight_files import EXPORT_WEIGHTS, resolve_checkpoint, run_metadata
from vitrepro.tracking import record

ANALYSES = ("filters", "position_embeddings", "attention_distance", "rollout")


def output_dir(checkpoint: str, output: str | None, output_root: str) -> Path:
    """``output``, else ``<run dir>/inspection`` for one of our runs, else
    ``<output_root>/inspect/<checkpoint name>``."""
    if output:
        return Path(output)
    path = resolve_checkpoint(checkpoint, key="checkpoint")
    if path.parent.name == "checkpoints" and (path.parent.parent / "summary.json").is_file():
        return path.parent.parent / "inspection"
    name = path.parent.name if path.name == EXPORT_WEIGHTS else path.stem  # an export: its folder
    return Path(output_root) / "inspect" / name


def display_name(checkpoint: str, model_cfg: dict[str, Any]) -> str:
    """The model a checkpoint holds, for plot titles: ``ViT-B/16 pre-trained on jft_like``
    for one of our runs (its record), else the model its file records (an export of ours) or
    the configured one, and the file's name (an export's folder)."""
    path = resolve_checkpoint(checkpoint, key="checkpoint")
    summary = record.read(path.parent.parent) if path.parent.name == "checkpoints" else None
    if summary and summary.get("model"):
        tuned = "fine-tuned" if summary["config"]["model"].get("pretrained") else "pre-trained"
        return f"{summary['model']} {tuned} on {summary['data']}"
    model = (run_metadata(path) or {}).get("model_config") or model_cfg
    source = path.parent.name if path.name == EXPORT_WEIGHTS else path.name
    return f"{model.get('name') or model.get('arch', 'model')} from {source}"


def example_images(data_cfg: dict[str, Any], image_size: int, count: int) -> torch.Tensor:
    """The first ``count`` validation images of the configured dataset, pre-processed for
    evaluation at the model's image size."""
    datamodule = build_datamodule({**data_cfg, "image_size": image_size}, batch_size=count)
    _, test_set = datamodule.evaluation_sets(per_class=1)
    images, _ = next(iter(DataLoader(test_set, batch_size=count, shuffle=False)))
    return images


def attention_statistics(
    backbone: VisionTransformer,
    images: torch.Tensor,
    grid: tuple[int, int],
    spacing: float,
    rollout_images: int,
    chunk: int = 16,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, H) mean attention distance over all ``images`` and the rollout maps of the first
    ``rollout_images``, a chunk of images at a time: ViT-B/16's weights for 128 images at 224
    px would be 2.8 GB at once."""
    prefix = backbone.num_prefix_tokens
    total, maps = None, []
    for start in range(0, len(images), chunk):
        attention = record_attention(backbone, images[start : start + chunk])
        weighted = mean_attention_distance(attention, grid, spacing, prefix) * attention.shape[1]
        total = weighted if total is None else total + weighted
        if start < rollout_images:
            maps.append(attention_rollout(attention[:, : rollout_images - start], prefix))
    return total / len(images), torch.cat(maps)


def _vision_transformer(model: torch.nn.Module, checkpoint: str) -> VisionTransformer:
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, VisionTransformer):
        raise ConfigError(
            "checkpoint",
            checkpoint,
            f"a {type(backbone).__name__} has no attention or patch embeddings to inspect; "
            "give a ViT or hybrid",
        )
    return backbone


@dataclass
class _Inspected:
    """What the analyses share: the backbone, where figures go, and the attention statistics."""

    backbone: torch.nn.Module
    out: Path
    name: str
    image_size: int
    grid: tuple[int, int]
    spacing: float  # pixels between patch centres (a hybrid: the CNN's stride)
    num_components: int
    images: torch.Tensor | None = None
    distances: torch.Tensor | None = None
    maps: torch.Tensor | None = None


def _filters(s: _Inspected) -> dict[str, Any]:
    components = patch_filter_components(s.backbone, s.num_components)
    title = f"Principal components of the patch-embedding filters\n{s.name}"
    plot_filters(components, s.out / "filters.png", title)
    return {"components": len(components), "patch_size": list(components.shape[-2:])}


def _position_embeddings(s: _Inspected) -> dict[str, Any]:
    similarity = position_similarity(patch_grid_position_embeddings(s.backbone))
    title = f"Position embedding similarity\n{s.name}"
    plot_position_similarity(similarity, s.out / "position_embeddings.png", title)
    return {
        "mean_similarity_to_neighbours": _neighbour_similarity(similarity),
        "mean_similarity_to_all": float(similarity.mean()),
    }


def _attention_distance(s: _Inspected) -> dict[str, Any]:
    uniform = float(patch_distances(s.grid, s.spacing).mean())
    title = f"Mean attention distance over {len(s.images)} images\n{s.name}"
    plot_attention_distance(
        s.distances, s.image_size, uniform, s.out / "attention_distance.png", title
    )
    return {
        "pixels_per_patch": s.spacing,
        "images": len(s.images),
        "uniform_attention_distance": uniform,
        "per_layer_per_head": s.distances.tolist(),
    }


def _rollout(s: _Inspected) -> dict[str, Any]:
    title = f"Attention rollout: {s.name}"
    plot_rollout(s.images[: len(s.maps)], s.maps, s.grid, s.out / "rollout.png", title)
    return {
        "images": len(s.maps),
        "output_token": "class token" if s.backbone.num_prefix_tokens else "mean of patches",
    }


STEPS: dict[str, Callable[[_Inspected], dict[str, Any]]] = {
    "filters": _filters,
    "position_embeddings": _position_embeddings,
    "attention_distance": _attention_distance,
    "rollout": _rollout,
}


def inspect_checkpoint(cfg: DictConfig) -> dict[str, Any]:
    """Run the selected analyses (``analyses``) and write their PNGs and ``inspection.json``
    (names and counts are checked by the entry script's schema,
    ``script_schemas.InspectConfig``)."""
    config = OmegaConf.to_container(cfg, resolve=True)
    out = output_dir(config["checkpoint"], config.get("output"), config["paths"]["output_dir"])
    model, image_size = model_from_checkpoint(
        config["checkpoint"], config["model"], config["num_classes"], config["data"]["image_size"]
    )
    backbone = _vision_transformer(model, config["checkpoint"]).eval()
    grid = tuple(backbone.patch_embed.grid_size)
    name = f"{display_name(config['checkpoint'], config['model'])} ({image_size} px)"
    state = _Inspected(
        backbone, out, name, image_size, grid, image_size / grid[1], config["num_components"]
    )
    if {"attention_distance", "rollout"} & set(config["analyses"]):
        state.images = example_images(config["data"], image_size, config["num_images"])
        state.distances, state.maps = attention_statistics(
            backbone, state.images, grid, state.spacing, config["rollout_images"]
        )
    results: dict[str, Any] = {
        "checkpoint": str(config["checkpoint"]),
        "model": name,  # the plots' titles
        "image_size": image_size,
        "grid": list(grid),
    }
    for analysis in config["analyses"]:
        try:
            results[analysis] = STEPS[analysis](state)
        except NotApplicableError as reason:
            results[analysis] = {"skipped": str(reason)}
    write_json_atomic(out / "inspection.json", results)
    results["output_dir"] = str(out)
    return results


def _neighbour_similarity(similarity: torch.Tensor) -> float:
    """Mean cosine similarity between horizontally or vertically adjacent patches: high when
    the embeddings have learned the grid's 2-D topology (Section 4.5)."""
    pairs = [
        similarity[r, c, r, c + 1]
        for r in range(similarity.shape[0])
        for c in range(similarity.shape[1] - 1)
    ]
    pairs += [
        similarity[r, c, r + 1, c]
        for r in range(similarity.shape[0] - 1)
        for c in range(similarity.shape[1])
    ]
    return float(torch.stack(pairs).mean()) if pairs else float("nan")
