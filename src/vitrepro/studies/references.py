"""The paper's published values behind each study figure, in long form (series, x, value), read
from ``vitrepro/paper/*.csv`` (one CSV per table or figure read-off)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

PAPER = Path(__file__).resolve().parents[1] / "paper"
AVERAGE5 = ["imagenet", "cifar10", "cifar100", "pets", "flowers102"]


@dataclass
class Reference:
    """The paper's values in long form (series, x, value) plus what a figure draws extra."""

    points: pd.DataFrame
    band: pd.DataFrame | None = None  # Figure 3's BiT range per pre-training dataset
    x_numeric: pd.Series | None = None  # Figure 5's exaFLOPs per point


def fig3_reference() -> Reference:
    """Table 5: ImageNet top-1 after fine-tuning, per model and pre-training dataset; the BiT
    band read off Figure 3."""
    table = pd.read_csv(PAPER / "table5_fig3_by_pretrain_dataset.csv")
    points = table.rename(columns={"model": "series", "pretrain": "x", "imagenet": "value"})
    band = pd.read_csv(PAPER / "fig3_bit_band_readoff.csv").rename(columns={"pretrain": "x"})
    return Reference(points[["series", "x", "value"]], band=band)


def fig4_reference() -> Reference:
    """Figure 4's ImageNet linear 5-shot values (read off the figure) per model and subset."""
    table = pd.read_csv(PAPER / "fig4_fewshot_subsets_readoff.csv")
    points = table.melt(id_vars="model", var_name="x", value_name="value")
    points["x"] = points["x"].str.removeprefix("jft_")
    return Reference(points.rename(columns={"model": "series"}))


def fig5_reference(columns: list[str] = AVERAGE5) -> Reference:
    """Table 6: transfer accuracy per model and epochs, the mean of ``columns`` (Average-5:
    ImageNet, CIFAR-10/100, Pets, Flowers; Figure 5's right panel: ImageNet), with the
    pre-training exaFLOPs."""
    table = pd.read_csv(PAPER / "table6_fig5_scaling.csv")
    points = pd.DataFrame(
        {
            "series": table["model"],
            "x": table["epochs"].astype(str),
            "value": table[list(columns)].mean(axis=1),
            "family": table["family"],
        }
    )
    return Reference(points, x_numeric=table["exaflops"].astype(float))


def table8_reference() -> Reference:
    """Table 8: ImageNet linear 5-shot of ViT-B/16 per kind of position embedding, added once
    after the stem (``default_stem``) or at every layer's input (learned or shared)."""
    table = pd.read_csv(PAPER / "table8_posemb_ablation.csv")
    placements = {
        "default_stem": "ViT-B/16",
        "every_layer": "ViT-B/16, every layer",
        "every_layer_shared": "ViT-B/16, every layer (shared)",
    }
    points = table.melt(id_vars="pos_emb", value_vars=list(placements), var_name="placement")
    points = points.dropna().assign(
        series=lambda t: t["placement"].map(placements), value=lambda t: 100 * t["value"]
    )
    return Reference(points.rename(columns={"pos_emb": "x"})[["series", "x", "value"]])


def unpublished_reference() -> Reference:
    """Figures the paper publishes only as plots, with no table and no read-off values here."""
    return Reference(pd.DataFrame(columns=["series", "x", "value"]))
