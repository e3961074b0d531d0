"""Evaluate any checkpoint with the configured few-shot evaluation, outside of training."""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from vitrepro.errors import ConfigError
from vitrepro.eval.callback import evaluate_fewshot
from vitrepro.models import build_model
from vitrepro.models.checkpoints import resolve_checkpoint


def _run_metadata(checkpoint: str) -> dict[str, Any] | None:
    """Model config, classes and image size stored in one of our Lightning checkpoints."""
    path = resolve_checkpoint(checkpoint, key="checkpoint")
    if path.suffix != ".ckpt":
        return None
    hparams = torch.load(path, map_location="cpu", weights_only=False).get("hyper_parameters", {})
    return hparams if hparams.get("model_config") else None


def evaluate_checkpoint(cfg: DictConfig) -> dict[str, float]:
    config = OmegaConf.to_container(cfg, resolve=True)
    evaluation = config.get("evaluation") or {}
    if "datasets" not in evaluation:
        raise ConfigError("evaluation", "none", "choose an evaluation, e.g. evaluation=fewshot")
    if not evaluation["datasets"]:
        raise ConfigError(
            "data.fewshot_datasets",
            "{}",
            "this data config names no few-shot sets; pick one that does",
        )
    metadata = _run_metadata(config["checkpoint"])
    if metadata:
        model_cfg, num_classes = metadata["model_config"], metadata["num_classes"]
        image_size = metadata["image_size"]
    else:
        model_cfg, num_classes = config["model"], config["num_classes"]
        image_size = config["data"]["image_size"]
        if not num_classes:
            raise ConfigError("num_classes", num_classes, "give the checkpoint's number of classes")
    model_cfg = {**model_cfg, "pretrained": config["checkpoint"], "pretrained_head": "features"}
    model = build_model(model_cfg, num_classes=num_classes, image_size=image_size)
    datasets = {
        name: {**dataset, "image_size": image_size}
        for name, dataset in evaluation["datasets"].items()
    }
    return evaluate_fewshot(
        model,
        datasets,
        evaluation["shots"],
        evaluation["seeds"],
        evaluation["l2_reg"],
        evaluation.get("batch_size", 256),
    )
