"""Generator v2 of the embedded dataset: resolvable glyph pairs at every sub-patch phase.

The tiny profile's question is the paper's (Section 4.2, Figures 3 and 4): does a model without
convolutional inductive bias need more data? A class is an unordered pair of glyphs; an image
shows its class's two glyphs and ``num_distractors`` glyphs of a separate bank, each in its own
cell of a ``cells x cells`` placement grid, on a noisy colour gradient. What makes it a fair
stand-in, by construction (and measured by the tests from the render parameters):

- resolvable: a glyph is a 5x5 template of 1-cell strokes drawn at ``cell_px`` pixels per
  template cell (about 1.7 px strokes, an 8-9 px glyph at 32 px), no rotation, so a 4-px patch
  sees whole stroke segments;
- deterministic labels: every glyph lies wholly inside the image and inside its own placement
  cell, so no class glyph is clipped or overlapped;
- translation matters: a glyph's position jitters continuously over more than one patch within
  its cell, so every sub-patch phase occurs and nothing aligns with a ViT's patch grid;
- transfer is covered: pre-training takes pairs from the front of one seeded order (re-drawn
  until every glyph occurs in some class) and the transfer task takes pairs from its back, so
  the two tasks share every glyph but never a class.

``relational=True`` (a separate, declared variant) doubles the classes: the same pair placed
side by side (same row of cells) or one above the other (same column) is a different class.

Every image is a pure function of (seed, task, split, index), as in generator v1.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from vitrepro.data.generators.motifs import SPLITS, TASKS, RenderedImages, hashed_uniforms

_TEMPLATE = 5  # glyph templates are 5x5; strokes join neighbouring points of a 3x3 lattice
_LATTICE = [(r, c) for r in (0, 2, 4) for c in (0, 2, 4)]
# Half the extent of what a glyph of side s changes in the image: s/2 plus the half template
# cell over which bilinear sampling fades the outer strokes out.
REACH = 0.5 + 0.5 / _TEMPLATE


@dataclass(frozen=True)
class GlyphPairSpec:
    """Knobs of generator v2; the defaults are the tiny profile's (32 px, 4-px patches)."""

    num_classes: int = 10
    image_size: int = 32
    task: str = "pretrain"
    seed: int = 0
    num_glyphs: int = 10
    num_distractors: int = 1
    num_distractor_glyphs: int = 10
    cell_px: tuple[float, float] = (1.6, 1.9)  # pixels per template cell (stroke width)
    cells: int = 2  # placement grid: cells x cells, one glyph per cell
    relational: bool = False
    noise_std: float = 0.05

    @property
    def slots(self) -> int:
        return 2 + self.num_distractors

    @property
    def max_glyph_px(self) -> float:
        return _TEMPLATE * self.cell_px[1]

    @property
    def jitter_px(self) -> float:
        """How far a glyph's centre moves inside its cell (must exceed a patch)."""
        return self.image_size / self.cells - 2 * REACH * self.max_glyph_px


def make_templates(count: int, seed: int, strokes: int = 3) -> torch.Tensor:
    """``count`` distinct 5x5 glyphs, padded by one blank cell: ``(count, 1, 7, 7)``."""
    edges = [
        (a, b)
        for a, b in itertools.combinations(_LATTICE, 2)
        if max(abs(a[0] - b[0]), abs(a[1] - b[1])) == 2
    ]
    rng = np.random.default_rng([seed, 0x76320001])
    seen: set[bytes] = set()
    glyphs = []
    while len(glyphs) < count:
        glyph = np.zeros((_TEMPLATE, _TEMPLATE), np.float32)
        for i in rng.choice(len(edges), size=strokes, replace=False):
            (r0, c0), (r1, c1) = edges[i]
            for t in (0.0, 0.5, 1.0):
                glyph[round(r0 + t * (r1 - r0)), round(c0 + t * (c1 - c0))] = 1.0
        if glyph.tobytes() not in seen:
            seen.add(glyph.tobytes())
            glyphs.append(np.pad(glyph, 1))
    return torch.from_numpy(np.stack(glyphs))[:, None]


