"""``python -m vitrepro.bench`` in its tiny profile: it finishes, writes a valid JSON
record and every ratio is finite and positive. No timing is asserted: speed is measured in the
benchmark, never in tests."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, TINY_VIT, clean_env
from vitrepro.bench.training import (
    TrainingCase,
    bare_loop_seconds,
    compose_case,
    lightning_seconds,
)
from vitrepro.models import build_model


def finite_positive(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_tiny_profile_writes_a_complete_record(tmp_path):
    out = tmp_path / "bench" / "tiny.json"
    # One thread: no stalls waiting for a core that another job keeps busy.
    command = ["--profile", "tiny", "--out", str(out), "--threads", "1"]
    proc = subprocess.run(
        [sys.executable, "-m", "vitrepro.bench", *command],
        cwd=ROOT,
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Lightning vs bare" in proc.stdout and f"written to {out}" in proc.stdout
    record = json.loads(out.read_text())
    assert record["schema"] == "vitrepro.bench/1"
    assert record["profile"] == "tiny" and record["complete"] is True
    assert record["environment"]["torch_threads"] == 1
    assert set(record["matmul"]) == {"32-true", "bf16-mixed"}
    assert all(finite_positive(m["tflops"]) for m in record["matmul"].values())

    assert [t["case"]["precision"] for t in record["training"]] == ["32-true", "bf16-mixed"]
    for t in record["training"]:
        for key in ("bare_images_per_s", "lightning_images_per_s", "time_ratio_lightning_vs_bare"):
            assert finite_positive(t[key]), key
        for key in ("mfu", "mfu_bare", "forward_flops", "matmul_tflops"):
            assert finite_positive(t[key]), key
        assert len(t["bare_s_runs"]) == len(t["lightning_s_runs"]) == t["repeats"] == 2

    data = record["data"]
    for key in ("shards_vs_baseline", "image_folder_vs_baseline", "shards_per_worker_vs_training"):
        assert finite_positive(data[key]), key
    assert data["workers_to_feed_training"] >= 1

    fewshot = record["fewshot"]
    assert finite_positive(fewshot["speedup_vs_per_problem"])
    assert finite_positive(fewshot["products_s"]) and finite_positive(fewshot["vs_products"])
    assert fewshot["accuracies_agree"] and fewshot["accuracy"] == fewshot["baseline_accuracy"]

    switches = {item["switch"]: item for item in record["optimisations"]}
    trained = {"bf16_autocast", "foreach_optimizer", "fused_optimizer", "fused_attention"}
    loaders = {"workers", "persistent_workers", "prefetch_factor", "pin_memory"}
    assert set(switches) == trained | loaders | {"channels_last"}
    assert switches["channels_last"]["case"]["model"] == "bit_tiny"  # a convnet
    assert "skipped" in switches["pin_memory"]  # no GPU to copy to
    measured = [item for item in switches.values() if "skipped" not in item]
    for item in measured:
        for key in ("off_images_per_s", "on_images_per_s", "speedup"):
            assert finite_positive(item[key]), (item["switch"], key)

    assert finite_positive(record["memory"]["peak_rss_mib"]["process"])
    ratios = [row["ratio"] for row in record["table"] if row["ratio"] is not None]
    layouts = record["threads"]["layouts"]  # runs x threads at once, against one run
    cores = record["threads"]["cores"]
    assert {(v["processes"], v["threads_each"]) for v in layouts.values()} == {
        (1, cores), (cores, 1), (cores, cores)}  # fmt: skip
    for layout in layouts.values():
        assert (
            finite_positive(layout["images_per_s"])
            and len(layout["images_per_s_each"]) == (layout["processes"])
        )
    study = record["study"]  # the studies' models on one thread, and one study run
    assert [t["case"]["model"] for t in study["parity"]["models"]] == ["vit_micro_p8", "bit_micro"]
    assert study["parity"]["threads"] == 1
    for t in study["parity"]["models"]:
        assert finite_positive(t["time_ratio_lightning_vs_bare"]) and finite_positive(t["mfu"])
    overhead = study["overhead"]
    assert overhead["transfers"] == 1 and overhead["steps"] == 8  # 20 x (1500 / 37500) ** 0.3
    assert overhead["wall_s"] > overhead["steps_s"] > 0 and overhead["overhead_ratio"] > 1
    assert set(overhead["parts_s"]) >= {"pretrain_startup_s", "transfer_jobs_s", "runner_s"}
    assert overhead["parts_s"]["transfer_jobs_s"] > 0
    (compiled,) = study["compile"]["models"]  # the ViT's run, eager and compiled, whole jobs
    assert compiled["model"] == "vit_micro_p8" and compiled["steps"] == 8
    assert compiled["compiled_job_s"] > 0 and compiled["eager_job_s"] > 0
    assert compiled["compile_wins"] == (compiled["ratio"] < 1)
    # training x2 per case, data x3, few-shot x2 (vs lstsq, vs its products), one per measured
    # switch, two thread layouts, study x2 per model, the study run and compile per model
    assert len(ratios) == 2 * 2 + 3 + 2 + len(measured) + 2 + 2 * 2 + 1 + 1
    assert all(finite_positive(r) for r in ratios)
    assert {row["figure"] for row in record["goals"]} <= {row["figure"] for row in record["table"]}


@pytest.mark.parametrize(
    "option,value,says",
    [
        ("--only", "speed", "unknown section"),
        ("--repeats", "0", "--repeats"),
        ("--threads", "-1", "--threads"),
    ],
)
def test_bad_arguments_stop_with_one_line_before_any_measurement(tmp_path, option, value, says):
    proc = subprocess.run(
        [sys.executable, "-m", "vitrepro.bench", "--profile", "tiny", option, value],
        cwd=ROOT,
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and says in line


@pytest.mark.filterwarnings("ignore:.*val_dataloader.*", "ignore:.*LeafSpec.*")
def test_bare_loop_and_lightning_train_the_same_model_the_same_way():
    # The comparison is fair only if both sides do the same work: same initial weights, batch,
    # optimiser groups, schedule and clipping give the same weights after the same steps.
    case = TrainingCase(
        name="check",
        model="vit_tiny_p4",
        recipe="tiny",
        image_size=16,
        num_classes=10,
        batch=4,
        precision="32-true",
        warmup_steps=1,
        steps=2,
        overrides=tuple(TINY_VIT),
    )
    model_cfg, recipe, _ = compose_case(case)
    generator = torch.Generator().manual_seed(0)
    batch = (torch.randn(4, 3, 16, 16, generator=generator), torch.tensor([0, 1, 2, 3]))
    device = torch.device("cpu")
    _, bare = bare_loop_seconds(case, model_cfg, recipe, batch, device)
    _, lightning = lightning_seconds(case, model_cfg, recipe, batch, device)
    torch.manual_seed(0)
    initial = build_model(model_cfg, case.num_classes, case.image_size).state_dict()
    bare_state, lightning_state = bare.state_dict(), lightning.state_dict()
    assert bare_state.keys() == lightning_state.keys() == initial.keys()
    for key, value in bare_state.items():
        torch.testing.assert_close(lightning_state[key], value, rtol=1e-5, atol=1e-6)
    # Three optimizer steps moved the weights, so the agreement above is not trivial.
    changed = [k for k, v in initial.items() if not torch.allclose(v, bare_state[k])]
    assert len(changed) > len(initial) // 2


@pytest.mark.parametrize(
    "model,switches",
    [
        (TINY_VIT, ["performance.fused_attention=false"]),
        (["model=bit_tiny", "model.channels=[16,32,32,32]", "model.stem_channels=8"],
         ["performance.channels_last=true"]),
        (["model=bit_tiny", "model.channels=[16,32,32,32]", "model.stem_channels=8"],
         ["performance.keep_freed_memory=false"]),
    ],
    ids=["explicit_attention", "channels_last", "without_keep_freed_memory"],
)  # fmt: skip
def test_speed_switches_do_not_change_what_is_learned(model, switches):
    # A speed switch trains the same weights as without it (up to float reassociation; SGD,
    # whose steps are proportional to the gradients, where Adam's sign-like first steps would
    # turn rounding noise in near-zero gradients into full-size updates).
    def trained(extra: list[str]) -> tuple[dict, dict]:
        case = TrainingCase(
            name="switch", model="vit_tiny_p4", recipe="finetune_tiny", image_size=16,
            num_classes=10, batch=4, precision="32-true", warmup_steps=1, steps=2,
            overrides=(*model, *extra),
        )  # fmt: skip
        model_cfg, recipe, performance = compose_case(case)
        batch = (torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0)),
                 torch.tensor([0, 1, 2, 3]))  # fmt: skip
        _, lightning = lightning_seconds(
            case, model_cfg, recipe, batch, torch.device("cpu"), performance
        )
        torch.manual_seed(0)
        initial = build_model(model_cfg, case.num_classes, case.image_size).state_dict()
        return lightning.state_dict(), initial

    (default, initial), (switched, _) = trained([]), trained(switches)
    for key, value in default.items():
        torch.testing.assert_close(switched[key], value, rtol=1e-4, atol=1e-5)
    moved = [k for k in default if k.startswith("backbone.") and
             not torch.allclose(default[k], initial[k])]  # fmt: skip
    assert moved  # the encoder trained, so the agreement is not trivial


def test_the_bench_readmes_tables_are_those_its_records_generate():
    from vitrepro.bench.report import README_BLOCK, with_tables

    folder = ROOT / "experiments" / "bench"
    readme = (folder / "README.md").read_text()
    blocks = README_BLOCK.findall(readme)
    assert blocks, "the bench README shows at least one kept bench record"
    for _, record, _, _ in blocks:
        assert (folder / record).is_file(), record
    assert with_tables(readme, folder) == readme, "run make bench-tables"


def test_the_cpu_profile_without_bf16_keeps_its_fp32_cases():
    from vitrepro.bench.profiles import PROFILES

    cpu = PROFILES["cpu"]
    fp32 = cpu.fp32_only()
    assert fp32.precisions == ("32-true",)
    assert [c.precision for c in fp32.training] == ["32-true", "32-true"]
    assert fp32.headline in {c.name for c in fp32.training}
    assert "bf16_autocast" not in {s.name for s in fp32.switches}
    assert len(fp32.switches) == len(cpu.switches) - 1


def test_a_skipped_section_is_a_row_of_the_table():
    from vitrepro.bench.report import table_rows

    record = {"skipped": {"bf16": "too slow here"}, "memory": {"peak_rss_mib": {"process": 1.0}}}
    figures = [row["figure"] for row in table_rows(record)]
    assert figures[0] == "skipped bf16: too slow here"
