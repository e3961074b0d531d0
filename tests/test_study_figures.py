"""Study figures and their measured-vs-paper tables at the paper's scale, from fabricated run
summaries (test data, not results): Table 8, Figure 9's curves, Figure 5's Table 6 rows and its
ImageNet panel."""

from __future__ import annotations

import pandas as pd
import pytest

from study_records import fabricate_summary
from vitrepro.studies.collect import local_records, study_table
from vitrepro.studies.grid import GridPoint
from vitrepro.studies.pool import PROJECT_ROOT, load_study, study_points, write_results
from vitrepro.tracking import record


def test_table8_puts_the_papers_5shot_next_to_ours(tmp_path):
    study = load_study("table8", "tiny")
    point = GridPoint((("model", "vit_micro_p8"), ("model.position_embedding", "learned_2d")))
    fabricate_summary(tmp_path / "run", point, ["fewshot/glyphs_transfer/5shot"], 0.3)
    write_results(study, "tiny", local_records([tmp_path / "run"]), tmp_path / "out")
    rows = (tmp_path / "out" / "table8_tiny_vs_paper.md").read_text().splitlines()
    assert rows[2] == "| ViT-B/16 | 2d | 30.0 |  | 1 | 64.0 |"  # Table 8: 0.64001, stem


def test_figure9_curves_come_from_the_evaluations_during_training(tmp_path):
    profile = load_study("fig9", "tiny")["profiles"]["tiny"]
    config = {"model": {"classifier": "gap"}, "recipe": {"optimizer": {"lr": 0.0003}}}
    metric = "fewshot/glyphs_transfer/5shot"
    history = [{"step": 100, metric: 0.2}, {"step": 400, metric: 0.5}]
    table = study_table([(config, {"fewshot_history": history})], profile)
    assert table[["series", "step", "value"]].values.tolist() == [
        ["GAP, lower lr", 100, 20.0],
        ["GAP, lower lr", 400, 50.0],
    ]
    assert table["legend"][0] == "gap, 0.0003 (GAP, lower lr)"


def test_figure9_curves_skip_the_validations_that_measured_no_few_shot():
    """A run also records a validation every few hundred steps: those points carry no 5-shot
    value and must not take the run's final one (a flat line at the end value)."""
    profile = load_study("fig9", "tiny")["profiles"]["tiny"]
    config = {"model": {"classifier": "token"}, "recipe": {"optimizer": {"lr": 0.001}}}
    metric = "fewshot/glyphs_transfer/5shot"
    metrics = {
        metric: 0.6,
        "fewshot_history": [{"step": 1500, metric: 0.25}],
        "curves": {"val": [{"step": 500, "top1": 0.4, "loss": 1.2}]},
    }
    table = study_table([(config, metrics)], profile)
    assert table[["step", "value"]].values.tolist() == [[1500, 25.0]]


def test_a_long_series_is_named_by_its_labels_alone():
    """The pilot's series vary seven settings: the raw tuple beside the labels made a legend
    wider than its figure; the labels alone name the run."""
    profile = load_study("pilot", "tiny")["profiles"]["tiny"]
    config = {
        "model": {"name": "vit_micro_p8"},
        "choices": {"model": "vit_micro_p8", "pretraining": "glyphs_37k5"},
        "data": {"generator": {"relational": False}},
        "recipe": {"optimizer": {"lr": 0.001}, "global_batch_size": 64, "steps": 15000},
        "seed": 2,
    }
    curves = {"val": [{"step": 100, "top1": 0.5, "loss": 1.0}]}
    table = study_table([(config, {"curves": curves})], profile)
    assert table["legend"][0] == table["series"][0]
    assert table["series"][0].startswith("ViT-micro/8, glyph pairs, 37.5k images, lr 1e-3")


def test_a_series_names_a_setting_only_where_it_differs_from_the_usual_one():
    """The pilot labels the usual learned 1-D positions "" (left out of the name, no ", , ")
    and names the 2-D and relative ones its sixth part tries."""
    profile = load_study("pilot", "tiny")["profiles"]["tiny"]
    runs = []
    for embedding in ("learned_1d", "relative"):
        config = {
            "model": {"name": "vit_micro_p8", "position_embedding": embedding},
            "choices": {"model": "vit_micro_p8", "pretraining": "glyphs_37k5"},
            "data": {"generator": {"relational": True}},
            "recipe": {"optimizer": {"lr": 0.001}, "global_batch_size": 64, "steps": 15000},
            "seed": 0,
        }
        runs.append((config, {"curves": {"val": [{"step": 100, "top1": 0.5, "loss": 1.0}]}}))
    names = study_table(runs, profile)["series"].tolist()
    assert names[0].startswith("ViT-micro/8, relational glyph pairs, 37.5k images")
    assert names[1].startswith("ViT-micro/8, relative positions, relational glyph pairs")


def test_figure5_full_grid_is_table6_and_every_row_gets_its_paper_value(tmp_path):
    """Table 6 pairs models with 7 or 14 epochs: the two sweeps give exactly its 18 rows, and
    each (model, epochs) of ours is matched with the paper's Average-5 value."""
    study = load_study("fig5", "full")
    spec = study["profiles"]["full"]
    points = study_points(spec)
    for i, point in enumerate(points):
        fabricate_summary(tmp_path / "runs" / point.slug, point, spec["metric"], 0.5 + i / 100)
    write_results(study, "full", local_records(sorted((tmp_path / "runs").iterdir())), tmp_path)
    table = (tmp_path / "fig5_full_vs_paper.md").read_text().split("\n\n")[0]
    rows = [row.split(" | ") for row in table.strip().splitlines()[2:]]
    paper = pd.read_csv(PROJECT_ROOT / "src" / "vitrepro" / "paper" / "table6_fig5_scaling.csv")
    assert len(rows) == len(paper) == 18
    assert {(r[0].lstrip("| "), r[1]) for r in rows} == set(
        zip(paper["model"], paper["epochs"].astype(str), strict=True)
    )
    assert all(r[-1].rstrip(" |") for r in rows)  # a paper value in every row


