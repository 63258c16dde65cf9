"""The few-shot benchmark's configuration: how much feedback does each reuse method need on a held-out goal?

One frozen dataclass with a docstring per field and named profiles (``smoke``, ``quick``, ``full``). Everything that
decides what a result means (the families and their split, the k grid, the thresholds, the pre-training seeds, the
draws per goal) is a field, fixed before any run and hashed into every stored unit, so a stored result is reused only
under the settings that produced it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from rewardshare.errors import InvalidArgumentError

#: The feedback kinds, each counted in its own unit: reward labels, preference pairs, demonstrations (episodes).
FEEDBACK_KINDS: tuple[str, ...] = ("labels", "preferences", "demonstrations")
#: The objective each feedback kind is learned with (:func:`rewardshare.rewardmodels.make_loss`).
LOSS_OF_KIND: dict[str, str] = {"labels": "mse", "preferences": "bradley_terry", "demonstrations": "maxent_irl"}
#: The reference row of every table: the exact posterior over goal cells (knows the teacher's reward family).
BAYES = "bayes_oracle"
LAYOUTS: tuple[str, ...] = ("open", "four_rooms", "maze")

_PRETRAIN = {"steps": 6000, "lr": 2e-3, "items_per_task": 64}
#: MAML-family meta-training with 16-item support sets: support sizes drawn over 1..256 (as CAVIA's) diverged at
#: meta-iteration 1275 with these step sizes on the open room (pre-training seed 0)
_MAML = {"iterations": 1500, "inner_steps": 5, "inner_lr": 0.05, "meta_batch_size": 8, "support_size": 16,
         "query_size": 32, "outer_lr": 1e-3}


def _default_settings() -> dict[str, dict[str, Any]]:
    return {
        "scratch": {},
        "transfer": dict(_PRETRAIN),
        "task_embedding": {**_PRETRAIN, "embedding_dim": 8},
        "trunk_heads": dict(_PRETRAIN),
        "goal_conditioned": dict(_PRETRAIN),
        "maml": dict(_MAML),
        "meta_sgd": dict(_MAML),
        "map_prior": {"base": "meta_sgd", **_MAML, "prior_steps": 100, "max_prior_tasks": 24},
        "latent": {**_PRETRAIN, "embedding_dim": 8},
        "cavia": {**_MAML, "inner_lr": 0.5, "support_size": [1, 256], "context_dim": 8},
        # chosen on validation goals of four rooms (benchmarks/results/amortized_validation.json)
        "amortized": {**_PRETRAIN, "embedding_dim": 8, "encoder_hidden": 128, "encoder_pooling": "mean_sum",
                      "inference": "map_start"},
    }


@dataclass(frozen=True)
class FewShotConfig:
    """Settings of one few-shot benchmark run (every field can be set with ``--set FIELD=JSON``)."""

    families: tuple[str, ...] = ("open:8", "four_rooms:9", "maze:9")
    """Task families as ``layout:size``: every free cell is a goal, ``held_out_fraction`` of them held out."""
    held_out_fraction: float = 0.25
    """Fraction of each family's goals held out (seeded by ``split_seed``)."""
    split_seed: int = 0
    """Seed of the train / held-out split."""
    n_validation: int = 6
    """Train-split goals kept out of pre-training to choose adaptation budgets (never held-out goals)."""
    max_held_out: int | None = None
    """Evaluate at most this many held-out goals per family (``None``: all of them)."""
    pretrain_seeds: tuple[int, ...] = (0, 1, 2)
    """Pre-training seeds: each pre-trains every method again (and draws the validation split again)."""
    draws: int = 1
    """Feedback draws per held-out goal and pre-training seed: a *run* is (goal, pre-training seed, draw); the
    runs of a goal differ in the pre-trained models and in the feedback drawn."""
    ks: tuple[int, ...] = (0, 1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256)
    """Numbers of reward labels; a run's sets are nested (prefixes of one draw), for every feedback kind."""
    preference_ks: tuple[int, ...] = (0, 1, 2, 4, 8, 16, 32, 64)
    """Numbers of preference pairs."""
    demo_ks: tuple[int, ...] = (0, 1, 2, 4)
    """Numbers of demonstrations (whole episodes)."""
    irl_iterations: int = 30
    """Soft value iteration backups of the demonstrations' MaxEnt-IRL likelihood (``gamma = 0.9``: ``0.9^30 = 0.04``,
    beyond the longest shortest path's influence on these 9x9 grids; the default 88 backups cost 3x more)."""
    thresholds: tuple[float, ...] = (0.2, 0.1)
    """EPIC thresholds of feedback-to-threshold (fixed before any run)."""
    feedback: tuple[str, ...] = FEEDBACK_KINDS
    """Feedback kinds to run, from ``labels``, ``preferences``, ``demonstrations``."""
    methods: tuple[str, ...] = ("scratch", "transfer", "task_embedding", "trunk_heads", "goal_conditioned", "maml",
                                "meta_sgd", "map_prior", "latent", "cavia", "amortized")
    """Reuse methods (registry names) run on the first feedback kind; ``bayes_oracle`` is always added."""
    feedback_methods: tuple[str, ...] = ("scratch", "latent")
    """Methods also run on the other feedback kinds."""
    hidden_sizes: tuple[int, ...] = (128, 128, 128)
    """Reward-network widths of every method (large enough to fit the four-rooms source tasks); a method's own
    ``settings`` entry ``hidden_sizes`` overrides it."""
    source_goal_rows: bool = False
    """Also label the four moves out of every source goal (the teacher's 0: the goal absorbs). Uniform labels never
    draw them (no episode continues from the goal), yet EPIC scores them: without them no method fits its own source
    goals to EPIC 0.05 on four rooms or the maze (``benchmarks/latent_capacity.py``). Off by default: every committed
    unit was pre-trained without them (a unit's digest names the field only when it is on)."""
    settings: dict[str, dict[str, Any]] = field(default_factory=_default_settings)
    """Per-method settings passed to ``make_method`` (pre-training steps, MAML iterations, ...)."""
    validation_draws: int = 1
    """Feedback draws per validation goal when choosing a budget."""
    segment_length: int = 5
    """Steps per preference segment."""
    select_steps: tuple[int, ...] = ()
    """Step counts every method's budget selection tries; empty: each method's own candidates."""
    n_source_fit: int = 8
    """Source tasks on which the source-fit EPIC (capacity) is measured."""
    n_boot: int = 2000
    """Bootstrap resamples of every confidence interval."""
    workers: int = 1
    """Processes running units in parallel (not part of the result's meaning)."""

    def __post_init__(self) -> None:
        def bad(name: str, allowed: str) -> InvalidArgumentError:
            return InvalidArgumentError(f"{name}={getattr(self, name)!r} is not allowed: use {allowed}")

        for spec in self.families:
            layout, _, size = str(spec).partition(":")
            if layout not in LAYOUTS or not size.isdigit() or int(size) < 3:
                raise bad("families", f"'layout:size' entries with layout in {LAYOUTS} and size >= 3")
        if not 0 < self.held_out_fraction < 1:
            raise bad("held_out_fraction", "a number in (0, 1)")
        for name in ("ks", "preference_ks", "demo_ks"):
            ks = getattr(self, name)
            if not ks or any(not isinstance(k, int) or k < 0 for k in ks) or list(ks) != sorted(set(ks)):
                raise bad(name, "increasing distinct ints >= 0")
        if not self.thresholds or any(not 0 < t < 1 for t in self.thresholds):
            raise bad("thresholds", "numbers in (0, 1)")
        if not self.feedback or any(k not in FEEDBACK_KINDS for k in self.feedback):
            raise bad("feedback", f"names from {FEEDBACK_KINDS}")
        if not self.pretrain_seeds or len(set(self.pretrain_seeds)) != len(self.pretrain_seeds):
            raise bad("pretrain_seeds", "distinct ints")
        for name in ("draws", "validation_draws", "n_validation", "n_source_fit", "n_boot", "workers",
                     "segment_length", "irl_iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise bad(name, "an int >= 1")
        if self.max_held_out is not None and self.max_held_out < 1:
            raise bad("max_held_out", "an int >= 1 or null")
        if not isinstance(self.source_goal_rows, bool):
            raise bad("source_goal_rows", "true or false")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FewShotConfig:
        """Inverse of :meth:`to_dict` (lists become tuples).

        Raises:
            InvalidArgumentError: On an unknown field or a bad value.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidArgumentError(f"unknown few-shot config fields {unknown}: use fields from {sorted(names)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def unit_digest(self, method: str) -> str:
        """A hash of everything a unit ``(family, seed, method)``'s result depends on: a stored unit is reused only
        when it matches (adding another method or more workers does not invalidate it)."""
        data = self.to_dict()
        # a unit is one family and one seed (named in its path): the lists of the others do not change its result
        for name in ("methods", "feedback_methods", "feedback", "workers", "n_boot", "families", "pretrain_seeds"):
            data.pop(name)
        data["settings"] = data["settings"].get(method, {})
        if not self.source_goal_rows:  # added after units were stored: the default leaves their digests unchanged
            data.pop("source_goal_rows")
        data["unit"] = [method, [k for k in self.feedback if method in self.methods_for(k)]]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def methods_for(self, kind: str) -> tuple[str, ...]:
        """The methods run on feedback ``kind``: all of ``methods`` on the first kind, else ``feedback_methods``."""
        chosen = self.methods if kind == self.feedback[0] else tuple(m for m in self.methods
                                                                     if m in self.feedback_methods)
        return (*chosen, BAYES)

    def ks_for(self, kind: str) -> tuple[int, ...]:
        """The feedback amounts of ``kind``."""
        return {"labels": self.ks, "preferences": self.preference_ks, "demonstrations": self.demo_ks}[kind]


def _quick() -> FewShotConfig:
    pre = {"steps": 300, "lr": 3e-3, "items_per_task": 32}
    maml = {"iterations": 30, "inner_steps": 2, "inner_lr": 0.05, "meta_batch_size": 4, "support_size": 8,
            "query_size": 16, "outer_lr": 1e-3}
    return FewShotConfig(
        families=("open:5",), pretrain_seeds=(0,), draws=1, max_held_out=3, n_validation=2,
        ks=(0, 2, 8, 32), preference_ks=(0, 2, 8), demo_ks=(0, 1, 2),
        feedback=("labels", "preferences", "demonstrations"),
        methods=("scratch", "task_embedding", "meta_sgd", "map_prior", "latent"), hidden_sizes=(32, 32),
        settings={"scratch": {}, "task_embedding": {**pre, "embedding_dim": 4}, "meta_sgd": maml,
                  "map_prior": {"base": "meta_sgd", **maml, "prior_steps": 5, "max_prior_tasks": 4},
                  "latent": {**pre, "embedding_dim": 4, "infer_steps": 30}},
        select_steps=(0, 10, 50), n_source_fit=2, n_boot=200,
    )


def _kinds() -> FewShotConfig:
    """Preferences and demonstrations for scratch and the latent model on one pre-training seed (a time cut: the
    label table of the ``full`` profile runs three seeds and every method)."""
    return FewShotConfig(pretrain_seeds=(0,), methods=("scratch", "latent"), feedback=("preferences", "demonstrations"))


PROFILES: dict[str, Any] = {
    "smoke": lambda: dataclasses.replace(_quick(), feedback=("labels",), methods=("scratch", "latent"),
                                         ks=(0, 4), max_held_out=2, n_boot=50),
    "quick": _quick,
    "full": lambda: FewShotConfig(feedback=("labels",)),
    "kinds": _kinds,
}


def get_fewshot_profile(name: str = "full", **overrides: Any) -> FewShotConfig:
    """A named profile with ``overrides`` applied.

    Raises:
        InvalidArgumentError: On an unknown profile or field.
    """
    if name not in PROFILES:
        raise InvalidArgumentError(f"profile={name!r} is not allowed: use one of {tuple(PROFILES)}")
    base = PROFILES[name]()
    if not overrides:
        return base
    return FewShotConfig.from_dict({**base.to_dict(), **overrides})
