"""The study figures and measured-vs-paper tables: pure functions of a results table (from run
records) and the paper's published numbers (``vitrepro/paper/*.csv``).

Each figure has two panels in the layout of the paper's figure: the paper's values (for
reference) and ours, with the profile in the title. At ``profile=full`` our panel also shows
the paper's values as grey hollow markers, since the axes then mean the same thing.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import pandas as pd

from vitrepro.files import save_figure_atomic
from vitrepro.studies.references import (
    Reference,
    fig3_reference,
    fig4_reference,
    fig5_reference,
    table8_reference,
    unpublished_reference,
)
from vitrepro.studies.seeds import competence_text, x_order


def comparison(results: pd.DataFrame, reference: Reference) -> pd.DataFrame:
    """Our value next to the paper's for the same (series, x) labels (``paper`` empty where
    the paper has none; BiT rows of Figure 3 get the band's range)."""
    paper = {(r.series, str(r.x)): r.value for r in reference.points.itertuples()}
    band = {}
    if reference.band is not None:
        band = {
            str(r.x): f"{r.bit_lower:.1f}-{r.bit_upper:.1f}" for r in reference.band.itertuples()
        }
    rows = []
    for r in results.itertuples():
        value = paper.get((r.series, str(r.x)))
        if value is None and r.series == "BiT":
            value = band.get(str(r.x))
        spread = getattr(r, "sd", math.nan)
        rows.append(
            {
                "series": r.series,
                "x": r.x,
                "ours": None if math.isnan(r.value) else round(r.value, 1),
                "sd": None if math.isnan(spread) else round(spread, 1),
                "seeds": getattr(r, "seeds", 1),
                "paper": value if value is None or isinstance(value, str) else round(value, 1),
            }
        )
    return pd.DataFrame(rows, columns=["series", "x", "ours", "sd", "seeds", "paper"])


def _draw(ax, x, group: pd.DataFrame, label: str, **style) -> None:
    """A line through the seed means, with the seeds' standard deviation as error bars."""
    style = {"marker": "o", **style}
    if "sd" in group and group["sd"].notna().any():
        ax.errorbar(x, group["value"], yerr=group["sd"], capsize=3, label=label, **style)
    else:
        ax.plot(x, group["value"], label=label, **style)


def _categorical_lines(ax, points: pd.DataFrame, order: list[str], **style) -> None:
    position = {x: i for i, x in enumerate(order)}
    for series, group in points.groupby("series", sort=False):
        group = group[group["x"].astype(str).isin(position)]
        group = group.assign(pos=group["x"].astype(str).map(position)).sort_values("pos")
        if group.empty:  # none of this series' x values is on the paper's axis
            continue
        legend = group["legend"].iloc[0] if "legend" in group else series
        _draw(ax, group["pos"], group, legend, **style)
    ax.set_xticks(range(len(order)), order)


def _band(ax, band: pd.DataFrame, order: list[str]) -> None:
    position = {x: i for i, x in enumerate(order)}
    band = band[band["x"].isin(position)].assign(pos=lambda b: b["x"].map(position))
    ax.fill_between(band["pos"], band["bit_lower"], band["bit_upper"], color="grey", alpha=0.3)


def _ours_categorical(ax, results: pd.DataFrame, order: list[str]) -> None:
    """Our runs; several BiT models at one x are drawn as a band, as the paper does."""
    bit = results[results["series"] == "BiT"]
    if len(bit) and (bit.groupby("x").size() > 1).any():
        spread = bit.groupby("x")["value"].agg(["min", "max"]).reindex(order).dropna()
        spread = spread.reset_index().rename(columns={"min": "bit_lower", "max": "bit_upper"})
        _band(ax, spread, order)
        ax.plot([], [], color="grey", lw=6, alpha=0.3, label="BiT (range)")
        results = results[results["series"] != "BiT"]
    _categorical_lines(ax, results, order)


