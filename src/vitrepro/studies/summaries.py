"""Read run summaries (``summary.json`` in run directories) into one table.

Studies read nothing else: a table or figure is a pure function of run summaries.
Usage: ``python -m vitrepro.studies.summaries DIR [DIR ...] [--columns KEY ...] [--csv PATH]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from vitrepro.record import config_value, finished_under

BASE_COLUMNS = [
    "model",
    "data",
    "final/val/top1",
    "best/val/top1",
    "images_seen",
    "wall_time_s",
    "git_revision",
]


def load_summaries(roots: list[str | Path], config_keys: list[str] = ()) -> pd.DataFrame:
    """One row per finished run under ``roots``; ``config_keys`` add dotted config fields."""
    rows = []
    for root in roots:
        for summary in finished_under(root):
            row = {
                "model": summary["model"],
                "data": summary["data"],
                "final/val/top1": summary["final"].get("val/top1"),
                "best/val/top1": summary["best"].get("val/top1"),
                "images_seen": summary["images_seen"],
                "wall_time_s": summary["wall_time_s"],
                "git_revision": summary["git_revision"][:12],
                "run_dir": summary["run_dir"],
            }
            row.update({key: config_value(summary["config"], key) for key in config_keys})
            rows.append(row)
    return pd.DataFrame(rows, columns=[*BASE_COLUMNS, *config_keys, "run_dir"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+", help="directories searched for summary.json")
    parser.add_argument("--columns", nargs="*", default=[], help="dotted config keys to add")
    parser.add_argument("--csv", help="also write the table (without run directories) here")
    args = parser.parse_args()
    table = load_summaries(args.roots, args.columns).drop(columns="run_dir")
    print(table.to_string(index=False))
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
