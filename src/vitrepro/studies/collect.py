"""Run records into tables: a study's results from local ``summary.json`` files or W&B runs, and
any runs' summaries as one table (``python -m vitrepro.studies.collect DIR [DIR ...] [--columns
KEY ...] [--csv PATH]``). Studies read nothing else: a table or figure is a pure function of the
runs' records.

Both sources give the same flat metric names (``final/val/top1``, ``fewshot/<set>/<k>shot``,
``transfer/<set>/best_top1``, ``train_exaflops``), and the same lookup of a grid axis: a Hydra
group choice (``model``, ``pretraining``) or a dotted config key (``data.num_train``).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from vitrepro.config.errors import ConfigError
from vitrepro.studies.seeds import COMPETENCE
from vitrepro.tracking.curves import loss_flattened
from vitrepro.tracking.record import (
    config_value,
    finished,
    finished_under,
    flat_metrics,
    transfer_metrics,
)


def label(labels: dict[str, dict], axis: str, value: Any) -> str:
    """The paper's name for one of our axis values (itself when the profile names none)."""
    names = {str(k): str(v) for k, v in (labels.get(axis) or {}).items()}
    return names.get(str(value), str(value))


def _mean(metrics: dict[str, Any], keys: list[str]) -> float:
    values = [metrics.get(k) for k in keys]
    if any(v is None for v in values):
        return math.nan
    return 100.0 * sum(values) / len(values)


def series_axes(profile: dict[str, Any]) -> list[str]:
    """The axes whose values name a series: one (``model``) or several (classifier and lr)."""
    axes = profile["series_axis"]
    return [axes] if isinstance(axes, str) else list(axes)


def _points(metrics: dict[str, Any], x_axis: str, keys: list[str]) -> list[dict[str, Any]]:
    """The run's values to plot: its final ones, or with ``x_axis: step`` every evaluation
    made during training that measured the plotted ``keys`` (few-shot evaluations,
    ``fewshot_history``, or validations), each with its step."""
    if x_axis != "step":
        return [metrics]
    validations = [
        {"step": p["step"], "val/top1": p["top1"], "val/loss": p["loss"]}
        for p in (metrics.get("curves") or {}).get("val", [])
    ]
    history = [*(metrics.get("fewshot_history") or []), *validations]
    # an evaluation that did not measure the metric is not a point of its curve (it would
    # otherwise take the run's final value)
    return [{**metrics, **p} for p in history if all(k in p for k in keys)]


def _loss_flat(metrics: dict[str, Any], profile: dict[str, Any]) -> tuple[float, bool]:
    """The run's relative change of training loss over its last tenth, and whether that meets
    the profile's competence bar (``vitrepro.studies.seeds.COMPETENCE``)."""
    bar = {**COMPETENCE, **(profile.get("competence") or {})}
    train = (metrics.get("curves") or {}).get("train", [])
    flat, change = loss_flattened(train, bar["loss_flat_relative"], bar["loss_flat_absolute"])
    return change, flat


def study_table(records: Iterable[tuple[dict, dict]], profile: dict[str, Any]) -> pd.DataFrame:
    """One row per run record ``(config, flat metrics)`` (per evaluation, with ``x_axis:
    step``): axis values, paper labels, the profile's metric (in %, the mean when it names
    several), its second panel's (``panel_value``) and the compute. The x axis is a config
    axis or a metric (``forward_flops``)."""
    rows = []
    labels = profile.get("labels") or {}
    axes, x_axis, panel = series_axes(profile), profile["x_axis"], profile.get("panel")
    for config, metrics in records:
        loss_change, loss_flat = _loss_flat(metrics, profile)
        series_values = [config_value(config, axis) for axis in axes]
        # an axis value labelled "" (the usual setting) is left out of the series' name
        names = (label(labels, a, v) for a, v in zip(axes, series_values, strict=True))
        series = ", ".join(name for name in names if name)
        ours = ", ".join(map(str, series_values))
        for point in _points(metrics, x_axis, list(profile["metric"])):
            x_value = point[x_axis] if x_axis in point else config_value(config, x_axis)
            rows.append(
                {
                    **dict(zip(axes, series_values, strict=True)),
                    x_axis: x_value,
                    "series": series,
                    # the figure's legend: what ran, and the paper's model it stands in for
                    # (a long tuple of raw values is left to the labels, which name it)
                    "legend": series if series == ours or len(ours) > 40 else f"{ours} ({series})",
                    "x": label(labels, x_axis, x_value),
                    "seed": config.get("seed"),
                    "value": _mean(point, list(profile["metric"])),
                    "pretrain_top1": _mean(point, ["final/test/top1"]),
                    "loss_change": loss_change,
                    "loss_flat": loss_flat,
                    "train_exaflops": metrics.get("train_exaflops"),
                    "images_seen": metrics.get("images_seen"),
                    "wall_time_s": metrics.get("wall_time_s"),
                }
                | ({"panel_value": _mean(point, list(panel["metric"]))} if panel else {})
            )
    if profile.get("shared_series"):
        rows = _shared_into_every_series(rows, profile["shared_series"], axes)
    columns = list(dict.fromkeys([*axes, x_axis]))
    columns += [
        "series",
        "legend",
        "x",
        "seed",
        "value",
        "pretrain_top1",
        "loss_change",
        "loss_flat",
    ]
    columns += ["train_exaflops", "images_seen", "wall_time_s"] + (["panel_value"] if panel else [])
    return pd.DataFrame(rows, columns=columns)


