"""Studies: spec consistency, collect -> table -> figure on fabricated run summaries (test data,
not results), and a 2-point micro-study run end to end, then rerun without rerunning a run."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import yaml

from conftest import clean_env
from helpers import micro_study
from study_records import fabricate_summary, point_params
from vitrepro.studies.collect import (
    local_records,
    series_axes,
    study_table,
    wandb_records,
)
from vitrepro.studies.committed import fingerprint
from vitrepro.studies.grid import GridPoint, expand_grid, load_sweep
from vitrepro.studies.jobs import Launch, command, is_complete, pretrain_job, run_grid
from vitrepro.studies.pool import (
    PROJECT_ROOT,
    STUDIES,
    load_study,
    main,
    study_points,
    write_results,
)
from vitrepro.tracking import record
from vitrepro.tracking.record import config_value

STUDY_PROFILES = [
    (path.parent.name, profile)
    for path in sorted(STUDIES.glob("*/study.yaml"))
    for profile in yaml.safe_load(path.read_text())["profiles"]
]


@pytest.mark.parametrize("study_name,profile", STUDY_PROFILES)
def test_every_grid_value_has_a_paper_label(study_name, profile):
    study = load_study(study_name, profile)
    spec = study["profiles"][profile]
    for point in study_points(spec):
        params = point_params(point, tuple(series_axes(spec)))
        for axis in series_axes(spec):
            assert str(params[axis]) in map(str, spec["labels"][axis]), (axis, params[axis])
        if spec["x_axis"] in params and spec["x_axis"] in spec["labels"]:
            assert str(params[spec["x_axis"]]) in map(str, spec["labels"][spec["x_axis"]])


@pytest.mark.parametrize("study_name,profile", STUDY_PROFILES)
def test_collect_table_and_figure_from_fabricated_summaries(study_name, profile, tmp_path):
    study = load_study(study_name, profile)
    spec = study["profiles"][profile]
    points = study_points(spec)
    for i, point in enumerate(points):
        axes = (*series_axes(spec), spec["x_axis"])
        fabricate_summary(
            tmp_path / "runs" / point.slug, point, spec["metric"], 0.01 * (i + 1), axes
        )
    (tmp_path / "runs" / "unfinished").mkdir()
    (tmp_path / "runs" / "unfinished" / "summary.json").write_text('{"status": "running"}')
    records = local_records(sorted((tmp_path / "runs").iterdir()))
    assert len(records) == len(points)  # the unfinished run is not a result
    figure = write_results(study, profile, records, tmp_path / "out")
    assert figure.stat().st_size > 10_000  # a drawn PNG
    table = pd.read_csv(tmp_path / "out" / f"{study_name}_{profile}.csv")
    finals = [round(1.0 * (i + 1), 6) for i in range(len(points))]
    if spec.get("shared_series"):  # its runs are a point of every other series (Figure 8's base)
        line = [dict(p.params).get(series_axes(spec)[0]) for p in points]
        base = [f for f, of in zip(finals, line, strict=True) if of is None]
        finals = [f for f, of in zip(finals, line, strict=True) if of is not None]
        finals = sorted(finals + base * len(set(line) - {None}))
    if spec["x_axis"] == "step":  # a row per evaluation during training: 0 at step 100
        assert sorted(table["step"]) == [100] * len(points) + [200] * len(points)
        finals = [0.0] * len(points) + finals
    assert sorted(table["value"].round(6)) == finals
    for axis in series_axes(spec):  # a setting a run lacks is an empty cell, labelled as None
        assert set(table[axis].fillna("None").astype(str)) <= set(map(str, spec["labels"][axis]))
    comparison = (tmp_path / "out" / f"{study_name}_{profile}_vs_paper.md").read_text()
    assert comparison.startswith("| series | x | ours | sd | seeds | paper |")
    rows = comparison.split("\n\n")[0].strip().splitlines()[2:]  # one per point, seeds merged
    group = [*series_axes(spec), "x", *(["step"] if spec["x_axis"] == "step" else [])]
    assert len(rows) == len(table.groupby(group, dropna=False))  # a lacking setting is a group
    seeds = len({dict(p.params).get("seed") for p in points})
    seeds = 1 if "seed" in series_axes(spec) else seeds  # each seed its own series (the pilot)
    assert all(row.split(" | ")[4] == str(seeds) for row in rows)
    paired = tmp_path / "out" / f"{study_name}_{profile}_paired.csv"
    assert paired.is_file() == bool(spec.get("reference"))
    if spec.get("reference"):  # every other setting against the reference, on shared seeds
        differences = pd.read_csv(paired)
        assert len(differences) and set(differences["seeds"]) == {seeds}
        assert "minus the reference, paired by seed" in comparison
    named = [str(v) for v in ((spec.get("labels") or {}).get(spec["x_axis"]) or {}).values()]
    xs = [row.split(" | ")[1] for row in rows]
    if named and set(xs) <= set(named):  # the labels' order (smallest set first), not run order
        assert list(dict.fromkeys(xs)) == [x for x in named if x in xs]


def test_comparison_puts_the_papers_number_next_to_ours(tmp_path):
    study = load_study("fig4", "full")
    point = GridPoint((("data.subset", "90M"), ("model", "vit_l16"), ("pretraining", "jft_like")))
    fabricate_summary(tmp_path / "run", point, ["fewshot/imagenet/5shot"], 0.6)
    write_results(study, "full", local_records([tmp_path / "run"]), tmp_path / "out")
    rows = (tmp_path / "out" / "fig4_full_vs_paper.md").read_text().splitlines()
    assert rows[2] == "| ViT-L/16 | 90M | 60.0 |  | 1 | 70.0 |"  # Figure 4 read-off: 70.0


def test_wandb_records_use_the_same_axes_and_metrics():
    class Run:  # the fields of wandb.apis.public.Run that studies read
        def __init__(self, model, pretraining, value, state="finished"):
            self.config = {"choices": {"model": model, "pretraining": pretraining}, "seed": 0,
                           "data": {"num_train": 37500}}  # fmt: skip
            self.summary = {"transfer/glyphs_transfer/test_top1": value, "train_exaflops": 1e-6}
            self.state = state

    class Api:
        def sweep(self, path):
            assert path == "team/vitrepro/abc123"
            runs = [Run("bit_micro", "glyphs_37k5", 0.5), Run("x", "y", 0, "crashed")]
            return type("Sweep", (), {"runs": runs})

    records = wandb_records("team/vitrepro/abc123", api=Api())
    table = study_table(records, load_study("fig3", "tiny")["profiles"]["tiny"])
    assert table[["series", "x", "value"]].values.tolist() == [["BiT", "37.5k", 50.0]]


def test_axes_of_a_wandb_sweep_run_are_read_from_its_flat_parameters():
    """A sweep sets ``model`` to a string and its other parameters as flat dotted keys, and
    W&B then keeps those, not the nested config the run logs."""
    config = {"model": "vit_b16", "model.position_embedding": "none", "choices": {}}
    assert config_value(config, "model.position_embedding") == "none"
    assert config_value(config, "model") == "vit_b16"
    nested = {"choices": {"model": "vit_b16"}, "model": {"position_embedding": "learned_1d"}}
    assert config_value(nested, "model.position_embedding") == "learned_1d"
    assert config_value(nested, "model") == "vit_b16"


def test_unknown_study_and_profile_are_one_line_errors(capsys):
    assert main(["fig99"]) == 2
    assert "study=fig99" in capsys.readouterr().err
    assert main(["fig3", "--profile", "huge"]) == 2
    assert "profile=huge" in capsys.readouterr().err


def test_micro_study_runs_end_to_end_then_skips_finished_runs(tmp_path, monkeypatch):
    args = micro_study(tmp_path, monkeypatch)
    assert main(args) == 0
    runs = tmp_path / "out" / "studies" / "micro" / "tiny"
    points = expand_grid(load_sweep(tmp_path / "micro.yaml"))
    assert all(is_complete(runs / p.slug) for p in points)
    table = pd.read_csv(tmp_path / "results" / "micro" / "micro_tiny.csv")
    assert sorted(table["series"]) == ["ViT-B/32", "ViT-L/16"]
    assert table["value"].between(0, 100).all()
    logs = {p: p.stat().st_mtime for p in (runs / "logs").iterdir()}
    assert run_grid(points, runs, Launch()) == []  # the rerun finds both finished: nothing runs
    assert {p: p.stat().st_mtime for p in (runs / "logs").iterdir()} == logs

    # a run interrupted after its last checkpoint (no summary yet) resumes; the other is kept
    (runs / points[0].slug / "summary.json").unlink()
    (tmp_path / "results" / "pools" / "micro" / "tiny" / f"{points[0].slug}.json").unlink()
    assert main(args) == 0
    resumed = record.read(runs / points[0].slug)
    assert resumed["resumed_from"].endswith(".ckpt") and resumed["global_steps"] == 3
    assert (runs / "logs" / f"{points[1].slug}.log").stat().st_mtime == logs[
        runs / "logs" / f"{points[1].slug}.log"
    ]
    assert len(pd.read_csv(tmp_path / "results" / "micro" / "micro_tiny.csv")) == 2  # no dupes

    # every finished run is kept as one committed record, which resumes the pool elsewhere
    kept = tmp_path / "results" / "pools" / "micro" / "tiny"
    assert sorted(p.name for p in kept.iterdir()) == sorted(f"{p.slug}.json" for p in points)
    first = json.loads((kept / f"{points[0].slug}.json").read_text())
    assert first["git_revision"] and first["machine"]["cpu"] and first["summary"]["final"]
    before = pd.read_csv(tmp_path / "results" / "micro" / "micro_tiny.csv").set_index("model")
    shutil.rmtree(tmp_path / "out")  # a new machine: only the committed runs are left
    first["summary"]["config"]["recipe"]["optimizer"]["lr"] *= 2  # made with another design:
    first["fingerprint"] = "any"  # the design is read from the record's config: rerun
    (kept / f"{points[0].slug}.json").write_text(json.dumps(first))
    assert main(args) == 0
    assert sorted(p.name for p in (runs / "logs").iterdir()) == [f"{points[0].slug}.log"]
    after = pd.read_csv(tmp_path / "results" / "micro" / "micro_tiny.csv").set_index("model")
    restored = dict(points[1].params)["model"]  # not run again: its committed record is read
    assert len(after) == 2 and after.loc[restored, "value"] == before.loc[restored, "value"]


def test_a_fingerprint_covers_what_a_run_computes_not_where_its_lookup_tables_live():
    config = {
        "model": {"arch": "vit", "depth": 4, "lr": {"study_tiny": 1e-3}},
        "recipe": {"optimizer": {"lr": 1e-3}},
        "seed": 0,
    }
    moved = json.loads(json.dumps(config))
    del moved["model"]["lr"]
    moved["recipe"]["per_model"] = {"ViT": {"lr": 1e-3}, "BiT": {"lr": 3e-3}}  # now in the recipe
    assert fingerprint(moved) == fingerprint(config)
    moved["recipe"]["optimizer"]["lr"] = 3e-3  # the rate the run trains with
    assert fingerprint(moved) != fingerprint(config)
    moved["recipe"]["optimizer"]["lr"], moved["model"]["depth"] = 1e-3, 8
    assert fingerprint(moved) != fingerprint(config)


def test_a_fingerprint_keeps_torch_classes_and_drops_the_module_of_our_own():
    config = {
        "evaluation": {"_target_": "vitrepro.eval.callback.FewShotEvaluation", "shots": [5]},
        "recipe": {"optimizer": {"_target_": "torch.optim.AdamW", "lr": 1e-3}},
    }
    moved = json.loads(json.dumps(config))
    moved["evaluation"]["_target_"] = "vitrepro.evaluation.callback.FewShotEvaluation"
    assert fingerprint(moved) == fingerprint(config)  # the package was renamed
    moved["evaluation"]["_target_"] = "vitrepro.evaluation.callback.OtherEvaluation"
    assert fingerprint(moved) != fingerprint(config)
    moved = json.loads(json.dumps(config))
    moved["recipe"]["optimizer"]["_target_"] = "torch.optim.SGD"
    assert fingerprint(moved) != fingerprint(config)


def test_slurm_launcher_config_composes_for_a_study_point(tmp_path):
    from hydra import compose, initialize_config_dir

    point = expand_grid(load_sweep(PROJECT_ROOT / "sweeps" / "data_scaling.yaml"))[0]
    job = pretrain_job(point, tmp_path / "fig3" / point.slug, Launch("slurm"))
    command_line = command(job, "slurm")
    assert command_line[2:4] == ["-m", "hydra/launcher=slurm"]
    assert f"hydra.sweep.subdir={point.slug}" in command_line and "resume=auto" in command_line
    assert "transfer_jobs=separate" in command_line  # the runner starts each transfer itself
    overrides = [a for a in command_line[3:] if not a.startswith("hydra.sweep")]
    with initialize_config_dir(config_dir=str(PROJECT_ROOT / "conf"), version_base="1.3"):
        cfg = compose(
            "train", overrides=[*overrides, "trainer.devices=8"], return_hydra_config=True
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.tasks_per_node == 8 and launcher.gpus_per_node == 8 and launcher.nodes == 1


def test_a_user_error_stops_the_study_at_its_first_run(tmp_path, monkeypatch, capsys):
    for key, value in clean_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("VITREPRO_DATA", str(tmp_path / "no_datasets"))
    args = ["fig4", "--profile", "full", "--output", str(tmp_path / "out"), "--jobs", "1"]
    assert main([*args, "--results", str(tmp_path / "results")]) == 1
    err = capsys.readouterr().err
    assert "data.root=" in err and "no_datasets/jft_like" in err and "stopping the study" in err
    assert len(list((tmp_path / "out" / "studies" / "fig4" / "full" / "logs").iterdir())) == 1


def test_wandb_source_joins_separate_transfer_jobs_as_the_local_records_do(tmp_path):
    # The study runner's transfers are W&B runs of their own (job type finetune, grouped under
    # the parent's id) that finish after the parent, whose W&B summary so lacks them.
    profile = load_study("fig3", "tiny")["profiles"]["tiny"]
    points = study_points(profile)[:4]
    metric = profile["metric"][0]
    for value, point in enumerate(points):
        fabricate_summary(
            tmp_path / point.slug, point, [metric], 0.5 + value / 10, ("data.num_train",)
        )
    local = study_table(local_records(tmp_path / p.slug for p in points), profile)

    class Run:  # the fields of wandb.apis.public.Run that studies read
        def __init__(self, id, config, summary, group=None, job_type="pretrain"):
            self.id, self.config, self.summary, self.state = id, config, summary, "finished"
            self.group, self.job_type = group, job_type

    parents, children = [], []
    for point in points:
        summary = record.read(tmp_path / point.slug)
        transfers = summary.pop("transfer")
        parents.append(Run(point.slug, summary["config"], record.tracker_summary(summary)))
        for name, result in transfers.items():
            config = {"paths": {"run_dir": f"/runs/{point.slug}/transfer/{name}"}}
            child = {"final": result["final"], "best": result["best"], "status": "finished"}
            children.append(Run(f"{point.slug}-{name}", config, record.tracker_summary(child),
                                group=point.slug, job_type="finetune"))  # fmt: skip

    class Api:
        def sweep(self, path):
            return type("Sweep", (), {"runs": parents})

        def runs(self, path, filters):
            assert path == "team/vitrepro"
            return [c for c in children if c.group == filters["group"] and
                    c.job_type == filters["jobType"]]  # fmt: skip

    assert all(metric not in p.summary for p in parents)  # what W&B holds without the join
    joined = study_table(wandb_records("team/vitrepro/abc123", api=Api()), profile)
    assert joined["value"].notna().all()
    columns = ["series", "x", "value"]
    assert joined[columns].values.tolist() == local[columns].values.tolist()
