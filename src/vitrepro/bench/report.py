"""The bench record as a table: one row per figure with its baseline measured in the same
run, the ratio and the goal it is checked against; printed, and kept in the JSON record."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from vitrepro.bench.profiles import DATA_GOAL, TIME_RATIO_GOAL
from vitrepro.bench.study import study_rows


def _row(
    figure: str, ours: str, baseline: str, ratio: float | None, goal: str | None, met: bool | None
) -> dict[str, Any]:
    return {
        "figure": figure,
        "ours": ours,
        "baseline": baseline,
        "ratio": ratio,
        "goal": goal,
        "met": met,
    }


def _info(figure: str, ours: str, baseline: str = "") -> dict[str, Any]:
    """A row with no ratio and no goal (a rate, a memory figure)."""
    return _row(figure, ours, baseline, None, None, None)


def _matmul_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        _info(f"dense matmul {m['dtype']} n={m['n']}", f"{m['tflops']:.3f} TFLOP/s")
        for m in record.get("matmul", {}).values()
    ]


def _training_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for t in record.get("training", []):
        case = t["case"]
        label = f"{t['model_name']} {case['image_size']}px b{case['batch']} {case['precision']}"
        label += " compiled" if case["compile"] else ""
        ratio = t["time_ratio_lightning_vs_bare"]
        rows.append(
            _row(
                f"train step {label}: Lightning vs bare (time)",
                f"{t['lightning_images_per_s']:.2f} img/s",
                f"{t['bare_images_per_s']:.2f} img/s",
                ratio,
                f"<= {TIME_RATIO_GOAL}",
                ratio <= TIME_RATIO_GOAL,
            )
        )
        goal = case["mfu_goal"]
        rows.append(
            _row(
                f"MFU {label} (vs matmul {t['matmul_tflops']:.3f} TFLOP/s)",
                f"{t['lightning_tflops']:.3f} TFLOP/s",
                f"bare loop MFU {t['mfu_bare']:.3f}",
                t["mfu"],
                None if goal is None else f">= {goal}",
                None if goal is None else t["mfu"] >= goal,
            )
        )
    return rows


def _data_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    data = record.get("data")
    if not data:
        return []
    rows = []
    base = f"{data['baseline_pil_image_folder_images_per_s']:.1f} img/s"
    for key, name in (("shards", "shards"), ("image_folder", "image folder")):
        ratio = data[f"{key}_vs_baseline"]
        rows.append(
            _row(
                f"data {name} -> {data['image_size']}px tensor, 1 worker vs ImageFolder+PIL",
                f"{data[f'{key}_images_per_s']:.1f} img/s",
                base,
                ratio,
                f">= {DATA_GOAL}",
                ratio >= DATA_GOAL,
            )
        )
    if "training_images_per_s" in data:
        rows.append(
            _row(
                f"data shards per worker vs training ({data['training_case']})",
                f"{data['shards_images_per_s']:.1f} img/s",
                f"{data['training_images_per_s']:.2f} img/s",
                data["shards_per_worker_vs_training"],
                None,
                None,
            )
        )
    return rows


def _fewshot_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    fewshot = record.get("fewshot")
    if not fewshot:
        return []
    shots = "/".join(str(s) for s in fewshot["shots"])
    problem = f"few-shot {fewshot['ways']}-way {shots}-shot x{fewshot['seeds']} seeds"
    rows = [
        _row(
            f"{problem}, d={fewshot['dim']}: batched vs per-problem lstsq (speed-up)",
            f"{fewshot['batched_s']:.3f} s",
            f"{fewshot['per_problem_lstsq_s']:.3f} s",
            fewshot["speedup_vs_per_problem"],
            "same accuracies",
            fewshot["accuracies_agree"],
        )
    ]
    if "vs_products" in fewshot:  # the time of the products it cannot avoid, in the same run
        rows.append(
            _row(
                f"{problem}: batched vs its own matrix products alone",
                f"{fewshot['batched_s']:.3f} s",
                f"{fewshot['products_s']:.3f} s",
                fewshot["vs_products"],
                "<= 1.2x",
                fewshot["vs_products"] <= 1.2,
            )
        )
    goal = fewshot.get("goal_s")
    if goal is not None:  # the cpu profile's case: 1000-way, 25-shot, 768-d, 10k test images
        rows.append(
            _row(
                f"{problem}: batched solve time",
                f"{fewshot['batched_s']:.3f} s",
                "",
                None,
                f"<= {goal} s",
                fewshot["batched_s"] <= goal,
            )
        )
    return rows


def _switch_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for item in record.get("optimisations", []):
        if "skipped" in item:
            rows.append(_info(f"switch {item['setting']}: {item['skipped']}", ""))
            continue
        where = (
            item["case"]["name"]
            if "case" in item
            else (f"{item['images']} JPEGs x{item['epochs']} epochs")
        )
        rows.append(
            _row(
                f"switch {item['setting']} on {where} (speed-up)",
                f"{item['on_images_per_s']:.2f} img/s",
                f"{item['off_images_per_s']:.2f} img/s",
                item["speedup"],
                None,
                None,
            )
        )
    return rows


def _threads_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    threads = record.get("threads")
    if not threads:
        return []
    layouts = threads["layouts"]
    base = layouts["one_run_all_cores"]
    rows = []
    for name, layout in layouts.items():
        figure = (
            f"threads: {layout['processes']} run(s) x {layout['threads_each']} thread(s) at once, "
            f"{threads['case']} (combined)"
        )
        ours = f"{layout['images_per_s']:.1f} img/s"
        if name == "one_run_all_cores":
            rows.append(_info(figure, ours))
        else:
            baseline = f"{base['images_per_s']:.1f} img/s (1 run)"
            rows.append(_row(figure, ours, baseline, layout["vs_one_run"], None, None))
    return rows


def _memory_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    memory = record["memory"]
    rows = [_info("peak RSS", f"{max(memory['peak_rss_mib'].values(), default=0):.0f} MiB")]
    if "gpu_peak_allocated_mib" in memory:
        rows.append(
            _info("peak GPU memory allocated", f"{memory['gpu_peak_allocated_mib']:.0f} MiB")
        )
    return rows


def _skipped_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    return [_info(f"skipped {what}: {why}", "") for what, why in record.get("skipped", {}).items()]


def table_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The printed table as data: one row per figure, with its baseline, ratio and goal."""
    sections = (
        _skipped_rows,
        _matmul_rows,
        _training_rows,
        _data_rows,
        _fewshot_rows,
        _switch_rows,
        _threads_rows,
        lambda record: study_rows(record, _row),
    )
    return [row for section in (*sections, _memory_rows) for row in section(record)]


