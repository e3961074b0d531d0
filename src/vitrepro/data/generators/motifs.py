"""The embedded "motif composition" dataset: a procedural stand-in for JFT-like pre-training data.

Why it is a fair stand-in for the paper's question (does a model without convolutional
inductive bias need more data? Section 4.2, Figures 3 and 4): a class is an unordered set of
a few small glyphs (stroke patterns on a 3x3 lattice). Every image draws its class's glyphs at
random positions, scales, small rotations and colours, adds distractor glyphs that belong to no
class, and lays all of it on a noisy gradient background. Only local spatial structure at
varying positions decides the label: no pixel, colour or position carries it, and classes share
glyphs, so a model must detect several glyphs anywhere in the image. A convolution gets
translation equivariance for free; a ViT has to learn it from data.

Every image is a pure function of (seed, split, index): any dataset size exists without
storage, nested subsets are exact prefixes, and train/val/test use independent streams.
Images are rendered in batches (one ``grid_sample`` call for all glyphs of a batch), which is
what makes generation fast; ``__getitems__`` lets a DataLoader ask for a whole batch at once.

Held-out compositions for transfer: pre-training classes are taken from the front of one
seeded list of all glyph sets and transfer classes from its back, so the two tasks share
glyphs but never a class (the analogue of pre-training on JFT and transferring elsewhere).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

SPLITS = {"train": 0, "val": 1, "test": 2}
TASKS = ("pretrain", "transfer")

_GLYPH_GRID = 7  # glyphs are drawn on a 7x7 grid, strokes join points of a 3x3 lattice on it
_LATTICE = [(r, c) for r in (0, 3, 6) for c in (0, 3, 6)]
_CELLS = 3  # placement grid: each glyph gets its own cell of a 3x3 grid, then jitters in it


def _lattice_edges() -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Edges between neighbouring lattice points (horizontal, vertical and diagonal)."""
    edges = []
    for a, b in itertools.combinations(_LATTICE, 2):
        if max(abs(a[0] - b[0]), abs(a[1] - b[1])) == 3:
            edges.append((a, b))
    return edges


def _draw_glyph(strokes: list[tuple[tuple[int, int], tuple[int, int]]]) -> np.ndarray:
    glyph = np.zeros((_GLYPH_GRID, _GLYPH_GRID), np.float32)
    for (r0, c0), (r1, c1) in strokes:
        for t in np.linspace(0.0, 1.0, 7):
            glyph[round(r0 + t * (r1 - r0)), round(c0 + t * (c1 - c0))] = 1.0
    return glyph


def make_glyph_bank(count: int, seed: int, strokes_per_glyph: int = 3) -> torch.Tensor:
    """``count`` distinct glyphs (1 x 9 x 9 with a blank border so bilinear sampling fades out)."""
    rng = np.random.default_rng([seed, 0x61797068])
    edges = _lattice_edges()
    seen: set[bytes] = set()
    glyphs = []
    while len(glyphs) < count:
        chosen = rng.choice(len(edges), size=strokes_per_glyph, replace=False)
        glyph = _draw_glyph([edges[i] for i in chosen])
        key = glyph.tobytes()
        if key not in seen:
            seen.add(key)
            glyphs.append(np.pad(glyph, 1))
    return torch.from_numpy(np.stack(glyphs))[:, None]


