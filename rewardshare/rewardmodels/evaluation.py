"""Judging a reward model without RL: exact comparisons against the teacher on finite grids.

On a grid every transition can be enumerated. With ``S`` the free cells and ``A`` the 4 actions:

- **MSE and Pearson** against the teacher's noiseless reward over every feasible transition ``(s, a, T(s, a))``,
  each ``(s, a)`` weighted equally (the *coverage distribution*: uniform over free cells and actions).
- **EPIC** (Gleave et al. 2021, "Quantifying Differences in Reward Functions"): canonicalize each reward to remove
  potential shaping, with ``S`` and ``S'`` drawn *independently* from the coverage distribution over cells and ``A``
  uniform::

      C(R)(s, a, s') = R(s, a, s') + E[gamma R(s', A, S') - R(s, A, S') - gamma R(S, A, S')]

  then take the Pearson distance ``sqrt((1 - rho) / 2)`` of the canonical rewards over the coverage transitions.
  The expectations are exact averages over all ``S x A x S`` triples (feasible or not), so ``C(R + gamma Phi(s') -
  Phi(s)) == C(R)`` for every potential ``Phi``; EPIC is in ``[0, 1]``, invariant to shaping and positive rescaling,
  0 for equivalent rewards and 1 for ``R`` vs ``-R``. ``gamma`` defaults to 0.99.
- **Preference accuracy** on held-out segment pairs, and a **heatmap** of ``R(s, a, T(s, a))`` per action.

Rewards are :class:`RewardModel` instances or callables ``reward(pos, action, next_pos) -> (N,)`` on int cells, like
``Teacher.true_reward``. A model's ``done`` input is ``True`` on transitions into the goal from another cell.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from rewardshare.envs import GoalTask, GridGoalEnv, GridMDP, grid_env_of
from rewardshare.rewardmodels.objectives import PreferenceObjective, call_reward
from rewardshare.rewardmodels.training import model_device

CellReward = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
DEFAULT_GAMMA = 0.99


def env_for(target: Any, observation_space: spaces.Space | None = None) -> GridGoalEnv:
    """The grid env for ``target``: a :class:`GridGoalEnv` (wrappers unwrapped) or a :class:`GoalTask`.

    For a task, the env's ``obs_mode`` / ``observe_goal`` are chosen so that its observation space equals
    ``observation_space`` (default ``obs_mode="coords"``).

    Raises:
        ValueError: If no observation mode of the task's env gives ``observation_space``.
        TypeError: If ``target`` is neither.
    """
    if isinstance(target, GoalTask):
        if observation_space is None:
            return target.make_env()
        kwargs = target.env_kwargs_for_space(observation_space)
        if kwargs is None:
            offered = [f"{kw['obs_mode']}{'+goal' if kw['observe_goal'] else ''}: {space}"
                       for kw, space in target.observation_spaces()]
            raise ValueError(
                f"no observation mode of task {target.id!r} gives observation_space={observation_space}; "
                f"the task's env offers {offered}"
            )
        return target.make_env(**kwargs)
    return grid_env_of(target)


def grid_mdp(target: Any, model: nn.Module | CellReward | None = None) -> GridMDP:
    """The :class:`GridMDP` of ``target`` (env or task) with the observations ``model`` reads.

    Raises:
        ValueError: If the model does not fit the target's spaces (both pairs named).
    """
    is_model = isinstance(model, nn.Module)
    env = env_for(target, getattr(model, "observation_space", None) if is_model else None)
    if is_model and hasattr(model, "check_spaces"):
        model.check_spaces(env.observation_space, env.action_space)
    return GridMDP.from_env(env)


def reward_tensor(
    reward: nn.Module | CellReward,
    mdp: GridMDP,
    context: np.ndarray | torch.Tensor | None = None,
    chunk: int = 65536,
) -> np.ndarray:
    """``R(s, a, s')`` for every free cell ``s``, action ``a`` and free cell ``s'`` (feasible or not).

    Args:
        reward: A reward model or a cell reward ``reward(pos (N, 2), action (N,), next_pos (N, 2)) -> (N,)``.
        mdp: The grid.
        context: A context vector for the model (``(context_dim,)``), default its stored one.
        chunk: Model batch size.

    Returns:
        float64 ``(S, 4, S)`` (a read-only broadcast view for a model that reads neither ``next_obs`` nor ``done``).
    """
    n_states, n_actions = mdp.next_state.shape
    state_action = not (getattr(reward, "use_next_obs", True) or getattr(reward, "use_done", True))
    if isinstance(reward, nn.Module) and state_action:
        # R(s, a) ignores s' and done, so the full tensor is R(s, a) broadcast over s': same values, S times fewer
        # forwards. s' = T(s, a) and its done flag are passed only to fill the (ignored) arguments.
        s, a = (x.reshape(-1) for x in np.meshgrid(np.arange(n_states), np.arange(n_actions), indexing="ij"))
        sa = _model_values(reward, mdp, s, a, mdp.next_state.reshape(-1), context, chunk)
        return np.broadcast_to(sa.reshape(n_states, n_actions, 1), (n_states, n_actions, n_states))
    s, a, s2 = (x.reshape(-1) for x in np.meshgrid(
        np.arange(n_states), np.arange(n_actions), np.arange(n_states), indexing="ij"
    ))
    if isinstance(reward, nn.Module):
        values = _model_values(reward, mdp, s, a, s2, context, chunk)
    else:
        values = np.asarray(reward(mdp.cells[s], a.astype(np.int64), mdp.cells[s2]), dtype=np.float64)
    return values.reshape(n_states, n_actions, n_states)


def _model_values(
    model: nn.Module,
    mdp: GridMDP,
    s: np.ndarray,
    a: np.ndarray,
    s2: np.ndarray,
    context: np.ndarray | torch.Tensor | None,
    chunk: int,
) -> np.ndarray:
    """The model's reward of the flat state-index triples ``(s, a, s2)``, float64 ``(N,)``."""
    goal = mdp.goal_state
    done = (s2 == goal) & (s != goal)
    device = model_device(model)
    obs = torch.as_tensor(mdp.obs).to(device)
    ctx = None if context is None else torch.as_tensor(np.asarray(context, dtype=np.float32), device=device)
    out = []
    with torch.inference_mode():
        for start in range(0, len(s), chunk):
            sl = slice(start, start + chunk)
            idx_s = torch.as_tensor(s[sl], device=device)
            idx_s2 = torch.as_tensor(s2[sl], device=device)
            r = call_reward(
                model, obs[idx_s], torch.as_tensor(a[sl], device=device), obs[idx_s2],
                torch.as_tensor(done[sl], device=device), ctx,
            )
            out.append(r.detach().double().cpu().numpy())
    return np.concatenate(out)


def transition_rewards(full: np.ndarray, mdp: GridMDP) -> np.ndarray:
    """The feasible part ``R(s, a, T(s, a))`` ``(S, 4)`` of a full ``(S, 4, S)`` reward tensor."""
    n_states, n_actions = mdp.next_state.shape
    return full[np.arange(n_states)[:, None], np.arange(n_actions)[None, :], mdp.next_state]


def canonicalize(full: np.ndarray, gamma: float = DEFAULT_GAMMA) -> np.ndarray:
    """EPIC canonicalization of a full ``(S, A, S)`` reward under uniform, independent ``S``, ``A``, ``S'``.

    ``C(R)(s, a, s') = R(s, a, s') + gamma m(s') - m(s) - gamma mean(m)`` with ``m(x) = E_{A, S'} R(x, A, S')``.
    """
    m = full.mean(axis=(1, 2))
    return full + gamma * m[None, None, :] - m[:, None, None] - gamma * m.mean()


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two flat arrays (NaN if either is constant)."""
    x = np.asarray(x, dtype=np.float64).ravel() - np.mean(x)
    y = np.asarray(y, dtype=np.float64).ravel() - np.mean(y)
    denom = math.sqrt(float(np.dot(x, x)) * float(np.dot(y, y)))
    # a constant reward (up to rounding) has no correlation with anything
    if denom <= 1e-12 * max(1.0, float(np.abs(x).max(initial=0)) * float(np.abs(y).max(initial=0))) * len(x):
        return float("nan")
    return float(np.clip(np.dot(x, y) / denom, -1.0, 1.0))


def epic_from_tensors(full_a: np.ndarray, full_b: np.ndarray, mdp: GridMDP, gamma: float = DEFAULT_GAMMA) -> float:
    """EPIC distance between two full ``(S, A, S)`` rewards, Pearson over the coverage transitions."""
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma={gamma!r} is not allowed: use a float in [0, 1]")
    ca = transition_rewards(canonicalize(full_a, gamma), mdp)
    cb = transition_rewards(canonicalize(full_b, gamma), mdp)
    rho = pearson(ca, cb)
    return float(math.sqrt(max(0.0, (1.0 - rho) / 2.0))) if not math.isnan(rho) else float("nan")


def epic_distance(
    reward_a: nn.Module | CellReward,
    reward_b: nn.Module | CellReward,
    target: Any,
    gamma: float = DEFAULT_GAMMA,
    context_a: np.ndarray | None = None,
    context_b: np.ndarray | None = None,
) -> float:
    """EPIC distance between two rewards (models or cell rewards) on the grid of ``target`` (env or task).

    Returns:
        A float in ``[0, 1]``; NaN if either reward is constant on the grid.
    """
    # one MDP per reward: two models may read different observation modes of the same task
    mdp_a, mdp_b = grid_mdp(target, reward_a), grid_mdp(target, reward_b)
    return epic_from_tensors(
        reward_tensor(reward_a, mdp_a, context_a), reward_tensor(reward_b, mdp_b, context_b), mdp_a, gamma
    )


@dataclass
class Evaluation:
    """A reward model judged against the teacher on every transition of a grid.

    Attributes:
        mse: Mean squared error over the coverage transitions ``(s, a, T(s, a))``.
        pearson: Pearson correlation over the same transitions (NaN if the model is constant).
        epic: EPIC distance (see the module docstring).
        n_transitions: Number of coverage transitions ``S * 4``.
        gamma: Discount used by EPIC.
    """

    mse: float
    pearson: float
    epic: float
    n_transitions: int
    gamma: float

    def to_dict(self) -> dict[str, float]:
        """JSON-ready fields (NaN becomes ``None``)."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def evaluate(
    model: nn.Module | CellReward,
    target: Any,
    teacher: Any,
    gamma: float = DEFAULT_GAMMA,
    context: np.ndarray | None = None,
) -> Evaluation:
    """MSE, Pearson and EPIC of ``model`` against ``teacher.true_reward`` on the grid of ``target``.

    Args:
        model: A reward model (or a cell reward).
        target: A :class:`GoalTask` (an env with the model's observation mode is built) or a :class:`GridGoalEnv`.
        teacher: Anything with ``true_reward(pos, action, next_pos)`` (a :class:`~rewardshare.feedback.Teacher`).
        gamma: EPIC discount.
        context: Context vector passed to the model (default its stored one).

    Raises:
        ValueError: If the model does not fit the target's spaces.
    """
    mdp = grid_mdp(target, model)
    full_m = reward_tensor(model, mdp, context)
    full_t = reward_tensor(teacher.true_reward, mdp)
    rm, rt = transition_rewards(full_m, mdp), transition_rewards(full_t, mdp)
    return Evaluation(
        mse=float(np.mean((rm - rt) ** 2)),
        pearson=pearson(rm, rt),
        epic=epic_from_tensors(full_m, full_t, mdp, gamma),
        n_transitions=int(rm.size),
        gamma=float(gamma),
    )


