"""Interactive feedback during training: the teacher is asked about the agent's own recent behaviour, every few
thousand steps, and the reward the agent trains on is updated from the growing feedback (the PEBBLE / Hejna & Sadigh
setting), within one total feedback budget::

    options = InteractiveFeedback(every=2048, budget=64)                  # 64 reward labels in rounds of 2048 steps
    curve = train_agent("ppo", task, start_model, interactive=options)    # start_model: a RewardModel

    # reuse: each round adapts the method's start model to all feedback so far (latent inference, then steps)
    options = InteractiveFeedback(every=2048, budget=64, method=latent, adaptation=AdaptationBudget(100, 1e-3))

- :class:`InteractiveFeedback`: the settings (when, how much, which kind, how the model is updated).
- :class:`InteractiveFeedbackCallback`: the SB3 callback doing it, usable in your own SB3 loop when the training env
  has a :class:`~rewardshare.agents.recent_transitions.TransitionRecorder` under a
  :class:`~rewardshare.wrappers.LearnedRewardVecEnvWrapper`.

A round runs at the end of the first rollout that reaches ``k * every`` env steps (PPO: ``n_steps x n_envs`` steps;
DQN: ``train_freq`` vector steps), so the rollout just collected is complete and the updates that follow use the new
reward: PPO's next rollouts are collected with it, and DQN's replay buffer is relabelled with it
(:func:`~rewardshare.agents.relabel.relabel_replay_buffer`). Rounds are planned at ``every, 2 * every, ...`` strictly
before ``total_timesteps`` (a round at the very end would train nothing); a rollout that passes several planned steps
runs one round with their queries.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from rewardshare.agents.recent_transitions import TransitionRecorder
from rewardshare.agents.relabel import relabel_replay_buffer, reward_wrapper_of
from rewardshare.feedback import Preferences, Teacher, Transitions
from rewardshare.rewardmodels import RewardModel, make_loss
from rewardshare.rewardmodels.reuse import AdaptationBudget, ReuseMethod, finetune_many
from rewardshare.wrappers import LearnedRewardWrapper, RewardOptions, as_reward_source

#: Feedback kinds asked during training: reward labels of single transitions, or preferences between segments.
INTERACTIVE_KINDS: tuple[str, ...] = ("labels", "preferences")
#: The loss each kind is learned with.
LOSS_OF_KIND: dict[str, str] = {"labels": "mse", "preferences": "bradley_terry"}
DEFAULT_ADAPTATION = AdaptationBudget(steps=300, lr=1e-2)
Adaptation = AdaptationBudget | Mapping[int, AdaptationBudget] | Callable[[int], AdaptationBudget]


def _positive_int(name: str, value: Any, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} is not allowed: use an int >= 1{' or None' if allow_none else ''}")


@dataclass(frozen=True)
class InteractiveFeedback:
    """When and how the teacher is asked during training, and how the reward model is updated.

    Raises:
        ValueError: On a non-positive ``every``/``budget``/``per_round``/``window``/``segment_length``, an unknown
            ``kind``, or an empty ``adaptation`` mapping; the message names the field.
        TypeError: On an ``adaptation``, ``method`` or ``teacher`` of the wrong kind.
    """

    every: int
    """Env steps (over all sub-envs) between feedback rounds, >= 1."""
    budget: int
    """Total queries over the run (labels, or comparisons: a skipped one is charged too), >= 1; never exceeded."""
    per_round: int | None = None
    """Queries per round; ``None`` spreads what is left evenly over the rounds left (earlier rounds get the extra)."""
    kind: str = "labels"
    """``"labels"`` (reward labels of recent transitions) or ``"preferences"`` (pairs of segments of recent
    episodes)."""
    window: int | None = None
    """Recent env steps the queries are drawn from, uniformly; ``None``: ``every`` (the steps since the last round)."""
    segment_length: int = 5
    """Steps per preference segment (a segment lies within one episode)."""
    adaptation: Adaptation = DEFAULT_ADAPTATION
    """How far each round adapts: an :class:`~rewardshare.rewardmodels.reuse.AdaptationBudget`, a mapping
    ``{items: budget}`` (the entry of the largest key <= the feedback items so far, e.g. budgets chosen with
    :func:`~rewardshare.rewardmodels.reuse.select_budget` per ``k``), or a function ``items -> budget``."""
    method: ReuseMethod | None = None
    """A (pre-trained) reuse method: each round runs ``method.adapt(all feedback, budget, task)`` from the method's
    start model. ``None``: each round fine-tunes the current reward model on all feedback so far."""
    teacher: Teacher | None = None
    """The teacher asked (charged against its own budget too). ``None``: ``train_agent`` builds the dense noiseless
    ``Teacher(task, seed=seed, **teacher_kwargs)``. A teacher keeps what it spent: give each run a fresh one."""
    on_round: Callable[[int, RewardModel, Any], None] | None = None
    """Called after each round with ``(timesteps, new model, feedback dataset so far)``, e.g. to score the model."""

    def __post_init__(self) -> None:
        _positive_int("every", self.every)
        _positive_int("budget", self.budget)
        _positive_int("per_round", self.per_round, allow_none=True)
        _positive_int("window", self.window, allow_none=True)
        _positive_int("segment_length", self.segment_length)
        if self.kind not in INTERACTIVE_KINDS:
            raise ValueError(f"kind={self.kind!r} is not allowed: use one of {INTERACTIVE_KINDS}")
        if isinstance(self.adaptation, Mapping):
            if not self.adaptation or not all(
                isinstance(k, int) and k >= 0 and isinstance(v, AdaptationBudget) for k, v in self.adaptation.items()
            ):
                raise ValueError(
                    f"adaptation={self.adaptation!r} is not allowed: a mapping needs int keys >= 0 (feedback items) "
                    "and AdaptationBudget values, at least one"
                )
        elif not isinstance(self.adaptation, AdaptationBudget) and not callable(self.adaptation):
            raise TypeError(
                f"adaptation={self.adaptation!r} is not allowed: use an AdaptationBudget, a mapping {{items: "
                "AdaptationBudget}} or a function items -> AdaptationBudget"
            )
        if self.method is not None and not isinstance(self.method, ReuseMethod):
            raise TypeError(f"method={type(self.method).__name__} is not allowed: use a ReuseMethod or None")
        if self.teacher is not None and not isinstance(self.teacher, Teacher):
            raise TypeError(f"teacher={type(self.teacher).__name__} is not allowed: use a feedback.Teacher or None")

    @property
    def loss(self) -> str:
        """The objective of :attr:`kind` (``"mse"`` or ``"bradley_terry"``)."""
        return LOSS_OF_KIND[self.kind]

    def budget_for(self, n_items: int) -> AdaptationBudget:
        """The adaptation budget for ``n_items`` feedback items (see :attr:`adaptation`)."""
        if isinstance(self.adaptation, AdaptationBudget):
            return self.adaptation
        if isinstance(self.adaptation, Mapping):
            keys = [k for k in sorted(self.adaptation) if k <= n_items] or [min(self.adaptation)]
            return self.adaptation[keys[-1]]
        budget = self.adaptation(n_items)
        if not isinstance(budget, AdaptationBudget):
            raise TypeError(f"adaptation({n_items}) returned {budget!r}: it must return an AdaptationBudget")
        return budget

    def planned_rounds(self, total_timesteps: int) -> list[int]:
        """The env steps at which rounds are planned: ``every, 2 * every, ...`` below ``total_timesteps``."""
        return list(range(self.every, int(total_timesteps), self.every))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings (the method and teacher as their configs, a budget function by its name)."""
        if isinstance(self.adaptation, AdaptationBudget):
            adaptation: Any = self.adaptation.to_dict()
        elif isinstance(self.adaptation, Mapping):
            adaptation = {str(k): v.to_dict() for k, v in sorted(self.adaptation.items())}
        else:
            adaptation = getattr(self.adaptation, "__qualname__", repr(self.adaptation))
        return {
            "every": self.every, "budget": self.budget, "per_round": self.per_round, "kind": self.kind,
            "window": self.window, "segment_length": self.segment_length, "adaptation": adaptation,
            "method": None if self.method is None else self.method.config(),
            "teacher": None if self.teacher is None else self.teacher.config(),
        }


