"""Smoke test of benchmarks/collect_speed.py with tiny settings."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "collect_speed.py"


def test_collect_speed_quick(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("collect_speed", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "collect_speed.json"
    result = module.main(["--quick", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["ratio"] == result["ratio"] > 0
    assert len(saved["vector_rates"]) == len(saved["loop_rates"]) == 1
    assert saved["machine"]["cpu_count"] and saved["command"].endswith("--quick --out " + str(out))
