"""Smoke test of benchmarks/collect_speed.py with tiny settings."""

from __future__ import annotations

import json
from pathlib import Path


def test_collect_speed_quick(tmp_path: Path, load_benchmark) -> None:
    module = load_benchmark("collect_speed")
    out = tmp_path / "collect_speed.json"
    result = module.main(["--quick", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["ratio"] == result["ratio"] > 0
    assert len(saved["vector_rates"]) == len(saved["loop_rates"]) == 1
    assert saved["machine"]["cpu_count"] and saved["command"].endswith("--quick --out " + str(out))
