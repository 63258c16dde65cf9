"""Committed results name no path of the machine that wrote them; the benchmark writes paths relative to itself."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ABSOLUTE = re.compile(r'"(/(?:tmp|work|home|root|Users|var)/[^"]*|[A-Za-z]:\\\\[^"]*)"')


def test_committed_results_hold_no_absolute_paths():
    files = subprocess.run(["git", "ls-files", "benchmarks/results"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    offenders = {f: ABSOLUTE.findall((ROOT / f).read_text(errors="replace"))[:2]
                 for f in files if f.endswith((".json", ".csv", ".md"))}
    assert not {f: hits for f, hits in offenders.items() if hits}


def test_summary_paths_are_relative_to_the_summary(tmp_path, load_benchmark):
    module = load_benchmark("learning_curves")
    assert module.relative_to(tmp_path / "a" / "full" / "report.md", tmp_path / "a") == "full/report.md"
    assert module.relative_to(tmp_path / "x", tmp_path / "a") == "../x"
