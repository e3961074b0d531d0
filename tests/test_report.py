"""``make report``: one static HTML page built from a small run pool's results."""

from __future__ import annotations

import json
import shutil

from study_records import fabricate_summary
from vitrepro.studies.collect import local_records, series_axes
from vitrepro.studies.pool import STUDIES, load_study, study_points, write_results
from vitrepro.studies.report import main


def test_the_report_shows_each_studys_figures_tables_design_and_provenance(tmp_path):
    results = tmp_path / "experiments"
    study = load_study("fig3", "tiny")
    spec = study["profiles"]["tiny"]
    (results / "fig3").mkdir(parents=True)
    shutil.copy(STUDIES / "fig3" / "study.yaml", results / "fig3" / "study.yaml")
    (results / "fig8").mkdir()  # a study with no results at this profile: left out
    shutil.copy(STUDIES / "fig8" / "study.yaml", results / "fig8" / "study.yaml")
    points = study_points(spec)
    for i, point in enumerate(points):
        axes = (*series_axes(spec), spec["x_axis"])
        fabricate_summary(
            tmp_path / "runs" / point.slug, point, spec["metric"], 0.5 + i / 100, axes
        )
    write_results(study, "tiny", local_records(sorted((tmp_path / "runs").iterdir())),
                  results / "fig3")  # fmt: skip
    pool = results / "pools" / spec["runs"] / "tiny"
    pool.mkdir(parents=True)
    made = {"machine": {"cores": 2, "cpu": "Test CPU"}, "git_revision": "abcdef0123",
            "summary": {"wall_time_s": 1800.0}}  # fmt: skip
    for name in ("a", "b"):
        (pool / f"{name}.json").write_text(json.dumps(made))

    page = tmp_path / "report" / "index.html"
    assert main(["--results", str(results), "--out", str(page)]) == 0
    text = page.read_text()
    assert text.count('<h2 id="') == 1 and study["title"] in text
    curves = (results / "fig3" / "fig3_tiny_curves.png").is_file()  # drawn where runs have them
    assert text.count("data:image/png;base64,") == 1 + curves  # the paper beside ours, curves
    assert "95% interval over seeds" in text and "CNN minus ViT" in text
    assert "Competence (" in text  # the verdict of the pre-registered bar
    assert "2 runs on Test CPU (2 cores); 1.0 hours of pre-training; commits abcdef0" in text
    assert "frozen design" in text and "steps_scaling" in text  # the overlay's budget rule
    assert "conf/experiment/study/fig3_tiny.yaml" in text and "competence:" in text  # its file
    assert 'href="../experiments/fig3/README.md"' in text
