"""The paper-run presets (``conf/experiment/``): each composes into a valid run config, its
header gives the launch command, and the number it expects is the paper's (its CSV)."""

from __future__ import annotations

import csv

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import ROOT
from vitrepro.config.rules import validate_config

EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))
PAPER = ROOT / "src" / "vitrepro" / "paper"


def _composed(name: str) -> dict:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={name}", "paths.run_dir=/tmp/unused"])
        return OmegaConf.to_container(cfg, resolve=True)


def test_there_is_a_preset_for_each_table_behind_the_figures():
    tables = {_composed(name)["paper"]["table"] for name in EXPERIMENTS}
    assert {"table2_sota", "table5_fig3_by_pretrain_dataset", "table6_fig5_scaling"} <= tables


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_preset_composes_validates_and_expects_the_papers_number(name):
    config = _composed(name)
    validate_config(config, paths=False, devices=False)  # the datasets live on the cluster
    assert config["recipe"]["name"].startswith("pretrain_")  # a pretraining=... option
    assert set(config["transfer"]) == {"imagenet", "cifar10", "cifar100", "pets", "flowers102"}
    header = (ROOT / "conf" / "experiment" / f"{name}.yaml").read_text()
    assert f"python src/train.py experiment={name} " in header

    paper = config["paper"]
    with (PAPER / f"{paper['table']}.csv").open() as file:
        rows = [
            r
            for r in csv.DictReader(file)
            if all(r[k] == str(v) for k, v in paper["where"].items())
        ]
    assert len(rows) == 1, paper
    assert float(rows[0][paper["column"]]) == paper["top1"]
    assert f"{paper['top1']:.2f}" in header  # the header quotes the same number


def test_the_schema_declares_every_key_of_every_shipped_option():
    from vitrepro.config import schema

    groups = {
        "model": schema.Model,
        "data": schema.Data,
        "recipe": schema.Recipe,
        "trainer": schema.Trainer,
        "logger": schema.Logger,
        "evaluation": schema.Evaluation,
    }
    undeclared = set()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        for group, model in groups.items():
            declared = {f.alias or name for name, f in model.model_fields.items()}
            for option in sorted((ROOT / "conf" / group).glob("*.yaml")):
                cfg = compose("train", overrides=[f"{group}={option.stem}", "paths.run_dir=x"])
                keys = OmegaConf.to_container(cfg[group], resolve=False) or {}
                undeclared |= {f"{group}.{key} ({option.stem})" for key in keys} - {
                    f"{group}.{key} ({option.stem})" for key in declared
                }
    assert undeclared == set()
