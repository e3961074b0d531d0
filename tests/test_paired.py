"""Ablations read against a reference: each setting minus it, seed by seed, with the t interval
of the mean difference; a study naming its reference by an unknown column is refused."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml
from scipy import stats

from vitrepro.studies.paired import paired_differences
from vitrepro.studies.pool import STUDIES, main


def _results(values: dict[tuple[str, str], list[float]], step: int | None = None) -> pd.DataFrame:
    rows = [
        {"series": series, "x": x, "seed": seed, "value": value}
        | ({"step": step} if step is not None else {})
        for (series, x), seeds in values.items()
        for seed, value in enumerate(seeds)
    ]
    return pd.DataFrame(rows)


def test_the_difference_is_paired_by_seed_with_the_t_interval_of_its_mean():
    base, deeper = [60.0, 65.0, 56.0], [55.0, 62.0, 50.0]
    results = _results({("Base", "15.7"): base, ("Depth", "30.7"): deeper})
    (row,) = paired_differences(
        results, {"x_axis": "forward_flops", "reference": {"series": "Base"}}
    ).itertuples()
    paired = stats.ttest_rel(deeper, base).confidence_interval(0.95)
    assert (row.series, row.x, row.reference, row.seeds) == ("Depth", "30.7", "Base", 3)
    assert row.difference == pytest.approx(-14 / 3, abs=0.01)
    assert (row.ci_low, row.ci_high) == (pytest.approx(paired.low, abs=0.01),
                                         pytest.approx(paired.high, abs=0.01))  # fmt: skip
    assert row.resolved  # the seeds move together: a 4.7-point drop in each of them
    welch = stats.ttest_ind(deeper, base, equal_var=False).confidence_interval(0.95)
    assert welch.low < 0 < welch.high  # unpaired, the same runs resolve nothing


def test_only_the_seeds_both_settings_ran_are_compared():
    results = _results({("ViT", "1d_learned"): [60.0, 61.0], ("ViT", "none"): [50.0, 60.0, 99.0]})
    (row,) = paired_differences(
        results, {"x_axis": "model.position_embedding", "reference": {"x": "1d_learned"}}
    ).itertuples()
    assert row.seeds == 2 and row.difference == pytest.approx(-5.5)
    assert not row.resolved  # -10 and -1 on two seeds: a t quantile of 12.7


def test_learning_curves_are_compared_at_each_runs_last_evaluation():
    early = _results({("CLS", "lr"): [10.0, 10.0], ("GAP", "lr"): [90.0, 90.0]}, step=100)
    late = _results({("CLS", "lr"): [60.0, 62.0], ("GAP", "lr"): [61.0, 64.0]}, step=200)
    profile = {"x_axis": "step", "reference": {"series": "CLS"}}
    (row,) = paired_differences(pd.concat([early, late]), profile).itertuples()
    assert row.value == pytest.approx(62.5) and row.difference == pytest.approx(1.5)


def test_no_reference_no_table():
    results = _results({("Base", "a"): [1.0, 2.0]})
    assert paired_differences(results, {}).empty


def test_a_reference_by_an_unknown_column_is_one_line_and_exit_2(tmp_path, capsys):
    study = yaml.safe_load((STUDIES / "table8" / "study.yaml").read_text())
    study["profiles"]["tiny"]["reference"] = {"model.position_embedding": "learned_1d"}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(study))
    assert main([str(path), "--collect-only", "--output", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "reference=model.position_embedding" in error and "series and x" in error
    assert not (tmp_path / "out").exists()


def test_settings_come_smallest_first_when_x_is_a_number():
    results = _results({("Depth", "30.7"): [1.0, 2.0], ("Base", "15.7"): [0.0, 0.0],
                        ("Depth", "8.1"): [3.0, 4.0], ("Width", "27.2"): [5.0, 5.0]})  # fmt: skip
    profile = {"x_axis": "forward_flops", "reference": {"series": "Base"}}
    assert list(paired_differences(results, profile)["x"]) == ["8.1", "27.2", "30.7"]
