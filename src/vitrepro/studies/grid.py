"""A W&B sweep file as a list of runs, expanded and rendered as W&B's agent does it, so the
local runner and a sweep agent run exactly the same ``src/train.py`` commands."""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from vitrepro.config.errors import ConfigError


@dataclass(frozen=True)
class GridPoint:
    """One run of a grid: its parameters, and which of them the grid varies."""

    params: tuple[tuple[str, Any], ...]
    varying: tuple[str, ...] = ()
    name: str | None = None  # the same command's name in another study's grid (adopt_twins)

    @property
    def args(self) -> list[str]:
        """``${args_no_hyphens}`` as the agent renders it."""
        return [f"{key}={value}" for key, value in self.params]

    @property
    def digest(self) -> str:
        """A hash of every argument: the same command has the same digest in any grid."""
        return hashlib.sha1("\n".join(self.args).encode()).hexdigest()[:8]

    @property
    def slug(self) -> str:
        """A directory name for the run: the parameters the grid varies, readable, plus a hash
        of all of them, so editing a fixed parameter makes new runs instead of reusing old."""
        if self.name:
            return self.name
        text = "__".join(f"{key}-{value}" for key, value in self.params if key in self.varying)
        digest = self.digest
        return re.sub(r"[^A-Za-z0-9._=-]+", "_", f"{text}__{digest}" if text else digest)


def load_sweep(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError("sweep", path, "no such sweep file")
    sweep = yaml.safe_load(path.read_text())
    if sweep.get("method") != "grid":
        raise ConfigError(f"{path}: method", sweep.get("method"), "studies run grid sweeps only")
    return sweep


def expand_grid(sweep: dict[str, Any]) -> list[GridPoint]:
    """Every combination of the ``values`` lists (``value`` entries fixed), with the arguments
    in W&B's order (sorted by name)."""
    keys, choices = [], []
    for key, spec in sorted(sweep["parameters"].items()):
        keys.append(key)
        choices.append(spec["values"] if "values" in spec else [spec["value"]])
    varying = tuple(k for k, c in zip(keys, choices, strict=True) if len(c) > 1)
    return [
        GridPoint(tuple(zip(keys, combo, strict=True)), varying)
        for combo in itertools.product(*choices)
    ]


def with_seeds(points: list[GridPoint], seeds: int, first: int = 0) -> list[GridPoint]:
    """Every point once per seed ``first .. first + seeds - 1`` (the ``seed`` axis replaced),
    in W&B's argument order; the seed is a varying axis when there are several."""
    out = []
    for point in points:
        fixed = [(k, v) for k, v in point.params if k != "seed"]
        varying = tuple(k for k in point.varying if k != "seed")
        varying += ("seed",) if seeds > 1 else ()
        for seed in range(first, first + seeds):
            params = tuple(sorted([*fixed, ("seed", seed)]))
            out.append(GridPoint(params, tuple(sorted(varying))))
    return out


def in_run_order(points: list[GridPoint], order: dict[str, list[Any]] | None) -> list[GridPoint]:
    """``points`` sorted by ``order`` (a study profile's ``run_order``): axes by priority, each
    with its values in the order to run, so that the runs a figure needs first (its competence
    bar at the largest size) finish first; values it does not list go last, ties keep the grid's
    order."""
    if not order:
        return points

    def key(point: GridPoint) -> tuple[int, ...]:
        params = dict(point.params)
        ranks = []
        for axis, values in order.items():
            listed = [str(v) for v in values]
            value = str(params.get(axis))
            ranks.append(listed.index(value) if value in listed else len(listed))
        return tuple(ranks)

    return sorted(points, key=key)


def adopt_twins(points: list[GridPoint], pool: Path, committed: Path | None) -> list[GridPoint]:
    """Each point under the name its command already has in the run ``pool`` (a run directory)
    or its ``committed`` records, when another study's grid made it: the same arguments give
    the same digest, and a grid that varies other axes names the run otherwise (Figure 5's runs
    at 37.5k images are Figure 3's largest-size runs). Studies sharing a pool so run it once."""
    adopted = []
    for point in points:
        own = point.slug
        names = (
            [p.name for p in pool.glob(f"*__{point.digest}") if p.is_dir()] if pool.is_dir() else []
        )
        if committed is not None and committed.is_dir():
            names += [p.stem for p in committed.glob(f"*__{point.digest}.json")]
        if own in names or not names or (pool / own).exists():
            adopted.append(point)
        else:
            adopted.append(replace(point, name=sorted(set(names))[0]))
    return adopted