def _plot_categorical(reference: Reference, results: pd.DataFrame, axes, full: bool) -> None:
    order = list(dict.fromkeys(reference.points["x"].astype(str)))
    paper_ax, ours_ax = axes
    if reference.band is not None:
        _band(paper_ax, reference.band, order)
        paper_ax.plot([], [], color="grey", lw=6, alpha=0.3, label="BiT (range)")
    _categorical_lines(paper_ax, reference.points, order)
    if full:
        _categorical_lines(ours_ax, reference.points, order, color="grey", mfc="none", alpha=0.5)
    ours = results["x"].astype(str)
    if not ours.isin(order).all():  # a study whose x values the paper does not have
        order = list(dict.fromkeys(ours))
    _ours_categorical(ours_ax, results, order)


def _plot_compute(reference: Reference, results: pd.DataFrame, axes, full: bool) -> None:
    paper_ax, ours_ax = axes
    markers = {"ViT": "o", "ResNet": "s", "Hybrid": "^"}
    points = reference.points.assign(exaflops=reference.x_numeric)
    for family, group in points.groupby("family", sort=False):
        paper_ax.scatter(group["exaflops"], group["value"], marker=markers[family], label=family)
        if full:
            ours_ax.scatter(group["exaflops"], group["value"], marker=markers[family], c="none",
                            edgecolors="grey")  # fmt: skip
    family_of = dict(zip(points["series"], points["family"], strict=False))
    for series, group in results.groupby("series", sort=False):
        family = family_of.get(series, "ViT")
        group = group.sort_values("train_exaflops")
        legend = group["legend"].iloc[0]
        _draw(ours_ax, group["train_exaflops"], group, legend, marker=markers[family])
    for ax in axes:
        ax.set_xscale("log")


def _plot_bars(reference: Reference, results: pd.DataFrame, axes, full: bool) -> None:
    """Table 8 as grouped bars: one group per position embedding, one bar per series."""
    order = list(dict.fromkeys(reference.points["x"].astype(str)))
    for ax, points in zip(axes, (reference.points, results), strict=True):
        series = list(dict.fromkeys(points["series"]))
        width = 0.8 / max(1, len(series))
        for i, name in enumerate(series):
            group = points[points["series"] == name]
            group = group[group["x"].astype(str).isin(order)]
            where = [order.index(str(x)) + (i - (len(series) - 1) / 2) * width for x in group["x"]]
            legend = group["legend"].iloc[0] if "legend" in group and len(group) else name
            error = group.get("sd")
            ax.bar(where, group["value"], width=width, label=legend, yerr=error, capsize=3)
        ax.set_xticks(range(len(order)), order)
        ax.set_ylim(bottom=0)  # bars from zero: a truncated axis exaggerates differences


def _plot_lines(
    reference: Reference, results: pd.DataFrame, axes, full: bool, log_x: bool, scale: float
) -> None:
    """Our runs as lines over a numeric x (training steps, forward FLOPs); the paper's panel
    says where its values are not published."""
    paper_ax, ours_ax = axes
    if reference.points.empty:
        paper_ax.text(
            0.5, 0.5, "published as a plot only:\nno tabulated values to draw\n(none invented)",
            ha="center", va="center", transform=paper_ax.transAxes, fontsize=9, color="grey",
        )  # fmt: skip
        paper_ax.set_xticks([])
        paper_ax.set_yticks([])
    for _, group in results.groupby("series", sort=False):
        group = group.assign(xv=pd.to_numeric(group["x"]) * scale).sort_values("xv")
        _draw(ours_ax, group["xv"], group, group["legend"].iloc[0])
    if log_x:
        ours_ax.set_xscale("log")


@dataclass
class Figure:
    reference: Callable[[], Reference]
    draw: Callable[..., None]


FIGURES = {
    "data_scaling": Figure(fig3_reference, _plot_categorical),
    "fewshot_subsets": Figure(fig4_reference, _plot_categorical),
    "compute_scaling": Figure(fig5_reference, _plot_compute),
    "posemb_ablation": Figure(table8_reference, _plot_bars),
    "tuning": Figure(unpublished_reference, _plot_categorical),
    "classifier_ablation": Figure(
        unpublished_reference, partial(_plot_lines, log_x=False, scale=1.0)
    ),
    "learning_curves": Figure(unpublished_reference, partial(_plot_lines, log_x=False, scale=1.0)),
    "model_shape": Figure(unpublished_reference, partial(_plot_lines, log_x=True, scale=1e-9)),
}


