"""Training-step speed and model FLOPs utilisation.

The project's path, ``LitClassifier`` in a real ``pl.Trainer`` (no logger, checkpointing or
progress bar), against a bare PyTorch loop with the same model class and initial weights, the
same batch (made once, on the device), optimiser construction (``vitrepro.training.module.
build_optimizer``: AdamW over the weight-decay groups, the per-step LR schedule), precision
(``torch.autocast`` bf16 for ``bf16-mixed``) and gradient clipping. Both read the batch through
the same ``DataLoader`` and time the same optimizer steps after warm-up, the device synchronised
at every step boundary; a side's speed is its median step, and repetitions alternate which side
runs first, after a garbage collection.

MFU = 3 x forward FLOPs per image (``vitrepro.compute.flops.forward_flops``, Table 6's accounting)
x images/s / the dense matmul FLOP/s this machine measured at the same dtype (``matmul``).
"""

from __future__ import annotations

import gc
import itertools
import logging
import statistics
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from vitrepro.compute.flops import forward_flops
from vitrepro.compute.peak import synchronize
from vitrepro.compute.performance import DEFAULTS, keep_freed_memory, prepare_images, prepare_model
from vitrepro.files import CONF_DIR
from vitrepro.models import build_model
from vitrepro.training.guards import StopOnNonFiniteLoss
from vitrepro.training.module import LitClassifier, build_optimizer

DTYPES = {"32-true": torch.float32, "bf16-mixed": torch.bfloat16}


@dataclass(frozen=True)
class TrainingCase:
    """One model, batch and precision to time; ``model``/``recipe`` are Hydra options."""

    name: str
    model: str
    recipe: str
    image_size: int
    num_classes: int
    batch: int
    precision: str  # "32-true" | "bf16-mixed", as trainer.precision
    warmup_steps: int
    steps: int
    compile: bool = False
    overrides: tuple[str, ...] = field(default_factory=tuple)
    mfu_goal: float | None = None  # the goal for this case, if it sets one
    max_repeats: int | None = None  # fewer repetitions where one costs a compilation


def compose_case(case: TrainingCase) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The resolved ``model``, ``recipe`` and ``performance`` configs, composed as
    ``src/train.py`` would."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    overrides = [f"model={case.model}", f"recipe={case.recipe}", *case.overrides]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3", job_name="bench"):
        cfg = compose(config_name="train", overrides=overrides)
    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    recipe = OmegaConf.to_container(cfg.recipe, resolve=True)
    if recipe.get("loss", "softmax_xent") != "softmax_xent":
        raise ValueError("the bare loop implements recipe.loss=softmax_xent only")
    return model_cfg, recipe, OmegaConf.to_container(cfg.performance, resolve=True)


class RepeatBatch(Dataset):
    """The same (images, labels) batch, ``length`` times: no data cost on either side."""

    def __init__(self, batch: tuple[torch.Tensor, torch.Tensor], length: int) -> None:
        self.batch, self.length = batch, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.batch


class StepTimer(pl.Callback):
    """Seconds from the start of optimizer step ``warmup`` to the end of step
    ``warmup + steps - 1`` (device synchronised at both ends), and each timed step's seconds."""

    def __init__(self, warmup: int, steps: int, device: torch.device) -> None:
        self.warmup, self.steps, self.device = warmup, steps, device
        self.start: float | None = None
        self.seconds: float | None = None
        self.marks: list[float] = []

    def on_train_batch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        if self.warmup <= trainer.global_step < self.warmup + self.steps:
            synchronize(self.device)
            self.marks.append(time.perf_counter())
            if self.start is None:
                self.start = self.marks[0]

    def on_train_batch_end(self, trainer: pl.Trainer, *_: Any) -> None:
        if trainer.global_step == self.warmup + self.steps and self.start is not None:
            synchronize(self.device)
            self.marks.append(time.perf_counter())
            self.seconds = self.marks[-1] - self.start

    @property
    def step_seconds(self) -> list[float]:
        return [b - a for a, b in itertools.pairwise(self.marks)]


