"""The small profile (one GPU) at micro scale on the CPU: a grid point of its Figure 3 sweep, as
the runner renders it, with only the sizes shrunk and the device switched."""

from __future__ import annotations

from conftest import ROOT
from vitrepro.studies.grid import expand_grid, load_sweep

MICRO = {
    "trainer.accelerator": "cpu",
    "compile": "false",  # compiling costs ~20 s on a CPU; the switch itself is tested elsewhere
    "data.num_workers": "0",
}
SHRINK = [
    "data.num_train=64",
    "data.num_val=32",
    "data.num_test=32",
    "data.fewshot_datasets.glyphs_transfer.num_train=40",
    "data.fewshot_datasets.glyphs_transfer.num_test=40",
    "evaluation.shots=[1]",
    "evaluation.seeds=1",
    "recipe.global_batch_size=16",
    "recipe.schedule.warmup_steps=1",
    "recipe.steps=2",  # the option's epochs, cut to two steps
    "model.depth=1",
    "model.hidden_size=32",
    "model.mlp_size=64",
    "model.num_heads=2",
    "logger=none",
    "trainer.enable_progress_bar=false",
]
CHILD = [
    "data=glyphs_small",
    "data.task=transfer",
    "data.num_classes=20",
    "data.num_train=40",
    "data.num_val=20",
    "data.num_test=20",
    "recipe=finetune_tiny",
    "recipe.steps=1",
    "recipe.global_batch_size=8",
    "recipe.schedule.warmup_steps=1",
    "evaluation=none",
]


def test_a_small_profile_point_runs_at_micro_scale(train):
    sweep = load_sweep(ROOT / "sweeps" / "small" / "data_scaling.yaml")
    point = next(p for p in expand_grid(sweep) if dict(p.params)["model"] == "vit_s4")
    args = [a for a in point.args if a.split("=")[0] not in MICRO]
    args += [f"{k}={v}" for k, v in MICRO.items()] + SHRINK
    args.append("transfer.glyphs_transfer=[" + ",".join(f"'{o}'" for o in CHILD) + "]")
    result = train(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = result.summary()
    assert summary["config"]["trainer"]["precision"] == "bf16-mixed"
    assert summary["config"]["data"]["num_classes"] == 40
    assert 0 <= summary["transfer"]["glyphs_transfer"]["final"]["test/top1"] <= 1
