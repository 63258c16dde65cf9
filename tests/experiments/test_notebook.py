"""The quickstart notebook runs top to bottom (nbmake, in a subprocess, with its tiny budgets)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(importlib.util.find_spec("nbmake") is None, reason="nbmake (dev extra) is not installed")
def test_quickstart_notebook_executes(tmp_path):
    nb = ROOT / "notebooks" / "quickstart.ipynb"
    assert nb.exists()
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbmake", "--nbmake-timeout=300", str(nb), "-q", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "1 passed" in proc.stdout
