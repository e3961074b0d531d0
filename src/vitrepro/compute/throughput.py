"""Training throughput in every run: images/s, achieved TFLOP/s and, on GPUs, model FLOPs
utilisation, logged every ``log_every_n_steps`` and summarised for ``summary.json``.

Training FLOPs per image are 3 x the forward FLOPs (forward + backward, Table 6's accounting).
Intervals are timed on the host without a device synchronisation per step (Lightning's
``ThroughputMonitor`` synchronises every batch, which costs a few percent on a GPU); over an
interval of many steps the queue of pending kernels is a small part of the time.
"""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
import torch

from vitrepro.compute.peak import peak_flops


class Throughput(pl.Callback):
    """``throughput/images_per_s``, ``throughput/tflops_per_s`` and ``throughput/mfu`` (GPUs)."""

    def __init__(self, images_per_step: int, forward_flops: float) -> None:
        self.images_per_step = images_per_step
        self.forward_flops = forward_flops
        self.flops_per_image = 3.0 * forward_flops
        self.summary: dict[str, float] = {}
        self._peak: float | None = None

    def _rates(self, steps: int, seconds: float) -> dict[str, float]:
        images_per_s = steps * self.images_per_step / max(seconds, 1e-9)
        flops = images_per_s * self.flops_per_image
        rates = {"images_per_s": images_per_s, "tflops_per_s": flops / 1e12}
        if self._peak:
            rates["mfu"] = flops / self._peak
        return rates

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._peak = peak_flops(pl_module.device, str(trainer.precision))
        self._start = self._mark = time.perf_counter()
        self._first = self._last = trainer.global_step

    def on_train_batch_end(self, trainer: pl.Trainer, *_: Any) -> None:
        step = trainer.global_step
        if step == self._last or step % max(1, trainer.log_every_n_steps):
            return
        now = time.perf_counter()
        rates = self._rates(step - self._last, now - self._mark)
        for logger in trainer.loggers:  # at the interval's last batch, as Lightning logs steps
            logger.log_metrics({f"throughput/{k}": v for k, v in rates.items()}, step=step - 1)
        self._mark, self._last = now, step

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The whole fit of this process (validation and few-shot evaluations included)."""
        seconds = time.perf_counter() - self._start
        self.summary = {
            **self._rates(trainer.global_step - self._first, seconds),
            "fit_seconds": seconds,
            "cpu_threads": torch.get_num_threads(),  # intra-op threads (performance.threads)
        }
