"""``make report``: one static HTML page of every study's results, a file that opens anywhere.

For each study with results at the profile (``experiments/<study>/<study>_<profile>*``, as
``make reproduce-*`` writes them) the page shows the paper's panel beside ours (the figure),
the tables with their intervals (seed summary, CNN-minus-ViT gaps, data requirement), the
competence verdict and learning curves, the frozen design (the study's file and the overlay
its runs use) and where the runs were made: machine, wall time, commit and date, from the run
pool's committed records (``experiments/pools``). Figures are embedded, so the page stands
alone.

    python -m vitrepro.studies.report [--profile tiny] [--results experiments] [--out PATH]
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from vitrepro.files import CONF_DIR, PROJECT_ROOT, write_text_atomic

STYLE = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0;font-size:90%}td,th{border:1px solid #ccc;
padding:2px 6px}img{max-width:100%}pre{background:#f6f6f6;padding:.5em;overflow:auto;
font-size:85%}.note{color:#555}"""


TABLES = (
    ("_summary", "mean, spread and 95% interval over seeds"),
    ("_gap", "CNN minus ViT, and the interaction"),
    ("_paired", "each setting minus the reference, paired by seed"),
    ("_requirement", "data requirement (power law, bootstrap over seeds)"),
)


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def _table(path: Path, title: str) -> str:
    frame = pd.read_csv(path)
    return f"<h4>{html.escape(title)}</h4>" + frame.to_html(index=False, float_format="%.3g")


def _commit_date(revision: str) -> str:
    """The commit's date from git (empty outside a clone that holds it)."""
    try:
        done = subprocess.run(["git", "show", "-s", "--format=%cs", revision], cwd=PROJECT_ROOT,
                              capture_output=True, text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def provenance(pool: Path) -> dict[str, Any]:
    """Machines, wall time, commits and dates of a run pool's committed records."""
    records = [json.loads(p.read_text()) for p in sorted(pool.glob("*.json"))]
    machines = sorted({f"{r['machine'].get('cpu')} ({r['machine'].get('cores')} cores)"
                       for r in records if r.get("machine")})  # fmt: skip
    revisions = sorted({r["git_revision"][:7] for r in records if r.get("git_revision")})
    wall = sum(r["summary"].get("wall_time_s") or 0.0 for r in records)
    return {
        "runs": len(records),
        "machines": machines,
        "wall_hours": round(wall / 3600, 2),
        "commits": [f"{rev} ({_commit_date(rev) or 'date unknown'})" for rev in revisions],
    }


def _design(name: str, profile: str, spec: dict[str, Any]) -> str:
    """The study's file (``conf/experiment/study/<name>_<profile>.yaml``: the frozen design),
    and the overlays its grids run with where they are other files."""
    own = CONF_DIR / "experiment" / "study" / f"{name}_{profile}.yaml"
    files = [own] if own.is_file() else []
    text = "" if files else yaml.safe_dump(spec, sort_keys=False, width=100)
    for sweep in spec["sweep"] if isinstance(spec["sweep"], list) else [spec["sweep"]]:
        path = PROJECT_ROOT / sweep
        sweep_file = yaml.safe_load(path.read_text()) if path.is_file() else None
        overlay = ((sweep_file or {}).get("parameters", {}).get("experiment") or {}).get("value")
        file = CONF_DIR / "experiment" / f"{overlay}.yaml" if overlay else None
        if file and file.is_file() and file not in files:
            files.append(file)
    for file in files:
        text += f"\n# {file.relative_to(PROJECT_ROOT)}\n{file.read_text()}"
    return f"<pre>{html.escape(text)}</pre>"


def study_section(folder: Path, results: Path, profile: str, page: Path) -> str | None:
    """One study's part of the page (written to ``page``, which its links are relative to);
    None when it has no results at ``profile``."""
    study = yaml.safe_load((folder / "study.yaml").read_text())
    spec = (study.get("profiles") or {}).get(profile)
    stem = results / folder.name / f"{study['name']}_{profile}"
    if spec is None or not Path(f"{stem}.png").is_file():
        return None
    parts = [f'<h2 id="{folder.name}">{html.escape(study["title"])}</h2>',
             f'<p class="note">{html.escape(spec.get("scale", ""))}. Reading and variants: '
             f'<a href="{html.escape(os.path.relpath(folder / "README.md", page.parent))}">'
             f"{folder.name}/README.md</a></p>",
             _image(Path(f"{stem}.png"))]  # fmt: skip
    for suffix, title in TABLES:
        if Path(f"{stem}{suffix}.csv").is_file():
            parts.append(_table(Path(f"{stem}{suffix}.csv"), title))
    comparison = Path(f"{stem}_vs_paper.md")
    verdicts = [line for line in comparison.read_text().splitlines()
                if line.startswith("Competence")] if comparison.is_file() else []  # fmt: skip
    parts += [f"<p><b>{html.escape(line)}</b></p>" for line in verdicts]
    if Path(f"{stem}_curves.png").is_file():
        parts += ["<h4>learning curves</h4>", _image(Path(f"{stem}_curves.png"))]
    pool = results / "pools" / spec.get("runs", study["name"]) / profile
    if pool.is_dir():
        made = provenance(pool)
        shared = spec.get("runs", study["name"])
        parts.append(f"<p class=\"note\">run pool <code>{html.escape(shared)}</code> (shared by "
                     f"the studies that name it): {made['runs']} runs on "
                     f"{', '.join(made['machines'])}; {made['wall_hours']} hours of pre-training; "
                     f"commits {', '.join(made['commits'])}</p>")  # fmt: skip
    design = _design(study["name"], profile, spec)
    parts += ["<details><summary>frozen design</summary>", design, "</details>"]
    return "\n".join(parts)


def build_report(results: Path, profile: str, page: Path) -> str:
    """The page (to be written to ``page``): every study under ``results`` with results at
    ``profile``."""
    sections = [s for folder in sorted(results.glob("*/study.yaml"))
                if (s := study_section(folder.parent, results, profile, page))]  # fmt: skip
    name = html.escape(profile)
    head = (f"<!doctype html><meta charset=utf-8><title>vitrepro: {name} profile</title>"
            f"<style>{STYLE}</style><h1>vitrepro results, {name} profile</h1>")  # fmt: skip
    if not sections:
        return head + "<p>No study has results at this profile yet (make reproduce-fig3).</p>"
    return head + "\n<hr>\n".join(sections)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vitrepro.studies.report")
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--results", type=Path, default=PROJECT_ROOT / "experiments")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "outputs/report/index.html")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, build_report(args.results, args.profile, args.out))
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
