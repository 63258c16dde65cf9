"""``train_agent``: train PPO or DQN on a (learned) reward and measure progress on the true reward."""

from __future__ import annotations

import copy
import importlib.util
import platform
import random
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import DummyVecEnv

from rewardshare._version import __version__
from rewardshare.agents.algos import check_algo, make_agent, make_config
from rewardshare.agents.curve import LearningCurve
from rewardshare.agents.evaluation import TrueRewardEvalCallback, TrueRewardEvaluator
from rewardshare.agents.interactive import InteractiveFeedback, InteractiveFeedbackCallback
from rewardshare.agents.policy_obs import PolicyObsVecEnvWrapper, resolve_policy_obs
from rewardshare.agents.recent_transitions import TransitionRecorder
from rewardshare.envs import GoalTask
from rewardshare.feedback import Teacher
from rewardshare.wrappers import (
    LearnedRewardVecEnvWrapper,
    ModelReward,
    PosteriorReward,
    RewardOptions,
    RewardSource,
    TrueReward,
    as_reward_source,
)
from rewardshare.wrappers.sources import is_reward_model

EnvSpec = GoalTask | str | Callable[[], gym.Env] | gym.Env


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}={value!r} is not allowed: use an int >= {minimum}")
    return int(value)


def _env_factory(task_or_env: EnvSpec, env_kwargs: dict[str, Any]) -> tuple[Callable[[], gym.Env], dict[str, Any]]:
    """A zero-argument env maker and a JSON-ready description of it."""
    if isinstance(task_or_env, GoalTask):
        task = task_or_env
        return (lambda: task.make_env(**env_kwargs)), {"task": task.to_dict(), "env_kwargs": env_kwargs}
    if isinstance(task_or_env, str):
        env_id = task_or_env
        if env_id not in gym.registry:
            raise ValueError(f"task_or_env={env_id!r} is not a registered gymnasium env id (e.g. 'CartPole-v1')")
        return (lambda: gym.make(env_id, **env_kwargs)), {"env_id": env_id, "env_kwargs": env_kwargs}
    if isinstance(task_or_env, gym.Env):
        if env_kwargs:
            raise ValueError("env_kwargs cannot be applied to an env instance: pass a GoalTask, an env id or a factory")
        proto = task_or_env
        return (lambda: copy.deepcopy(proto)), {"env": repr(proto)}
    if callable(task_or_env):
        if env_kwargs:
            raise ValueError("env_kwargs cannot be applied to an env factory: bind them in the factory")
        return task_or_env, {"env_factory": getattr(task_or_env, "__qualname__", repr(task_or_env))}
    raise TypeError(
        f"task_or_env={type(task_or_env).__name__} is not allowed: use a GoalTask, a gymnasium env id, an env "
        "factory (a callable returning an env) or an env instance"
    )


def _resolve_source(
    reward: Any, task_or_env: EnvSpec, teacher_kwargs: dict[str, Any], options: RewardOptions
) -> RewardSource:
    if isinstance(reward, str) and reward == "teacher":
        if not isinstance(task_or_env, GoalTask):
            raise ValueError(
                "reward='teacher' needs task_or_env to be a GoalTask (the teacher judges one task); "
                f"got {type(task_or_env).__name__}. Or pass a Teacher as reward"
            )
        from rewardshare.feedback import Teacher  # feedback sits left of agents in the data flow

        kw = {"reward": "dense", **teacher_kwargs}
        return as_reward_source("teacher", teacher=Teacher(task_or_env, **kw))
    if teacher_kwargs:
        raise ValueError("teacher_kwargs are only used with reward='teacher'")
    return as_reward_source(reward, **options.source_kwargs())


def _versions() -> dict[str, str]:
    return {
        "rewardshare": __version__, "stable_baselines3": stable_baselines3.__version__, "torch": torch.__version__,
        "gymnasium": gym.__version__, "numpy": np.__version__, "python": platform.python_version(),
    }


