"""Each setting of an ablation minus its reference setting, seed by seed.

The paper's ablations (Figure 8's model shapes, Table 8's position embeddings, Figure 9's
class token against global average pooling) read a setting against one reference: the base
model, learned 1-D positions, the class token at its own learning rate. A study profile names
its reference by the results table's columns (``reference: {series: Base}``, ``{x:
1d_learned}``); every other setting is compared with it on the seeds both ran. The difference
is taken seed by seed (the two runs of a seed see their training images in the same order,
which the run's seed fixes), and its interval is the 95% t interval of the mean difference
(seeds minus one degrees of freedom). With a step axis (learning curves) the comparison is at
each run's last evaluation.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from scipy import stats

from vitrepro.studies.seeds import x_order

REFERENCE_KEYS = ("series", "x")  # the results table's columns a reference may name
COLUMNS = [
    "series",
    "x",
    "reference",
    "seeds",
    "value",
    "difference",
    "ci_low",
    "ci_high",
    "resolved",
]


def _last_evaluations(results: pd.DataFrame, step_axis: str) -> pd.DataFrame:
    """Each run's row at its last evaluation (a run is a series and a seed)."""
    last = results.groupby(["series", "seed"])[step_axis].transform("max")
    return results[results[step_axis] == last]


def _is_reference(results: pd.DataFrame, reference: dict[str, Any]) -> pd.Series:
    """Rows whose columns hold every value ``reference`` names (compared as text)."""
    chosen = pd.Series(True, index=results.index)
    for column, value in reference.items():
        chosen &= results[column].astype(str) == str(value)
    return chosen


def paired_differences(results: pd.DataFrame, profile: dict[str, Any]) -> pd.DataFrame:
    """Every setting (series and x) minus the profile's ``reference``, paired by seed: the
    mean difference with its 95% t interval; ``resolved`` is False where it spans zero."""
    reference = profile.get("reference")
    if not reference or results.empty:
        return pd.DataFrame(columns=COLUMNS)
    # a run made without a seed (one run a setting) pairs with the reference's such run
    results = results.assign(seed=results["seed"].fillna(-1))
    if profile.get("x_axis") == "step":
        results = _last_evaluations(results, "step")
    chosen = _is_reference(results, reference)
    baseline = results[chosen].groupby("seed")["value"].mean()
    name = ", ".join(str(value) for value in reference.values())
    rows = []
    for (series, x), group in results[~chosen].groupby(["series", "x"], sort=False):
        ours = group.groupby("seed")["value"].mean()
        difference = (ours - baseline).dropna()  # the seeds both settings ran
        n, mean = len(difference), float(difference.mean()) if len(difference) else math.nan
        half = (
            float(stats.t.ppf(0.975, n - 1) * difference.std(ddof=1) / math.sqrt(n))
            if n >= 2
            else math.nan
        )
        rows.append(
            {
                "series": series,
                "x": x,
                "reference": name,
                "seeds": n,
                "value": round(float(ours.mean()), 2),
                "difference": round(mean, 2),
                "ci_low": round(mean - half, 2),
                "ci_high": round(mean + half, 2),
                "resolved": bool(mean - half > 0 or mean + half < 0),
            }
        )
    table = pd.DataFrame(rows, columns=COLUMNS)
    rank = {x: i for i, x in enumerate(x_order(results, profile))}  # smallest x first
    return table.iloc[table["x"].astype(str).map(rank).argsort(kind="stable")]
