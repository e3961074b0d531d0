"""A study's results table from run records: local ``summary.json`` files or W&B runs.

Both sources give the same flat metric names (``final/val/top1``, ``fewshot/<set>/<k>shot``,
``transfer/<set>/best_top1``, ``train_exaflops``), and the same lookup of a grid axis: a Hydra
group choice (``model``, ``pretraining``) or a dotted config key (``data.num_train``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from vitrepro.errors import ConfigError


def flat_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The W&B-summary view of a ``summary.json``."""
    metrics: dict[str, float] = {f"final/{k}": v for k, v in summary.get("final", {}).items()}
    metrics |= {f"best/{k}": v for k, v in summary.get("best", {}).items()}
    metrics |= summary.get("fewshot", {})
    for name, result in summary.get("transfer", {}).items():
        metrics[f"transfer/{name}/top1"] = result["final"].get("val/top1")
        metrics[f"transfer/{name}/best_top1"] = result["best"].get("val/top1")
    for key in ("train_exaflops", "images_seen", "wall_time_s", "num_params"):
        if key in summary:
            metrics[key] = summary[key]
    return metrics


def axis_value(config: dict[str, Any], axis: str) -> Any:
    """A grid axis of a run: its Hydra group choice, else its dotted config value."""
    choices = config.get("choices") or {}
    if axis in choices:
        return choices[axis]
    node: Any = config
    for part in axis.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def label(labels: dict[str, dict], axis: str, value: Any) -> str:
    """The paper's name for one of our axis values (itself when the profile names none)."""
    names = {str(k): str(v) for k, v in (labels.get(axis) or {}).items()}
    return names.get(str(value), str(value))


def _mean(metrics: dict[str, Any], keys: list[str]) -> float:
    values = [metrics.get(k) for k in keys]
    if any(v is None for v in values):
        return math.nan
    return 100.0 * sum(values) / len(values)


def study_table(records: Iterable[tuple[dict, dict]], profile: dict[str, Any]) -> pd.DataFrame:
    """One row per run record ``(config, flat metrics)``: axis values, paper labels, the
    profile's metric (in %, the mean when it names several) and the compute."""
    rows = []
    labels = profile.get("labels") or {}
    for config, metrics in records:
        series_value = axis_value(config, profile["series_axis"])
        x_value = axis_value(config, profile["x_axis"])
        series = label(labels, profile["series_axis"], series_value)
        rows.append(
            {
                profile["series_axis"]: series_value,
                profile["x_axis"]: x_value,
                "series": series,
                # the figure's legend: what ran, and the paper's model it stands in for
                "legend": series if series == str(series_value) else f"{series_value} ({series})",
                "x": label(labels, profile["x_axis"], x_value),
                "value": _mean(metrics, list(profile["metric"])),
                "train_exaflops": metrics.get("train_exaflops"),
                "images_seen": metrics.get("images_seen"),
                "wall_time_s": metrics.get("wall_time_s"),
            }
        )
    columns = list(dict.fromkeys([profile["series_axis"], profile["x_axis"]]))
    columns += ["series", "legend", "x", "value", "train_exaflops", "images_seen", "wall_time_s"]
    return pd.DataFrame(rows, columns=columns)


def local_records(run_dirs: Iterable[Path]) -> list[tuple[dict, dict]]:
    """(config, flat metrics) of every finished run among ``run_dirs``."""
    records = []
    for run_dir in run_dirs:
        path = Path(run_dir) / "summary.json"
        if path.is_file():
            summary = json.loads(path.read_text())
            if summary.get("status") == "finished":
                records.append((summary["config"], flat_metrics(summary)))
    return records


def wandb_records(sweep_path: str, api: Any = None) -> list[tuple[dict, dict]]:
    """(config, summary) of every finished run of the W&B sweep ``ENTITY/PROJECT/SWEEP_ID``."""
    parts = sweep_path.split("/")
    if len(parts) != 3:
        raise ConfigError("SWEEP", sweep_path, "give the sweep as ENTITY/PROJECT/SWEEP_ID")
    if api is None:
        import wandb

        api = wandb.Api()
    sweep = api.sweep(sweep_path)
    return [
        (dict(run.config), dict(run.summary))
        for run in sweep.runs
        if getattr(run, "state", "finished") == "finished"
    ]
