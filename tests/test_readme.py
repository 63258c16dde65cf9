"""The README's Python examples run as written (slow: they train real models and a PPO agent)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> str:
    return "\n".join(re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S))


def test_readme_has_examples_for_every_layer():
    code = python_blocks()
    for name in ("TaskFamily", "collect_transitions", "RewardModel", "make_method", "LearnedRewardWrapper",
                 "train_agent"):
        assert name in code, f"the README lost its {name} example"


@pytest.mark.slow
def test_readme_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REWARDSHARE_STORE", str(tmp_path / "store"))
    exec(compile(python_blocks(), str(README), "exec"), {"__name__": "readme"})
    assert (tmp_path / "curve.json").exists() and (tmp_path / "my_model" / "model.safetensors").exists()
