"""The paper-scale rehearsal: stand-ins keep a full-profile run's structure, and a study point
runs as 2 data-parallel processes started as ``srun`` starts them, in a W&B agent's
environment, with its transfer as a job of its own, to the study's table."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import ROOT, clean_env
from vitrepro.config.rules import validate_config
from vitrepro.studies.grid import expand_grid, load_sweep
from vitrepro.studies.jobs import is_complete
from vitrepro.studies.pool import main
from vitrepro.tracking import record
from vitrepro.training.budget import total_steps
from vitrepro.training.rehearsal import BATCH, MAX_LOOKS, stand_in


def _composed(*overrides: str) -> dict:
    paths = ["paths.root_dir=/tmp/vitrepro", "paths.run_dir=/tmp/vitrepro/run"]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[*paths, *overrides])
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=vit_h14", "pretraining=jft_like", "recipe.epochs=14"],
        ["model=bit_r152x2", "pretraining=jft_like", "data.subset=90M"],
        ["model=r50_vit_b16", "pretraining=in21k"],
        ["model=vit_b32", "data=cifar10", "recipe=finetune", "data.minival_fraction=0.1"],
    ],
)
def test_stand_ins_keep_the_structure_of_the_real_run(overrides):
    real = _composed(*overrides, "evaluation=fewshot")
    small = stand_in(real)
    validate_config(small)  # a config the run accepts, with no dataset on disk
    assert real["model"] == _composed(*overrides)["model"]  # the real config is left as it is
    model, data, recipe = small["model"], small["data"], small["recipe"]
    assert data["format"] == "synthetic" and data["name"] == real["data"]["name"]
    assert set(data["fewshot_datasets"]) == set(real["data"]["fewshot_datasets"])
    assert recipe.get("epochs") == real["recipe"].get("epochs")  # Table 3's epochs kept
    if real["recipe"].get("steps"):  # Table 4's steps, a thousandth
        assert recipe["steps"] == max(2, real["recipe"]["steps"] // 1000)
        assert data["num_test"] > 0  # the selection's minival is val, the test split reported
    for key in ("depth", "layers", "backbone_layers", "patch_size", "classifier"):
        assert model.get(key) == real["model"].get(key)
    if model.get("hidden_size"):
        assert model["hidden_size"] % model["num_heads"] == 0
        assert data["image_size"] % model["patch_size"] == 0
    for key in ("channels", "backbone_channels"):
        if model.get(key):
            assert all(c % model[key.replace("channels", "norm_groups")] == 0 for c in model[key])
    steps = total_steps(recipe, data["num_train"])
    assert recipe["global_batch_size"] == BATCH and steps >= (recipe.get("epochs") or 0)
    assert steps / recipe["eval_every_steps"] <= MAX_LOOKS
    if "data.subset=90M" in overrides:  # Figure 4's subsets keep their order of size
        assert data["num_train"] == 90


def test_rehearse_needs_the_full_profile(capsys):
    assert main(["fig3", "--profile", "tiny", "--rehearse"]) == 2
    assert "--profile full" in capsys.readouterr().err


def test_a_rehearsed_point_pretrains_on_two_ranks_then_transfers_as_its_own_job(
    tmp_path, monkeypatch
):
    sweep = {
        "program": "src/train.py",
        "method": "grid",
        "parameters": {
            "model": {"value": "vit_b32"},
            "model.depth": {"value": 2},
            "pretraining": {"value": "jft_like"},
            "recipe.epochs": {"value": 2},
            "transfer": {"value": "imagenet"},
            "evaluation.shots": {"value": [1, 2]},
        },
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    study = yaml.safe_load((ROOT / "experiments" / "fig3" / "study.yaml").read_text())
    full = study["profiles"]["full"] | {"sweep": str(tmp_path / "sweep.yaml")}
    study["profiles"] = {"full": full}
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    for key, value in clean_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    args = [str(tmp_path / "study.yaml"), "--profile", "full", "--rehearse"]
    args += ["--output", str(tmp_path / "out"), "--results", str(tmp_path / "results")]
    assert main(args) == 0

    point = expand_grid(load_sweep(tmp_path / "sweep.yaml"))[0]
    runs = tmp_path / "out" / "studies" / "fig3" / "rehearsal"
    parent, child = runs / point.slug, runs / point.slug / "transfer" / "imagenet"
    summary = record.finished(parent)
    assert is_complete(parent) and summary["device"]["count"] == 2  # two ranks, as srun starts
    assert summary["config"]["model"]["hidden_size"] == 768  # recorded: the real run
    assert summary["config"]["stand_in"]["model"]["hidden_size"] == 24  # computed: the stand-in
    assert summary["global_steps"] == 38  # 2 epochs of 303 stand-in images (303M / 1M), 16 a step
    assert summary["transfer"]["imagenet"]["final"]["val/top1"] >= 0  # joined after the job
    assert (parent / "wandb_run_id.txt").read_text().strip() == f"rehearsal-{point.slug}"
    assert (child / "wandb_run_id.txt").read_text().strip() != f"rehearsal-{point.slug}"
    fine_tune = record.finished(child)
    assert fine_tune["device"]["count"] == 2 and fine_tune["global_steps"] == 20  # 20k / 1000
    assert (runs / "logs" / f"{point.slug}__imagenet.log").is_file()  # a job of its own
    assert "transfer imagenet:" not in (runs / "logs" / f"{point.slug}.log").read_text()
    table = pd.read_csv(tmp_path / "results" / "fig3" / "fig3_rehearsal.csv")
    assert len(table) == 1 and table["value"].between(0, 100).all()
    paper = (tmp_path / "results" / "fig3" / "fig3_rehearsal_vs_paper.md").read_text()
    assert "ViT-B/32" in paper
    assert (tmp_path / "results" / "fig3" / "fig3_rehearsal.png").stat().st_size > 10_000

    logs = sorted((runs / "logs").iterdir())
    assert main(args) == 0  # complete: nothing reruns
    assert sorted((runs / "logs").iterdir()) == logs


def test_a_failed_task_stops_the_tasks_that_would_wait_for_it():
    import subprocess
    import sys
    import time

    from vitrepro.studies.srun import wait_for_tasks

    started = time.time()
    tasks = [
        subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"]),
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"]),
    ]
    assert wait_for_tasks(tasks) == 3  # the failed task's code, not the stopped sibling's
    assert time.time() - started < 30 and tasks[1].returncode == -15  # stopped, not waited for
