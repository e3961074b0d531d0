"""W&B mode resolution and atomic summaries."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import ROOT
from vitrepro.files import write_json_atomic
from vitrepro.tracking.wandb_run import git_revision, wandb_mode


@pytest.fixture
def no_wandb_env(monkeypatch, tmp_path):
    for key in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NETRC", raising=False)
    return tmp_path


def test_offline_without_credentials(no_wandb_env):
    assert wandb_mode("auto") == "offline"


def test_online_with_api_key(no_wandb_env, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode("auto") == "online"


def test_online_with_netrc_login(no_wandb_env):
    netrc = no_wandb_env / ".netrc"
    netrc.write_text("machine api.wandb.ai\n  login user\n  password secret\n")
    netrc.chmod(0o600)
    assert wandb_mode("auto") == "online"


def test_environment_mode_wins(no_wandb_env, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert wandb_mode("online") == "disabled"


def test_atomic_json_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "summary.json"
    write_json_atomic(target, {"a": 1})
    write_json_atomic(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_atomic_files_get_the_permissions_open_would_give(tmp_path):
    write_json_atomic(tmp_path / "summary.json", {"a": 1})
    (tmp_path / "plain.json").write_text("{}")
    # mkstemp creates 0600; a run summary on a shared cluster must stay readable by the team
    mode = (tmp_path / "summary.json").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain.json").stat().st_mode & 0o777


def test_a_wandb_run_carries_its_job_type_group_and_tags(no_wandb_env, monkeypatch):
    from omegaconf import OmegaConf

    from vitrepro.tracking.loggers import build_loggers

    monkeypatch.setenv("WANDB_RUN_GROUP", "parent123")  # what a transfer child is given
    logger_cfg = OmegaConf.load(ROOT / "conf" / "logger" / "wandb.yaml")
    logger_cfg.save_dir, logger_cfg.tags = str(no_wandb_env), ["mine"]
    choices = {"model": "vit_b16", "pretraining": "jft_like", "transfer": "none"}
    (logger,) = build_loggers(logger_cfg, no_wandb_env, None, "finetune", choices)
    run = logger.experiment
    try:
        assert run.job_type == "finetune" and run.group == "parent123"
        assert list(run.tags) == ["mine", "finetune", "model=vit_b16", "pretraining=jft_like"]
    finally:
        run.finish()


def test_a_pools_own_outputs_do_not_make_its_revision_dirty(tmp_path):
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    for path in ("src/code.py", "experiments/pools/run.json", "experiments/fig3/study.yaml"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("0\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "first")
    clean = git_revision(tmp_path)
    (tmp_path / "experiments/pools/run.json").write_text("1\n")  # a committed record, rewritten
    assert git_revision(tmp_path) == clean and not clean.endswith("-dirty")
    (tmp_path / "experiments/fig3/study.yaml").write_text("1\n")  # the design changed
    assert git_revision(tmp_path) == f"{clean}-dirty"