class InteractiveFeedbackCallback(BaseCallback):
    """Asks the teacher about the agent's recent transitions in rounds, updates the reward model, swaps it in.

    Each round (see the module docstring for when): ask ``q`` queries (never more than the budget or the teacher
    has left) about the :class:`~rewardshare.agents.recent_transitions.TransitionRecorder`'s window, add the answers
    to the feedback dataset, update the model (``method.adapt`` from the method's start model, or fine-tuning the
    current model, on *all* feedback so far), then give the new model to every reward wrapper of the training env
    (its table rebuilt), to ``eval_envs``, and relabel an off-policy agent's replay buffer. The RNG states of python,
    numpy and torch are restored after a round, so the agent's own random stream does not depend on it.

    Args:
        options: The settings.
        teacher: The teacher asked.
        model: The reward model the training env starts with (fine-tuned from when ``options.method`` is ``None``).
        seed: Seeds which transitions and segments are asked about.
        eval_envs: :class:`~rewardshare.wrappers.LearnedRewardWrapper` envs that also get each new reward (e.g.
            evaluation envs reporting the learned return); the first one's table is shared by the rest.
        record: A dict (e.g. a learning curve's metadata entry) that receives ``"rounds"`` (one entry per round:
            ``timesteps``, ``queries``, ``items``, ``total_items``, ``relabelled``, ``seconds``) and ``"queries_used"``.
        reward_options: The options whose source part (ensemble bonus, posterior-mean / pessimistic reward) turns
            each new model into the reward source that is swapped in; ``None``: the model itself.
        verbose: Print each round if > 0.

    Attributes:
        reward_model: The current reward model.
        dataset: All feedback so far (:class:`~rewardshare.feedback.Transitions` or
            :class:`~rewardshare.feedback.Preferences`), or ``None`` before the first round.
        queries_used: Queries charged so far.
    """

    def __init__(
        self,
        options: InteractiveFeedback,
        teacher: Teacher,
        model: RewardModel,
        seed: int = 0,
        eval_envs: list[LearnedRewardWrapper] | tuple[LearnedRewardWrapper, ...] = (),
        record: dict[str, Any] | None = None,
        reward_options: RewardOptions | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if not isinstance(options, InteractiveFeedback):
            raise TypeError(f"options={options!r} is not allowed: use InteractiveFeedback(...)")
        self.options = options
        self.teacher = teacher
        self.reward_model = model
        self.eval_envs = list(eval_envs)
        self.reward_options = reward_options
        self.record = {} if record is None else record
        self.record.setdefault("rounds", [])
        self.record["queries_used"] = 0
        self.rng = np.random.default_rng(np.random.SeedSequence([int(seed), 29]))
        self.dataset: Transitions | Preferences | None = None
        self.queries_used = 0
        self._planned: list[int] = []
        self._parts: list[dict[str, np.ndarray]] = []

    # -- SB3 hooks -----------------------------------------------------------------------------------------------
    def _on_training_start(self) -> None:
        self._recorder = self._find(TransitionRecorder, "TransitionRecorder")
        self._wrapper, self._to_env_obs = reward_wrapper_of(self.training_env)
        total = int(self.locals.get("total_timesteps", getattr(self.model, "_total_timesteps", 0)))
        self._planned = [t for t in self.options.planned_rounds(total) if t > self.num_timesteps]

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        due = [t for t in self._planned if t <= self.num_timesteps]
        if not due:
            return
        quota = self._quota(len(due))
        self._planned = self._planned[len(due):]
        py, np_state, torch_state = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
        try:
            self._round(quota)
        finally:
            random.setstate(py)
            np.random.set_state(np_state)
            torch.random.set_rng_state(torch_state)

    # -- a round -------------------------------------------------------------------------------------------------
    def _find(self, kind: type, name: str) -> Any:
        env: VecEnv = self.training_env
        while True:
            if isinstance(env, kind):
                return env
            if not isinstance(env, VecEnvWrapper):
                raise ValueError(
                    f"the training env has no {name}: wrap the DummyVecEnv in TransitionRecorder(venv, window) under "
                    "the LearnedRewardVecEnvWrapper (train_agent(..., interactive=...) does)"
                )
            env = env.venv

    def _quota(self, due: int) -> int:
        """Queries for a round that covers ``due`` planned steps."""
        left = self.options.budget - self.queries_used
        if self.teacher.remaining is not None:
            left = min(left, self.teacher.remaining)
        if self.options.per_round is not None:
            return min(left, self.options.per_round * due)
        rounds_left = len(self._planned)  # this round's planned steps, then the ones after it
        return min(left, math.ceil(left * due / max(rounds_left, 1)))

    def _ask(self, quota: int) -> tuple[dict[str, np.ndarray], int]:
        """Ask the teacher ``quota`` queries (fewer if the window holds fewer); the new items and the queries spent."""
        teacher, task_id = self.teacher, self.teacher.task.id
        if self.options.kind == "labels":
            tr = self._recorder.sample_transitions(quota, self.rng)
            if len(tr["action"]) == 0:
                return {}, 0
            label = teacher.label(tr["agent_pos"], tr["action"], tr["next_agent_pos"])
            return {**tr, "label": label, "task_id": np.full(len(label), task_id)}, len(label)
        a, b = self._recorder.sample_segment_pairs(quota, self.options.segment_length, self.rng)
        if len(a["action"]) == 0:
            return {}, 0
        label = teacher.prefer(a["agent_pos"], a["action"], a["next_agent_pos"],
                               b["agent_pos"], b["action"], b["next_agent_pos"])
        keep = ~np.isnan(label)  # a skipped comparison is charged but teaches nothing
        items = {f"{k}_{side}": v[keep] for side, seg in (("a", a), ("b", b)) for k, v in seg.items()}
        return {**items, "label": label[keep], "task_id": np.full(int(keep.sum()), task_id)}, len(label)

    def _make_dataset(self) -> Transitions | Preferences:
        cls = Transitions if self.options.kind == "labels" else Preferences
        arrays = {k: np.concatenate([p[k] for p in self._parts]) for k in self._parts[0]}
        meta = {"source": "interactive", "teachers": [self.teacher.config()], "budget_spent": self.queries_used,
                "tasks": [self.teacher.task.to_dict()], "interactive": self.options.to_dict()}
        return cls(metadata=meta, **arrays)

    def _update(self, dataset: Transitions | Preferences) -> RewardModel:
        objective = make_loss(self.options.loss, dataset)
        budget = self.options.budget_for(len(dataset))
        if self.options.method is not None:
            return self.options.method.adapt(objective, budget, self.teacher.task, on_divergence="stop")
        return finetune_many([self.reward_model], [objective], steps=budget.steps, lr=budget.lr, params=budget.params,
                             on_divergence="stop")[0]

    def _round(self, quota: int) -> None:
        t0 = time.perf_counter()
        items, spent = self._ask(quota) if quota > 0 else ({}, 0)
        self.queries_used += spent
        n_new = len(items.get("label", ()))
        if n_new:
            self._parts.append(items)
            self.dataset = self._make_dataset()
            self.reward_model = self._update(self.dataset)
            self._swap(self.reward_model)
        relabelled = 0
        buffer = getattr(self.model, "replay_buffer", None)
        if n_new and isinstance(buffer, ReplayBuffer):
            relabelled = relabel_replay_buffer(buffer, self._wrapper, self._to_env_obs)
        entry = {"timesteps": int(self.num_timesteps), "queries": int(spent), "items": int(n_new),
                 "total_items": 0 if self.dataset is None else len(self.dataset), "relabelled": int(relabelled),
                 "seconds": round(time.perf_counter() - t0, 3)}
        self.record["rounds"].append(entry)
        self.record["queries_used"] = self.queries_used
        if self.verbose > 0:
            print(f"interactive round at t={entry['timesteps']}: {spent} queries, {entry['total_items']} items, "
                  f"{entry['seconds']:.2f}s")
        if n_new and self.options.on_round is not None:
            self.options.on_round(int(self.num_timesteps), self.reward_model, self.dataset)

    def _swap(self, model: RewardModel) -> None:
        """Give ``model`` to every reward wrapper of the training env (each rebuilds its table) and the eval envs."""
        reward: Any = model
        if self.reward_options is not None:
            reward = as_reward_source(model, **self.reward_options.source_kwargs())
        env: Any = self.training_env
        while isinstance(env, VecEnvWrapper):
            if hasattr(type(env), "set_reward"):  # not getattr(env, ...): SB3 forwards it from the wrapped env
                env.set_reward(reward)
            env = env.venv
        for sub in getattr(env, "envs", []):  # single-env wrappers inside a DummyVecEnv
            while isinstance(sub, gym.Wrapper):
                if isinstance(sub, LearnedRewardWrapper):
                    sub.set_reward(reward)
                sub = sub.env
        if self.eval_envs:
            first = self.eval_envs[0]
            first.set_reward(self._wrapper.source)
            for env in self.eval_envs[1:]:
                env.set_reward(first.source, use_table=first.table if first.table is not None else "auto")
