"""Linear few-shot evaluation as a Lightning callback: every N steps and at the end of training."""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info
from torch.utils.data import DataLoader, Dataset, IterableDataset

from vitrepro.data.build import build_datamodule
from vitrepro.evaluation.fewshot import fewshot_accuracies


@torch.no_grad()
def extract_features(
    model: torch.nn.Module,
    dataset: Dataset,
    batch_size: int,
    device: torch.device,
    num_workers: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen representation (``model.features``: after pre-logits) of a whole dataset;
    ``num_workers`` decode map-style datasets in parallel (a stream reads in one process: its
    order picks the support set)."""
    was_training = model.training
    model.eval()
    features, labels = [], []
    workers = 0 if isinstance(dataset, IterableDataset) else num_workers
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    for images, targets in loader:
        features.append(model.features(images.to(device)).float().cpu())
        labels.append(torch.as_tensor(targets))
    model.train(was_training)
    return torch.cat(features), torch.cat(labels)


def evaluate_fewshot(
    model: torch.nn.Module,
    datasets: dict[str, Any],
    shots: list[int],
    seeds: int,
    l2_reg: float,
    batch_size: int = 256,
    device: torch.device | None = None,
) -> dict[str, float]:
    """``fewshot/<dataset>/<k>shot`` accuracies for every configured downstream dataset."""
    device = device or next(model.parameters()).device
    metrics = {}
    for name, datamodule_cfg in datasets.items():
        datamodule = build_datamodule(datamodule_cfg, batch_size)
        # Enough examples per class for a different support set per seed at the largest shot.
        pool_set, test_set = datamodule.evaluation_sets(per_class=max(shots) * seeds)
        started, workers = time.time(), getattr(datamodule, "num_workers", 0)
        rank_zero_info(f"few-shot {name}: extracting features ({workers} workers)")
        pool = extract_features(model, pool_set, batch_size, device, workers)
        test = extract_features(model, test_set, batch_size, device, workers)
        accuracies = fewshot_accuracies(
            *pool, *test, datamodule.num_classes, list(shots), seeds, l2_reg
        )
        rank_zero_info(
            f"few-shot {name}: {len(pool[1])} support and {len(test[1])} test images in "
            f"{time.time() - started:.1f} s: "
            + ", ".join(f"{k}-shot {acc:.4f}" for k, acc in accuracies.items())
        )
        metrics.update({f"fewshot/{name}/{k}shot": acc for k, acc in accuracies.items()})
    return metrics


class FewShotEvaluation(pl.Callback):
    """Runs ``evaluate_fewshot`` every ``every_n_steps`` optimizer steps (0: only at the end).

    ``history`` keeps every evaluation with its step (the curves of Figure 9); it is saved in
    checkpoints, so a resumed run keeps the evaluations made before the interruption.
    """

    def __init__(
        self,
        datasets: dict[str, Any],
        shots: list[int],
        seeds: int = 3,
        l2_reg: float = 1024.0,
        every_n_steps: int = 0,
        batch_size: int = 256,
    ) -> None:
        self.datasets, self.shots, self.seeds, self.l2_reg = datasets, shots, seeds, l2_reg
        self.every_n_steps, self.batch_size = every_n_steps, batch_size
        self.latest: dict[str, float] = {}
        self.history: list[dict[str, float]] = []
        self.seconds = 0.0  # this process's evaluations (vitrepro.tracking.phases)
        self._last_step = -1

    def _run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.global_step == self._last_step:
            return
        self._last_step, started = trainer.global_step, time.perf_counter()
        self.latest = evaluate_fewshot(
            pl_module.model,
            self.datasets,
            self.shots,
            self.seeds,
            self.l2_reg,
            self.batch_size,
            pl_module.device,
        )
        self.seconds += time.perf_counter() - started
        self.history.append({"step": trainer.global_step, **self.latest})
        for logger in trainer.loggers:
            logger.log_metrics(self.latest, step=trainer.global_step)

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *_: Any
    ) -> None:
        step = trainer.global_step
        if (
            self.every_n_steps
            and step
            and step % self.every_n_steps == 0
            and step < trainer.max_steps
        ):
            self._run(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._run(trainer, pl_module)
