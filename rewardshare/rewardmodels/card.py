"""The model card: a ``README.md`` generated from a saved reward model's ``config.json``.

It answers what someone who finds the directory (in a model store, on a model hub) needs before using it: which env
and task(s) it rewards, how it was learned (reuse method and its sources, feedback kind and amount, the teacher),
how good it is where that was measured, which software wrote it, and what it must not be used for. Facts the
provenance does not record are written as "not recorded", never guessed. The card is documentation: editing it
changes nothing the model does, so the checksum does not cover it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

_NOT_RECORDED = "not recorded"
_TEACHER_KEYS = ("reward", "noise", "flip_prob", "beta", "goal_reward", "step_cost")


def _code(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return f"`{text}`" if "`" not in text else text


def _tasks(meta: Mapping[str, Any]) -> str:
    tasks = [t.get("id", str(t)) if isinstance(t, dict) else str(t) for t in meta.get("tasks") or []]
    if not tasks:
        return _NOT_RECORDED
    shown = ", ".join(f"`{t}`" for t in tasks[:6])
    return shown if len(tasks) <= 6 else f"{len(tasks)} tasks: {shown}, ..."


def _reuse(meta: Mapping[str, Any]) -> tuple[str, str]:
    reuse = meta.get("reuse") if isinstance(meta.get("reuse"), dict) else {}
    method = meta.get("method") or reuse.get("method") or _NOT_RECORDED
    parts = []
    if "n_target_items" in reuse:
        parts.append(f"adapted with {reuse['n_target_items']} target item(s)")
    if isinstance(reuse.get("budget"), dict):
        parts.append("budget " + ", ".join(f"{k}={v}" for k, v in reuse["budget"].items()))
    sources = meta.get("sources") or meta.get("source_tasks")
    if sources:
        srcs = [str(s) for s in sources] if isinstance(sources, list) else [str(sources)]
        source_text = f"{len(srcs)} source task(s): " + ", ".join(f"`{s}`" for s in srcs[:6]) + (
            ", ..." if len(srcs) > 6 else "")
    elif method == "scratch":
        source_text = "none (learned from scratch on its own feedback)"
    else:
        source_text = _NOT_RECORDED
    return str(method) + (f" ({'; '.join(parts)})" if parts else ""), source_text


def _feedback(meta: Mapping[str, Any]) -> tuple[str, str]:
    fb = meta.get("feedback") if isinstance(meta.get("feedback"), dict) else {}
    kind = fb.get("kind") or _NOT_RECORDED
    amount = []
    if fb.get("n_items") is not None:
        amount.append(f"{fb['n_items']} item(s)")
    if fb.get("budget") is not None:
        amount.append(f"{fb['budget']} teacher queries spent")
    teachers = fb.get("teachers") or meta.get("teachers")
    if isinstance(teachers, list) and teachers and isinstance(teachers[0], dict):
        settings = {k: teachers[0][k] for k in _TEACHER_KEYS if k in teachers[0]}
        same = all({k: t.get(k) for k in settings} == settings for t in teachers if isinstance(t, dict))
        teacher = f"{len(teachers)} simulated teacher(s), " + ("" if same else "first: ") + ", ".join(
            f"{k}={v}" for k, v in settings.items())
    else:
        teacher = _NOT_RECORDED
    return f"{kind}, " + (", ".join(amount) if amount else "amount not recorded"), teacher


def _metrics(meta: Mapping[str, Any]) -> tuple[str, str]:
    metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
    held = metrics.get("heldout_epic", meta.get("heldout_epic"))
    held_text = f"{held:.3f}" if isinstance(held, (int, float)) else "not measured"
    train = {k: v for k, v in metrics.items() if k != "heldout_epic" and isinstance(v, (int, float))}
    train_text = ", ".join(f"{k}={v:.4g}" for k, v in sorted(train.items())) or "none recorded"
    return held_text, train_text


def render_card(config: Mapping[str, Any], name: str | None = None) -> str:
    """The model card (Markdown with model-hub front matter) of a model whose sealed config is ``config``.

    Args:
        config: A reward model's ``config.json`` content (see :mod:`rewardshare.rewardmodels.serialization`).
        name: The model's name (its directory or store name), for the title.

    Returns:
        The card's text.
    """
    meta = dict(config.get("provenance") or {})
    arch = dict(config.get("architecture") or {})
    software = dict(config.get("software") or {})
    weights = dict(config.get("weights") or {})
    method, sources = _reuse(meta)
    feedback, teacher = _feedback(meta)
    held, train = _metrics(meta)
    env_id = meta.get("env_id") or _NOT_RECORDED
    tags = ["reward-model", "reinforcement-learning", "rewardshare", *[str(t) for t in meta.get("tags", [])]]
    obs = arch.get("observation_space", {})
    rows = [
        ("env id", _code(env_id) if env_id != _NOT_RECORDED else env_id),
        ("env kwargs", _code(meta["env_kwargs"]) if "env_kwargs" in meta else _NOT_RECORDED),
        ("task(s)", _tasks(meta)),
        ("reuse method", method),
        ("sources", sources),
        ("feedback", feedback),
        ("teacher", teacher),
        ("training seed", str(meta["seed"]) if "seed" in meta else _NOT_RECORDED),
        ("held-out EPIC", held),
        ("training metrics", train),
        ("architecture", f"MLP {arch.get('hidden_sizes')} over {obs.get('type')} observations "
                         f"{obs.get('shape', obs.get('n'))}, next obs={arch.get('use_next_obs')}, "
                         f"context={arch.get('context_dim')}"),
        ("rewardshare / torch", f"{software.get('rewardshare', _NOT_RECORDED)} / "
                                f"{software.get('torch', _NOT_RECORDED)}"),
        ("format", f"{config.get('format')} v{config.get('format_version')}, weights sha256 "
                   f"`{str(weights.get('sha256', ''))[:16]}...`"),
    ]
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    title = name or meta.get("method") or "reward model"
    return f"""---
library_name: rewardshare
tags:
{chr(10).join(f"- {t}" for t in tags)}
---

# {title}: a learned reward model {"for " + env_id if env_id != _NOT_RECORDED else "(env not recorded)"}

A reward function R(s, a[, s']) learned by the `rewardshare` package from a simulated teacher's feedback.
Generated from `config.json` when the model was saved; fields the provenance does not record say so.

| | |
| --- | --- |
{table}

## Intended use

Use it as the reward of the task(s) above, in an env with the same layout, size and observation mode (loading
checks the spaces): train an agent on it, compare it with other reward models (EPIC), or start a new goal of the
same family from it (reuse). Always measure agents on the env's true reward.

## Limits

- It was learned from a *simulated* teacher on small grid worlds, not from people; its errors are those of the
  feedback above (kind, amount, noise).
- Outside the task(s) and spaces it was trained on its predictions mean nothing; a held-out EPIC, when given, was
  measured on held-out goals of the same family only.
- It is a few-layer MLP: no guarantee of being potential-shaped or of preserving optimal policies.

## How to use

```python
from rewardshare.rewardmodels import load_model
model = load_model("path/to/this/directory")          # checks format, checksums, sizes; nothing is unpickled
rewards = model.predict(obs_batch, action_batch)
```

or `rewardshare train-agent --reward path/to/this/directory` (env id and goal are read from the model).

## Files

- `model.safetensors`: the weights (safetensors; sha256 recorded in `config.json`).
- `config.json`: format version, architecture, provenance; sealed by its own checksum.
- `README.md`: this card (not covered by the checksum).
"""


__all__ = ["render_card"]
