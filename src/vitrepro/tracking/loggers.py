"""The run's loggers: built from ``conf/logger``, continued when a run resumes (one metrics
history per run, in W&B and in CSV), finished when it ends."""

from __future__ import annotations

import csv
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.loggers import CSVLogger, WandbLogger
from pytorch_lightning.utilities import rank_zero_only

WANDB_ID_FILE = "wandb_run_id.txt"


def build_loggers(
    logger_cfg: DictConfig | None,
    run_dir: Path,
    resume_step: int | None,
    job_type: str = "pretrain",
    choices: dict[str, str] | None = None,
) -> list:
    """The configured logger. A run resumed from a checkpoint of ``resume_step`` continues its
    metrics history: the same W&B run (same id), or the same CSV file without the rows logged
    after that step. A W&B run carries its ``job_type`` (pretrain / finetune) and tags naming
    it (``run_tags``); a transfer child is grouped under its parent (``WANDB_RUN_GROUP``, set
    by ``transfer``)."""
    if not logger_cfg or "_target_" not in logger_cfg:
        return []
    id_file = run_dir / WANDB_ID_FILE
    is_wandb = logger_cfg["_target_"].endswith("make_wandb_logger")
    resuming = resume_step is not None
    extra: dict = {}
    if is_wandb:
        tags = [*(logger_cfg.get("tags") or []), *run_tags(job_type, choices or {})]
        extra = {"job_type": job_type, "tags": list(dict.fromkeys(tags))}
    history = None
    if logger_cfg["_target_"].endswith("CSVLogger") and resuming and rank_zero_only.rank == 0:
        save_dir, name = Path(logger_cfg["save_dir"]), logger_cfg.get("name") or "lightning_logs"
        history = csv_history(save_dir, name, resume_step)
        if history:
            extra = {"version": history[0]}
    if is_wandb and resuming and id_file.exists():
        logger = instantiate(logger_cfg, id=id_file.read_text().strip(), **extra)
    else:
        logger = instantiate(logger_cfg, **extra)
    if is_wandb and rank_zero_only.rank == 0:
        id_file.write_text(logger.experiment.id)
    if history and isinstance(logger, CSVLogger):
        _continue_csv(logger, *history[1:])
    return [logger]


def run_tags(job_type: str, choices: dict[str, str]) -> list[str]:
    """``pretrain``/``finetune`` and the config groups a user picks a run by: W&B filters runs
    on tags (``model=vit_b16``, ``pretraining=jft_like``, ``experiment=...``)."""
    groups = ("model", "pretraining", "data", "transfer", "experiment")
    chosen = [g for g in groups if choices.get(g) not in (None, "none")]
    return [job_type] + [f"{group}={choices[group]}" for group in chosen]


def csv_history(save_dir: Path, name: str, step: int) -> tuple[int, list[str], list[dict]] | None:
    """(newest version, columns, rows before ``step``) of a resumed run's CSV log. Lightning
    logs what batch k did at step k, so a checkpoint at optimizer step ``step`` holds the rows
    of steps below it; the killed run's later rows are left out and the resumed run logs them."""
    folders = (save_dir / name).glob("version_*")
    versions = sorted(int(d.name.split("_")[1]) for d in folders if d.is_dir())
    if not versions:
        return None
    metrics = save_dir / name / f"version_{versions[-1]}" / "metrics.csv"
    if not metrics.exists():
        return versions[-1], [], []
    with metrics.open(newline="") as file:
        reader = csv.DictReader(file)
        fields, rows = list(reader.fieldnames or []), list(reader)
    kept = [row for row in rows if not row.get("step") or int(float(row["step"])) < step]
    return versions[-1], fields, kept


def _continue_csv(logger: CSVLogger, fields: list[str], rows: list[dict]) -> None:
    """Lightning's CSV writer deletes an existing metrics file when it starts: write the kept
    history back through it, so later saves append to one file."""
    writer = logger.experiment
    if not fields:
        return
    with open(writer.metrics_file_path, "w", newline="") as file:
        table = csv.DictWriter(file, fieldnames=fields)
        table.writeheader()
        table.writerows(rows)
    writer.metrics_keys = sorted(fields)


def finish_loggers(loggers: list, failed: bool = False, summary: dict | None = None) -> None:
    """End each W&B run, so the next run in the same process (Hydra multirun) starts its own;
    a finished run (its ``summary``) first logs its checkpoints as model artifacts."""
    for logger in loggers:
        if isinstance(logger, WandbLogger) and logger._experiment is not None:
            if summary and not failed:
                from vitrepro.tracking.artifacts import log_model_artifacts

                log_model_artifacts(logger, summary, Path(summary["run_dir"]))
            logger.experiment.finish(exit_code=1 if failed else 0)


def update_tracker_summaries(loggers: list, summary: dict) -> None:
    """The W&B run's summary: the record's flat view (``tracking.record``), as tables read it."""
    from vitrepro.tracking import record

    for logger in loggers:
        if hasattr(logger, "experiment") and hasattr(logger.experiment, "summary"):
            logger.experiment.summary.update(record.tracker_summary(summary))


def tracker_location(logger: object) -> str:
    """Where a logger keeps the run, for the run's log line and record."""
    experiment = getattr(logger, "experiment", None)
    run_path = getattr(experiment, "dir", None)
    # A W&B run: its local directory (offline runs sync with `wandb sync`); off rank 0 the
    # experiment is a stand-in whose `dir` is not a path.
    if isinstance(run_path, str):
        return f"W&B run {Path(run_path).parent}"
    return f"{type(logger).__name__} in {getattr(logger, 'log_dir', '?')}"
