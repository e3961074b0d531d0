"""One validation pass over the composed config, before any data is read or model built.

Types and ranges of single keys are the schema's (``schema.py``); here are the rules that
span several keys, depend on this machine (its GPUs) or touch the filesystem. Each failure is
a ``ConfigError``: one line naming the key, the value and the fix.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from vitrepro.config.errors import ConfigError
from vitrepro.config.schema import RunConfig, check_types
from vitrepro.models import get_builder
from vitrepro.models.weight_files import verify_checkpoint
from vitrepro.training.budget import device_count, plan_batch


def _positive(key: str, value: Any) -> None:
    if value is None or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(key, value, "must be a positive number")


def check_model(model: dict[str, Any], data: dict[str, Any]) -> None:
    get_builder(model.get("arch"))
    if model.get("pretrained"):
        verify_checkpoint(model["pretrained"])  # weights-only: a refused file stops here
    heads, width = model.get("num_heads"), model.get("hidden_size")
    if isinstance(heads, int) and isinstance(width, int) and heads > 0 and width % heads:
        raise ConfigError(
            "model.num_heads",
            heads,
            f"does not divide model.hidden_size={width}; choose a head count that divides the "
            "hidden size (each head takes hidden_size / num_heads dimensions)",
        )
    for layers_key, channels_key in (
        ("layers", "channels"),
        ("backbone_layers", "backbone_channels"),
    ):
        layers, channels = model.get(layers_key), model.get(channels_key)
        if isinstance(layers, list) and isinstance(channels, list) and len(layers) > len(channels):
            raise ConfigError(
                f"model.{layers_key}",
                layers,
                f"has {len(layers)} stages but model.{channels_key}={channels} has "
                f"{len(channels)}; give every stage a width (extra widths are unused: R50+ViT "
                "takes R50's first three)",
            )
    patch = model.get("patch_size")
    if patch is not None and data["image_size"] % patch:
        raise ConfigError(
            "model.patch_size",
            patch,
            f"does not divide data.image_size={data['image_size']}; "
            "choose a patch size that divides the image size",
        )


def check_data(
    data: dict[str, Any], key: str = "data", fewshot: bool = True, paths: bool = True
) -> None:
    """``key`` is where ``data`` sits in the config; few-shot targets (checked the same way)
    only matter when few-shot evaluation is on; ``paths=False`` skips the dataset locations.
    Types and ranges of each key are the schema's (``schema.Data``, few-shot targets too)."""
    # Only sharded datasets may leave num_classes to their manifest.
    if data.get("num_classes") is None and "root" not in data:
        _positive(f"{key}.num_classes", data.get("num_classes"))
    if "generator" in data:  # the synthetic data: a task may use half of all glyph sets
        generator = data["generator"] or {}
        sets = math.comb(generator.get("num_glyphs", 16), generator.get("glyphs_per_class", 2))
        if generator.get("relational"):  # two classes (row, column) per glyph pair
            sets *= 2
        if data["num_classes"] > sets // 2:
            raise ConfigError(
                f"{key}.num_classes",
                data["num_classes"],
                f"at most {sets // 2} with {key}.generator.num_glyphs="
                f"{generator.get('num_glyphs', 16)}; raise num_glyphs",
            )
        if generator.get("version") == 2:
            _check_glyph_layout(data, generator, key)
    if "root" in data and paths:
        _check_location(data, key)
    for name, target in (data.get("fewshot_datasets") or {}).items() if fewshot else ():
        check_data(target, f"{key}.fewshot_datasets.{name}", paths=paths)


def _check_glyph_layout(data: dict[str, Any], generator: dict[str, Any], key: str) -> None:
    """Generator v2's placement (``data/generators/glyph_pairs.py``): every glyph in a cell of
    its own, the relational variant on 2 x 2 cells with two arrangements per pair, and at least
    one pair per two glyphs so that every glyph belongs to a class."""
    cells, distractors = generator.get("cells", 2), generator.get("num_distractors", 1)
    if 2 + distractors > cells**2:
        raise ConfigError(
            f"{key}.generator.num_distractors",
            distractors,
            f"2 class glyphs and {distractors} distractors need {2 + distractors} cells, "
            f"{key}.generator.cells={cells} gives {cells**2}; lower it or raise cells",
        )
    relational = bool(generator.get("relational"))
    if relational and cells != 2:
        raise ConfigError(f"{key}.generator.cells", cells, "the relational variant needs 2")
    if relational and data["num_classes"] % 2:
        raise ConfigError(
            f"{key}.num_classes", data["num_classes"], "relational classes come in pairs: even"
        )
    pairs = data["num_classes"] // 2 if relational else data["num_classes"]
    glyphs = generator.get("num_glyphs", 10)
    if pairs < glyphs // 2:
        raise ConfigError(
            f"{key}.num_classes",
            data["num_classes"],
            f"at least {glyphs // 2} glyph pairs so that all {key}.generator.num_glyphs="
            f"{glyphs} glyphs belong to a class; raise num_classes or lower num_glyphs",
        )


