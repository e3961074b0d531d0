"""``python -m vitrepro.bench [--profile tiny|cpu|gpu] [--out PATH] [--repeats N]``.

Runs the measurements of this package in one process, prints a table and writes the JSON
record atomically (after every section, with ``"complete": false`` until the end, so a run
cut short still leaves what it measured). Profiles:

- ``tiny``: seconds; ViT-tiny/4 at 32 px, small matmuls, few images; what the tests run.
- ``cpu``: ViT-tiny/4 at 32 px and ViT-B/16 at 224, fp32 and bf16 autocast; 600 500x375 JPEGs;
  1000-way 25-shot few-shot with 768-dim features. A few minutes on 2 cores.
- ``gpu``: as ``cpu`` on one CUDA device in bf16 only (ViT-B/16 eager and ``torch.compile``d).

Without ``--profile``: ``gpu`` when CUDA is available, else ``cpu``. No figure is compared with
a constant measured elsewhere: each is a ratio against a baseline measured in this run.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import resource
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch

from vitrepro.bench.optimisations import Switch, switch
from vitrepro.bench.training import DTYPES, TrainingCase

SCHEMA = "vitrepro.bench/1"
TIME_RATIO_GOAL = 1.03  # Lightning may take at most 3% longer per step than the bare loop
DATA_GOAL = 1.5  # our decode path vs torchvision ImageFolder + PIL, per worker


@dataclass(frozen=True)
class Profile:
    """What one profile measures and how much of it."""

    name: str
    matmul_n: int
    precisions: tuple[str, ...]
    training: tuple[TrainingCase, ...]
    headline: str  # the training case whose rate the data pipeline must feed
    data: dict[str, int] = field(default_factory=dict)
    fewshot: dict[str, Any] = field(default_factory=dict)
    switches: tuple[Switch, ...] = ()  # optimisations, each measured off vs on
    loader: dict[str, int] = field(default_factory=dict)  # DataLoader switches' workload
    repeats: int = 3
    matmul_seconds: float = 0.2  # each timed batch of products at least this long


def _tiny(
    model: str, batch: int, precision: str, warmup: int, steps: int, **extra: Any
) -> TrainingCase:
    """A tiny-profile model (``vit_tiny_p4``, ``bit_tiny``) on 32-px images, 10 classes."""
    label = "fp32" if precision == "32-true" else "bf16"
    return TrainingCase(
        name=f"{model}_32px_b{batch}_{label}",
        model=model,
        recipe="tiny",
        image_size=32,
        num_classes=10,
        batch=batch,
        precision=precision,
        warmup_steps=warmup,
        steps=steps,
        **extra,
    )


_tiny_vit = partial(_tiny, "vit_tiny_p4")
_tiny_bit = partial(_tiny, "bit_tiny")


def _vit_b16(batch: int, precision: str, warmup: int, steps: int, **extra: Any) -> TrainingCase:
    label = "fp32" if precision == "32-true" else "bf16"
    compiled = "_compiled" if extra.get("compile") else ""
    return TrainingCase(
        name=f"vit_b16_224px_b{batch}_{label}{compiled}",
        model="vit_b16",
        recipe="pretrain_in21k",  # Table 3's recipe for ViT-B/16: AdamW, wd 0.03, clip 1
        image_size=224,
        num_classes=1000,
        batch=batch,
        precision=precision,
        warmup_steps=warmup,
        steps=steps,
        **extra,
    )


def _flag(name: str, key: str, case: TrainingCase) -> Switch:
    """A boolean config switch, ``key=false`` against ``key=true``."""
    off, on = {"overrides": [f"{key}=false"]}, {"overrides": [f"{key}=true"]}
    return switch(name, f"{key}=false -> true", case, off, on)


def _switches(vit: TrainingCase, resnet: TrainingCase, compiled: bool) -> tuple[Switch, ...]:
    """Every switchable optimisation on ``vit`` (channels_last on ``resnet``, a convnet)."""
    items = [
        switch(
            "bf16_autocast",
            "trainer.precision=32-true -> bf16-mixed",
            vit,
            {"precision": "32-true"},
            {"precision": "bf16-mixed"},
        ),
        *(
            _flag(name, key, vit)
            for name, key in (
                ("foreach_optimizer", "recipe.optimizer.foreach"),
                ("fused_optimizer", "recipe.optimizer.fused"),
                ("fused_attention", "performance.fused_attention"),
            )
        ),
        _flag("channels_last", "performance.channels_last", resnet),
    ]
    if compiled:  # each repeat pays a compilation: only where a run is long enough to matter
        items.append(
            switch(
                "torch_compile",
                "compile=false -> true",
                vit,
                {},
                {"compile": True, "max_repeats": 2},
            )
        )
    return tuple(items)


BOTH = ("32-true", "bf16-mixed")
PROFILES = {
    "tiny": Profile(
        name="tiny",
        matmul_n=1024,
        precisions=BOTH,
        training=tuple(_tiny_vit(8, p, 1, 3) for p in BOTH),
        headline="vit_tiny_p4_32px_b8_bf16",
        data={"images": 48, "width": 64, "height": 48, "image_size": 32},
        fewshot={"ways": 20, "shots": (5,), "seeds": 3, "dim": 32, "test_per_class": 5},
        switches=_switches(
            _tiny_vit(8, "32-true", 1, 3), _tiny_bit(8, "32-true", 1, 3), compiled=False
        ),
        loader={"images": 48, "width": 64, "height": 48, "image_size": 32},
        repeats=2,
        matmul_seconds=0.05,
    ),
    "cpu": Profile(
        name="cpu",
        matmul_n=2048,
        precisions=BOTH,
        training=(
            *(_tiny_vit(64, p, 2, 6) for p in BOTH),
            # One timed step of 8 images is 10-20 s on 2 cores: long enough to time.
            _vit_b16(8, "32-true", 1, 1, mfu_goal=0.6),
            _vit_b16(8, "bf16-mixed", 1, 1, mfu_goal=0.35),
        ),
        headline="vit_b16_224px_b8_bf16",
        data={"images": 400, "width": 500, "height": 375, "image_size": 224},
        fewshot={"ways": 1000, "shots": (25,), "seeds": 3, "dim": 768, "test_per_class": 5},
        switches=_switches(
            _tiny_vit(64, "32-true", 2, 6), _tiny_bit(64, "32-true", 2, 6), compiled=True
        ),
        loader={"images": 400, "width": 500, "height": 375, "image_size": 224},
    ),
    "gpu": Profile(
        name="gpu",
        matmul_n=8192,
        precisions=("bf16-mixed",),
        training=(
            _tiny_vit(256, "bf16-mixed", 10, 50),
            _vit_b16(128, "bf16-mixed", 10, 30, mfu_goal=0.45),
            _vit_b16(256, "bf16-mixed", 10, 20, compile=True, mfu_goal=0.45, max_repeats=2),
        ),
        headline="vit_b16_224px_b256_bf16_compiled",
        data={"images": 400, "width": 500, "height": 375, "image_size": 224},
        fewshot={"ways": 1000, "shots": (25,), "seeds": 3, "dim": 768, "test_per_class": 5},
        switches=_switches(
            _vit_b16(128, "bf16-mixed", 10, 30), _tiny_bit(256, "bf16-mixed", 10, 50), True
        ),
        loader={"images": 400, "width": 500, "height": 375, "image_size": 224},
    ),
}
SECTIONS = ("matmul", "training", "data", "fewshot", "optimisations")


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def environment(device: torch.device) -> dict[str, Any]:
    import pytorch_lightning as pl
    import timm

    env = {
        "device": device.type,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": pl.__version__,
        "timm": timm.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def run(
    profile: Profile, device: torch.device, repeats: int, sections: tuple[str, ...], out: Path
) -> dict[str, Any]:
    """Measure ``sections`` of ``profile``; the record is rewritten after each section."""
    from vitrepro.tracking import write_json_atomic

    record: dict[str, Any] = {
        "schema": SCHEMA,
        "profile": profile.name,
        "repeats": repeats,
        "sections": list(sections),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "environment": environment(device),
        "complete": False,
        "memory": {"peak_rss_mib": {}},
    }

    def section_done(name: str, started: float) -> None:
        record["memory"]["peak_rss_mib"][f"after_{name}"] = peak_rss_mib()
        record.setdefault("seconds", {})[name] = round(time.perf_counter() - started, 1)
        write_json_atomic(out, record)
        print(f"[bench] {name} done in {record['seconds'][name]:.1f} s", file=sys.stderr)

    torch.set_float32_matmul_precision("high")  # as vitrepro.train.run does
    if "matmul" in sections or "training" in sections:
        from vitrepro.bench.matmul import matmul_tflops

        started = time.perf_counter()
        record["matmul"] = {
            p: matmul_tflops(device, DTYPES[p], profile.matmul_n, repeats, profile.matmul_seconds)
            for p in profile.precisions
        }
        section_done("matmul", started)
    if "training" in sections:
        from vitrepro.bench.training import measure_training

        started = time.perf_counter()
        record["training"] = []
        for case in profile.training:
            peak = record["matmul"][case.precision]["tflops"]
            result = measure_training(case, device, repeats, peak)
            record["training"].append(result)
            print(
                f"[bench] {case.name}: Lightning {result['lightning_images_per_s']:.2f} img/s, "
                f"bare {result['bare_images_per_s']:.2f}, time ratio "
                f"{result['time_ratio_lightning_vs_bare']:.3f}, MFU {result['mfu']:.3f}",
                file=sys.stderr,
            )
            write_json_atomic(out, record)
        section_done("training", started)
    if "data" in sections:
        from vitrepro.bench.data import measure_data

        started = time.perf_counter()
        headline = next(
            (t for t in record.get("training", []) if t["case"]["name"] == profile.headline), None
        )
        record["data"] = measure_data(
            **profile.data,
            repeats=repeats,
            training_images_per_s=headline["lightning_images_per_s"] if headline else None,
            training_case=profile.headline if headline else None,
        )
        section_done("data", started)
    if "fewshot" in sections:
        from vitrepro.bench.fewshot import measure_fewshot

        started = time.perf_counter()
        record["fewshot"] = measure_fewshot(**profile.fewshot, repeats=repeats)
        section_done("fewshot", started)
    if "optimisations" in sections:
        from vitrepro.bench.optimisations import measure_switch
        from vitrepro.data.bench_decode import measure_loader

        started = time.perf_counter()
        record["optimisations"] = []
        for item in profile.switches:
            result = measure_switch(item, device, repeats)
            record["optimisations"].append(result)
            print(f"[bench] {item.name}: speed-up {result['speedup']:.3f}", file=sys.stderr)
            write_json_atomic(out, record)
        record["optimisations"] += measure_loader(**profile.loader, repeats=repeats)
        section_done("optimisations", started)
    if device.type == "cuda":
        record["memory"]["gpu_peak_allocated_mib"] = round(
            torch.cuda.max_memory_allocated(device) / 2**20, 1
        )
    record["memory"]["peak_rss_mib"]["process"] = peak_rss_mib()
    record["table"] = table_rows(record)
    record["goals"] = [row for row in record["table"] if row["goal"] is not None]
    record["complete"] = True
    write_json_atomic(out, record)
    return record


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


def table_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The printed table as data: one row per figure, with its baseline, ratio and goal."""
    rows = []
    for m in record.get("matmul", {}).values():
        rows.append(
            _row(
                f"dense matmul {m['dtype']} n={m['n']}",
                f"{m['tflops']:.3f} TFLOP/s",
                "",
                None,
                None,
                None,
            )
        )
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
    data = record.get("data")
    if data:
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
    fewshot = record.get("fewshot")
    if fewshot:
        shots = "/".join(str(s) for s in fewshot["shots"])
        rows.append(
            _row(
                f"few-shot {fewshot['ways']}-way {shots}-shot x{fewshot['seeds']} seeds, "
                f"d={fewshot['dim']}: batched vs per-problem lstsq (speed-up)",
                f"{fewshot['batched_s']:.3f} s",
                f"{fewshot['per_problem_lstsq_s']:.3f} s",
                fewshot["speedup_vs_per_problem"],
                "same accuracies",
                fewshot["accuracies_agree"],
            )
        )
    for item in record.get("optimisations", []):
        if "skipped" in item:
            rows.append(
                _row(f"switch {item['setting']}: {item['skipped']}", "", "", None, None, None)
            )
            continue
        where = (
            item["case"]["name"]
            if "case" in item
            else f"{item['images']} JPEGs x{item['epochs']} epochs"
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
    memory = record["memory"]
    rows.append(
        _row(
            "peak RSS",
            f"{max(memory['peak_rss_mib'].values(), default=0):.0f} MiB",
            "",
            None,
            None,
            None,
        )
    )
    if "gpu_peak_allocated_mib" in memory:
        rows.append(
            _row(
                "peak GPU memory allocated",
                f"{memory['gpu_peak_allocated_mib']:.0f} MiB",
                "",
                None,
                None,
                None,
            )
        )
    return rows


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m vitrepro.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default=None,
        help="default: gpu when CUDA is available, else cpu",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON record (default: outputs/bench/<profile>.json)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="repetitions per measurement (default: the profile's)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch intra-op threads (default: torch's)"
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections of {','.join(SECTIONS)}",
    )
    args = parser.parse_args(argv)
    cuda = torch.cuda.is_available()
    name = args.profile or ("gpu" if cuda else "cpu")
    profile = PROFILES[name]
    if name == "gpu" and not cuda:
        parser.error("--profile gpu needs a CUDA device; use --profile cpu")
    sections = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"--only: unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")
    repeats = args.repeats or profile.repeats
    if args.threads:
        torch.set_num_threads(args.threads)
    if repeats < 1:
        parser.error("--repeats must be at least 1")
    device = torch.device("cuda" if name == "gpu" else "cpu")
    out = args.out or Path("outputs") / "bench" / f"{name}.json"
    record = run(profile, device, repeats, sections, out)
    print(format_table(record))
    print(f"written to {out}")
    bad = [k for k, v in _ratios(record) if not (math.isfinite(v) and v > 0)]
    if bad:
        sys.exit(f"error: non-finite or non-positive ratios: {bad}")


def _ratios(record: dict[str, Any]) -> list[tuple[str, float]]:
    return [(row["figure"], row["ratio"]) for row in record["table"] if row["ratio"] is not None]


if __name__ == "__main__":
    main()