def _shared_into_every_series(
    rows: list[dict[str, Any]], shared: str, axes: list[str]
) -> list[dict[str, Any]]:
    """The runs of the ``shared`` series (Figure 8's base model, the point every line passes
    through) as a point of every other series, run once."""
    base = [row for row in rows if row["series"] == shared]
    lines = {row["series"]: row for row in rows if row["series"] != shared}
    copies = [
        {**row, **{key: line[key] for key in (*axes, "series", "legend")}}
        for line in lines.values()
        for row in base
    ]
    return [row for row in rows if row["series"] != shared] + copies


def local_records(run_dirs: Iterable[Path]) -> list[tuple[dict, dict]]:
    """(config, flat metrics) of every finished run among ``run_dirs``."""
    records = []
    for run_dir in run_dirs:
        summary = finished(run_dir)
        if summary:
            records.append((summary["config"], flat_metrics(summary)))
    return records


def wandb_records(
    sweep_paths: str, api: Any = None, history_keys: list[str] = ()
) -> list[tuple[dict, dict]]:
    """(config, summary) of every finished run of the W&B sweeps ``ENTITY/PROJECT/SWEEP_ID``
    (several: comma-separated); ``history_keys``: also the run's logged values of those
    metrics over training, as ``fewshot_history``."""
    paths = [p for p in sweep_paths.split(",") if p]
    if not paths or any(len(p.split("/")) != 3 for p in paths):
        raise ConfigError("SWEEP", sweep_paths, "give the sweep as ENTITY/PROJECT/SWEEP_ID")
    if api is None:
        import wandb

        api = wandb.Api()
    records = []
    for path in paths:
        entity_project = path.rsplit("/", 1)[0]
        for run in api.sweep(path).runs:
            if getattr(run, "state", "finished") != "finished":
                continue
            summary = dict(run.summary) | _separate_transfers(api, entity_project, run)
            if history_keys:
                logged = run.scan_history(keys=["trainer/global_step", *history_keys])
                summary["fewshot_history"] = [
                    {"step": row.pop("trainer/global_step"), **row} for row in logged
                ]
            records.append((dict(run.config), summary))
    return records


def _separate_transfers(api: Any, entity_project: str, run: Any) -> dict[str, Any]:
    """The transfer metrics of a run whose fine-tunes ran as jobs of their own (the study
    runner's ``transfer_jobs=separate``): they finished after the run, so its W&B summary lacks
    them. Each is a finished ``finetune`` run grouped under the run's id, named by its run
    directory (``<run>/transfer/<name>``), as the local record joins them
    (``studies.jobs.join_transfers``): all of them or none, so that a learning-rate grid's
    selection (Table 4) is over the whole grid."""
    wanted = (run.config.get("transfer") or {}) if isinstance(run.config, dict) else {}
    missing = [n for n in wanted if f"transfer/{n}/top1" not in run.summary]
    if not missing:
        return {}
    children = api.runs(entity_project, filters={"group": run.id, "jobType": "finetune"})
    results = {}
    for child in children:
        name = Path(str((child.config.get("paths") or {}).get("run_dir", ""))).name
        if name not in missing or getattr(child, "state", "finished") != "finished":
            continue
        summary = dict(child.summary)
        results[name] = {
            "final": {k[len("final/") :]: v for k, v in summary.items() if k.startswith("final/")},
            "best": {k[len("best/") :]: v for k, v in summary.items() if k.startswith("best/")},
            "data": (child.config.get("data") or {}).get("name"),
            "lr": ((child.config.get("recipe") or {}).get("optimizer") or {}).get("lr"),
        }
    if set(results) != set(missing):  # as locally: a run counts once all its fine-tunes have
        return {}
    return transfer_metrics(results)


BASE_COLUMNS = [
    "model",
    "data",
    "final/val/top1",
    "best/val/top1",
    "images_seen",
    "wall_time_s",
    "git_revision",
]


def load_summaries(roots: list[str | Path], config_keys: list[str] = ()) -> pd.DataFrame:
    """One row per finished run under ``roots``; ``config_keys`` add dotted config fields."""
    rows = []
    for root in roots:
        for summary in finished_under(root):
            row = {
                "model": summary["model"],
                "data": summary["data"],
                "final/val/top1": summary["final"].get("val/top1"),
                "best/val/top1": summary["best"].get("val/top1"),
                "images_seen": summary["images_seen"],
                "wall_time_s": summary["wall_time_s"],
                "git_revision": summary["git_revision"][:12],
                "run_dir": summary["run_dir"],
            }
            row.update({key: config_value(summary["config"], key) for key in config_keys})
            rows.append(row)
    return pd.DataFrame(rows, columns=[*BASE_COLUMNS, *config_keys, "run_dir"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Run summaries (summary.json) under directories as one table."
    )
    parser.add_argument("roots", nargs="+", help="directories searched for summary.json")
    parser.add_argument("--columns", nargs="*", default=[], help="dotted config keys to add")
    parser.add_argument("--csv", help="also write the table (without run directories) here")
    args = parser.parse_args()
    table = load_summaries(args.roots, args.columns).drop(columns="run_dir")
    print(table.to_string(index=False))
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
