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

import math
import os
import platform
import resource
import sys
import time
from pathlib import Path
from typing import Any

import torch

from vitrepro.bench.profiles import BF16_USABLE, PROFILES, SCHEMA, SECTIONS, Profile
from vitrepro.bench.report import format_table, ratios, table_rows
from vitrepro.bench.training import DTYPES
from vitrepro.config.cli import OneLineErrors, positive_int


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def cpu_model() -> str:
    """The CPU's name as the kernel reports it (``platform.processor()`` elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# Instruction sets that decide the CPU's matmul rates: fp32 (AVX2, AVX-512) and bf16.
CPU_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def cpu_features() -> list[str]:
    """Which of ``CPU_FEATURES`` the kernel lists for this CPU (empty off Linux)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines()
                  if line.startswith("flags")), [])  # fmt: skip
    return [name for name in CPU_FEATURES if name in flags]


def environment(device: torch.device) -> dict[str, Any]:
    import pytorch_lightning as pl
    import timm

    from vitrepro.files import PROJECT_ROOT
    from vitrepro.tracking.wandb_run import git_revision

    env = {
        "device": device.type,
        "cpu_model": cpu_model(),
        "cpu_features": cpu_features(),
        "revision": git_revision(PROJECT_ROOT),
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


def _matmul(record: dict, profile: Profile, device: torch.device, repeats: int, save) -> None:
    from vitrepro.compute.peak import matmul_tflops

    record["matmul"] = {
        p: matmul_tflops(device, DTYPES[p], profile.matmul_n, repeats, profile.matmul_seconds)
        for p in profile.precisions
    }


def _training(record: dict, profile: Profile, device: torch.device, repeats: int, save) -> None:
    from vitrepro.bench.training import measure_training

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
        save()


def _data(record: dict, profile: Profile, device: torch.device, repeats: int, save) -> None:
    from vitrepro.bench.decode import measure_data

    headline = next(
        (t for t in record.get("training", []) if t["case"]["name"] == profile.headline), None
    )
    record["data"] = measure_data(
        **profile.data,
        repeats=repeats,
        training_images_per_s=headline["lightning_images_per_s"] if headline else None,
        training_case=profile.headline if headline else None,
    )


def _fewshot(record: dict, profile: Profile, device: torch.device, repeats: int, save) -> None:
    from vitrepro.bench.fewshot import measure_fewshot

    record["fewshot"] = measure_fewshot(**profile.fewshot, repeats=repeats)
    record["fewshot"]["goal_s"] = profile.fewshot_goal_s


def _optimisations(
    record: dict, profile: Profile, device: torch.device, repeats: int, save
) -> None:
    from vitrepro.bench.decode import measure_loader
    from vitrepro.bench.optimisations import measure_switch

    record["optimisations"] = []
    for item in profile.switches:
        result = measure_switch(item, device, repeats)
        record["optimisations"].append(result)
        print(f"[bench] {item.name}: speed-up {result['speedup']:.3f}", file=sys.stderr)
        save()
    record["optimisations"] += measure_loader(**profile.loader, repeats=repeats)


def _threads(record: dict, profile: Profile, device: torch.device, repeats: int, save) -> None:
    from vitrepro.bench.threads import measure_threads

    if profile.threads_case is not None and device.type == "cpu":
        record["threads"] = measure_threads(profile.threads_case)


def _without_unusable_bf16(record: dict, profile: Profile, device: torch.device) -> Profile:
    """The profile, less its bf16 cases where this CPU's bf16 products are far below fp32's
    (the probe and the reason are recorded, and the table says so)."""
    if not profile.bf16_probe or device.type != "cpu":
        return profile
    from vitrepro.compute.peak import bf16_probe

    probe = record["bf16_probe"] = bf16_probe()
    if probe["bf16_vs_fp32"] >= BF16_USABLE:
        return profile
    record["skipped"] = {
        "bf16": f"bf16 matmul at {probe['bf16_vs_fp32']:.3f}x fp32's rate (no bf16 matrix "
        "path on this CPU): its cases would take hours",
    }
    return profile.fp32_only()


def _study(record: dict, profile: Profile, device: torch.device, repeats: int, save) -> None:
    from vitrepro.bench.study import measure_study

    if profile.study and device.type == "cpu":
        record["study"] = {}
        measure_study(profile.study, repeats, profile.matmul_n, profile.matmul_seconds,
                      record["study"], save)  # fmt: skip


MEASURE = {
    "matmul": _matmul,
    "training": _training,
    "data": _data,
    "fewshot": _fewshot,
    "optimisations": _optimisations,
    "threads": _threads,
    "study": _study,
}


def run(
    profile: Profile, device: torch.device, repeats: int, sections: tuple[str, ...], out: Path
) -> dict[str, Any]:
    """Measure ``sections`` of ``profile``; the record is rewritten after each section."""
    from vitrepro.files import write_json_atomic

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

    def save() -> None:
        write_json_atomic(out, record)

    torch.set_float32_matmul_precision("high")  # as vitrepro.training.run.run does
    profile = _without_unusable_bf16(record, profile, device)
    wanted = set(sections) | ({"matmul"} if "training" in sections else set())  # MFU's peak
    for name in SECTIONS:
        if name not in wanted:
            continue
        started = time.perf_counter()
        MEASURE[name](record, profile, device, repeats, save)
        record["memory"]["peak_rss_mib"][f"after_{name}"] = peak_rss_mib()
        record.setdefault("seconds", {})[name] = round(time.perf_counter() - started, 1)
        save()
        print(f"[bench] {name} done in {record['seconds'][name]:.1f} s", file=sys.stderr)
    if device.type == "cuda":
        record["memory"]["gpu_peak_allocated_mib"] = round(
            torch.cuda.max_memory_allocated(device) / 2**20, 1
        )
    record["memory"]["peak_rss_mib"]["process"] = peak_rss_mib()
    record["table"] = table_rows(record)
    record["goals"] = [row for row in record["table"] if row["goal"] is not None]
    record["complete"] = True
    save()
    return record


def main(argv: list[str] | None = None) -> None:
    parser = OneLineErrors(prog="python -m vitrepro.bench", description=__doc__.splitlines()[0])
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
        type=positive_int,
        default=None,
        help="repetitions per measurement (default: the profile's)",
    )
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch intra-op threads (default: torch's)",
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
    device = torch.device("cuda" if name == "gpu" else "cpu")
    out = args.out or Path("outputs") / "bench" / f"{name}.json"
    record = run(profile, device, repeats, sections, out)
    print(format_table(record))
    print(f"written to {out}")
    bad = [k for k, v in ratios(record) if not (math.isfinite(v) and v > 0)]
    if bad:
        sys.exit(f"error: non-finite or non-positive ratios: {bad}")


if __name__ == "__main__":
    main()