def test_figure5_full_has_its_imagenet_panel_beside_average5(tmp_path):
    from vitrepro.studies.figures import render
    from vitrepro.studies.seeds import seed_summary

    study = load_study("fig5", "full")
    spec = study["profiles"]["full"]
    records = []
    for i, point in enumerate(study_points(spec)[:4]):
        fabricate_summary(tmp_path / point.slug, point, spec["metric"], 0.5)
        summary = record.read(tmp_path / point.slug)
        summary["transfer"]["imagenet"]["final"]["val/top1"] = 0.8 + i / 100  # ImageNet alone
        summary["transfer"]["imagenet"]["best"]["val/top1"] = 0.8 + i / 100
        record.write(tmp_path / point.slug, summary)
        records.append((summary["config"], record.flat_metrics(summary)))
    results = seed_summary(study_table(records, spec))
    assert results["panel_value"].round(3).tolist() == [80.0, 81.0, 82.0, 83.0]
    assert results["value"].round(3).tolist() == [56.0, 56.2, 56.4, 56.6]  # the Average-5
    figure, _ = render(study, "full", results, tmp_path / "fig5.png")
    titles = [ax.get_title() for ax in figure.axes]
    assert len(figure.axes) == 4 and titles[2:] == ["paper: ImageNet", "ours: ImageNet"]
    paper_imagenet = figure.axes[2].collections  # the paper's points: Table 6's ImageNet column
    best = max(c.get_offsets()[:, 1].max() for c in paper_imagenet)
    assert best == pytest.approx(88.08)  # ViT-H/14 at 14 epochs


def test_figure8_draws_the_base_runs_as_a_point_of_every_line():
    profile = load_study("fig8", "tiny")["profiles"]["tiny"]
    metric = "fewshot/glyphs_transfer/5shot"
    runs = [  # the base (no logger.group: Figure 3's own run), then one run of two lines
        ({"logger": {"group": None}, "seed": 0}, {"forward_flops": 16e6, metric: 0.6}),
        ({"logger": {"group": "depth"}, "seed": 0}, {"forward_flops": 32e6, metric: 0.7}),
        ({"logger": {"group": "width"}, "seed": 0}, {"forward_flops": 27e6, metric: 0.65}),
    ]
    table = study_table(runs, profile)
    assert sorted(map(tuple, table[["series", "value"]].values.tolist())) == [
        ("Depth", 60.0), ("Depth", 70.0), ("Width", 60.0), ("Width", 65.0)
    ]  # fmt: skip
    assert set(table.loc[table["value"] == 60.0, "logger.group"]) == {"depth", "width"}


def test_figure8_curves_name_each_model_by_its_line_and_compute():
    """Figure 8's x is a measured count (forward FLOPs), not a config value: each model's
    curves are named by it, so depth 2 and depth 8 get their own colours."""
    from vitrepro.studies.curves_figure import _name

    profile = load_study("fig8", "tiny")["profiles"]["tiny"]
    names = [
        _name({"logger": {"group": "depth"}}, {"forward_flops": flops}, profile)
        for flops in (8130432, 30691200)
    ]
    assert names == ["Depth, 8.13M", "Depth, 30.7M"]


def test_the_gap_box_sits_under_the_axes_clear_of_the_data_and_the_legend(tmp_path):
    """CNN minus ViT with its intervals is printed below the panel: inside it, the box hid the
    curves it summarises or sat under the legend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from vitrepro.studies.figures import render
    from vitrepro.studies.seeds import gaps, seed_summary

    study = load_study("relational_relpos", "tiny")
    profile = study["profiles"]["tiny"]
    metric = profile["metric"][0]
    runs = [
        ({"choices": {"model": model}, "data": {"num_train": n}, "seed": seed},
         {metric: value + seed / 100})
        for model, values in (("bit_micro", (0.5, 1.0)), ("vit_micro_p8", (0.3, 0.7)))
        for n, value in zip((1500, 37500), values, strict=True)
        for seed in (0, 1, 2)
    ]  # fmt: skip
    results = study_table(runs, profile)
    gap = gaps(results, profile)
    figure, _ = render(study, "tiny", seed_summary(results), tmp_path / "f.png", gap)
    ours = figure.axes[1]
    canvas = FigureCanvasAgg(figure)  # the figure as saved: laid out and drawn
    canvas.draw()
    renderer = canvas.get_renderer()
    box = next(t for t in ours.texts if t.get_text().startswith("CNN - ViT"))
    text, panel = box.get_window_extent(renderer), ours.get_window_extent(renderer)
    legend = ours.get_legend().get_window_extent(renderer)
    assert text.y1 < panel.y0  # below the plotting area, under the x label
    assert text.y1 < ours.xaxis.label.get_window_extent(renderer).y0
    assert not text.overlaps(legend)
    assert figure.get_figheight() > 4.6  # the figure grew to hold it
