"""The data requirement (a saturating power law per family, the images each needs to reach an
accuracy, their ratio, the crossover) and the competence bar's flattened training loss."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from vitrepro.studies.requirement import (
    data_requirement,
    fit_power_law,
    images_to_reach,
    power_law,
    requirement_text,
)
from vitrepro.tracking.curves import loss_flattened

SIZES = np.array([1500.0, 4500.0, 12000.0, 37500.0])
FAMILIES = {"cnn": "bit_micro", "vit": "vit_micro_p8"}


def _runs(curves: dict[str, tuple[float, float, float]], noise: float = 0.5) -> pd.DataFrame:
    """Three seeds a size and family, top-1 (%) on the given power laws plus seeded noise."""
    rng = np.random.default_rng(0)
    rows = []
    for model, params in curves.items():
        for n in SIZES:
            for seed in range(3):
                top1 = 100 * (1 - power_law(n, *params)) + rng.normal(0, noise)
                rows.append({"model": model, "data.num_train": n, "seed": seed, "value": top1})
    return pd.DataFrame(rows)


def test_the_fit_recovers_a_known_power_law():
    a, b, c = 30.0, 0.5, 0.05
    fitted = fit_power_law(SIZES, power_law(SIZES, a, b, c))
    assert fitted == pytest.approx((a, b, c), rel=1e-3, abs=1e-4)


def test_images_to_reach_inverts_the_curve_and_a_floor_above_the_target_is_never_reached():
    params = (30.0, 0.5, 0.05)
    n = images_to_reach(params, 0.80)
    assert 1 - power_law(n, *params) == pytest.approx(0.80)
    assert images_to_reach(params, 0.96) == math.inf  # error floor 5% > 4%


def test_a_vit_that_needs_more_data_has_a_ratio_above_one_with_its_interval():
    vit, cnn = (12.0, 0.4, 0.0), (2.0e3, 1.2, 0.02)
    table = data_requirement(_runs({"vit_micro_p8": vit, "bit_micro": cnn}), "data.num_train",
                             FAMILIES, [80], draws=200)  # fmt: skip
    row = table.set_index("quantity").loc["ViT/CNN images to reach 80%"]
    expected = images_to_reach(vit, 0.8) / images_to_reach(cnn, 0.8)
    assert row["value"] == pytest.approx(expected, rel=0.3)
    assert row["ci_low"] <= row["value"] <= row["ci_high"] and row["ci_low"] > 1
    assert "80%" in requirement_text(table)


def test_no_crossover_when_the_cnn_is_at_its_ceiling():
    runs = _runs({"vit_micro_p8": (12.0, 0.4, 0.0), "bit_micro": (1e9, 3.0, 0.0)}, noise=0.0)
    runs.loc[runs["model"] == "bit_micro", "value"] = 100.0
    table = data_requirement(runs, "data.num_train", FAMILIES, [80], ceiling=99.0, draws=50)
    crossover = table.set_index("quantity").loc["crossover (ViT ahead)"]
    assert crossover["value"] == math.inf and crossover["note"].startswith("none: the CNN")


def test_a_crossover_is_found_where_the_vit_curve_passes_the_cnns():
    # the CNN is better with little data but saturates at 8% error; the ViT keeps improving
    runs = _runs({"vit_micro_p8": (40.0, 0.5, 0.0), "bit_micro": (5.0, 0.4, 0.08)}, noise=0.2)
    table = data_requirement(runs, "data.num_train", FAMILIES, [85], draws=200)
    crossover = table.set_index("quantity").loc["crossover (ViT ahead)", "value"]
    solved = (
        40.0 / 0.08
    ) ** 2  # 40 n^-0.5 = 5 n^-0.4 + 0.08, approximately, where 5 n^-0.4 is small
    assert SIZES[0] < crossover < 10 * solved


def test_too_few_sizes_give_no_table():
    runs = _runs({"vit_micro_p8": (12.0, 0.4, 0.0), "bit_micro": (2e3, 1.2, 0.02)})
    runs = runs[runs["data.num_train"] <= 4500]
    assert data_requirement(runs, "data.num_train", FAMILIES, [80], draws=10).empty


def _curve(losses: list[float]) -> list[dict[str, float]]:
    return [{"step": 50 * (i + 1), "loss": value} for i, value in enumerate(losses)]


def test_a_loss_is_flat_when_its_last_tenth_is_within_the_tolerance():
    falling = _curve(list(np.linspace(2.0, 0.5, 40)))
    flat = _curve([2.0] * 20 + [0.50] * 16 + [0.49] * 4)
    assert not loss_flattened(falling, 0.05)[0]
    assert loss_flattened(flat, 0.05) == (True, pytest.approx(0.02))
    near_zero = _curve([0.003] * 36 + [0.0015] * 4)  # halved, but by 0.0015 nats
    assert not loss_flattened(near_zero, 0.05)[0]
    assert loss_flattened(near_zero, 0.05, absolute=0.01)[0]
    assert not loss_flattened(_curve([1.0, 1.0]), 0.05)[0]  # too short to tell


@pytest.mark.parametrize("study", ["fig3", "fig4"])
def test_the_pool_runs_the_competence_bar_first_a_pair_of_families_at_a_time(study):
    from vitrepro.studies.pool import load_study, study_points

    points = study_points(load_study(study, "tiny")["profiles"]["tiny"])
    params = [dict(p.params) for p in points]
    assert len(params) == 24 and len({p.slug for p in points}) == 24
    # Every seed at the largest size before any other size; the two families side by side.
    assert {p["pretraining"] for p in params[:6]} == {"glyphs_37k5"}
    assert [p["model"] for p in params[:2]] == ["vit_micro_p8", "bit_micro"]
    assert [p["seed"] for p in params[:6]] == [0, 0, 1, 1, 2, 2]
    assert params[6]["pretraining"] == "glyphs_1k5"  # then the smallest: the other end of the gap


def test_figure5_adopts_figure3s_runs_of_the_same_command(tmp_path):
    from vitrepro.studies.grid import adopt_twins
    from vitrepro.studies.pool import load_study, study_points

    fig3 = study_points(load_study("fig3", "tiny")["profiles"]["tiny"])
    fig5 = study_points(load_study("fig5", "tiny")["profiles"]["tiny"])
    pool, committed = tmp_path / "pool", tmp_path / "committed"
    committed.mkdir()
    for point in fig3[:2]:  # one finished here, one only committed (a new machine)
        (pool / point.slug).mkdir(parents=True)
    for point in fig3[2:]:
        (committed / f"{point.slug}.json").write_text("{}")
    adopted = adopt_twins(fig5, pool, committed)
    shared = {p.slug for p in adopted} & {p.slug for p in fig3}
    # ViT-micro/8 and ResNet-micro at 15,000 steps on 37.5k images, 3 seeds: Figure 3's runs
    largest = [p for p in fig3 if dict(p.params)["pretraining"] == "glyphs_37k5"]
    assert shared == {p.slug for p in largest} and len(shared) == 6
    assert all(a.args == b.args for a, b in zip(adopted, fig5, strict=True))  # same commands
    assert len({p.slug for p in adopted}) == len(fig5) == 21
