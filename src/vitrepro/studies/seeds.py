"""What a study's seeds say: the mean and spread of every grid point, the CNN-minus-ViT gap with
its 95% interval, and whether the models are competent on the pre-training task.

A study's result is a mean over seeds measured on held-out data at the end of training; one
seed's number is not a result. The interval of a gap is Welch's t interval over the seeds of
the two models (the seeds of one model are independent of the other's).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from scipy import stats

# Competence on the pre-training task, in test top-1 (%): a CNN that learns the small set and a
# ViT that learns the large one; below these a figure is labelled compute-limited.
COMPETENCE = {"cnn_smallest": 60.0, "vit_largest": 85.0}
# Per-run columns that differ between the seeds of one grid point.
SEED_VARYING = (
    "seed", "value", "panel_value", "train_exaflops", "images_seen", "wall_time_s", "pretrain_top1"
)  # fmt: skip


def _interval(values: pd.Series) -> float:
    """Half-width of the 95% t interval of the mean (nan with fewer than two seeds)."""
    n = values.count()
    if n < 2:
        return math.nan
    return float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n))


def x_order(results: pd.DataFrame, profile: dict[str, Any]) -> list[str]:
    """The x labels in the order of the profile's labels (else as they appear)."""
    named = [str(v) for v in ((profile.get("labels") or {}).get(profile["x_axis"]) or {}).values()]
    present = list(dict.fromkeys(results["x"].astype(str)))
    return [x for x in named if x in present] + [x for x in present if x not in named]


def seed_summary(results: pd.DataFrame) -> pd.DataFrame:
    """One row per (series, x): seeds, mean, standard deviation and 95% interval of the value,
    and the mean compute (the per-seed rows stay in the results CSV)."""
    keys = [c for c in results.columns if c not in SEED_VARYING]
    grouped = results.groupby(keys, sort=False, dropna=False)
    summary = grouped["value"].agg(
        seeds="count", value="mean", sd=lambda v: v.std(ddof=1), ci95=_interval
    )
    compute = grouped[["train_exaflops", "images_seen", "wall_time_s", "pretrain_top1"]].mean()
    if "panel_value" in results:  # a figure's second panel (Figure 5's ImageNet)
        panel = grouped["panel_value"].agg(panel_value="mean", panel_sd=lambda v: v.std(ddof=1))
        compute = compute.join(panel)
    return summary.join(compute).reset_index()


def _values(results: pd.DataFrame, model: str, x: str, column: str = "value") -> pd.Series:
    """The per-seed values of one model at one x label."""
    if "model" not in results:
        return pd.Series(dtype=float)
    rows = (results["model"].astype(str) == model) & (results["x"].astype(str) == x)
    return results.loc[rows, column].dropna()


def gaps(results: pd.DataFrame, profile: dict[str, Any]) -> pd.DataFrame:
    """CNN minus ViT at the smallest and the largest x, with Welch's 95% interval over seeds;
    ``resolved`` is False where the interval spans zero."""
    spec = profile.get("gap")
    columns = ["x", "cnn", "vit", "gap", "ci_low", "ci_high", "resolved"]
    if not spec or results.empty:
        return pd.DataFrame(columns=columns)
    order = x_order(results, profile)
    rows = []
    for x in dict.fromkeys([order[0], order[-1]]):
        cnn, vit = _values(results, spec["cnn"], x), _values(results, spec["vit"], x)
        if len(cnn) < 2 or len(vit) < 2:
            rows.append({"x": x, "cnn": cnn.mean(), "vit": vit.mean(), "gap": math.nan})
            continue
        va, vb = cnn.var(ddof=1) / len(cnn), vit.var(ddof=1) / len(vit)
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (len(cnn) - 1) + vb**2 / (len(vit) - 1)) if se else 1.0
        half = float(stats.t.ppf(0.975, df)) * se
        gap = cnn.mean() - vit.mean()
        rows.append(
            {
                "x": x,
                "cnn": round(cnn.mean(), 2),
                "vit": round(vit.mean(), 2),
                "gap": round(gap, 2),
                "ci_low": round(gap - half, 2),
                "ci_high": round(gap + half, 2),
                "resolved": bool(gap - half > 0 or gap + half < 0),
            }
        )
    return pd.DataFrame(rows, columns=columns)


def competence(results: pd.DataFrame, profile: dict[str, Any]) -> dict[str, Any]:
    """Pre-training test top-1 (seed mean) of the CNN at the smallest x and of the ViT at the
    largest, against ``COMPETENCE``; ``{}`` when the profile names no models to check."""
    spec = profile.get("competence")
    if not spec or results.empty or "pretrain_top1" not in results:
        return {}
    order = x_order(results, profile)
    cnn_small = _values(results, spec["cnn"], order[0], "pretrain_top1").mean()
    vit_large = _values(results, spec["vit"], order[-1], "pretrain_top1").mean()
    checks = {
        "cnn_smallest": round(float(cnn_small), 2),
        "vit_largest": round(float(vit_large), 2),
    }
    limited = [k for k, v in checks.items() if not v >= COMPETENCE[k]]
    return {**checks, "thresholds": COMPETENCE, "compute_limited": limited}


def competence_text(fit: dict[str, Any]) -> str:
    """One line for a figure or table: each model's pre-training test top-1 and its threshold."""
    names = {"cnn_smallest": "CNN at the smallest size", "vit_largest": "ViT at the largest"}
    parts = [
        f"{names[k]} {fit[k]:.1f}% ({'below' if k in fit['compute_limited'] else 'at least'} "
        f"{fit['thresholds'][k]:.0f}%)"
        for k in names
    ]
    return "pre-training test top-1: " + ", ".join(parts)
