"""What each speed switch changes: our Lightning training step with the switch off
and on, on the same model, batch and data, in this process; the speed-up is the median of
per-repeat time ratios (off / on), the order alternating between repeats.

The switches are config keys of ``src/train.py`` (``trainer.precision``, ``recipe.optimizer.
foreach``/``fused``, ``performance.channels_last``/``fused_attention``, ``compile``); the
DataLoader's are measured on the data side (``vitrepro.bench.decode.measure_loader``).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from vitrepro.bench.training import (
    TrainingCase,
    compose_case,
    fixed_batch,
    lightning_seconds,
    quiet_lightning,
)


@dataclass(frozen=True)
class Switch:
    """One optimisation: the same training case without (``off``) and with it (``on``)."""

    name: str
    setting: str  # the config key and its two values, as a user types them
    off: TrainingCase
    on: TrainingCase


def switch(
    name: str, setting: str, base: TrainingCase, off: dict[str, Any], on: dict[str, Any]
) -> Switch:
    """``base`` changed by ``off`` and by ``on`` (TrainingCase fields; ``overrides`` are added
    to the base's Hydra overrides)."""

    def side(changes: dict[str, Any], label: str) -> TrainingCase:
        extra = tuple(changes.pop("overrides", ()))
        return replace(
            base, name=f"{base.name}_{name}_{label}", overrides=base.overrides + extra, **changes
        )

    return Switch(name, setting, side(dict(off), "off"), side(dict(on), "on"))


def measure_switch(item: Switch, device: torch.device, repeats: int) -> dict[str, Any]:
    """Images/s with the switch off and on (medians) and the speed-up (off time / on time)."""
    quiet_lightning()
    repeats = min(repeats, item.on.max_repeats or repeats)
    composed = {"off": compose_case(item.off), "on": compose_case(item.on)}
    cases = {"off": item.off, "on": item.on}
    batch = fixed_batch(item.off, device)
    seconds: dict[str, list[float]] = {"off": [], "on": []}
    for repeat in range(repeats):
        for side in ("off", "on") if repeat % 2 == 0 else ("on", "off"):
            model_cfg, recipe, performance = composed[side]
            run = lightning_seconds(cases[side], model_cfg, recipe, batch, device, performance)
            seconds[side].append(run[0])
    images = item.off.batch * item.off.steps
    ratios = [off / on for off, on in zip(seconds["off"], seconds["on"], strict=True)]
    return {
        "switch": item.name,
        "setting": item.setting,
        "case": asdict(item.off) | {"name": item.off.name.removesuffix("_off")},
        "repeats": repeats,
        "off_images_per_s": round(images / statistics.median(seconds["off"]), 3),
        "on_images_per_s": round(images / statistics.median(seconds["on"]), 3),
        "speedup": round(statistics.median(ratios), 4),
        "speedup_runs": [round(r, 4) for r in ratios],
    }
