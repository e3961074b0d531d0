"""Drawing a study from runs that are not there leaves its committed results as they are."""

from __future__ import annotations

import shutil

from vitrepro.studies.pool import STUDIES, main


def test_collect_only_with_no_finished_run_is_one_line_and_replaces_nothing(tmp_path, capsys):
    results = tmp_path / "experiments"
    shutil.copytree(STUDIES / "fig8_long", results / "fig8_long")
    before = {p.name: p.read_bytes() for p in (results / "fig8_long").iterdir()}
    argv = ["fig8_long", "--collect-only", "--output", str(tmp_path / "out")]
    assert main([*argv, "--results", str(results)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "no finished run under" in error
    assert {p.name: p.read_bytes() for p in (results / "fig8_long").iterdir()} == before
