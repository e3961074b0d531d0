"""Run records as ``src/train.py`` writes them, fabricated for the study tests (test data, not
results): each point's config as its sweep and experiment compose it, its metrics given."""

from __future__ import annotations

import functools
import json
import zlib
from pathlib import Path

from vitrepro.studies.grid import GridPoint
from vitrepro.studies.pool import PROJECT_ROOT

GROUPS = {"model", "pretraining", "transfer", "data", "recipe"}


@functools.cache
def experiment_choices(name: str) -> tuple[tuple[str, str], ...]:
    """The config groups a study experiment overlay chooses (``model`` of Table 8, ...)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", [f"experiment={name}", "paths.run_dir=x"], return_hydra_config=True)
    choices = cfg.hydra.runtime.choices
    return tuple((k, str(v)) for k, v in choices.items() if k in GROUPS and v is not None)


@functools.cache
def composed_values(args: tuple[str, ...], keys: tuple[str, ...]) -> tuple[tuple[str, object], ...]:
    """The values of dotted config ``keys`` in the run config a point's arguments compose."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", [*args, "paths.run_dir=x"])
    return tuple((key, OmegaConf.select(cfg, key)) for key in keys)


def point_params(point: GridPoint, axes: tuple[str, ...] = ()) -> dict:
    """What a point's run is given: its experiment's groups, then its own arguments; ``axes``:
    also these config values of its composed run (a study axis its experiment fixes)."""
    params = dict(point.params)
    if "experiment" not in params:
        return params
    params = dict(experiment_choices(params["experiment"])) | params
    missing = tuple(a for a in axes if a not in params and a not in GROUPS and a != "step")
    return dict(composed_values(tuple(point.args), missing)) | params if missing else params


def fabricate_summary(
    run_dir: Path, point: GridPoint, metrics: list[str], value: float, axes: tuple[str, ...] = ()
) -> None:
    """A finished run's summary.json as src/train.py writes it, for the fields studies read
    (``axes``: the study's axes, with their values from the composed run where fixed)."""
    config: dict = {"choices": {}, "transfer": {}}
    for key, val in point_params(point, axes).items():
        if key in GROUPS:
            config["choices"][key] = val
        else:
            node = config
            *parents, leaf = key.split(".")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = val
    if "data.num_train" not in point_params(point) and "pretraining" in config["choices"]:
        sizes = {"glyphs_1k5": 1500, "glyphs_4k5": 4500, "glyphs_12k": 12000, "glyphs_37k5": 37500}
        config.setdefault("data", {})["num_train"] = sizes.get(config["choices"]["pretraining"])
    summary = {"status": "finished", "config": config, "final": {}, "best": {}, "fewshot": {}}
    summary |= {"train_exaflops": value * 1e-6, "images_seen": 1000, "wall_time_s": 1.0}
    model = sorted((k, str(v)) for k, v in point.params if k != "seed")  # a model's, not a seed's
    flops = 1e6 * (1 + zlib.crc32(repr(model).encode()) % 1000)
    summary |= {"forward_flops": flops, "fewshot_history": []}
    for metric in metrics:
        if metric.startswith("final/"):  # final/val/top1: the tuning study's validation top-1
            summary["final"][metric.removeprefix("final/")] = value
        elif metric == "val/top1":  # the pilot's validations during training (its curves)
            validations = [{"step": 100, "top1": 0.0, "loss": 2.3}, {"step": 200, "top1": value}]
            summary["curves"] = {"train": [], "val": [v | {"loss": 1.0} for v in validations]}
        elif metric.startswith("fewshot/"):
            summary["fewshot"][metric] = value
            # two evaluations during training, the last one the final value (Figure 9)
            summary["fewshot_history"] = [{"step": 100, metric: 0.0}, {"step": 200, metric: value}]
        else:  # transfer/<name>/best_top1
            name = metric.split("/")[1]
            summary.setdefault("transfer", {})[name] = {
                "final": {"val/top1": value, "test/top1": value},
                "best": {"val/top1": value},
            }
            config["transfer"][name] = []
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text(json.dumps(summary))
