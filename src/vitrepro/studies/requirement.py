"""The data requirement of each family in one number, from a saturating power law per family.

The paper's Section 4.3 finding is that a ViT needs more pre-training data than a ResNet to
reach the same transfer accuracy (Figures 3 and 4). Where the ResNet reaches its ceiling early,
the difference of the gaps under-reads this; the images each family needs to reach a stated
accuracy, and their ratio, say it directly. Each family's error (1 - top-1) over the number of
pre-training images ``n`` is fitted with ``err(n) = a * n**(-b) + c`` (the saturating power law
of the scaling-law literature), and every quantity gets a 95% percentile interval from a
bootstrap that resamples each size's seeds with replacement.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeWarning, curve_fit

BOOTSTRAP = 1000
CROSSOVER_LIMIT = 1e12  # the largest data size a crossover is looked for (images)
COLUMNS = ["quantity", "family", "value", "ci_low", "ci_high", "note"]


def power_law(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a * np.power(n, -b) + c


def fit_power_law(sizes: np.ndarray, errors: np.ndarray) -> tuple[float, float, float]:
    """(a, b, c) of the least-squares fit in error units, with the floor ``c`` in [0, 1) and
    the exponent in (0, 10]. Fitted over sizes relative to the smallest (so that ``a`` starts
    near the first error and the problem is well conditioned), started from the line through
    the end points in log-log space."""
    sizes, errors = np.asarray(sizes, float), np.clip(np.asarray(errors, float), 0.0, 1.0)
    relative = sizes / sizes[0]
    hi, lo = max(errors[0], 1e-4), max(errors[-1], 1e-4)
    b0 = min(9.9, max(0.05, math.log(hi / lo) / math.log(relative[-1])))
    start = (hi, b0, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        try:
            params, _ = curve_fit(
                power_law, relative, errors, p0=start,
                bounds=([0.0, 1e-3, 0.0], [np.inf, 10.0, 0.999]), maxfev=5000,
            )  # fmt: skip
        except RuntimeError:  # no convergence: the start, which passes through the end points
            params = start
    a, b, c = (float(p) for p in params)
    return a * sizes[0] ** b, b, c


def images_to_reach(params: tuple[float, float, float], accuracy: float) -> float:
    """The pre-training images at which the fitted curve reaches ``accuracy`` (a fraction);
    ``inf`` when its floor lies above the error that needs."""
    a, b, c = params
    target = 1.0 - accuracy
    if target <= c or a <= 0:
        return math.inf
    return float((a / (target - c)) ** (1.0 / b))


def crossover(
    cnn: tuple[float, float, float], vit: tuple[float, float, float], start: float
) -> float:
    """The smallest size at or above ``start`` where the ViT's fitted error falls below the
    CNN's (``inf`` when it does not by ``CROSSOVER_LIMIT`` images)."""
    grid = np.geomspace(start, CROSSOVER_LIMIT, 2000)
    ahead = power_law(grid, *vit) < power_law(grid, *cnn)
    return float(grid[np.argmax(ahead)]) if ahead.any() else math.inf


