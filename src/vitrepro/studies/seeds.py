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

# The competence bar (a study's ``competence`` may set each key): at the largest size, each
# family's pre-training test top-1 (%, seed mean) reaches ``largest_top1`` and its training loss
# has flattened (the mean over the last 10% of steps within ``loss_flat_relative`` of the 10%
# before, or within ``loss_flat_absolute`` nats of it) in every seed; else compute-limited.
COMPETENCE = {"largest_top1": 80.0, "loss_flat_relative": 0.05, "loss_flat_absolute": 0.01}
# Checked models a competence line spells out one by one; past this it counts them and names
# only those under the bar (a figure title must stay readable).
SPELLED_OUT = 4
# Per-run columns that differ between the seeds of one grid point.
SEED_VARYING = (
    "seed", "value", "panel_value", "train_exaflops", "images_seen", "wall_time_s",
    "pretrain_top1", "loss_change", "loss_flat",
)  # fmt: skip


def _interval(values: pd.Series) -> float:
    """Half-width of the 95% t interval of the mean (nan with fewer than two seeds)."""
    n = values.count()
    if n < 2:
        return math.nan
    return float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n))


def x_order(results: pd.DataFrame, profile: dict[str, Any]) -> list[str]:
    """The x labels in the order of the profile's labels; the others smallest first where they
    are numbers (Figure 8's FLOPs, a learning rate), else as they appear."""
    named = [str(v) for v in ((profile.get("labels") or {}).get(profile["x_axis"]) or {}).values()]
    present = list(dict.fromkeys(results["x"].astype(str)))
    others = [x for x in present if x not in named]
    if all(_is_number(x) for x in others):
        others.sort(key=float)
    return [x for x in named if x in present] + others


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


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
    if len(rows) == 2 and not math.isnan(rows[0]["gap"]) and not math.isnan(rows[1]["gap"]):
        groups = [
            _values(results, spec[f], x) for x in (order[0], order[-1]) for f in ("cnn", "vit")
        ]
        rows.append({"x": "interaction", **_interaction(*groups)})
    return pd.DataFrame(rows, columns=columns)


def _interaction(cnn_small, vit_small, cnn_large, vit_large) -> dict[str, Any]:
    """How much more the ViT gained from data than the CNN: the gap at the smallest size minus
    the gap at the largest, with a Welch-Satterthwaite 95% interval over the four groups."""
    groups = (cnn_small, vit_small, cnn_large, vit_large)
    value = (cnn_small.mean() - vit_small.mean()) - (cnn_large.mean() - vit_large.mean())
    parts = [g.var(ddof=1) / len(g) for g in groups]
    se = math.sqrt(sum(parts))
    df = (
        sum(parts) ** 2 / sum(p**2 / (len(g) - 1) for p, g in zip(parts, groups, strict=True))
        if se
        else 1.0
    )
    half = float(stats.t.ppf(0.975, df)) * se
    return {
        "cnn": math.nan,
        "vit": math.nan,
        "gap": round(value, 2),
        "ci_low": round(value - half, 2),
        "ci_high": round(value + half, 2),
        "resolved": bool(value - half > 0 or value + half < 0),
    }


def _checked_groups(
    results: pd.DataFrame, profile: dict[str, Any], largest: str
) -> dict[str, tuple[str, pd.Series]]:
    """The runs the bar checks, by name: ``{name: (display name, row mask)}``. A comparison
    checks its two families at the largest x; an ablation (``each: x``: every x, ``each:
    series``: every series at the largest x) checks each of its variants."""
    spec = profile["competence"]
    at_largest = results["x"].astype(str) == largest
    if spec.get("each") == "x":
        return {
            x: (_model_at(results, x), results["x"].astype(str) == x)
            for x in x_order(results, profile)
        }
    if spec.get("each") == "series":  # ``only``: the series the bar is for, else every one
        names = dict.fromkeys(results.loc[at_largest, "series"].astype(str))
        names = [s for s in names if s in spec.get("only", names)]
        return {s: (s, at_largest & (results["series"].astype(str) == s)) for s in names}
    return {
        family: (name, at_largest & (results["model"].astype(str) == spec[family]))
        for family, name in (("cnn", "CNN"), ("vit", "ViT"))
    }


