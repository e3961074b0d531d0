"""How a recipe's global batch and length map onto devices, accumulation and optimizer steps.

The paper fixes the global batch (4096 for pre-training, 512 for fine-tuning; Section 4.1) and
counts schedules in optimizer steps (Table 3's warmup, Table 4's steps). Here the per-device
batch, devices x nodes and gradient accumulation are derived so the global batch holds on any
number of devices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from vitrepro.config.errors import ConfigError


@dataclass(frozen=True)
class BatchPlan:
    global_batch: int
    per_device: int
    accumulate: int
    world_size: int


def device_count(trainer_cfg: dict[str, Any]) -> int:
    """Processes per node that Lightning will start for this trainer config."""
    devices = trainer_cfg.get("devices", 1)
    if isinstance(devices, (list, tuple)):
        return len(devices)
    if devices in ("auto", -1, "-1"):
        accelerator = trainer_cfg.get("accelerator", "auto")
        use_cuda = accelerator in ("gpu", "cuda") or (
            accelerator == "auto" and torch.cuda.is_available()
        )
        return torch.cuda.device_count() if use_cuda else 1
    return int(devices)


def plan_batch(recipe: dict[str, Any], trainer_cfg: dict[str, Any]) -> BatchPlan:
    """Split ``recipe.global_batch_size`` over devices x nodes, accumulating if needed."""
    global_batch = int(recipe["global_batch_size"])
    world = device_count(trainer_cfg) * int(trainer_cfg.get("num_nodes", 1))
    if global_batch <= 0:
        raise ConfigError("recipe.global_batch_size", global_batch, "must be a positive integer")
    per_device = recipe.get("per_device_batch_size") or global_batch // world
    if per_device <= 0 or global_batch % (per_device * world):
        raise ConfigError(
            "recipe.global_batch_size",
            global_batch,
            f"not divisible by {world} device(s) x recipe.per_device_batch_size={per_device}; "
            "choose a per-device batch that divides global_batch_size / (devices x nodes)",
        )
    return BatchPlan(global_batch, int(per_device), global_batch // (per_device * world), world)


def scaled_steps(scaling: dict[str, Any], num_train_samples: int) -> int:
    """Table 3's budget rule, scaled down: fewer epochs on larger sets.

    Table 3 trains ImageNet (1.3M images) for 300 epochs, ImageNet-21k (14M) for 90 and
    JFT-300M (303M) for 7: the images seen grow as the 0.30 power of the set's size (least
    squares over the three). ``scaling`` anchors the rule at one size: ``steps`` optimizer
    steps at ``at_num_train`` images, ``steps x (n / at_num_train) ** exponent`` at n.
    """
    ratio = num_train_samples / float(scaling["at_num_train"])
    return max(1, round(int(scaling["steps"]) * ratio ** float(scaling["exponent"])))


def total_steps(recipe: dict[str, Any], num_train_samples: int) -> int:
    """Optimizer steps: ``recipe.steps`` if given, else ``recipe.steps_scaling``'s rule for the
    training set's size (``scaled_steps``), else ``recipe.epochs`` over the training set."""
    if recipe.get("steps"):
        return int(recipe["steps"])
    if recipe.get("steps_scaling"):
        return scaled_steps(recipe["steps_scaling"], num_train_samples)
    return math.ceil(float(recipe["epochs"]) * num_train_samples / int(recipe["global_batch_size"]))
