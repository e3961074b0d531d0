"""The paper-scale rehearsal (``rehearsal=true``): a full-profile run computed with tiny stand-ins
of its model and data, so that a study's whole path (grid, Table 3 epochs, Table 4 fine-tuning
steps and learning-rate grid, few-shot targets, data-parallel ranks, transfers, figure, table)
runs on a laptop CPU in seconds a run.

What the run computes is rewritten here once, from the resolved config; what it records (the
run's config in ``summary.json`` and the tracker, hence every study axis) stays the real one,
with the stand-in beside it. The rules, each keeping a structure of the real run:

- every dataset (pre-training, transfer, few-shot) is the embedded synthetic set under its own
  name, ``CLASSES`` classes, one image per ``DATA_SCALE`` real ones (at least one global batch),
  so a recipe's epochs (Table 3) keep their meaning and Figure 4's nested subsets their order;
- fine-tuning steps (Table 4) are divided by ``STEP_SCALE`` (at least 2 steps); warmup keeps
  its share of the run, and validation, checkpoint and few-shot intervals theirs, with at most
  ``MAX_LOOKS`` of each a run (a recipe that validates after each epoch validates by steps);
- images at a quarter of the recipe's resolution, rounded up to whole patches, so the patch
  grid and the fine-tuning resampling of position embeddings stay (smaller);
- widths divided by ``WIDTH_SCALE`` (heads by 4), depths and block counts kept;
- the global batch is ``BATCH``: 8 images a rank on 2 processes.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from vitrepro.data.shards.datamodule import parse_count
from vitrepro.training.budget import total_steps

DATA_SCALE = 1_000_000  # real images per stand-in image
STEP_SCALE = 1_000  # real fine-tuning steps per stand-in step
WIDTH_SCALE = 32  # ViT widths; ResNet channels by WIDTH_SCALE // 2
BATCH = 16
MAX_LOOKS = 10  # validations, checkpoints or few-shot evaluations a stand-in run at most makes
CLASSES = 10
GENERATOR = {  # the embedded motif set's defaults (conf/data/synthetic.yaml)
    "num_glyphs": 16,
    "glyphs_per_class": 2,
    "num_distractors": 1,
    "num_distractor_glyphs": 16,
    "glyph_scale": [0.3, 0.45],
    "max_rotation_deg": 15.0,
    "noise_std": 0.05,
}


def computed(config: dict[str, Any]) -> dict[str, Any]:
    """What a run with this resolved config computes: its stand-in when ``rehearsal=true``,
    else the config itself."""
    return stand_in(config) if config.get("rehearsal") else config


def stand_in(config: dict[str, Any]) -> dict[str, Any]:
    """The config a rehearsal computes: ``config`` with its model, data and schedule shrunk
    by the rules of this module (``config`` itself is left as it is)."""
    config = copy.deepcopy(config)
    recipe, data, model = config["recipe"], config["data"], config["model"]
    real_images = parse_count(data.get("subset")) or data.get("num_train") or BATCH * DATA_SCALE
    real_steps = total_steps(recipe, real_images)
    patch = model.get("patch_size") if model.get("arch") in ("vit", "hybrid") else None
    size = _image_size(recipe.get("resolution") or data.get("image_size") or 224, patch)
    fewshot = data.get("fewshot_datasets") or {}
    config["data"] = _synthetic(data, size, _images(real_images), data.get("task") or "pretrain")
    shots = max((config.get("evaluation") or {}).get("shots") or [1])
    config["data"]["fewshot_datasets"] = {
        name: _synthetic(target, size, CLASSES * shots, "transfer")
        for name, target in fewshot.items()
    }
    config["model"] = _small_model(model)
    if recipe.get("steps"):
        recipe["steps"] = max(2, recipe["steps"] // STEP_SCALE)
    elif recipe.get("steps_scaling"):  # the real run's steps, shrunk as a fixed count
        recipe["steps"], recipe["steps_scaling"] = max(2, real_steps // STEP_SCALE), None
    recipe["global_batch_size"], recipe["per_device_batch_size"] = BATCH, None
    recipe["resolution"] = size
    steps = total_steps(recipe, config["data"]["num_train"])
    share = steps / max(1, real_steps)  # intervals keep their share of the run
    schedule = recipe.get("schedule") or {}
    if schedule.get("warmup_steps"):
        schedule["warmup_steps"] = min(steps - 1, round(schedule["warmup_steps"] * share))
    least = math.ceil(steps / MAX_LOOKS)
    recipe["eval_every_steps"] = max(least, round((recipe.get("eval_every_steps") or 0) * share))
    if recipe.get("checkpoint_every_steps"):
        recipe["checkpoint_every_steps"] = max(
            least, round(recipe["checkpoint_every_steps"] * share)
        )
    evaluation = config.get("evaluation") or {}
    if evaluation.get("every_n_steps"):
        evaluation["every_n_steps"] = max(least, round(evaluation["every_n_steps"] * share))
    if evaluation.get("datasets") is not None:
        evaluation["datasets"] = config["data"]["fewshot_datasets"]
    return config


def _images(real: int) -> int:
    return max(BATCH, round(real / DATA_SCALE))


def _image_size(resolution: int, patch: int | None) -> int:
    side = max(8, resolution // 4)
    return math.ceil(side / patch) * patch if patch else side


def _synthetic(data: dict[str, Any], size: int, num_train: int, task: str) -> dict[str, Any]:
    """The embedded synthetic set in place of ``data``, under its name (few-shot targets and
    transfer results are keyed by it), with its held-out test split when it has one."""
    return {
        "format": "synthetic",
        "name": data.get("name", "synthetic"),
        "num_classes": CLASSES,
        "image_size": size,
        "num_train": max(num_train, 4 * BATCH) if task == "transfer" else num_train,
        "num_val": 2 * BATCH,
        "num_test": 4 * BATCH if data.get("num_test") or data.get("minival_fraction") else 0,
        "task": task,
        "seed": data.get("seed") or 0,
        "generator": GENERATOR,
        "finetune_steps": data.get("finetune_steps"),
    }


def _small_model(model: dict[str, Any]) -> dict[str, Any]:
    """Widths divided, depths and block counts kept; every width still a multiple of its heads
    and norm groups."""
    model = dict(model)
    if model.get("hidden_size"):
        heads = max(1, model["num_heads"] // 4)
        width = max(heads, model["hidden_size"] // WIDTH_SCALE // heads * heads)
        model |= {"hidden_size": width, "num_heads": heads}
        model["mlp_size"] = max(4, model["mlp_size"] // WIDTH_SCALE)
        if model.get("representation_size"):
            model["representation_size"] = width
    for prefix in ("", "backbone_"):
        if model.get(f"{prefix}channels"):
            scale = WIDTH_SCALE // 2
            model[f"{prefix}channels"] = [max(16, c // scale) for c in model[f"{prefix}channels"]]
            model[f"{prefix}stem_channels"] = 4
            model[f"{prefix}norm_groups"] = 4
    return model
