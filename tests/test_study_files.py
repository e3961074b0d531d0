"""A study is one file: its overlay in conf/experiment/study/ generates study.yaml and sweeps."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import yaml
from hydra import compose, initialize_config_dir

from conftest import ROOT
from vitrepro.studies import spec
from vitrepro.studies.grid import expand_grid, load_sweep
from vitrepro.studies.pool import load_study

OVERLAYS = spec.study_overlays()


def test_the_committed_study_yaml_and_sweeps_are_what_the_study_files_generate():
    assert len(OVERLAYS) >= 19
    assert [p.relative_to(ROOT) for p in spec.differing()] == []  # `make studies` rewrites them


@pytest.mark.parametrize("path,node", OVERLAYS, ids=[p.stem for p, _ in OVERLAYS])
def test_each_study_file_holds_its_grid_bar_and_launch_command(path, node):
    text = path.read_text()
    assert path.stem == f"{node['name']}_{node['profile']}"
    assert f"make reproduce-{node['name']}" in text or "make reproduce STUDY=" in text
    profile = load_study(node["name"], node["profile"])["profiles"][node["profile"]]
    sweeps = profile["sweep"] if isinstance(profile["sweep"], list) else [profile["sweep"]]
    for sweep in sweeps:  # a grid the study names is generated from a study file
        assert "`make studies` from conf/experiment/study/" in (ROOT / sweep).read_text()
        assert expand_grid(load_sweep(ROOT / sweep))
    if node["profile"] == "tiny" and "gap" in profile:  # a comparison of two families
        assert profile["competence"]["largest_top1"] >= 80.0  # the pre-registered bar
    # the overlay still composes as a run's experiment, its study node passing the schema
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        config = compose("train", [f"experiment=study/{path.stem}"])
    assert config.study.name == node["name"]


def test_a_grid_owned_by_two_study_files_is_refused(tmp_path, monkeypatch):
    fig3 = yaml.safe_load((ROOT / "conf/experiment/study/fig3_tiny.yaml").read_text())
    for name in ("fig3_tiny", "fig3_small"):
        node = {**fig3["study"], "profile": name.split("_")[1]}
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump({"study": node}))
    monkeypatch.setattr(spec, "STUDY_FILES", tmp_path)
    with pytest.raises(ValueError, match="also another study's"):
        spec.generated_files()


def test_an_edited_study_file_makes_its_generated_files_stale(tmp_path, monkeypatch):
    for path, _ in OVERLAYS:
        shutil.copy(path, tmp_path / path.name)
    fig3 = yaml.safe_load((ROOT / "conf/experiment/study/fig3_tiny.yaml").read_text())
    fig3["study"]["grids"]["sweeps/tiny/data_requirement.yaml"]["parameters"]["seed"] = {
        "values": [0, 1, 2, 3, 4]
    }
    (tmp_path / "fig3_tiny.yaml").write_text(yaml.safe_dump(fig3))
    monkeypatch.setattr(spec, "STUDY_FILES", tmp_path)
    stale = {p.relative_to(ROOT).as_posix() for p in spec.differing()}
    assert stale == {"sweeps/tiny/data_requirement.yaml", "experiments/fig3/study.yaml"}
    sweep = yaml.safe_load(spec.generated_files()[ROOT / "sweeps/tiny/data_requirement.yaml"])
    assert sweep["parameters"]["seed"]["values"] == [0, 1, 2, 3, 4] and sweep["method"] == "grid"


# What each figure target of the Makefile runs on the tiny profile: the design whose runs meet
# the competence bar (Figure 8 at 25,000 steps; the relational variant's ViT with relative
# positions), or the study of the same name.
TINY_STUDY_OF = {"reproduce-fig8": "fig8_long", "reproduce-relational": "relational_relpos_long"}
FIGURE_TARGETS = re.findall(r"^(reproduce-[a-z0-9]+):", (ROOT / "Makefile").read_text(), re.M)


def launched_study(target: str, profile: str) -> tuple[str, str]:
    """The study and profile that ``make <target>`` hands the run pool (a dry run)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", target, f"PROFILE={profile}"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    launches = re.findall(r"-m vitrepro\.studies\.pool (\S+) --profile (\S+)", dry.stdout)
    assert len(launches) == 1, dry.stdout
    return launches[0]


@pytest.mark.parametrize("target", FIGURE_TARGETS)
def test_each_figure_target_runs_its_study_file_on_the_tiny_profile(target):
    assert len(FIGURE_TARGETS) >= 8
    expected = TINY_STUDY_OF.get(target, target.removeprefix("reproduce-"))
    assert launched_study(target, "tiny") == (expected, "tiny")
    assert (ROOT / f"conf/experiment/study/{expected}_tiny.yaml").is_file()


def test_figure_8_on_the_paper_profile_runs_the_paper_design():
    assert launched_study("reproduce-fig8", "full") == ("fig8", "full")
    assert launched_study("reproduce-fig3", "full") == ("fig3", "full")