def preference_accuracy(model: nn.Module, preferences: Any) -> float:
    """Share of non-tie preference pairs whose preferred segment gets the larger summed reward.

    Args:
        model: A reward model.
        preferences: A ``Preferences`` dataset (held out from training).

    Returns:
        Accuracy in ``[0, 1]``; NaN if every pair is a tie. A predicted tie (equal sums) counts as wrong.
    """
    objective = PreferenceObjective.from_data(preferences)
    device = model_device(model)
    objective = objective.to(device)
    with torch.inference_mode():
        logits = objective.logits(model, objective.batch()).cpu().numpy()
    label = objective.items["label"].cpu().numpy()
    decided = label != 0.5
    if not decided.any():
        return float("nan")
    correct = np.where(label[decided] > 0.5, logits[decided] > 0, logits[decided] < 0)
    return float(correct.mean())


def reward_grid(model: nn.Module | CellReward, target: Any, context: np.ndarray | None = None) -> np.ndarray:
    """``R(s, a, T(s, a))`` laid out on the grid: float64 ``(4, H, W)``, NaN on walls."""
    mdp = grid_mdp(target, model)
    values = transition_rewards(reward_tensor(model, mdp, context), mdp)
    grid = np.full((values.shape[1], mdp.layout.height, mdp.layout.width), np.nan)
    grid[:, mdp.cells[:, 0], mdp.cells[:, 1]] = values.T
    return grid


