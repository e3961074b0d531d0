"""A study's finished runs kept in the repository, so that a run pool resumes on a new machine.

Hours of study compute outlive one machine. Each finished run of a pool is exported as one small
JSON file (``experiments/pools/<pool>/<profile>/<point>.json``: its record, the commit and the
machine that made it, and a fingerprint of its design) to be committed with the code. A pool
started anywhere restores the committed runs whose fingerprint matches the design it would run
now (the same model, data, recipe, transfers, evaluation and seed after Hydra's composition),
and runs only the rest. A changed design changes the fingerprint: its runs are made again.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

from vitrepro.files import PROJECT_ROOT, write_json_atomic
from vitrepro.studies.grid import GridPoint
from vitrepro.tracking import record

POOLS = PROJECT_ROOT / "experiments" / "pools"
# The config sections that decide a run's result (speed switches, paths and loggers do not).
DESIGN_KEYS = ("model", "data", "recipe", "transfer", "evaluation", "seed")


# Lookup tables (dicts under these names, in the model or the recipe) that the recipe reads its
# settings from: the values it took are in ``recipe.optimizer`` and ``recipe.epochs``, so where
# a table lives (or what else it lists) decides nothing. Records made while the tables sat in
# the model files carry ``model.lr`` and ``model.weight_decay``; the recipes' is ``per_model``.
LOOKUP_TABLES = ("lr", "weight_decay", "per_model")


def fingerprint(config: dict[str, Any]) -> str:
    """A hash of the parts of a resolved run config that decide its result."""
    design = {key: config.get(key) for key in DESIGN_KEYS}
    for section in ("model", "recipe"):
        if isinstance(design[section], dict):
            design[section] = {
                k: v
                for k, v in design[section].items()
                if not (k in LOOKUP_TABLES and isinstance(v, dict))
            }
    design["precision"] = (config.get("trainer") or {}).get("precision")
    text = json.dumps(_own_classes_by_name(design), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _own_classes_by_name(node: Any) -> Any:
    """The config with each ``_target_`` that names one of vitrepro's own classes cut to the
    class name: which of our modules holds a class decides nothing (torch's targets are kept)."""
    if isinstance(node, dict):
        return {
            k: v.rsplit(".", 1)[-1]
            if k == "_target_" and isinstance(v, str) and v.startswith("vitrepro.")
            else _own_classes_by_name(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_own_classes_by_name(v) for v in node]
    return node


def planned_fingerprint(point: GridPoint) -> str:
    """The fingerprint of the run a point would make now: its config composed by Hydra."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    overrides = [*point.args, "transfer_jobs=separate", "paths.run_dir=planned"]
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        config = OmegaConf.to_container(compose("train", overrides), resolve=True)
    return fingerprint(config)


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else the platform's processor string."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def export(point: GridPoint, run_dir: Path, into: Path) -> Path | None:
    """Write a finished run's committed record to ``into/<point>.json`` (None if unfinished)."""
    summary = record.finished(run_dir)
    if summary is None:
        return None
    kept = {
        "point": point.slug,
        "args": list(point.args),
        "fingerprint": fingerprint(summary["config"]),
        "git_revision": summary.get("git_revision"),
        "machine": {"cpu": cpu_name(), "cores": _cores()},
        "summary": summary,
    }
    path = into / f"{point.slug}.json"
    write_json_atomic(path, kept)
    return path


def restore(point: GridPoint, run_dir: Path, into: Path, planned: str) -> bool:
    """Put a committed run back as the pool's finished run when its design is ``planned`` (the
    point's fingerprint now); True when the pool then holds it."""
    path = into / f"{point.slug}.json"
    if record.finished(run_dir) is not None or not path.is_file():
        return False
    kept = json.loads(path.read_text())
    # recomputed from the record's config, so a record outlives changes to what the hash covers
    if fingerprint(kept["summary"]["config"]) != planned:
        return False
    record.write(run_dir, kept["summary"])
    return True


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
