"""Property-based fuzzing of the training entry point (hypothesis): random override sets over
every key of the composed config, with wrong types, out-of-range and boundary values, odd
strings and paths, one to three at a time.

Two tiers. The checks tier runs every draw through what ``src/train.py`` does before compute
(its override check, Hydra's composition, the schema and the rules between keys): each either
passes or is one line naming a key. The training tier runs the real ``src/train.py`` on draws
over the keys a tiny run can afford: each trains and writes its summary, or exits 2 with one
line, no traceback and no run left behind. CI runs a fixed number of examples (about a
minute); ``make fuzz`` runs ``FUZZ_EXAMPLES`` of each. A case found becomes a named test in
``test_cli_errors.py``.
"""

from __future__ import annotations

import os
import re

import pytest
from hydra import compose, initialize_config_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from conftest import ROOT, TINY_DATA, TINY_VIT, run_script
from vitrepro.config.cli import _checked_task, check_overrides
from vitrepro.config.errors import ConfigError
from vitrepro.config.schema import RunConfig
from vitrepro.training.run import check_before_compute

TINY = [*TINY_DATA, *TINY_VIT]
CHECKS_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))
TRAIN_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))
SKIP = ("paths.", "hydra.", "logger.", "trainer._target_", "callbacks.", "transfer.")


def _leaf_keys() -> list[str]:
    """Every leaf key of the tiny run's composed config (those a user would type)."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = OmegaConf.to_container(compose("train", overrides=TINY), resolve=False)
    keys: list[str] = []

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            keys.append(prefix[:-1])

    walk(cfg, "")
    return sorted(k for k in keys if not k.startswith(SKIP))


KEYS = _leaf_keys()
ODD = [
    "0", "-1", "1", "2", "3", "1e30", "-1e-30", "nan", "inf", "-inf", "0.0", "1.5", "true",
    "false", "null", "[]", "[1,2]", "{}", "abc", "'with space'", "''", "/nonexistent/path",
    "${oops}", "x=y", "'é€'", "999999999999", "-0.5", "16", "32", "64", "auto",
]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(ODD),
    st.integers(-(2**40), 2**40).map(str),
    st.text(alphabet="abc_./:- 019", min_size=0, max_size=12),
)
OVERRIDES = st.lists(st.tuples(st.sampled_from(KEYS), VALUES), min_size=1, max_size=3)


def _one_line_naming_a_key(text: str) -> bool:
    return "\n" not in text.strip() and re.match(r"^[\w.\[\]+/-]+[=:/ ]", text.strip()) is not None


SLOW_OR_SCOPED = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


@settings(max_examples=CHECKS_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=SLOW_OR_SCOPED)  # fmt: skip
@given(draw=OVERRIDES)
def test_every_drawn_override_set_passes_the_checks_or_is_one_line(draw, capsys):
    capsys.readouterr()  # what an earlier example printed is not this one's
    overrides = [*TINY, *(f"{key}={value}" for key, value in draw)]
    try:
        check_overrides(ROOT / "conf", "train", overrides)
    except SystemExit as stopped:
        assert stopped.code == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("error: ")
        return
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, "paths.run_dir=/nonexistent/run"])

    def checks(cfg: object) -> None:  # what src/train.py's run does before compute
        check_before_compute(OmegaConf.to_container(cfg, resolve=True), inherited=[])

    try:
        _checked_task(checks, cfg, RunConfig)
    except ConfigError as error:
        assert _one_line_naming_a_key(str(error)), str(error)


# Keys a tiny run can afford to train with whatever value passes the checks; sizes bounded.
AFFORDABLE = {
    "model.depth": st.integers(-1, 3),
    "model.num_heads": st.integers(-1, 5),
    "model.hidden_size": st.sampled_from([-8, 0, 8, 30, 32]),
    "model.mlp_size": st.integers(-4, 64),
    "model.patch_size": st.integers(-1, 9),
    "model.classifier": st.sampled_from(["token", "gap", "avg", "", "x"]),
    "model.dropout": st.sampled_from(["0.0", "0.5", "1.0", "-0.1", "abc"]),
    "recipe.steps": st.integers(-2, 3),
    "recipe.global_batch_size": st.integers(-1, 40),
    "recipe.optimizer.lr": st.sampled_from(["0.0", "1e-3", "-1", "nan", "inf", "abc"]),
    "recipe.schedule.warmup_steps": st.integers(-1, 5),
    "recipe.label_smoothing": st.sampled_from(["0.0", "0.1", "1.0", "-0.1"]),
    "data.image_size": st.integers(-1, 20),
    "data.num_train": st.integers(-1, 300),
    "data.num_val": st.integers(-1, 70),
    "data.num_classes": st.integers(-1, 12),
    "seed": st.integers(-2, 2**33),
}
TRAIN_DRAWS = st.dictionaries(
    st.sampled_from(sorted(AFFORDABLE)), st.just(None), min_size=1, max_size=3
).flatmap(lambda keys: st.fixed_dictionaries({k: AFFORDABLE[k] for k in keys}))


@pytest.mark.slow
@settings(max_examples=TRAIN_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(draw=TRAIN_DRAWS)
def test_every_drawn_run_trains_or_exits_2_in_one_line(tmp_path_factory, draw):
    overrides = [*TINY, "logger=csv", *(f"{k}={v}" for k, v in draw.items())]
    result = run_script("train.py", *overrides, output_dir=tmp_path_factory.mktemp("fuzz"))
    assert "Traceback" not in result.stderr, (overrides, result.stderr[-2000:])
    if result.returncode == 0:
        assert result.summary()["status"] == "finished", overrides
        return
    assert result.returncode == 2, (overrides, result.stderr[-2000:])
    lines = [x for x in result.stderr.strip().splitlines() if x.startswith("error: ")]
    assert len(lines) == 1, (overrides, result.stderr[-2000:])
    assert result.run_dirs() == [], overrides  # nothing a study could mistake for a result
