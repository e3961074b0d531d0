"""Evaluate any checkpoint with the configured few-shot evaluation, outside of training."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from vitrepro.config.errors import ConfigError
from vitrepro.evaluation.callback import evaluate_fewshot
from vitrepro.models.build import model_from_checkpoint


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
    model, image_size = model_from_checkpoint(
        config["checkpoint"], config["model"], config["num_classes"], config["data"]["image_size"]
    )
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