def _fresh_model(
    case: TrainingCase, model_cfg: dict[str, Any], performance: dict[str, Any] | None = None
) -> torch.nn.Module:
    torch.manual_seed(0)  # the same initial weights on both sides
    model = build_model(model_cfg, case.num_classes, case.image_size)
    switches = {**DEFAULTS, **(performance or {})}
    keep_freed_memory(bool(switches["keep_freed_memory"]))
    return prepare_model(model, switches["channels_last"], switches["fused_attention"])


def fixed_batch(case: TrainingCase, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The one random batch every timed step of a case trains on."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(case.batch, 3, case.image_size, case.image_size, generator=generator)
    labels = torch.randint(0, case.num_classes, (case.batch,), generator=generator)
    return images.to(device), labels.to(device)


def _loader(batch: tuple[torch.Tensor, torch.Tensor], case: TrainingCase) -> DataLoader:
    return DataLoader(RepeatBatch(batch, case.warmup_steps + case.steps), batch_size=None)


def bare_loop_seconds(
    case: TrainingCase,
    model_cfg: dict[str, Any],
    recipe: dict[str, Any],
    batch: tuple[torch.Tensor, torch.Tensor],
    device: torch.device,
    performance: dict[str, Any] | None = None,
    step_seconds: list[float] | None = None,
) -> tuple[float, torch.nn.Module]:
    """The baseline: a plain PyTorch training loop; seconds for ``case.steps`` timed steps, and
    the trained model. Each timed step's seconds are appended to ``step_seconds``."""
    model = _fresh_model(case, model_cfg, performance).to(device)
    channels_last = bool((performance or {}).get("channels_last"))
    model.train()
    forward = torch.compile(model) if case.compile else model
    optimizer, scheduler = build_optimizer(model, recipe, case.warmup_steps + case.steps)
    clip = recipe.get("grad_clip_norm")
    smoothing = recipe.get("label_smoothing", 0.0)
    bf16 = case.precision == "bf16-mixed"
    marks: list[float] = []
    for step, (images, labels) in enumerate(_loader(batch, case)):
        if step >= case.warmup_steps:
            synchronize(device)
            marks.append(time.perf_counter())
        optimizer.zero_grad(set_to_none=True)
        images = prepare_images(images, channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(forward(images), labels, label_smoothing=smoothing)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        scheduler.step()
    synchronize(device)
    marks.append(time.perf_counter())
    if step_seconds is not None:
        step_seconds.extend(b - a for a, b in itertools.pairwise(marks))
    return marks[-1] - marks[0], model


def lightning_seconds(
    case: TrainingCase,
    model_cfg: dict[str, Any],
    recipe: dict[str, Any],
    batch: tuple[torch.Tensor, torch.Tensor],
    device: torch.device,
    performance: dict[str, Any] | None = None,
    step_seconds: list[float] | None = None,
) -> tuple[float, torch.nn.Module]:
    """The project's path: ``LitClassifier`` (its loss, logging, optimiser and schedule) with
    the non-finite-loss guard of ``vitrepro.training.run`` in a ``pl.Trainer``; seconds and
    ``step_seconds`` as the bare loop's, and the trained model."""
    module = LitClassifier(
        _fresh_model(case, model_cfg, performance),
        recipe,
        case.num_classes,
        case.warmup_steps + case.steps,
        model_config=model_cfg,
        image_size=case.image_size,
        compile_model=case.compile,
        channels_last=bool((performance or {}).get("channels_last")),
    )
    timer = StepTimer(case.warmup_steps, case.steps, device)
    trainer = pl.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        precision=case.precision,
        max_steps=case.warmup_steps + case.steps,
        gradient_clip_val=recipe.get("grad_clip_norm"),
        gradient_clip_algorithm="norm",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[timer, StopOnNonFiniteLoss()],
    )
    trainer.fit(module, train_dataloaders=_loader(batch, case))
    if timer.seconds is None:
        raise RuntimeError(f"{case.name}: the Lightning run ended before the timed steps")
    if step_seconds is not None:
        step_seconds.extend(timer.step_seconds)
    return timer.seconds, module.model


def quiet_lightning() -> None:
    """No per-fit banners or advice about workers: the bench prints its own table."""
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for message in (
        ".*does not have many workers.*",
        ".*smaller than the logging interval.*",
        ".*GPU available but not used.*",
        ".*`validation_step` but have no `val_dataloader`.*",
        ".*LeafSpec.*is deprecated.*",
    ):
        warnings.filterwarnings("ignore", message)


def measure_training(
    case: TrainingCase, device: torch.device, repeats: int, matmul_tflops: float
) -> dict[str, Any]:
    """Images/s of both sides, the Lightning/bare time ratio and MFU of both against
    ``matmul_tflops``, all from step times: a repeat's step time is the median of its timed
    steps (one step stalled by the host does not move it), images/s is the batch over the
    median of those across ``repeats``, and the ratio is the median of per-repeat ratios."""
    quiet_lightning()
    repeats = min(repeats, case.max_repeats or repeats)
    model_cfg, recipe, performance = compose_case(case)
    with torch.device("meta"):
        flops = forward_flops(_fresh_model(case, model_cfg), case.image_size)
    batch = fixed_batch(case, device)
    seconds: dict[str, list[float]] = {"bare": [], "lightning": []}
    step_s: dict[str, list[float]] = {"bare": [], "lightning": []}  # per repeat, median step
    gpu_peak = {"bare": 0, "lightning": 0}
    runs = [("bare", bare_loop_seconds), ("lightning", lightning_seconds)]
    for repeat in range(repeats):
        for side, run in runs if repeat % 2 == 0 else runs[::-1]:
            # A Trainer and its module form reference cycles: without a collection the previous
            # side's model and optimizer state stay on the heap, and the next side's steps pay
            # page faults for fresh memory (measured: 200k faults, ~1 s, in one ViT-B/16 step).
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            steps: list[float] = []
            seconds[side].append(run(case, model_cfg, recipe, batch, device, performance, steps)[0])
            step_s[side].append(statistics.median(steps))
            if device.type == "cuda":
                gpu_peak[side] = max(gpu_peak[side], torch.cuda.max_memory_allocated(device))
    rate = {side: case.batch / statistics.median(values) for side, values in step_s.items()}
    time_ratios = [
        light / bare for light, bare in zip(step_s["lightning"], step_s["bare"], strict=True)
    ]
    achieved = {side: 3 * flops * r / 1e12 for side, r in rate.items()}
    result = {
        "case": asdict(case),
        "model_name": model_cfg.get("name"),
        "forward_flops": flops,
        "repeats": repeats,
        "optimizer": recipe["optimizer"]["_target_"],
        "grad_clip_norm": recipe.get("grad_clip_norm"),
        "bare_images_per_s": round(rate["bare"], 3),
        "lightning_images_per_s": round(rate["lightning"], 3),
        "bare_s_runs": [round(s, 4) for s in seconds["bare"]],
        "lightning_s_runs": [round(s, 4) for s in seconds["lightning"]],
        "bare_step_s_runs": [round(s, 4) for s in step_s["bare"]],
        "lightning_step_s_runs": [round(s, 4) for s in step_s["lightning"]],
        "time_ratio_lightning_vs_bare": round(statistics.median(time_ratios), 4),
        "time_ratio_runs": [round(r, 4) for r in time_ratios],
        "matmul_tflops": matmul_tflops,
        "lightning_tflops": round(achieved["lightning"], 4),
        "bare_tflops": round(achieved["bare"], 4),
        "mfu": round(achieved["lightning"] / matmul_tflops, 4),
        "mfu_bare": round(achieved["bare"] / matmul_tflops, 4),
    }
    if device.type == "cuda":
        result["gpu_peak_mib"] = {side: round(b / 2**20, 1) for side, b in gpu_peak.items()}
    return result
