"""One tracked training run, in one straight path:

validate config -> datamodule -> model -> LightningModule -> loggers -> Trainer -> fit ->
final evaluation -> ``summary.json`` in the run directory and the same record in the tracker.
"""

from __future__ import annotations

import atexit
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from vitrepro.compute.flops import forward_flops, parameter_counts, train_exaflops
from vitrepro.compute.performance import DEFAULTS, cpu_threads, keep_freed_memory, prepare_model
from vitrepro.compute.throughput import Throughput
from vitrepro.config.rules import validate_config
from vitrepro.data import build_datamodule
from vitrepro.evaluation.callback import FewShotEvaluation
from vitrepro.files import PROJECT_ROOT
from vitrepro.models import build_model
from vitrepro.tracking import record
from vitrepro.tracking.curves import LearningCurves
from vitrepro.tracking.loggers import (
    WANDB_ID_FILE,
    build_loggers,
    finish_loggers,
    tracker_location,
    update_tracker_summaries,
)
from vitrepro.tracking.phases import PhaseTimer, process_age_s
from vitrepro.tracking.wandb_run import git_revision, hydra_choices
from vitrepro.training.budget import plan_batch, total_steps
from vitrepro.training.callbacks import run_callbacks
from vitrepro.training.checkpointing import RunClock, checkpoint_step, resume_from
from vitrepro.training.module import LitClassifier
from vitrepro.training.rehearsal import computed
from vitrepro.training.requeue import lightning_plugins
from vitrepro.training.transfer import check_transfers, parent_overrides, run_transfers

log = logging.getLogger(__name__)  # Hydra sends it to the console and the run's train.log


def _destroy_process_group() -> None:
    # Without this, about 1 in 8 gloo runs aborts at exit (measured on 2-core CPUs with gloo).
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


atexit.register(_destroy_process_group)
# The synthetic data is rendered in-process on purpose (vectorised per batch); workers only add
# start-up time, so Lightning's advice to add some is noise here.
warnings.filterwarnings("ignore", ".*does not have many workers.*")


def validation_interval(recipe: dict[str, Any], accumulate: int) -> dict[str, Any]:
    """``recipe.eval_every_steps``: validate every N optimizer steps across epoch boundaries
    (Lightning counts micro-batches); unset: the trainer config's epoch interval."""
    every = recipe.get("eval_every_steps")
    if not every:
        return {}
    return {"val_check_interval": every * accumulate, "check_val_every_n_epoch": None}


def check_before_compute(config: dict[str, Any], inherited: list[str]) -> str | None:
    """Every check of a resolved run config that needs no data and no model: the schema and
    the rules over several keys, the transfers' own configs, the checkpoint to resume from
    (returned). A user mistake raises ``ConfigError`` here, before anything is computed."""
    validate_config(config)
    check_transfers(config.get("transfer"), inherited)
    run_dir = Path(config["paths"]["run_dir"]).resolve()
    return resume_from(config.get("resume"), run_dir)


def _computed_and_recorded(cfg: DictConfig) -> tuple[DictConfig, dict, dict]:
    """The config the run computes (as given and resolved) and the one it records: the same,
    or with ``rehearsal=true`` tiny stand-ins computed and the real run recorded, with the
    stand-in beside it (``vitrepro.training.rehearsal``)."""
    recorded = OmegaConf.to_container(cfg, resolve=True)
    config = computed(recorded)
    if config is recorded:
        return cfg, recorded, recorded
    recorded["stand_in"] = {key: config[key] for key in ("model", "data", "recipe")}
    return OmegaConf.create(config), config, recorded