def plot_reward_heatmap(
    model: nn.Module | CellReward,
    target: Any,
    path: str | os.PathLike[str] | None = None,
    context: np.ndarray | None = None,
    title: str | None = None,
) -> Any:
    """Heatmaps of ``R(s, a, T(s, a))`` over the grid, one panel per action, walls grey, goal starred.

    Uses matplotlib's object API (Agg canvas, no pyplot state), so it works headless.

    Args:
        model: A reward model (or a cell reward such as ``teacher.true_reward``).
        target: A task or grid env.
        path: If given, the figure is saved there (format from the suffix, e.g. ``.png``).
        context: Context vector for the model.
        title: Figure title.

    Returns:
        The ``matplotlib.figure.Figure``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from rewardshare.envs import ACTION_NAMES

    grid = reward_grid(model, target, context)
    mdp = grid_mdp(target, model)
    fig = Figure(figsize=(3.2 * len(grid) + 0.8, 3.4), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(grid))
    finite = grid[np.isfinite(grid)]
    lim = float(np.abs(finite).max()) if finite.size else 1.0
    import matplotlib

    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="0.35")  # walls grey
    image = None
    for a, ax in enumerate(np.atleast_1d(axes)):
        image = ax.imshow(np.ma.masked_invalid(grid[a]), cmap=cmap, vmin=-lim, vmax=lim)
        ax.plot(mdp.goal[1], mdp.goal[0], marker="*", color="gold", markersize=14, markeredgecolor="black")
        ax.set_title(f"{ACTION_NAMES[a]}")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=axes, shrink=0.85, label="reward")
    if title:
        fig.suptitle(title)
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