def _model_at(results: pd.DataFrame, x: str) -> str:
    """The model at a numeric x (a FLOP count): its series and the count in short (``Depth at
    30.7M``); a named x (an embedding, a classifier) names its model itself."""
    try:
        value = float(x)
    except ValueError:
        return x
    series = dict.fromkeys(results.loc[results["x"].astype(str) == x, "series"].astype(str))
    return f"{'/'.join(series)} at {short_count(value)}"


def short_count(value: float) -> str:
    """A count in three digits and a unit: 30691200 -> ``30.7M``."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{unit}"
    return f"{value:g}"


def competence(results: pd.DataFrame, profile: dict[str, Any]) -> dict[str, Any]:
    """Each family (or each variant of an ablation) against the competence bar
    (``COMPETENCE``, or the profile's own values): its pre-training test top-1 (mean over its
    runs) and whether every run's training loss flattened; ``{}`` when the profile sets no bar."""
    spec = profile.get("competence")
    if not spec or results.empty or "pretrain_top1" not in results:
        return {}
    bar = {key: float(spec.get(key, value)) for key, value in COMPETENCE.items()}
    largest = x_order(results, profile)[-1]
    checks: dict[str, Any] = {"checked": {}}
    limited = []
    for key, (name, rows) in _checked_groups(results, profile, largest).items():
        top1 = results.loc[rows, "pretrain_top1"].dropna().mean()
        flat = results.loc[rows, "loss_flat"].dropna() if "loss_flat" in results else []
        change = results.loc[rows, "loss_change"].dropna() if "loss_flat" in results else []
        if len(flat) and not all(flat):  # the change that failed, not a flat run's near zero
            change = change[~flat.reindex(change.index, fill_value=True).astype(bool)]
        checks["checked"][key] = name
        checks[f"{key}_top1"] = round(float(top1), 2)
        checks[f"{key}_loss_change"] = round(float(max(change)), 4) if len(change) else math.nan
        checks[f"{key}_loss_flat"] = bool(len(flat)) and bool(all(flat))
        if not top1 >= bar["largest_top1"]:
            limited.append(f"{key}_top1")
        if not checks[f"{key}_loss_flat"]:
            limited.append(f"{key}_loss_flat")
    where = "every x" if spec.get("each") == "x" else largest
    return {**checks, "largest": where, "thresholds": bar, "compute_limited": limited}


def competence_text(fit: dict[str, Any]) -> str:
    """One line for a figure or table: each family's (or variant's) pre-training test top-1 and
    whether its training loss flattened, against the bar."""
    bar = fit["thresholds"]
    parts, named = [], []
    for family, name in fit["checked"].items():
        top1 = fit[f"{family}_top1"]
        verdict = "below" if f"{family}_top1" in fit["compute_limited"] else "at least"
        flat = "loss flat" if fit[f"{family}_loss_flat"] else "loss not flat"
        change = fit[f"{family}_loss_change"]
        if not math.isnan(change):
            by = ""  # a loss near zero moves by large ratios of almost nothing
            if fit[f"{family}_loss_flat"] and change > bar["loss_flat_relative"]:
                by = f", within the {bar['loss_flat_absolute']:g}-nat tolerance"
            flat += f" ({change:.1%} relative change over the last tenth{by})"
        parts.append(f"{name} {top1:.1f}% ({verdict} {bar['largest_top1']:.0f}%), {flat}")
        if _family_limited(fit, family) or len(fit["checked"]) <= SPELLED_OUT:
            named.append(parts[-1])
    if len(parts) > SPELLED_OUT:  # an ablation of many models: the count, and those under it
        met = f"{len(parts) - len(named)} of {len(parts)} models meet the bar"
        return f"at {fit['largest']}, pre-training test top-1: {met}" + "".join(
            f"; {part}" for part in named
        )
    return f"at {fit['largest']}, pre-training test top-1: " + "; ".join(parts)


def _family_limited(fit: dict[str, Any], family: str) -> bool:
    """Whether a checked family (or variant) misses either half of the bar."""
    return any(key in fit["compute_limited"] for key in (f"{family}_top1", f"{family}_loss_flat"))