def class_compositions(num_glyphs: int, glyphs_per_class: int, seed: int) -> list[tuple[int, ...]]:
    """All glyph sets in one seeded order: pre-training takes the front, transfer the back."""
    combos = list(itertools.combinations(range(num_glyphs), glyphs_per_class))
    order = np.random.default_rng([seed, 0x636C6173]).permutation(len(combos))
    return [combos[i] for i in order]


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 arrays (wrap-around arithmetic is intended)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hashed_uniforms(seed: int, stream: int, indices: np.ndarray, count: int) -> np.ndarray:
    """``count`` uniforms in [0, 1) per index, a pure function of (seed, stream, index)."""
    key = _splitmix64(np.full(1, (seed << 8) ^ stream, dtype=np.uint64))
    per_index = _splitmix64(key ^ indices.astype(np.uint64))
    draws = _splitmix64(per_index[:, None] ^ (np.arange(count, dtype=np.uint64) << np.uint64(40)))
    return (draws >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


@dataclass(frozen=True)
class MotifSpec:
    """Knobs of the generator; the defaults are the tiny profile's (32 px)."""

    num_classes: int = 10
    image_size: int = 32
    task: str = "pretrain"
    seed: int = 0
    num_glyphs: int = 16
    glyphs_per_class: int = 2
    num_distractors: int = 1
    num_distractor_glyphs: int = 16
    glyph_scale: tuple[float, float] = (0.3, 0.45)  # glyph side as a fraction of the image side
    max_rotation_deg: float = 15.0
    noise_std: float = 0.05


class RenderedImages(Dataset):
    """An index-addressable dataset whose images are rendered in batches by ``render``; the
    generators (v1 here, v2 in ``glyph_pairs.py``) share this interface."""

    size: int
    spec: MotifSpec

    def __len__(self) -> int:
        return self.size

    def labels(self, indices: np.ndarray) -> np.ndarray:
        """Labels cycle through the classes, so every prefix (nested subset) is balanced."""
        return indices % self.spec.num_classes

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        images, labels = self.render(np.asarray([index]))
        return images[0], int(labels[0])

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, int]]:
        images, labels = self.render(np.asarray(indices))
        return list(zip(images, labels.tolist(), strict=True))

    def render(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class MotifCompositions(RenderedImages):
    """Index-addressable images of glyph compositions; returns ``(image in [-1, 1], label)``."""

    def __init__(self, spec: MotifSpec, split: str, size: int) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}")
        if spec.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {spec.task!r}")
        slots = spec.glyphs_per_class + spec.num_distractors
        if slots > _CELLS * _CELLS:
            raise ValueError(f"at most {_CELLS * _CELLS} glyphs per image, got {slots}")
        combos = class_compositions(spec.num_glyphs, spec.glyphs_per_class, spec.seed)
        if spec.num_classes > len(combos) // 2:
            raise ValueError(
                f"num_classes={spec.num_classes} exceeds the {len(combos) // 2} glyph sets a task "
                f"may use with num_glyphs={spec.num_glyphs}, glyphs_per_class="
                f"{spec.glyphs_per_class}; raise num_glyphs"
            )
        chosen = (
            combos[: spec.num_classes]
            if spec.task == "pretrain"
            else combos[::-1][: spec.num_classes]
        )
        self.spec = spec
        self.split = split
        self.size = int(size)
        self.compositions = torch.tensor(chosen, dtype=torch.long)
        bank = make_glyph_bank(spec.num_glyphs + spec.num_distractor_glyphs, spec.seed)
        self.class_glyphs, self.distractor_glyphs = bank[: spec.num_glyphs], bank[spec.num_glyphs :]
        # Transfer images come from their own stream, so they never repeat a pre-training image.
        self._stream = SPLITS[split] + 8 * TASKS.index(spec.task)

    def render(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Render a batch: ``(B, 3, H, W)`` float images in [-1, 1] and ``(B,)`` labels."""
        spec = self.spec
        if indices.size and (indices.min() < 0 or indices.max() >= self.size):
            raise IndexError(f"index out of range for a dataset of {self.size} images")
        slots = spec.glyphs_per_class + spec.num_distractors
        u = torch.from_numpy(hashed_uniforms(spec.seed, self._stream, indices, 16 + 9 + 8 * slots))
        u = u.float()
        labels = torch.from_numpy(self.labels(indices)).long()
        canvas, glyph_rgb = self._background(u, slots)
        alpha = self._glyph_alpha(u, labels, slots)
        for j in range(slots):
            a = alpha[:, j]
            canvas = canvas * (1 - a) + glyph_rgb[:, j, :, None, None] * a
        canvas = canvas + spec.noise_std * math.sqrt(12) * (self._noise(indices) - 0.5)
        return (canvas.clamp(0, 1) * 2 - 1).contiguous(), labels

    def _background(self, u: torch.Tensor, slots: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A linear colour gradient in a random direction, and the glyphs' colours: bright on
        dark or dark on bright, so they always stand out."""
        batch, side = len(u), self.spec.image_size
        bright = (u[:, 0] < 0.5)[:, None]
        glyph_rgb = 0.55 + 0.45 * u[:, 16 + 9 : 16 + 9 + 3 * slots].reshape(batch, slots, 3)
        glyph_rgb = torch.where(bright[:, :, None], glyph_rgb, 1.0 - glyph_rgb)
        bg_from, bg_to = 0.45 * u[:, 1:4], 0.45 * u[:, 4:7]
        bg_from = torch.where(bright, bg_from, 1.0 - bg_from)
        bg_to = torch.where(bright, bg_to, 1.0 - bg_to)
        angle = 2 * math.pi * u[:, 7]
        coords = torch.linspace(-1.0, 1.0, side)
        yy, xx = torch.meshgrid(coords, coords, indexing="ij")
        ramp = (
            xx[None] * torch.cos(angle)[:, None, None] + yy[None] * torch.sin(angle)[:, None, None]
        )
        ramp = (ramp.clamp(-1, 1) + 1) / 2
        canvas = bg_from[:, :, None, None] + (bg_to - bg_from)[:, :, None, None] * ramp[:, None]
        return canvas, glyph_rgb

    def _glyph_alpha(self, u: torch.Tensor, labels: torch.Tensor, slots: int) -> torch.Tensor:
        """``(B, slots, 1, H, W)`` coverage of the class glyphs then the distractors, each in its
        own cell of a 3x3 placement grid, scaled and rotated."""
        spec, batch, side = self.spec, len(u), self.spec.image_size
        k, d = spec.glyphs_per_class, spec.num_distractors
        ids = self.compositions[labels]
        distractor_ids = (
            (u[:, 8 : 8 + d] * spec.num_distractor_glyphs)
            .long()
            .clamp(max=spec.num_distractor_glyphs - 1)
        )
        glyphs = torch.cat(
            [self.class_glyphs[ids.flatten()], self.distractor_glyphs[distractor_ids.flatten()]]
        )
        # Reorder to (batch, slot) so row b*slots+j is glyph j of image b.
        glyphs = torch.cat(
            [
                glyphs[: batch * k].view(batch, k, 1, 9, 9),
                glyphs[batch * k :].view(batch, d, 1, 9, 9),
            ],
            dim=1,
        ).view(batch * slots, 1, 9, 9)
        cells = torch.argsort(u[:, 16 : 16 + 9], dim=1)[:, :slots]
        p = u[:, 16 + 9 + 3 * slots :].reshape(batch, slots, 5)[..., :4]
        lo, hi = spec.glyph_scale
        scale = lo + (hi - lo) * p[..., 0]  # glyph side / image side
        cell_size = 2.0 / _CELLS
        cx = -1 + cell_size * ((cells % _CELLS).float() + 0.2 + 0.6 * p[..., 1])
        cy = -1 + cell_size * ((cells // _CELLS).float() + 0.2 + 0.6 * p[..., 2])
        theta = math.radians(spec.max_rotation_deg) * (2 * p[..., 3] - 1)
        cos, sin = torch.cos(theta) / scale, torch.sin(theta) / scale
        affine = torch.stack(
            [
                torch.stack([cos, sin, -(cos * cx + sin * cy)], -1),
                torch.stack([-sin, cos, sin * cx - cos * cy], -1),
            ],
            dim=-2,
        ).view(batch * slots, 2, 3)
        grid = F.affine_grid(affine, [batch * slots, 1, side, side], align_corners=False)
        alpha = F.grid_sample(glyphs, grid, align_corners=False).view(batch, slots, 1, side, side)
        return alpha.clamp(0, 1)

    def _noise(self, indices: np.ndarray) -> torch.Tensor:
        """Pixel noise in [0, 1) from the same hash stream, at most 64x64 then upsampled (keeps
        it cheap)."""
        spec, batch, side = self.spec, len(indices), self.spec.image_size
        noise_side = min(side, 64)
        noise = hashed_uniforms(spec.seed, self._stream + 64, indices, 3 * noise_side * noise_side)
        noise = torch.from_numpy(noise).float().view(batch, 3, noise_side, noise_side)
        if noise_side != side:
            noise = F.interpolate(noise, size=(side, side), mode="nearest")
        return noise