def format_table(record: dict[str, Any]) -> str:
    env = record["environment"]
    where = env.get("gpu") or f"CPU, {env['torch_threads']} threads"
    lines = [
        f"vitrepro bench, profile {record['profile']}, {where}, torch {env['torch']}, "
        f"median of {record['repeats']} repeats; load average at start {env['load_average']}",
    ]
    header = ("figure", "ours", "baseline", "ratio", "goal", "met")
    cells = [header]
    for row in record["table"]:
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.3f}"
        met = "" if row["met"] is None else ("yes" if row["met"] else "NO")
        cells.append((row["figure"], row["ours"], row["baseline"], ratio, row["goal"] or "", met))
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    for i, c in enumerate(cells):
        lines.append("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(record: dict[str, Any]) -> str:
    """The record's table as Markdown, headed by where and how it was measured (the README's
    bench tables: ``with_tables``)."""
    env = record["environment"]
    cpu = env.get("cpu_model", "unknown CPU")
    features = env.get("cpu_features")
    if features is not None:
        cpu += f" ({', '.join(features) or 'no AVX2'})"
    where = env.get("gpu") or f"{env.get('cpu_count')} cores of an {cpu}"
    revision = env.get("revision", "unknown")[:10]
    lines = [
        f"Profile `{record['profile']}` on {where}, {env['torch_threads']} threads, torch "
        f"{env['torch']}, revision {revision}, {record['started'][:10]}; "
        f"median of {record['repeats']} repeats, load average at start "
        f"{env['load_average'][0]}.",
        "",
        "| figure | ours | baseline | ratio | goal | met |",
        "|---|---|---|---|---|---|",
    ]
    for row in record["table"]:
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.3f}"
        met = "" if row["met"] is None else ("yes" if row["met"] else "**no**")
        cells = (row["figure"], row["ours"], row["baseline"], ratio, row["goal"] or "", met)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def ratios(record: dict[str, Any]) -> list[tuple[str, float]]:
    return [(row["figure"], row["ratio"]) for row in record["table"] if row["ratio"] is not None]


# A README block a kept record generates: the marker names the record, the table follows.
README_BLOCK = re.compile(r"(<!-- bench: (\S+) -->\n)(.*?)(<!-- /bench -->)", re.S)


def with_tables(readme: str, root: Path) -> str:
    """``readme`` with every bench block regenerated from the record it names."""

    def table(match: re.Match) -> str:
        record = json.loads((root / match[2]).read_text())
        return match[1] + markdown(record) + match[4]

    return README_BLOCK.sub(table, readme)


if __name__ == "__main__":  # python -m vitrepro.bench.report experiments/bench/README.md
    for name in sys.argv[1:]:
        path = Path(name).resolve()
        path.write_text(with_tables(path.read_text(), path.parent))
        print(f"bench tables of {path} regenerated")
