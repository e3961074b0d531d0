"""The LightningModule: loss, metrics, optimiser and schedule for image classification."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from torch import nn
from torchmetrics import MaxMetric, MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from vitrepro.compute.performance import prepare_images
from vitrepro.config.plain_types import plain
from vitrepro.training.schedule import warmup_then_decay, weight_decay_groups


class LitClassifier(pl.LightningModule):
    """Trains any ``Classifier`` with the recipe's loss, optimiser and schedule.

    ``loss``: ``softmax_xent`` (with optional label smoothing) or ``sigmoid_xent`` (per-class
    binary cross-entropy, which the released ImageNet-21k models used; Appendix B.1).
    """

    def __init__(
        self,
        model: nn.Module,
        recipe: dict[str, Any],
        num_classes: int,
        total_steps: int,
        model_config: dict[str, Any] | None = None,
        image_size: int | None = None,
        compile_model: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        # Kept out of the module tree, so checkpoints hold the plain model's keys.
        self.__dict__["_forward"] = torch.compile(model) if compile_model else model
        self.recipe = recipe
        self.total_steps = total_steps
        self.channels_last = channels_last
        # model_config and image_size let src/evaluate.py rebuild the model from a checkpoint;
        # plain types only, so that checkpoints load with the weights-only unpickler.
        hparams = {
            "recipe": recipe,
            "num_classes": num_classes,
            "total_steps": total_steps,
            "model_config": model_config,
            "image_size": image_size,
            "compile_model": compile_model,
            "channels_last": channels_last,
        }
        self.save_hyperparameters(plain(hparams))
        self.val_top1 = MulticlassAccuracy(num_classes, top_k=1, average="micro")
        self.val_top5 = MulticlassAccuracy(num_classes, top_k=min(5, num_classes), average="micro")
        self.val_loss = MeanMetric()
        self.val_real_top1 = MeanMetric()  # ImageNet ReaL, when the data provides its labels
        self.val_top1_best = MaxMetric()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self._forward(prepare_images(images, self.channels_last))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        kind = self.recipe.get("loss", "softmax_xent")
        if kind == "softmax_xent":
            return F.cross_entropy(
                logits, labels, label_smoothing=self.recipe.get("label_smoothing", 0.0)
            )
        if kind == "sigmoid_xent":
            targets = F.one_hot(labels, logits.shape[-1]).to(logits.dtype)
            # Summed over classes as in the official code, averaged over the batch.
            return F.binary_cross_entropy_with_logits(logits, targets, reduction="sum") / len(
                labels
            )
        raise ValueError(f"recipe.loss must be softmax_xent or sigmoid_xent, got {kind!r}")

    def training_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int
    ) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        loss = self.loss(logits, labels)
        # Straight to the loggers, at the steps and with the values Lightning's own logging
        # would write (the step's loss and top-1 every log_every_n_steps). ``self.log`` cost
        # about 1.8 ms a call on a CPU core in every step, logged or not (it moves its result
        # holder to the device each time): 5% of a tiny study model's step.
        trainer = self.trainer
        every, accumulate = trainer.log_every_n_steps, trainer.accumulate_grad_batches
        steps_now = (batch_idx + 1) % accumulate == 0 or trainer.is_last_batch
        if self.loggers and every and steps_now and (self.global_step + 1) % every == 0:
            top1 = (logits.argmax(-1) == labels).float().mean()
            metrics = {"train/loss": float(loss.detach()), "train/top1": float(top1)}
            for logger in self.loggers:
                logger.log_metrics(metrics, step=self.global_step)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        images, labels = batch[:2]
        logits = self(images)
        if len(batch) == 3:  # ReaL: top-1 is right if it is in the image's re-assessed label set
            real = batch[2]
            rated = real.any(1)
            hits = real.gather(1, logits.argmax(-1, keepdim=True)).squeeze(1)
            if rated.any():
                self.val_real_top1.update(hits[rated].float())
        self.val_loss.update(self.loss(logits, labels), weight=len(labels))
        self.val_top1.update(logits, labels)
        self.val_top5.update(logits, labels)

    def test_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        """The held-out test split: the same measurement as validation, logged as ``test/``."""
        self.validation_step(batch, batch_idx)

    def _evaluation_metrics(self, prefix: str) -> dict[str, torch.Tensor]:
        metrics = {
            f"{prefix}/loss": self.val_loss.compute(),
            f"{prefix}/top1": self.val_top1.compute(),
            f"{prefix}/top5": self.val_top5.compute(),
        }
        if self.val_real_top1.update_count:
            metrics[f"{prefix}/real_top1"] = self.val_real_top1.compute()
        return metrics

    def _reset_evaluation(self) -> None:
        for metric in (self.val_loss, self.val_top1, self.val_top5, self.val_real_top1):
            metric.reset()

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:  # two batches of an untrained model: not a result
            self._reset_evaluation()
            return
        metrics = self._evaluation_metrics("val")
        self.val_top1_best.update(metrics["val/top1"])
        self.log_dict({**metrics, "val/top1_best": self.val_top1_best.compute()}, prog_bar=True)
        self._reset_evaluation()

    def on_test_epoch_end(self) -> None:
        self.log_dict(self._evaluation_metrics("test"))
        self._reset_evaluation()

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer, scheduler = build_optimizer(self.model, self.recipe, self.total_steps)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def build_optimizer(
    model: nn.Module, recipe: dict[str, Any], total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """The recipe's optimiser over the weight-decay groups, and its per-step LR schedule.

    One construction for ``LitClassifier`` and for the bare PyTorch loop that ``make bench``
    compares it with (``vitrepro.bench.training``).
    """
    opt_cfg = recipe["optimizer"]
    groups = weight_decay_groups(model, opt_cfg.get("weight_decay", 0.0))
    optimizer = instantiate(opt_cfg)(groups)
    schedule = recipe["schedule"]
    factor = warmup_then_decay(
        total_steps,
        schedule["warmup_steps"],
        schedule["decay"],
        schedule.get("end_factor", 0.0),
    )
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
