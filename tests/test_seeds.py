"""Seeds: the mean and spread of a grid point, the CNN-minus-ViT gap with Welch's interval,
competence on the pre-training task, and ``--seeds`` replacing a sweep's seed axis."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from scipy import stats

from vitrepro.studies.grid import GridPoint, with_seeds
from vitrepro.studies.seeds import COMPETENCE, competence, competence_text, gaps, seed_summary

PROFILE = {
    "x_axis": "pretraining",
    "labels": {"pretraining": {"glyphs_s": "ImageNet", "glyphs_m": "ImageNet-21k"}},
    "gap": {"cnn": "bit_micro", "vit": "vit_micro_p4"},
    "competence": {"cnn": "bit_micro", "vit": "vit_micro_p4"},
}


def _results(values: dict[tuple[str, str], list[float]], pretrain: float = 50.0) -> pd.DataFrame:
    rows = []
    for (model, x), seeds in values.items():
        for seed, value in enumerate(seeds):
            rows.append(
                {
                    "model": model,
                    "pretraining": x,
                    "series": model,
                    "legend": model,
                    "x": x,
                    "seed": seed,
                    "value": value,
                    "pretrain_top1": pretrain + seed,
                    "train_exaflops": 1e-6 * (seed + 1),
                    "images_seen": 1000,
                    "wall_time_s": 1.0,
                }
            )
    return pd.DataFrame(rows)


def test_summary_is_the_mean_and_spread_of_each_point():
    results = _results({("bit_micro", "ImageNet"): [60.0, 62.0, 64.0]})
    (row,) = seed_summary(results).itertuples()
    assert row.seeds == 3 and row.value == 62.0 and row.sd == 2.0
    assert row.ci95 == pytest.approx(stats.t.ppf(0.975, 2) * 2.0 / math.sqrt(3))
    assert row.train_exaflops == pytest.approx(2e-6)


def test_gap_interval_is_welchs_and_says_when_it_spans_zero():
    cnn, vit = [70.0, 72.0, 74.0], [50.0, 51.0, 55.0]
    results = _results(
        {
            ("bit_micro", "ImageNet"): cnn,
            ("vit_micro_p4", "ImageNet"): vit,
            ("bit_micro", "ImageNet-21k"): [60.0, 62.0, 64.0],
            ("vit_micro_p4", "ImageNet-21k"): [58.0, 66.0, 62.0],
        }
    )
    table = gaps(results, PROFILE).set_index("x")
    welch = stats.ttest_ind(cnn, vit, equal_var=False).confidence_interval(0.95)
    assert table.loc["ImageNet", "gap"] == pytest.approx(20.0, abs=0.01)
    assert table.loc["ImageNet", "ci_low"] == pytest.approx(welch.low, abs=0.01)
    assert table.loc["ImageNet", "ci_high"] == pytest.approx(welch.high, abs=0.01)
    assert table.loc["ImageNet", "resolved"]
    assert not table.loc["ImageNet-21k", "resolved"]  # 0 +- several points


def test_one_seed_gives_no_interval():
    results = _results({("bit_micro", "ImageNet"): [60.0], ("vit_micro_p4", "ImageNet"): [50.0]})
    assert math.isnan(gaps(results, PROFILE)["gap"].iloc[0])
    assert math.isnan(seed_summary(results)["ci95"].iloc[0])


def test_competence_flags_each_family_below_the_bar_at_the_largest_size():
    results = _results(
        {("bit_micro", "ImageNet-21k"): [1, 2], ("vit_micro_p4", "ImageNet-21k"): [1, 2]},
        pretrain=COMPETENCE["largest_top1"],
    )
    results["loss_flat"] = True
    results["loss_change"] = 0.01
    results.loc[results["model"] == "vit_micro_p4", "pretrain_top1"] -= 5.0
    results.loc[(results["model"] == "bit_micro") & (results["seed"] == 1), "loss_flat"] = False
    fit = competence(results, PROFILE)
    assert fit["cnn_top1"] == COMPETENCE["largest_top1"] + 0.5
    assert fit["compute_limited"] == ["cnn_loss_flat", "vit_top1"]  # one seed not flat; 75.5


@pytest.mark.parametrize("each", ["x", "series"])
def test_an_ablation_checks_every_variant_against_the_bar(each):
    results = _results(
        {("vit_a", "ImageNet"): [1, 2], ("vit_b", "ImageNet"): [1, 2],
         ("vit_a", "ImageNet-21k"): [1, 2], ("vit_b", "ImageNet-21k"): [1, 2]},
        pretrain=COMPETENCE["largest_top1"],
    )  # fmt: skip
    results["loss_flat"], results["loss_change"] = True, 0.01
    weak = (results["model"] == "vit_b") & (results["x"] == "ImageNet")
    results.loc[weak, "pretrain_top1"] -= 5.0  # one variant below the bar at the first x only
    fit = competence(results, {**PROFILE, "competence": {"each": each}})
    if each == "x":  # every x, its series together: ImageNet's mean 80.5 - 2.5
        assert set(fit["checked"]) == {"ImageNet", "ImageNet-21k"}
        assert fit["compute_limited"] == ["ImageNet_top1"] and fit["largest"] == "every x"
    else:  # every series at the largest x, where both are above the bar
        assert set(fit["checked"]) == {"vit_a", "vit_b"} and fit["compute_limited"] == []
        only = {**PROFILE, "competence": {"each": each, "only": ["vit_b"]}}
        assert set(competence(results, only)["checked"]) == {"vit_b"}
    assert "pre-training test top-1" in competence_text(fit)


def test_interaction_is_the_difference_of_the_gaps_with_its_interval():
    groups = {
        ("bit_micro", "ImageNet"): [70.0, 72.0, 74.0],
        ("vit_micro_p4", "ImageNet"): [40.0, 41.0, 45.0],
        ("bit_micro", "ImageNet-21k"): [90.0, 91.0, 92.0],
        ("vit_micro_p4", "ImageNet-21k"): [80.0, 82.0, 84.0],
    }
    row = gaps(_results(groups), PROFILE).set_index("x").loc["interaction"]
    assert row["gap"] == pytest.approx((72.0 - 42.0) - (91.0 - 82.0), abs=0.01)
    variances = sum(pd.Series(v).var() / 3 for v in groups.values())
    assert row["ci_high"] - row["gap"] > 2 * math.sqrt(variances)  # a t interval, df < 12
    assert row["resolved"]


def test_seeds_replace_the_sweep_seed_axis():
    point = GridPoint((("model", "bit_micro"), ("seed", 0)), ("model",))
    points = with_seeds([point], 3, first=5)
    assert [dict(p.params)["seed"] for p in points] == [5, 6, 7]
    assert all("seed" in p.varying for p in points)
    assert len({p.slug for p in points}) == 3
    assert with_seeds([point], 1)[0].slug == point.slug  # the sweep's own single seed


def test_a_loss_flat_only_by_the_absolute_tolerance_says_so():
    results = _results(
        {("bit_micro", "ImageNet-21k"): [1, 2], ("vit_micro_p4", "ImageNet-21k"): [1, 2]},
        pretrain=90.0,
    )
    results["loss_flat"] = True
    results["loss_change"] = 0.01
    results.loc[results["model"] == "vit_micro_p4", "loss_change"] = 0.5  # 0.001 -> 0.0005 nats
    text = competence_text(competence(results, PROFILE))
    cnn, vit = text.split("; ")
    assert "(1.0% relative change over the last tenth)" in cnn
    assert "(50.0% relative change over the last tenth, within the 0.01-nat tolerance)" in vit


def test_an_ablation_of_many_models_counts_them_and_names_those_under_the_bar():
    """Figure 8's bar checks every model (``each: x``, x a FLOP count): its line names the
    failing model by its series and compute, with the change of the run that did not flatten
    (not the large ratio of a run flat within the absolute tolerance)."""
    flops = {"Depth": ["8130432", "30691200"], "Width": ["6567360", "27249984"],
             "MLP width": ["10637184", "23710848"]}  # fmt: skip
    rows = [
        {"series": series, "x": x, "seed": seed, "pretrain_top1": 95.0,
         "loss_flat": True, "loss_change": 0.6}
        for series, xs in flops.items() for x in xs for seed in range(3)
    ]  # fmt: skip
    results = pd.DataFrame(rows)
    failing = (results["x"] == "30691200") & (results["seed"] == 1)
    results.loc[failing, ["loss_flat", "loss_change"]] = [False, 0.145]
    fit = competence(results, {"x_axis": "forward_flops", "competence": {"each": "x"}})
    assert fit["compute_limited"] == ["30691200_loss_flat"]
    text = competence_text(fit)
    assert "5 of 6 models meet the bar" in text
    assert "Depth at 30.7M 95.0% (at least 80%), loss not flat (14.5% relative" in text
    assert "Width at" not in text
