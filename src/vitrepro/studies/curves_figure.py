"""A study's competence curves: every run's training loss and validations over its steps, one
colour per series and size, so a reader sees whether each model had finished learning (the
competence bar's flattened loss) and where the budget ended."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from vitrepro.files import save_figure_atomic
from vitrepro.studies.collect import label, series_axes
from vitrepro.studies.seeds import short_count
from vitrepro.tracking.record import config_value


def _name(config: dict[str, Any], metrics: dict[str, Any], profile: dict[str, Any]) -> str:
    labels = profile.get("labels") or {}
    axes = [*series_axes(profile), profile["x_axis"]]
    names = []
    for axis in (a for a in dict.fromkeys(axes) if a != "step"):
        value = config_value(config, axis)
        if value is None and isinstance(metrics.get(axis), int | float):  # a measured x: FLOPs
            value = short_count(metrics[axis])
        names.append(label(labels, axis, value))
    return ", ".join(name for name in names if name)


def draw_curves(
    records: list[tuple[dict, dict]], profile: dict[str, Any], path: Path, title: str
) -> Path | None:
    """Training loss (left, log scale) and validation top-1 (right) of every run over its
    optimizer steps; the seeds of one series and size share a colour. None when no record
    holds curves."""
    with_curves = [(c, m) for c, m in records if (m.get("curves") or {}).get("train")]
    if not with_curves:
        return None
    figure, (loss_ax, val_ax) = plt.subplots(1, 2, figsize=(11, 4.6))
    colours: dict[str, Any] = {}
    for config, metrics in sorted(with_curves, key=lambda r: _name(*r, profile)):
        name = _name(config, metrics, profile)
        first = name not in colours
        colour = colours.setdefault(name, f"C{len(colours) % 10}")
        train, val = metrics["curves"]["train"], metrics["curves"].get("val", [])
        loss_ax.plot([p["step"] for p in train], [p["loss"] for p in train], color=colour,
                     lw=1, alpha=0.8, label=name if first else None)  # fmt: skip
        if val:
            top1 = [100 * p["top1"] for p in val]
            val_ax.plot([p["step"] for p in val], top1, color=colour, marker="o", ms=3, lw=1,
                        alpha=0.8, label=name if first else None)  # fmt: skip
    loss_ax.set_yscale("log")
    loss_ax.set_ylabel("training loss (mean over 50 steps)")
    val_ax.set_ylabel("validation top-1 (%)")
    if profile.get("chance") is not None:
        val_ax.axhline(profile["chance"], color="black", ls=":", lw=1, label="chance")
    for ax in (loss_ax, val_ax):
        ax.set_xlabel("optimizer steps")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="best", framealpha=0.8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)
    return path