def _resample(values: dict[float, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Each size's seed mean, over seeds drawn with replacement."""
    return np.array([rng.choice(v, size=len(v)).mean() for v in values.values()])


def data_requirement(
    results: pd.DataFrame,
    size_column: str,
    families: dict[str, str],
    accuracies: list[float],
    ceiling: float = 99.0,
    seed: int = 0,
    draws: int = BOOTSTRAP,
) -> pd.DataFrame:
    """Rows of (quantity, family, value, ci_low, ci_high, note): the fitted power law per family
    (``families``: {"cnn": model, "vit": model}), the images each needs to reach each of
    ``accuracies`` (%) and the ViT/CNN ratio, and the crossover size: none when the CNN's mean
    at the largest size is at ``ceiling`` (%) or above, since a ViT cannot pass a model with
    nothing left to gain. ``results`` holds one row per run with ``model``, ``size_column``
    (images) and ``value`` (top-1, %)."""
    per_family = {}
    results = results.assign(**{size_column: pd.to_numeric(results[size_column], errors="coerce")})
    for role, model in families.items():
        runs = results[results["model"].astype(str) == model].dropna(subset=[size_column])
        grouped = runs.groupby(size_column)["value"]
        per_family[role] = {float(n): (v.dropna().to_numpy() / 100.0) for n, v in grouped}
    if any(len(v) < 3 for v in per_family.values()):
        return pd.DataFrame(columns=COLUMNS)
    sizes = {role: np.array(sorted(v)) for role, v in per_family.items()}
    largest = max(s.max() for s in sizes.values())
    rng = np.random.default_rng(seed)

    def fits(draw: bool) -> dict[str, tuple[float, float, float]]:
        out = {}
        for role, values in per_family.items():
            ordered = dict(sorted(values.items()))
            if draw:
                means = _resample(ordered, rng)
            else:
                means = np.array([v.mean() for v in ordered.values()])
            out[role] = fit_power_law(sizes[role], 1.0 - means)
        return out

    point, boot = fits(False), [fits(True) for _ in range(draws)]
    rows = []
    for role, model in families.items():
        a, b, c = point[role]
        rows.append(
            {"quantity": "fit err = a*n^-b + c", "family": model, "value": math.nan,
             "note": f"a={a:.3g} b={b:.3g} c={c:.3g}"}
        )  # fmt: skip
    for accuracy in accuracies:
        needs = {}
        for role, model in families.items():
            value = images_to_reach(point[role], accuracy / 100.0)
            samples = [images_to_reach(f[role], accuracy / 100.0) for f in boot]
            needs[role] = (value, samples)
            rows.append(_row(f"images to reach {accuracy:g}%", model, value, samples, largest))
        ratio = _ratio(needs["vit"][0], needs["cnn"][0])
        ratios = [_ratio(v, c) for v, c in zip(needs["vit"][1], needs["cnn"][1], strict=True)]
        rows.append(_row(f"ViT/CNN images to reach {accuracy:g}%", "ratio", ratio, ratios, None))
    cnn_top = 100.0 * per_family["cnn"][float(sizes["cnn"].max())].mean()
    if cnn_top >= ceiling:
        note = f"none: the CNN is at its ceiling ({cnn_top:.1f}% at the largest size)"
        rows.append({"quantity": "crossover (ViT ahead)", "family": "both", "value": math.inf,
                     "ci_low": math.nan, "ci_high": math.nan, "note": note})  # fmt: skip
        return pd.DataFrame(rows, columns=COLUMNS)
    start = min(s.min() for s in sizes.values())
    cross = crossover(point["cnn"], point["vit"], start)
    samples = [crossover(f["cnn"], f["vit"], start) for f in boot]
    rows.append(_row("crossover (ViT ahead)", "both", cross, samples, largest))
    return pd.DataFrame(rows, columns=COLUMNS)


def _ratio(vit: float, cnn: float) -> float:
    """ViT images over CNN images; ``inf`` when only the ViT never reaches the accuracy, nan
    when neither does (no ratio to give)."""
    if not math.isfinite(cnn):
        return math.nan
    return vit / cnn if cnn > 0 else math.inf


def _row(
    quantity: str, family: str, value: float, samples: list[float], largest: float | None
) -> dict[str, Any]:
    """One quantity with its bootstrap interval; ``inf`` stands for "not reached", and the
    share of bootstrap draws that never reach it is said in the note."""
    samples = [s for s in samples if not math.isnan(s)]
    finite = [s for s in samples if math.isfinite(s)]
    never = 1.0 - len(finite) / max(1, len(samples))
    # nearest-rank percentiles: an interval may end at inf ("not reached"), never at nan
    low, high = (
        np.percentile(samples, [2.5, 97.5], method="nearest") if samples else (math.nan,) * 2
    )
    notes = []
    if never:
        notes.append(f"not reached in {never:.0%} of bootstrap draws")
    if largest is not None and math.isfinite(value) and value > largest:
        notes.append("extrapolated beyond the largest size")
    return {
        "quantity": quantity,
        "family": family,
        "value": value,
        "ci_low": float(low),
        "ci_high": float(high),
        "note": "; ".join(notes),
    }


def requirement_text(table: pd.DataFrame) -> str:
    """The ratios and the crossover in one line, for a figure's title."""
    parts = []
    for row in table.itertuples():
        if row.family == "ratio" and math.isfinite(row.value):
            parts.append(f"{row.quantity}: {row.value:.1f}x [{row.ci_low:.1f}, {row.ci_high:.1f}]")
        elif row.family == "ratio":
            parts.append(f"{row.quantity}: not reached")
        elif row.quantity.startswith("crossover"):
            where = row.note if row.note.startswith("none") else f"{row.value:.3g} images"
            parts.append(f"crossover: {where}")
    return "; ".join(parts)