def build_training_env(
    make_env: Callable[[], gym.Env], source: RewardSource, n_envs: int, seed: int, options: RewardOptions | None = None,
    record: int | None = None,
) -> LearnedRewardVecEnvWrapper:
    """``n_envs`` Monitor-wrapped sub-envs in a ``DummyVecEnv``, seeded ``seed + i``, with the reward wrapper on top.

    The reward is computed in the wrapper while SB3 collects experience, so an off-policy learner's replay buffer
    stores the learned reward of each transition as it was collected. ``Monitor`` sits *inside* the reward wrapper,
    so SB3's ``rollout/ep_rew_mean`` reports the true return. With ``record``, a
    :class:`~rewardshare.agents.recent_transitions.TransitionRecorder` keeping the last ``record`` env steps sits
    between the ``DummyVecEnv`` and the reward wrapper (for interactive feedback).
    """
    venv: Any = DummyVecEnv([lambda: Monitor(make_env()) for _ in range(n_envs)])
    venv.seed(seed)
    if record is not None:
        venv = TransitionRecorder(venv, record)
    return LearnedRewardVecEnvWrapper(venv, source, options)


def _interactive_teacher(
    interactive: Any, reward: Any, task_or_env: EnvSpec, teacher_kwargs: dict[str, Any], algo: str,
    options: RewardOptions, total_timesteps: int, seed: int,
) -> Teacher:
    """Check ``interactive`` against the other arguments; the teacher it asks."""
    if not isinstance(interactive, InteractiveFeedback):
        raise TypeError(f"interactive={interactive!r} is not allowed: use InteractiveFeedback(every=..., budget=...) "
                        "or None")
    if not is_reward_model(reward):
        raise ValueError(
            f"interactive feedback needs reward=<a RewardModel> to start from and update (got {reward!r}): e.g. "
            "RewardModel(env.observation_space, env.action_space) or method.start_model(task)"
        )
    if interactive.every >= total_timesteps:
        raise ValueError(f"interactive.every={interactive.every} is not allowed with total_timesteps="
                         f"{total_timesteps}: no round would run; use every < total_timesteps")
    if algo == "dqn" and options.add_env_reward:
        raise ValueError("interactive feedback with algo='dqn' relabels the replay buffer, which does not keep the "
                         "env reward: use reward_options with add_env_reward=False, or algo='ppo'")
    task = task_or_env if isinstance(task_or_env, GoalTask) else None
    if interactive.teacher is not None:
        if teacher_kwargs:
            raise ValueError("teacher_kwargs cannot change interactive.teacher: set them on the Teacher you pass")
        if task is not None and interactive.teacher.task != task:
            raise ValueError(f"interactive.teacher teaches task {interactive.teacher.task.id!r} but the agent trains "
                             f"on {task.id!r}: give a Teacher of the same task")
        return interactive.teacher
    if task is None:
        raise ValueError("interactive feedback needs task_or_env to be a GoalTask (the teacher judges one task), or "
                         "an InteractiveFeedback(teacher=Teacher(task), ...)")
    return Teacher(task, **{"reward": "dense", "seed": seed, **teacher_kwargs})


