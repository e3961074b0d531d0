"""Figures 6, 7 and 11 drawn from the numbers of ``attention`` and ``embeddings``."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import torch
from torch.nn import functional as F

from vitrepro.files import save_figure_atomic


def _unit_range(image: torch.Tensor) -> torch.Tensor:
    low, high = image.min(), image.max()
    return (image - low) / (high - low).clamp_min(1e-12)


def plot_filters(components: torch.Tensor, path: Path, title: str) -> None:
    """Figure 7 left: each principal component of the filters as an RGB image."""
    columns = min(7, len(components))
    rows = -(-len(components) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(1.3 * columns, 1.3 * rows + 0.5))
    for index, ax in enumerate(axes.flat if hasattr(axes, "flat") else [axes]):
        ax.axis("off")
        if index < len(components):
            component = _unit_range(components[index])
            image = component.permute(1, 2, 0) if component.shape[0] == 3 else component[0]
            ax.imshow(image.numpy(), cmap=None if component.shape[0] == 3 else "gray")
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)


def plot_position_similarity(similarity: torch.Tensor, path: Path, title: str) -> None:
    """Figure 7 centre: for each patch (its place in the big grid), the cosine similarity of
    its position embedding with every patch's (the small grid), one image for all."""
    rows, cols = similarity.shape[:2]
    mosaic = torch.full((rows * (rows + 1), cols * (cols + 1)), float("nan"))
    for r in range(rows):
        for c in range(cols):
            top, left = r * (rows + 1), c * (cols + 1)
            mosaic[top : top + rows, left : left + cols] = similarity[r, c]
    figure, ax = plt.subplots(figsize=(6, 5.4))
    shown = ax.imshow(mosaic.numpy(), cmap="viridis", vmin=-1, vmax=1)
    ax.set_xticks([c * (cols + 1) + cols / 2 - 0.5 for c in range(cols)], range(1, cols + 1))
    ax.set_yticks([r * (rows + 1) + rows / 2 - 0.5 for r in range(rows)], range(1, rows + 1))
    ax.set_xlabel("input patch column")
    ax.set_ylabel("input patch row")
    figure.colorbar(shown, ax=ax, label="cosine similarity")
    ax.set_title(title, fontsize=9)
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)


def plot_attention_distance(
    distances: torch.Tensor, image_size: int, uniform: float, path: Path, title: str
) -> None:
    """Figure 7 right / Figure 11: each head's mean attention distance, by layer, with the
    distance of uniform attention over all patches for reference."""
    figure, ax = plt.subplots(figsize=(5, 4))
    layers, heads = distances.shape
    ax.axhline(uniform, color="grey", linestyle="--", linewidth=1, label="uniform attention")
    for head in range(heads):
        ax.scatter(range(1, layers + 1), distances[:, head].numpy(), s=14, label=f"head {head + 1}")
    ax.set_xlabel("network depth (layer)")
    ax.set_ylabel("mean attention distance (pixels)")
    ax.set_ylim(0, image_size)
    ax.set_xticks(range(1, layers + 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, ncol=2, handles=ax.get_legend_handles_labels()[0][:17])
    ax.set_title(title, fontsize=9)
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)


def plot_rollout(
    images: torch.Tensor, maps: torch.Tensor, grid: tuple[int, int], path: Path, title: str
) -> None:
    """Figure 6 / 14: each input next to itself weighted by its attention-rollout map."""
    masks = maps.reshape(len(maps), 1, *grid)
    masks = F.interpolate(masks, size=images.shape[-2:], mode="bilinear", align_corners=False)
    figure, axes = plt.subplots(2, len(images), figsize=(1.6 * len(images), 3.6), squeeze=False)
    for index, (image, mask) in enumerate(zip(images, masks, strict=True)):
        shown = _unit_range(image).permute(1, 2, 0)
        weighted = shown * (mask[0] / mask.max()).unsqueeze(-1)
        for ax, picture in zip(axes[:, index], (shown, weighted), strict=True):
            ax.imshow(picture.clamp(0, 1).numpy())
            ax.axis("off")
    axes[0, 0].set_title("input", fontsize=8, loc="left")
    axes[1, 0].set_title("attention", fontsize=8, loc="left")
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)