def run(cfg: DictConfig) -> dict[str, Any]:
    """Train and evaluate one configuration; returns the run summary."""
    cfg, config, recorded = _computed_and_recorded(cfg)
    inherited = parent_overrides()
    ckpt_path = check_before_compute(config, inherited)
    recorded["choices"] = config["choices"] = hydra_choices()
    startup_s, started = process_age_s(), time.time()
    run_dir = Path(config["paths"]["run_dir"]).resolve()
    pl.seed_everything(config["seed"], workers=True)
    torch.set_float32_matmul_precision("high")  # TF32 matmuls on Ampere+ GPUs; no-op on CPU

    batch = plan_batch(config["recipe"], config["trainer"])
    performance = {**DEFAULTS, **(config.get("performance") or {})}
    torch.set_num_threads(cpu_threads(performance["threads"], config["trainer"]))
    keep_freed_memory(bool(performance["keep_freed_memory"]))
    datamodule = build_datamodule(
        config["data"], batch_size=batch.per_device, performance=performance
    )
    steps = total_steps(config["recipe"], datamodule.num_train_samples)
    model = build_model(config["model"], datamodule.num_classes, datamodule.image_size)
    prepare_model(model, performance["channels_last"], performance["fused_attention"])
    module = _lightning_module(model, config, datamodule, steps, performance["channels_last"])

    job_type = "finetune" if config["model"].get("pretrained") else "pretrain"
    resume_step = checkpoint_step(ckpt_path) if ckpt_path else None
    loggers = build_loggers(cfg.logger, run_dir, resume_step, job_type, config["choices"])
    callbacks = run_callbacks(cfg, config, run_dir, started, bool(loggers))
    callbacks.insert(0, PhaseTimer(started, startup_s))  # first: a step ends before the others
    callbacks.append(Throughput(batch.global_batch, forward_flops(model, datamodule.image_size)))
    trainer: pl.Trainer = instantiate(
        cfg.trainer,
        **validation_interval(config["recipe"], batch.accumulate),
        max_steps=steps,
        accumulate_grad_batches=batch.accumulate,
        gradient_clip_val=config["recipe"].get("grad_clip_norm"),
        gradient_clip_algorithm="norm",
        logger=loggers or False,
        callbacks=callbacks,
        default_root_dir=str(run_dir),
        use_distributed_sampler=False,  # each rank takes its own share (data/order.py)
        plugins=lightning_plugins(),  # under SLURM: our requeue handler, not Lightning's
    )
    try:
        summary = _fit_and_summarise(
            trainer,
            module,
            datamodule,
            loggers,
            recorded,
            batch.global_batch,
            ckpt_path,
            resume_step,
        )
        inline = config.get("transfer_jobs", "inline") == "inline"  # else the study runner's
        if config.get("transfer") and inline and trainer.is_global_zero:
            summary = _transfer(summary, config["transfer"], run_dir, inherited, loggers)
    except BaseException:
        finish_loggers(loggers, failed=True)
        raise
    finish_loggers(loggers, summary=summary)  # a finished run's model artifacts first
    return summary


def _lightning_module(
    model: torch.nn.Module,
    config: dict[str, Any],
    datamodule: pl.LightningDataModule,
    steps: int,
    channels_last: bool,
) -> LitClassifier:
    # What src/evaluate.py needs to rebuild this model: a fine-tuned one has no pre-logits.
    model_config = dict(config["model"])
    if model_config.get("pretrained") and model_config.get("pretrained_head") == "drop":
        model_config["representation_size"] = None
    return LitClassifier(
        model,
        config["recipe"],
        datamodule.num_classes,
        steps,
        model_config=model_config,
        image_size=datamodule.image_size,
        compile_model=config.get("compile", False),
        channels_last=channels_last,
    )


def _fit_and_summarise(
    trainer: pl.Trainer,
    module: LitClassifier,
    datamodule: pl.LightningDataModule,
    loggers: list,
    config: dict[str, Any],
    global_batch: int,
    ckpt_path: str | None = None,
    resume_step: int | None = None,
) -> dict[str, Any]:
    """Fit, evaluate once more at the end, and record the run summary (rank 0 writes it)."""
    run_dir = Path(trainer.default_root_dir)
    params = parameter_counts(module.model)
    revision = git_revision(PROJECT_ROOT)
    flops = next(c for c in trainer.callbacks if isinstance(c, Throughput)).forward_flops
    for logger in loggers:
        logger.log_hyperparams(
            {**config, "git_revision": revision, **params, "forward_flops": flops}
        )

    # weights_only=True: Lightning's default defers to torch and its environment variables
    trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    final = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
    if getattr(datamodule, "test_set", None) is not None:  # the test split: once, at the end
        final |= trainer.test(module, datamodule=datamodule, verbose=False)[0]

    summary = _summary(trainer, module, config, final, global_batch, params, revision)
    summary |= {"resumed_from": ckpt_path, "resumed_at_step": resume_step}
    if trainer.is_global_zero:
        record.write(run_dir, summary)
        update_tracker_summaries(loggers, summary)
        log.info(
            f"val top-1 {summary['final'].get('val/top1', float('nan')):.4f} "
            f"(best {summary['best']['val/top1']:.4f}, chance {1 / datamodule.num_classes:.4f}) "
            f"after {summary['images_seen']} images in {summary['wall_time_s']:.0f} s; "
            f"run recorded in {run_dir}" + "".join(f"; {where}" for where in summary["tracker"])
        )
    return summary


