"""Switches that change speed, never results (``performance.*`` in ``conf/train.yaml``); ``make
bench`` measures each against the run with it flipped.

- ``channels_last``: NHWC memory format for the convolutions of BiT ResNets and hybrid stems
  (the weights and every input batch), which oneDNN and cuDNN run faster.
- ``fused_attention``: timm's ``scaled_dot_product_attention`` in every ViT block, or the
  explicit softmax(QK^T)V (which materialises the N x N weights). Relative-position attention
  is always fused.
- DataLoader ``pin_memory`` (``auto``: on GPUs), ``persistent_workers`` and ``prefetch_factor``.
- ``threads``: torch's intra-op CPU threads of one training process (``cpu_threads``). DataLoader
  workers run one thread each (PyTorch sets it in every worker).
- ``keep_freed_memory``: glibc keeps the memory a step frees for the next step instead of
  handing it back to the kernel (``keep_freed_memory``).
- ``render_once``: the embedded data's training and validation images rendered once per run
  (``data/generators/cache.py``) instead of again every epoch; bitwise the same images.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from typing import Any

import torch
from torch import nn

DEFAULTS: dict[str, Any] = {
    "channels_last": False,
    "fused_attention": True,
    "pin_memory": "auto",
    "persistent_workers": True,
    "prefetch_factor": None,
    "threads": "auto",
    "keep_freed_memory": True,
    "render_once": True,
}

# glibc's mallopt parameters: blocks up to 32 MiB (mallopt(3)'s documented maximum) come from
# the heap, and up to 1 GiB of freed heap is kept rather than trimmed.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_MMAP_UP_TO, _TRIM_ABOVE = 32 << 20, 1 << 30

# torch's own default at import: the physical cores, or OMP_NUM_THREADS when it is set.
_TORCH_THREADS = torch.get_num_threads()


def threads_per_process(processes: int, cores: int | None = None) -> int:
    """This host's cores (default: torch's count) split evenly between the processes that
    compute at once: two processes of two threads on two cores ran several times slower
    than two of one."""
    return max(1, (cores or _TORCH_THREADS) // max(1, processes))


def study_layout(gpus: int | None = None) -> int:
    """How many runs a study starts at once on this machine: one per GPU, else one per CPU core
    this process may use, each with one thread (on 2 cores, two one-thread runs gave 1.11x the
    throughput of one two-thread run; two two-thread runs, 0.16x)."""
    gpus = torch.cuda.device_count() if gpus is None else gpus
    if gpus:
        return gpus
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def cpu_threads(setting: int | str, trainer: dict[str, Any]) -> int:
    """The intra-op threads a training process takes: ``setting`` when it is a number; for
    ``auto``, what a launcher gave the process (``OMP_NUM_THREADS``, as the study runner sets it
    for each job it runs at once), else the cores (SLURM's ``--cpus-per-task`` or torch's
    count) split between the data-parallel processes a CPU run starts (``trainer.devices``)."""
    if setting != "auto":
        return int(setting)
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    slurm = os.environ.get("SLURM_CPUS_PER_TASK", "")
    devices = trainer.get("devices")
    cpu = trainer.get("accelerator") == "cpu" or not torch.cuda.is_available()
    on_cpu = cpu and isinstance(devices, int)
    return threads_per_process(devices if on_cpu else 1, int(slurm) if slurm.isdigit() else None)


def keep_freed_memory(enabled: bool) -> bool:
    """Make glibc keep the memory a step frees for the next step (``mallopt``); whether the C
    library took the setting (False when ``enabled`` is false, and off glibc).

    A CPU training step frees and reallocates the same activation buffers every step; glibc's
    own adaptive thresholds still hand much of that memory back to the kernel, which zeroes and
    faults it in again. ResNet-micro's 8 MB maps at 32 px spent a quarter of its one-thread step
    on that (experiments/bench/README.md: process pairs with and without it). Set once, for the
    process's life: glibc's adaptive defaults cannot be restored, so ``False`` leaves them as
    they are. Results are unchanged: only where freed memory goes differs. The process keeps at
    most its own peak memory.
    """
    if not enabled:
        return False
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_UP_TO)) and bool(
        mallopt(_M_TRIM_THRESHOLD, _TRIM_ABOVE)
    )


def prepare_model(model: nn.Module, channels_last: bool, fused_attention: bool) -> nn.Module:
    """The model with its attention kernels and memory format set (in place; returned)."""
    for module in model.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = fused_attention
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def prepare_images(images: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """A batch in the memory format the model's convolutions were given."""
    if channels_last and images.dim() == 4:
        return images.contiguous(memory_format=torch.channels_last)
    return images


def loader_options(performance: dict[str, Any], num_workers: int, gpu: bool) -> dict[str, Any]:
    """DataLoader keyword arguments; persistence and prefetching exist only with workers."""
    pin = performance.get("pin_memory", "auto")
    options: dict[str, Any] = {"pin_memory": gpu if pin == "auto" else bool(pin)}
    if num_workers > 0:
        options["persistent_workers"] = bool(performance.get("persistent_workers", True))
        if performance.get("prefetch_factor") is not None:
            options["prefetch_factor"] = int(performance["prefetch_factor"])
    return options