def class_pairs(spec: GlyphPairSpec) -> list[tuple[int, int]]:
    """The task's glyph pairs from one seeded order of all pairs that starts with a perfect
    matching of the glyphs: pre-training takes the front (so any ``num_glyphs / 2`` classes
    or more cover every glyph), transfer the back (never a pre-training pair)."""
    pairs = list(itertools.combinations(range(spec.num_glyphs), 2))
    per_task = spec.num_classes // 2 if spec.relational else spec.num_classes
    if 2 * per_task > len(pairs) or per_task < spec.num_glyphs // 2:
        raise ValueError(
            f"num_classes={spec.num_classes} needs between {spec.num_glyphs // 2} and "
            f"{len(pairs) // 2} glyph pairs per task with {spec.num_glyphs} glyphs: "
            "raise num_glyphs or change num_classes"
        )
    rng = np.random.default_rng([spec.seed, 0x70616972])
    glyphs = rng.permutation(spec.num_glyphs).tolist()
    matching = [tuple(sorted(glyphs[i : i + 2])) for i in range(0, spec.num_glyphs - 1, 2)]
    rest = [p for p in pairs if p not in matching]
    order = matching + [rest[i] for i in rng.permutation(len(rest))]
    return order[:per_task] if spec.task == "pretrain" else order[::-1][:per_task]