def _summary(
    trainer: pl.Trainer,
    module: LitClassifier,
    config: dict[str, Any],
    final: dict[str, Any],
    global_batch: int,
    params: dict[str, int],
    revision: str,
) -> dict[str, Any]:
    """The run record (``vitrepro.tracking.record``) of a finished fit."""
    throughput = next(c for c in trainer.callbacks if isinstance(c, Throughput))
    clock = next(c for c in trainer.callbacks if isinstance(c, RunClock))
    fewshot = next((c for c in trainer.callbacks if isinstance(c, FewShotEvaluation)), None)
    curves = next(c for c in trainer.callbacks if isinstance(c, LearningCurves))
    phases = next(c for c in trainer.callbacks if isinstance(c, PhaseTimer))
    flops, images = throughput.forward_flops, trainer.global_step * global_batch
    checkpoint = trainer.checkpoint_callback
    return {
        "status": "finished",
        "model": config["model"].get("name", config["model"]["arch"]),
        "data": config["data"].get("name"),
        "final": {k: float(v) for k, v in final.items()},
        "best": {"val/top1": _best_top1(module, trainer)},
        "fewshot": fewshot.latest if fewshot else {},
        "fewshot_history": fewshot.history if fewshot else [],
        "curves": curves.history(),  # training loss and validations over the run
        "num_params": params["params"],
        "params_without_head": params["params_without_head"],
        "global_steps": trainer.global_step,
        "images_seen": images,
        "forward_flops": flops,
        "train_exaflops": train_exaflops(flops, images),
        "wall_time_s": round(clock.seconds(), 2),  # every resumed segment of the run
        "throughput": throughput.summary,  # this process's fit: images/s, TFLOP/s, MFU (GPUs)
        "timings": phases.timings(fewshot.seconds if fewshot else 0.0, time.time()),
        "git_revision": revision,
        "run_dir": str(Path(trainer.default_root_dir)),
        "checkpoint": checkpoint.last_model_path or None,
        "best_checkpoint": next(
            (c.best_model_path for c in trainer.checkpoint_callbacks if c.monitor), None
        ),
        "recipe": config["recipe"].get("name"),
        "global_batch": global_batch,
        "device": {"type": type(trainer.accelerator).__name__, "count": trainer.world_size},
        "tracker": [tracker_location(logger) for logger in trainer.loggers],
        "config": config,
    }


def _transfer(
    summary: dict[str, Any],
    transfers: dict[str, list[str]],
    run_dir: Path,
    inherited: list[str],
    loggers: list,
) -> dict[str, Any]:
    """Fine-tune on each transfer dataset; the results join this run's summary and W&B run."""
    wandb_id = run_dir / WANDB_ID_FILE
    parent_run = wandb_id.read_text().strip() if wandb_id.exists() else None
    model = (summary.get("config", {}).get("choices") or {}).get("model")
    results = run_transfers(transfers, run_dir, inherited, parent_run, model)
    summary = {**summary, "transfer": results}
    record.write(run_dir, summary)
    update_tracker_summaries(loggers, summary)
    scores = record.transfer_metrics(summary["transfer"])
    log.info(" ".join(f"{k} {v:.4f}" for k, v in scores.items() if v is not None))
    return summary


def _best_top1(module: LitClassifier, trainer: pl.Trainer) -> float:
    """Best val top-1 of this process, or of the whole run when it was resumed (checkpointed)."""
    scores = [float(module.val_top1_best.compute())]
    scores += [
        float(c.best_model_score) for c in trainer.checkpoint_callbacks if c.best_model_score
    ]
    return max(scores)
