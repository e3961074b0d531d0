"""A transfer fine-tune starts in a clean environment: not inside its parent's DDP rendezvous,
SLURM task or W&B agent run; its W&B run is a ``finetune`` job grouped under its parent."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT, TINY_DATA, TINY_TRANSFER_CHILD, TINY_VIT, clean_env
from vitrepro.tracking import record
from vitrepro.training.transfer import child_environment

CHILD = ",".join(f"'{o}'" for o in TINY_TRANSFER_CHILD)
TRANSFER = ["transfer=synthetic", f"transfer.synthetic_transfer=[{CHILD}]"]


def test_child_environment_drops_the_parents_launch(monkeypatch):
    for key in ("MASTER_PORT", "LOCAL_RANK", "WORLD_SIZE", "SLURM_PROCID", "WANDB_RUN_ID"):
        monkeypatch.setenv(key, "7")
    monkeypatch.setenv("PL_GLOBAL_SEED", "0")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the machine's settings stay
    env = child_environment("parent123")
    assert not {"MASTER_PORT", "LOCAL_RANK", "WORLD_SIZE", "SLURM_PROCID", "PL_GLOBAL_SEED"} & set(
        env
    )
    assert "WANDB_RUN_ID" not in env and env["OMP_NUM_THREADS"] == "1"
    assert env["WANDB_JOB_TYPE"] == "finetune" and env["WANDB_RUN_GROUP"] == "parent123"


def _train(tmp_path, *overrides: str, env_extra: dict[str, str] | None = None):
    env = clean_env(tmp_path) | (env_extra or {})
    return subprocess.run(
        [sys.executable, "src/train.py", *overrides, "hydra.run.dir=" + str(tmp_path / "run")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_a_fine_tune_under_a_wandb_agent_is_a_run_of_its_own(tmp_path):
    """An agent sets WANDB_RUN_ID for its run: the child must not log into (and overwrite)
    the parent's run."""
    agent = {"WANDB_RUN_ID": "sweeprun1"}
    result = _train(tmp_path, *TINY_DATA, *TINY_VIT, "evaluation=none", *TRANSFER, env_extra=agent)
    assert result.returncode == 0, result.stderr[-3000:]
    parent_id = (tmp_path / "run" / "wandb_run_id.txt").read_text()
    child_dir = tmp_path / "run" / "transfer" / "synthetic_transfer"
    assert parent_id == "sweeprun1"
    assert (child_dir / "wandb_run_id.txt").read_text() != parent_id
    summary = record.read(tmp_path / "run")
    assert summary["final"]  # the parent's record survives its child


def test_a_failed_fine_tune_ends_its_parent_with_one_line_and_the_childs_code(tmp_path):
    """The child prints its own error; the parent adds one line naming it, no traceback."""
    # an absurd rate without clipping: the weights overflow, the loss is infinite by step 4
    child = [o for o in TINY_TRANSFER_CHILD if not o.startswith("recipe.steps=")]
    absurd = ["recipe.steps=4", "recipe.optimizer.lr=1e30", "recipe.grad_clip_norm=null"]
    diverging = ",".join(f"'{o}'" for o in [*child, *absurd])
    transfer = ["transfer=synthetic", f"transfer.synthetic_transfer=[{diverging}]"]
    result = _train(tmp_path, *TINY_DATA, *TINY_VIT, "logger=none", "evaluation=none", *transfer)
    assert result.returncode == 3, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    child_dir = tmp_path / "run" / "transfer" / "synthetic_transfer"
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"error: transfer synthetic_transfer failed (exit 3); its log: {child_dir}"


@pytest.mark.slow
def test_a_two_process_ddp_run_fine_tunes_after_pre_training(tmp_path):
    """rank 0 starts the fine-tune after a 2-process gloo run; inheriting MASTER_PORT,
    LOCAL_RANK and WORLD_SIZE made it fail with EADDRINUSE."""
    ddp = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp", "logger=csv"]
    env = {"OMP_NUM_THREADS": "1", "PATH": os.environ["PATH"]}
    result = _train(
        tmp_path, *TINY_DATA, *TINY_VIT, "evaluation=none", *ddp, *TRANSFER, env_extra=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    summary = record.read(tmp_path / "run")
    child = summary["transfer"]["synthetic_transfer"]
    assert 0 <= child["final"]["val/top1"] <= 1
    child_summary = record.read(ROOT / child["run_dir"])
    assert child_summary["device"]["count"] == 2  # the parent's trainer overrides, its own group


def _glyph_transfer_of(point, tmp_path):
    """The pool's fine-tune job for ``point`` after a finished pre-training that composed
    ViT-micro/8 (the record a study run leaves)."""
    from vitrepro.studies.jobs import Launch, transfer_jobs

    run_dir = tmp_path / point.slug
    transfer = {"glyphs_transfer": ["data=glyphs", "data.task=transfer"]}
    config = {"choices": {"model": "vit_micro_p8"}, "transfer": transfer}
    record.write(run_dir, {"status": "finished", "config": config})
    (job,) = transfer_jobs(point, run_dir, Launch())
    return job


def test_a_study_transfer_builds_the_model_its_experiment_chose(tmp_path):
    """Figure 9's points name no model: its experiment file chooses ViT-micro/8, and the
    fine-tune composes no experiment, so it must be told the parent's model, or the weights
    meet the default model and the job stops on mismatched shapes."""
    from hydra import compose, initialize_config_dir

    from vitrepro.studies.grid import expand_grid, load_sweep

    point = expand_grid(load_sweep(ROOT / "sweeps" / "tiny" / "classifier_ablation.yaml"))[0]
    assert not any(a.split("=")[0] == "model" for a in point.args)
    job = _glyph_transfer_of(point, tmp_path)
    assert job.args.count("model=vit_micro_p8") == 1
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        child = compose("train", overrides=job.args)
    assert (child.model.patch_size, child.model.hidden_size) == (8, 96)
    assert child.model.classifier == dict(point.params)["model.classifier"]


@pytest.mark.parametrize("line", ["depth", "width", "mlp_width", "patch_size"])
def test_a_figure8_transfer_fine_tunes_the_shape_its_parent_trained(tmp_path, line):
    """Figure 8's lines change one model dimension by override (``model.depth=8``): the
    fine-tune must build that shape, not the base's, or the weights do not load."""
    from hydra import compose, initialize_config_dir

    from vitrepro.studies.grid import expand_grid, load_sweep

    sweep = ROOT / "sweeps" / "tiny" / "model_shape" / f"{line}.yaml"
    point = expand_grid(load_sweep(sweep))[-1]
    job = _glyph_transfer_of(point, tmp_path)
    shape = ("depth", "hidden_size", "mlp_size", "patch_size")
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        parent = compose("train", overrides=point.args).model
        child = compose("train", overrides=job.args).model
    assert [child[k] for k in shape] == [parent[k] for k in shape]
    assert [parent[k] for k in shape] != [4, 96, 384, 8]  # the line moved off the base