class GlyphPairs(RenderedImages):
    """Index-addressable glyph-pair images; returns ``(image in [-1, 1], label)``."""

    def __init__(self, spec: GlyphPairSpec, split: str, size: int) -> None:
        if split not in SPLITS or spec.task not in TASKS:
            raise ValueError(f"split in {sorted(SPLITS)} and task in {TASKS}")
        if spec.slots > spec.cells**2:
            raise ValueError(f"{spec.slots} glyphs need more than {spec.cells}x{spec.cells} cells")
        if spec.relational and spec.cells != 2:
            raise ValueError("the relational variant places glyphs on a 2x2 grid")
        self.spec, self.split, self.size = spec, split, int(size)
        self.pairs = torch.tensor(class_pairs(spec), dtype=torch.long)
        bank = make_templates(spec.num_glyphs + spec.num_distractor_glyphs, spec.seed)
        self.class_glyphs, self.distractors = bank[: spec.num_glyphs], bank[spec.num_glyphs :]
        self._stream = 16 + SPLITS[split] + 8 * TASKS.index(spec.task)  # v1 uses 0..10

    def layout(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        """Where each glyph goes, in pixels: ``centre`` (B, slots, 2 as x, y), ``side`` and
        ``reach`` (half the extent of the pixels it changes) (B, slots), ``cell`` (B, slots);
        slots 0 and 1 are the class glyphs."""
        spec, batch = self.spec, len(indices)
        u = torch.from_numpy(hashed_uniforms(spec.seed, self._stream, indices, 96)).float()
        cells = torch.argsort(u[:, : spec.cells**2], dim=1)[:, : spec.slots]
        if spec.relational:  # class glyphs in one row (even label) or one column (odd label)
            labels = torch.from_numpy(self.labels(indices))
            line = (u[:, 16] < 0.5).long()  # which row or column
            pos = (u[:, 17] < 0.5).long()  # which glyph goes first
            row = torch.stack([2 * line, 2 * line + 1], 1)
            column = torch.stack([line, line + 2], 1)
            first = torch.where((labels % 2 == 0)[:, None], row, column)
            first = torch.where(pos[:, None] == 1, first.flip(1), first)
            free = torch.ones(batch, 4, dtype=torch.bool).scatter(1, first, False)
            rest = torch.argsort(torch.where(free, u[:, 20:24], 2.0), dim=1)[:, : spec.slots - 2]
            cells = torch.cat([first, rest], 1)
        lo, hi = spec.cell_px
        side = _TEMPLATE * (lo + (hi - lo) * u[:, 24 : 24 + spec.slots])
        reach = REACH * side
        cell_side = spec.image_size / spec.cells
        room = cell_side - 2 * reach  # the centre moves freely while the glyph stays in its cell
        offsets = torch.stack([u[:, 32 : 32 + spec.slots], u[:, 40 : 40 + spec.slots]], -1)
        corner = torch.stack([cells % spec.cells, cells // spec.cells], -1).float() * cell_side
        centre = corner + reach[..., None] + room[..., None] * offsets
        return {"centre": centre, "side": side, "reach": reach, "cell": cells, "u": u}

    def render(self, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Render a batch: ``(B, 3, H, W)`` float images in [-1, 1] and ``(B,)`` labels."""
        spec = self.spec
        if indices.size and (indices.min() < 0 or indices.max() >= self.size):
            raise IndexError(f"index out of range for a dataset of {self.size} images")
        batch, side, slots = len(indices), spec.image_size, spec.slots
        labels = torch.from_numpy(self.labels(indices)).long()
        place = self.layout(indices)
        u = place["u"]
        pair = self.pairs[labels // 2 if spec.relational else labels]
        pick = (u[:, 48 : 48 + spec.num_distractors] * spec.num_distractor_glyphs).long()
        glyphs = torch.cat(
            [
                self.class_glyphs[pair.flatten()].view(batch, 2, 1, 7, 7),
                self.distractors[pick.clamp(max=spec.num_distractor_glyphs - 1).flatten()].view(
                    batch, spec.num_distractors, 1, 7, 7
                ),
            ],
            1,
        ).view(batch * slots, 1, 7, 7)
        # Inverse affine map from image to template coordinates (normalised, [-1, 1]); the
        # template's blank border makes the 5x5 glyph occupy 5/7 of the sampled square.
        scale = (place["side"] * 7 / _TEMPLATE / side).view(-1)
        centre = (place["centre"] / side * 2 - 1).view(-1, 2)
        zero = torch.zeros_like(scale)
        affine = torch.stack(
            [
                torch.stack([1 / scale, zero, -centre[:, 0] / scale], -1),
                torch.stack([zero, 1 / scale, -centre[:, 1] / scale], -1),
            ],
            -2,
        )
        grid = F.affine_grid(affine, [batch * slots, 1, side, side], align_corners=False)
        alpha = F.grid_sample(glyphs, grid, align_corners=False).view(batch, slots, 1, side, side)
        canvas = self._background(u, batch, side)
        bright = (u[:, 56] < 0.5)[:, None, None]
        colour = 0.6 + 0.4 * u[:, 64 : 64 + 3 * slots].reshape(batch, slots, 3)
        colour = torch.where(bright, colour, 1.0 - colour)
        for j in range(slots):
            a = alpha[:, j].clamp(0, 1)
            canvas = canvas * (1 - a) + colour[:, j, :, None, None] * a
        noise = hashed_uniforms(spec.seed, self._stream + 64, indices, 3 * side * side)
        noise = torch.from_numpy(noise).float().view(batch, 3, side, side)
        canvas = canvas + spec.noise_std * math.sqrt(12) * (noise - 0.5)
        return (canvas.clamp(0, 1) * 2 - 1).contiguous(), labels

    @staticmethod
    def _background(u: torch.Tensor, batch: int, side: int) -> torch.Tensor:
        """A linear colour gradient in a random direction, dark or bright to match polarity."""
        bright = (u[:, 56] < 0.5)[:, None]
        ends = 0.4 * u[:, 58:64].view(batch, 2, 3)
        ends = torch.where(bright[:, :, None], ends, 1.0 - ends)
        angle = 2 * math.pi * u[:, 57]
        coords = torch.linspace(-1.0, 1.0, side)
        yy, xx = torch.meshgrid(coords, coords, indexing="ij")
        ramp = xx * torch.cos(angle)[:, None, None] + yy * torch.sin(angle)[:, None, None]
        ramp = ((ramp.clamp(-1, 1) + 1) / 2)[:, None]
        return ends[:, 0, :, None, None] + (ends[:, 1] - ends[:, 0])[:, :, None, None] * ramp
