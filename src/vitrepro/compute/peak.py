"""Peak rates, the denominator of model FLOPs utilisation: a GPU's published dense peak (as
Lightning knows it) and this machine's measured matmul rate per dtype (a square ``n x n`` by
``n x n`` product counts ``2 n^3`` FLOPs)."""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

import torch


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock timings cover it (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_tflops(
    device: torch.device,
    dtype: torch.dtype,
    n: int,
    repeats: int = 3,
    min_seconds: float = 0.2,
) -> dict[str, Any]:
    """Median TFLOP/s of ``repeats`` timed batches of ``n x n`` products, each batch long enough
    (``min_seconds``) for the timer, after one warm-up product."""
    generator = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=generator)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=generator)
    out = torch.empty(n, n, device=device, dtype=dtype)
    torch.mm(a, b, out=out)  # warm-up: library initialisation, kernel choice
    synchronize(device)
    start = time.perf_counter()
    torch.mm(a, b, out=out)
    synchronize(device)
    inner = max(1, math.ceil(min_seconds / max(time.perf_counter() - start, 1e-6)))
    rates = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(inner):
            torch.mm(a, b, out=out)
        synchronize(device)
        rates.append(2 * n**3 * inner / (time.perf_counter() - start) / 1e12)
    return {
        "dtype": str(dtype).removeprefix("torch."),
        "n": n,
        "products_per_repeat": inner,
        "tflops": round(statistics.median(rates), 4),
        "tflops_runs": [round(r, 4) for r in rates],
    }


def bf16_probe(n: int = 256, min_seconds: float = 0.05) -> dict[str, Any]:
    """bf16 against fp32 products on this CPU: far below fp32 where torch has no bf16 matrix
    path for it (CPUs without AMX or a bf16 GEMM kernel), where a bf16 case takes hours."""
    cpu = torch.device("cpu")
    fp32 = matmul_tflops(cpu, torch.float32, n, 1, min_seconds)["tflops"]
    bf16 = matmul_tflops(cpu, torch.bfloat16, n, 1, min_seconds)["tflops"]
    return {"n": n, "fp32_tflops": fp32, "bf16_tflops": bf16, "bf16_vs_fp32": bf16 / fp32}


def peak_flops(device: torch.device, precision: str) -> float | None:
    """The device's dense peak FLOP/s at the run's precision (GPUs Lightning knows), else None."""
    if device.type != "cuda":
        return None
    from lightning_fabric.utilities.throughput import get_available_flops

    dtype = torch.bfloat16 if "bf16" in precision else torch.float32
    return get_available_flops(device, dtype)
