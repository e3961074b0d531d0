"""The run record, defined once: ``summary.json`` in a run directory, written by the run, and its
flat view (``final/val/top1``, ``fewshot/<set>/<k>shot``, ``transfer/<set>/test_top1``,
``wall_time_s``, ...) that the W&B summary holds and every study table reads. Studies, transfers
and tools read records only through this module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vitrepro.files import write_json_atomic

SUMMARY = "summary.json"
TOTALS = ("train_exaflops", "forward_flops", "images_seen", "wall_time_s", "num_params")


def write(run_dir: str | Path, summary: dict[str, Any]) -> None:
    """Write the record atomically: a reader never sees half of one."""
    write_json_atomic(Path(run_dir) / SUMMARY, summary)


def read(run_dir: str | Path) -> dict[str, Any] | None:
    """The record of a run directory, or None when it has none."""
    path = Path(run_dir) / SUMMARY
    return json.loads(path.read_text()) if path.is_file() else None


def finished(run_dir: str | Path) -> dict[str, Any] | None:
    """The record of a run that finished (a killed or requeued run has none)."""
    summary = read(run_dir)
    return summary if summary and summary.get("status") == "finished" else None


def finished_under(root: str | Path) -> list[dict[str, Any]]:
    """Every finished record below ``root``, in path order."""
    found = (finished(path.parent) for path in sorted(Path(root).rglob(SUMMARY)))
    return [summary for summary in found if summary]


def flat_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """The flat view of a record: what the W&B summary holds and study tables read."""
    metrics: dict[str, Any] = {f"final/{k}": v for k, v in summary.get("final", {}).items()}
    metrics |= {f"best/{k}": v for k, v in summary.get("best", {}).items()}
    metrics |= summary.get("fewshot", {})
    metrics |= transfer_metrics(summary.get("transfer", {}))
    metrics |= {key: summary[key] for key in TOTALS if key in summary}
    metrics["fewshot_history"] = summary.get("fewshot_history", [])
    metrics["curves"] = summary.get("curves", {})
    return metrics


def transfer_metrics(transfers: dict[str, Any]) -> dict[str, Any]:
    """``transfer/<name>/{top1,best_top1,test_top1}`` of a record's fine-tunes, and where
    several fine-tune one dataset (Table 4's learning-rate grid) the selected one's
    ``transfer/<dataset>/selected_{test_top1,lr,minival_top1}`` (``select_on_minival``)."""
    metrics = {}
    for name, result in transfers.items():
        metrics[f"transfer/{name}/top1"] = result["final"].get("val/top1")
        metrics[f"transfer/{name}/best_top1"] = result["best"].get("val/top1")
        metrics[f"transfer/{name}/test_top1"] = result["final"].get("test/top1")
    for dataset, chosen in select_on_minival(transfers).items():
        metrics[f"transfer/{dataset}/selected_test_top1"] = chosen["final"].get("test/top1")
        metrics[f"transfer/{dataset}/selected_minival_top1"] = chosen["final"].get("val/top1")
        metrics[f"transfer/{dataset}/selected_lr"] = chosen.get("lr")
    return metrics


def select_on_minival(transfers: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per dataset fine-tuned more than once: the fine-tune with the best final top-1 on its
    validation data, which is the minival held out of training (Table 4's selection, the paper
    then reports that run's test split); never a choice on the test split itself."""
    by_dataset: dict[str, list[dict[str, Any]]] = {}
    for result in transfers.values():
        if result.get("data"):
            by_dataset.setdefault(result["data"], []).append(result)
    return {
        dataset: max(results, key=lambda r: r["final"].get("val/top1", float("-inf")))
        for dataset, results in by_dataset.items()
        if len(results) > 1
    }


def tracker_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The flat view for a tracker's run summary (the history is logged step by step)."""
    return {k: v for k, v in flat_metrics(summary).items() if k != "fewshot_history"}


def config_value(config: dict[str, Any], key: str) -> Any:
    """A grid axis or config key of a run: its Hydra group choice, else its dotted config
    value, nested (a local record) or flat (a W&B sweep run: the agent's parameters are kept
    as dotted keys, and a group it sets, such as ``model``, is a string)."""
    choices = config.get("choices") or {}
    if key in choices:
        return choices[key]
    if key in config and not isinstance(config[key], dict):
        return config[key]
    node: Any = config
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node