def render(
    study: dict,
    profile_name: str,
    results: pd.DataFrame,
    path: Path,
    gap: pd.DataFrame | None = None,
    fit: dict | None = None,
    note: str | None = None,
) -> tuple[plt.Figure, pd.DataFrame]:
    """Draw the study's figure to ``path`` (PNG) from the seed summary (mean, sd per point);
    ``gap`` (CNN minus ViT with its interval), ``fit`` (competence) and ``note`` (a line under
    the title) annotate it. Returns the figure and the measured-vs-paper table."""
    figure_kind = FIGURES[study["figure"]]
    reference = figure_kind.reference()
    profile, panel = study["profiles"][profile_name], study["profiles"][profile_name].get("panel")
    figure, grid = plt.subplots(2 if panel else 1, 2, figsize=(11, 9.2 if panel else 4.6))
    axes = grid[0] if panel else grid
    if len(results):  # the profile's x order (smallest set first), not the order runs were made
        rank = {x: i for i, x in enumerate(x_order(results, profile))}
        results = results.iloc[results["x"].astype(str).map(rank).argsort(kind="stable")]
    if "legend" in results and results["legend"].nunique() > 10:  # no colour drawn twice
        for ax in grid.flat:
            ax.set_prop_cycle(color=plt.cm.tab20.colors)
    figure_kind.draw(reference, results, axes, full=profile_name == "full")
    axes[0].set_title("paper (published values)", fontsize=10)
    if panel:  # the figure's second panel: its own metric, the paper's matching columns
        second = results.assign(value=results["panel_value"], sd=results["panel_sd"])
        panel_reference = figure_kind.reference(panel["paper"])
        figure_kind.draw(panel_reference, second, grid[1], full=profile_name == "full")
        grid[1][0].set_title(f"paper: {panel['title']}", fontsize=10)
        grid[1][1].set_title(f"ours: {panel['title']}", fontsize=10)
    seeds = int(results["seeds"].max()) if "seeds" in results and len(results) else 1
    spread = f"; mean ± sd of {seeds} seeds" if seeds > 1 else "; one seed"
    axes[1].set_title(f"ours: profile={profile_name} ({profile['scale']}{spread})", fontsize=8,
                      wrap=True)  # fmt: skip
    if profile.get("chance") is not None:
        axes[1].axhline(profile["chance"], color="black", ls=":", lw=1, label="chance")
    if gap is not None and len(gap):  # under the x label: inside, it hid curves or the legend
        text = _gap_text(gap)
        axes[1].annotate(text, (0, 0), xycoords=("axes fraction", axes[1].xaxis.label),
                         xytext=(0, -4), textcoords="offset points", va="top", fontsize=7,
                         family="monospace")  # fmt: skip
        figure.set_figheight(figure.get_figheight() + 0.14 * (text.count("\n") + 1))
    for ax in grid.flat:
        ax.set_xlabel(study["x"])
        ax.set_ylabel(study["y"])
        ax.grid(alpha=0.3)
        entries = len(ax.get_legend_handles_labels()[0])
        if entries > 8:  # many series: the legend under the axes, not over the curves
            ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.16))
            figure.set_figheight(figure.get_figheight() + 0.13 * entries)
        elif entries:
            ax.legend(fontsize=7, loc="best", framealpha=0.8)
    title = f"{study['title']} (profile={profile_name})" + (f"\n{note}" if note else "")
    if fit and fit.get("compute_limited"):
        # wrapped to the figure's width (about 8.5 px a character of a 10-pt title)
        width = int(figure.get_figwidth() * figure.dpi / 8.5)
        title += "\n" + textwrap.fill("compute-limited: " + competence_text(fit), width)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    save_figure_atomic(figure, path)
    plt.close(figure)
    return figure, comparison(results, reference)


def _gap_text(gap: pd.DataFrame) -> str:
    lines = ["CNN - ViT, 95% interval over seeds:"]
    for r in gap.itertuples():
        verdict = "" if r.resolved is True else "  not resolved"
        lines.append(f"  {r.x}: {r.gap:+.1f} [{r.ci_low:+.1f}, {r.ci_high:+.1f}]{verdict}")
    return "\n".join(lines)