def _check_location(data: dict[str, Any], key: str) -> None:
    root = Path(str(data["root"]))
    if not root.is_dir():
        raise ConfigError(
            f"{key}.root",
            root,
            "dataset directory not found; set paths.data_root=DIR (the folder holding all "
            f"datasets) or {key}.root=DIR",
        )
    for split in ("train_dir", "val_dir"):
        if split in data and not (root / data[split]).is_dir():
            raise ConfigError(
                f"{key}.{split}", data[split], f"no such folder under {root}; set {key}.{split}"
            )
    _check_class_folders(data, root, key)


def _check_class_folders(data: dict[str, Any], root: Path, key: str) -> None:
    """A class-per-folder training set must have num_classes class folders."""
    train = root / data.get("train_dir", "train")
    if data.get("format") != "image_folder" or "train_dir" not in data:
        return  # shards carry a manifest, checked when they are opened
    found = sum(1 for p in train.iterdir() if p.is_dir())
    if found != data.get("num_classes"):
        raise ConfigError(
            f"{key}.num_classes",
            data.get("num_classes"),
            f"{train} has {found} class folders; set {key}.num_classes={found} or point "
            f"{key}.root at the full dataset",
        )


def check_recipe(recipe: dict[str, Any]) -> None:
    if not recipe.get("steps") and not recipe.get("epochs") and not recipe.get("steps_scaling"):
        raise ConfigError(
            "recipe.steps", recipe.get("steps"), "set recipe.steps, steps_scaling or epochs"
        )
    warmup, steps = (recipe.get("schedule") or {}).get("warmup_steps"), recipe.get("steps")
    if isinstance(warmup, int) and isinstance(steps, int) and warmup > steps:
        raise ConfigError(
            "recipe.schedule.warmup_steps",
            warmup,
            f"is longer than recipe.steps={steps}; shorten the warmup or train longer",
        )


def check_trainer(trainer: dict[str, Any]) -> None:
    """What this machine can run: its CUDA devices (counts and types are the schema's)."""
    accelerator = str(trainer.get("accelerator", "auto"))
    devices = trainer.get("devices", 1)
    cuda = torch.cuda.device_count()
    if accelerator in ("gpu", "cuda") and cuda == 0:
        raise ConfigError(
            "trainer.accelerator",
            accelerator,
            "this machine has no CUDA devices; run on a GPU node or set trainer.accelerator=cpu",
        )
    wanted = device_count(trainer)
    if accelerator in ("gpu", "cuda", "auto") and cuda and wanted > cuda:
        raise ConfigError(
            "trainer.devices",
            devices,
            f"this machine has {cuda} CUDA device(s); set trainer.devices={cuda} or fewer "
            "(add nodes with trainer.num_nodes)",
        )
    if accelerator == "auto" and cuda == 0 and wanted > 1:
        raise ConfigError(
            "trainer.devices",
            devices,
            "this machine has no CUDA devices; run on a GPU node, or set trainer.accelerator=cpu "
            "to start that many CPU processes",
        )


def check_callbacks(callbacks: dict[str, Any] | None) -> None:
    """Each ``callbacks`` entry names a class that imports (else Hydra fails mid-start-up)."""
    from hydra.utils import get_class

    for name, entry in (callbacks or {}).items():
        if not entry:
            continue
        target = entry.get("_target_")
        try:
            get_class(str(target))
        except Exception:  # Hydra's ImportError-like errors vary by version
            raise ConfigError(
                f"callbacks.{name}._target_", target, "no such class; give an importable path"
            ) from None


def check_shots(evaluation: dict[str, Any] | None, data: dict[str, Any]) -> None:
    """Few-shot evaluation draws ``max(shots)`` examples of every class from each target's
    pool; a generated pool holds ``num_train // num_classes`` a class (its labels cycle through
    the classes), known before any compute. A dataset on disk is counted when it is read."""
    shots = max((evaluation or {}).get("shots") or [0])
    for name, target in (data.get("fewshot_datasets") or {}).items():
        generated = target.get("format") == "synthetic" or "generator" in target
        size, classes = target.get("num_train"), target.get("num_classes")
        if not (generated and isinstance(size, int) and isinstance(classes, int) and classes):
            continue
        if shots > size // classes:
            key = f"data.fewshot_datasets.{name}.num_train"
            raise ConfigError(
                "evaluation.shots",
                (evaluation or {}).get("shots"),
                f"{shots} shots a class, but {key}={size} holds {size // classes} a class "
                f"({classes} classes); lower the shots or raise {key}",
            )


def validate_config(cfg: dict[str, Any], paths: bool = True, devices: bool = True) -> None:
    """Raise ``ConfigError`` for the first user mistake in a resolved run config. Planning a
    study for another machine: ``paths=False`` and ``devices=False`` skip what only that
    machine can answer (dataset locations, its GPUs)."""
    check_types(cfg, RunConfig)
    if devices:
        check_trainer(cfg["trainer"])
    check_data(cfg["data"], fewshot=bool(cfg.get("evaluation")), paths=paths)
    check_model(cfg["model"], cfg["data"])
    check_recipe(cfg["recipe"])
    check_callbacks(cfg.get("callbacks"))
    check_shots(cfg.get("evaluation"), cfg["data"])
    plan_batch(cfg["recipe"], cfg["trainer"])