def train_agent(
    algo: str,
    task_or_env: EnvSpec,
    reward: Any = "true",
    total_timesteps: int = 50_000,
    seed: int = 0,
    n_envs: int | None = None,
    eval_every: int = 5_000,
    eval_episodes: int = 20,
    device: str = "auto",
    progress_bar: bool = False,
    tensorboard_log: str | None = None,
    *,
    env_kwargs: dict[str, Any] | None = None,
    agent_kwargs: dict[str, Any] | None = None,
    reward_options: RewardOptions | None = None,
    teacher_kwargs: dict[str, Any] | None = None,
    eval_seed: int | None = None,
    policy_obs: str = "auto",
    deterministic_eval: bool = True,
    torch_threads: int | None = 1,
    callback: BaseCallback | None = None,
    verbose: int = 0,
    return_agent: bool = False,
    interactive: InteractiveFeedback | None = None,
) -> LearningCurve | tuple[LearningCurve, BaseAlgorithm]:
    """Train an SB3 agent on a reward and record its learning curve on the *true* reward.

    The training envs are wrapped by :class:`~rewardshare.wrappers.LearnedRewardVecEnvWrapper`, which computes the
    reward (one batched call per vector step) while SB3 collects experience: PPO's rollouts and DQN's replay buffer
    hold the learned reward of each transition as collected. Every ``eval_every`` env steps (and before and after
    training) the policy runs ``eval_episodes`` episodes on *separate* eval envs with the env's own reward; see
    :class:`~rewardshare.agents.evaluation.TrueRewardEvaluator`.

    Args:
        algo: ``"ppo"`` or ``"dqn"`` (case-insensitive).
        task_or_env: A :class:`~rewardshare.envs.GoalTask` (envs from ``task.make_env(**env_kwargs)``: random starts),
            a gymnasium env id (``gym.make(id, **env_kwargs)``), an env factory, or an env instance (copied).
        reward: A RewardModel (or a list: ensemble mean), ``"true"`` (the env's reward), ``"teacher"`` (the dense
            teacher's noiseless reward, the oracle a learned reward tries to match; needs a GoalTask), a Teacher or a
            :class:`~rewardshare.wrappers.RewardSource`.
        total_timesteps: Env steps to train for (over all sub-envs), >= 1.
        seed: Seeds SB3 (python, numpy, torch), the training envs (``seed + i``) and, by default, the eval episodes.
        n_envs: Training sub-envs; default 8 for PPO, 4 for DQN.
        eval_every: Env steps between evaluations, >= 1.
        eval_episodes: Episodes per evaluation, >= 1.
        device: Torch device of the agent (``"auto"``, ``"cpu"``, ``"cuda"``).
        progress_bar: Show SB3's progress bar (tqdm + rich).
        tensorboard_log: Directory for TensorBoard logs (needs the ``tensorboard`` package); eval metrics are logged
            under ``eval/``.
        env_kwargs: Env arguments. For a GoalTask and a RewardModel, ``obs_mode``/``observe_goal`` default to the
            ones matching the model's observation space.
        agent_kwargs: Hyperparameter overrides (see :class:`PPOConfig` / :class:`DQNConfig`).
        reward_options: The reward wrapper's :class:`~rewardshare.wrappers.RewardOptions` (normalise, scale, clip,
            add the env reward, ensemble spread bonus, posterior-mean or pessimistic reward, table fast path); default
            ``RewardOptions()``.
        teacher_kwargs: Extra :class:`~rewardshare.feedback.Teacher` arguments for ``reward="teacher"`` and for the
            teacher of ``interactive`` feedback.
        eval_seed: Seed of eval episode 0 (episode ``k`` uses ``eval_seed + k``); default ``seed + 1_000_000``.
        policy_obs: What the policy observes: ``"env"`` (the env's observations), ``"onehot"`` (GridGoal envs: a
            one-hot view of the same state, computed after the reward, so the reward model still reads the env's
            observation mode) or ``"auto"`` (one-hot on GridGoal envs, else the env's). See
            :mod:`rewardshare.agents.policy_obs` for why.
        deterministic_eval: Evaluate the greedy policy.
        torch_threads: Torch intra-op threads during the run (restored after); 1 makes runs reproducible and fast
            for small MLPs. ``None`` leaves the setting alone.
        callback: An extra SB3 callback.
        verbose: SB3 verbosity; > 0 also prints each evaluation.
        return_agent: Also return the trained SB3 agent.
        interactive: Ask a teacher about the agent's own recent transitions every ``interactive.every`` env steps and
            update the reward from the feedback (:class:`~rewardshare.agents.interactive.InteractiveFeedback`);
            ``reward`` must then be the RewardModel to start from. The curve's ``metadata["interactive"]`` records
            the settings, the teacher and each round (``timesteps``, ``queries``, items). ``None``: the reward
            never changes.

    Returns:
        The :class:`LearningCurve` (and the agent if ``return_agent``). Same arguments and seed give the same curve
        (wall times aside) on the same machine.

    Raises:
        ValueError: Before any training, on an unknown algorithm, a non-positive ``total_timesteps``/``n_envs``/
            ``eval_every``/``eval_episodes``, a reward model built for other spaces, ``reward="teacher"`` without a
            GoalTask, an unknown hyperparameter, DQN on continuous actions, ``tensorboard_log`` without tensorboard, or
            ``interactive`` without a RewardModel ``reward``, a teacher, or a round before ``total_timesteps``.
        TypeError: On a ``reward`` or ``task_or_env`` of an unsupported kind, or ``reward_options`` / ``interactive``
            that is not its parameter object.
    """
    name = check_algo(algo)
    total_timesteps = _check_int("total_timesteps", total_timesteps, 1)
    n_envs = _check_int("n_envs", {"ppo": 8, "dqn": 4}[name] if n_envs is None else n_envs, 1)
    eval_every = _check_int("eval_every", eval_every, 1)
    eval_episodes = _check_int("eval_episodes", eval_episodes, 1)
    seed = _check_int("seed", seed, 0)
    if torch_threads is not None:
        torch_threads = _check_int("torch_threads", torch_threads, 1)
    if tensorboard_log is not None and importlib.util.find_spec("tensorboard") is None:
        raise ValueError(
            f"tensorboard_log={tensorboard_log!r} needs the tensorboard package: pip install tensorboard "
            "(or pass tensorboard_log=None)"
        )
    config = make_config(name, **(agent_kwargs or {}))
    if reward_options is None:
        reward_options = RewardOptions()
    if not isinstance(reward_options, RewardOptions):
        raise TypeError(f"reward_options={reward_options!r} is not allowed: use RewardOptions(...) or None")
    env_kwargs = dict(env_kwargs or {})
    teacher = None
    if interactive is not None:
        teacher = _interactive_teacher(interactive, reward, task_or_env, dict(teacher_kwargs or {}), name,
                                       reward_options, total_timesteps, seed)
    source = _resolve_source(
        reward, task_or_env, {} if interactive is not None else dict(teacher_kwargs or {}), reward_options
    )
    if isinstance(task_or_env, GoalTask) and isinstance(source, (ModelReward, PosteriorReward)) and (
        source.observation_space is not None
    ):
        if "obs_mode" not in env_kwargs and "observe_goal" not in env_kwargs:
            env_kwargs.update(task_or_env.env_kwargs_for_space(source.observation_space) or {})
    make_env, env_desc = _env_factory(task_or_env, env_kwargs)
    probe = make_env()
    source.check_fits(probe.observation_space, probe.action_space)  # refuse a misfit model before any training
    if name == "dqn" and not isinstance(probe.action_space, gym.spaces.Discrete):
        raise ValueError(f"algo='dqn' needs a Discrete action space; the env has {probe.action_space!r}: use 'ppo'")
    obs_map = resolve_policy_obs(policy_obs, probe)
    probe.close()
    eval_seed = seed + 1_000_000 if eval_seed is None else _check_int("eval_seed", eval_seed, 0)

    metadata = {
        "algo": name, "reward": source.config(), "seed": seed, "n_envs": n_envs, "total_timesteps": total_timesteps,
        "eval_every": eval_every, "eval_episodes": eval_episodes, "eval_seed": eval_seed,
        "deterministic_eval": bool(deterministic_eval), "device": device, **env_desc,
        "policy_obs": "env" if obs_map is None else "onehot",
        "agent_config": {k: v for k, v in config.sb3_kwargs().items()},
        "reward_options": reward_options.to_dict(), "versions": _versions(),
    }
    if interactive is not None:
        metadata["interactive"] = {**interactive.to_dict(), "teacher": teacher.config(), "rounds": [],
                                   "queries_used": 0}
    curve = LearningCurve(metadata=metadata)

    old_threads = torch.get_num_threads()
    py_state, np_state, torch_state = random.getstate(), np.random.get_state(), torch.random.get_rng_state()
    try:
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        set_random_seed(seed)
        # the source already carries the spread bonus / posterior options
        record = None if interactive is None else interactive.window or interactive.every
        venv = build_training_env(make_env, source, n_envs, seed, reward_options.without_source_options(), record)
        if obs_map is not None:
            venv = PolicyObsVecEnvWrapper(venv, obs_map)
        evaluator = TrueRewardEvaluator(
            make_env, eval_episodes, eval_seed, None if isinstance(source, TrueReward) else source,
            deterministic=deterministic_eval, policy_obs=obs_map,
        )
        agent = make_agent(name, venv, seed=seed, device=device, tensorboard_log=tensorboard_log, verbose=verbose,
                           config=config)
        eval_cb = TrueRewardEvalCallback(evaluator, eval_every, curve, verbose=verbose)
        extra = [] if callback is None else [callback]
        if interactive is not None:
            extra.insert(0, InteractiveFeedbackCallback(
                interactive, teacher, reward, seed=seed, eval_envs=evaluator.envs, record=metadata["interactive"],
                reward_options=reward_options, verbose=verbose,
            ))
        callbacks = CallbackList([eval_cb] + extra)
        agent.learn(total_timesteps=total_timesteps, callback=callbacks, progress_bar=progress_bar)
        if teacher is not None:
            metadata["interactive"]["teacher_spent"] = teacher.spent
        venv.close()
    finally:
        if torch_threads is not None:
            torch.set_num_threads(old_threads)
        # training seeds the global RNGs; give the caller's streams back
        random.setstate(py_state)
        np.random.set_state(np_state)
        torch.random.set_rng_state(torch_state)
    return (curve, agent) if return_agent else curve
