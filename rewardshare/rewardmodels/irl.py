"""Maximum-entropy IRL on finite grids with known dynamics (Ziebart et al. 2008), differentiable in torch.

On a grid the dynamics are the planner's deterministic transition table, so the soft-optimal policy under a reward
model ``R_theta`` is computed exactly by *discounted soft value iteration* over every free cell ``s`` and action ``a``::

    Q(s, a) = R_theta(s, a, T(s, a)) + gamma * V(T(s, a))
    V(s)    = log sum_a exp Q(s, a)                 # iterated K times from V = 0
    log pi(a | s) = Q(s, a) - V(s)

and IRL maximises the demonstrations' log-likelihood ``sum_t log pi(a_t | s_t)`` (the transition terms of the
trajectory likelihood are constant under known deterministic dynamics). Choices, documented:

- *Discounted, infinite horizon* (stationary policy) rather than finite horizon: demonstrations of different lengths
  and start cells share one policy. ``gamma`` defaults to 0.9; ``K`` defaults to the smallest ``k`` with
  ``gamma**k < 1e-4`` (88 for 0.9), unrolled so gradients flow through every iteration.
- *No terminal state*: the goal is not made absorbing in the dynamics, since knowing where episodes end would tell
  the learner where the goal is; the reward alone has to explain the demonstrations.
- The ``done`` input of a model built with ``use_done=True`` is ``True`` on transitions into the task's goal (what the
  env reports), so such a model sees the same inputs here as on the env.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from rewardshare.envs import Cell, GridMDP, env_from_metadata, goal_from_task_id, grid_env_of
from rewardshare.rewardmodels.losses import Batch, Objective, RewardFn, _field, _task_index, call_reward


def reward_table(
    model: RewardFn,
    obs: torch.Tensor,
    next_state: torch.Tensor,
    done: torch.Tensor,
    context: torch.Tensor | None = None,
) -> torch.Tensor:
    """``R(s, a, T(s, a))`` for every state and action.

    Args:
        model: A reward model (called like :meth:`RewardModel.forward`).
        obs: ``(S, *obs_shape)`` per-state observations.
        next_state: ``(S, A)`` int64.
        done: ``(S, A)`` bool.
        context: ``(context_dim,)`` or ``None``.

    Returns:
        ``(S, A)`` rewards (differentiable).
    """
    n_states, n_actions = next_state.shape
    state = torch.arange(n_states, device=obs.device).repeat_interleave(n_actions)
    action = torch.arange(n_actions, device=obs.device).repeat(n_states)
    nxt = next_state.reshape(-1)
    r = call_reward(model, obs[state], action, obs[nxt], done.reshape(-1), context)
    return r.reshape(n_states, n_actions)


def default_iterations(gamma: float, tol: float = 1e-4) -> int:
    """The smallest ``k`` with ``gamma**k < tol`` (at least 1)."""
    return max(1, math.ceil(math.log(tol) / math.log(gamma))) if gamma > 0 else 1


def soft_value_iteration(
    reward: torch.Tensor, next_state: torch.Tensor, gamma: float = 0.9, iterations: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Discounted soft (log-sum-exp) value iteration on a deterministic finite MDP.

    Args:
        reward: ``(S, A)`` rewards ``R(s, a)``.
        next_state: ``(S, A)`` int64 next states.
        gamma: Discount in ``[0, 1)``.
        iterations: Number of backups (default :func:`default_iterations`).

    Returns:
        ``(Q (S, A), V (S,))``; the soft-optimal policy is ``log pi = Q - V[:, None]``.
    """
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma={gamma!r} is not allowed: use a float in [0, 1)")
    k = default_iterations(gamma) if iterations is None else int(iterations)
    v = torch.zeros(reward.shape[0], dtype=reward.dtype, device=reward.device)
    q = reward
    for _ in range(k):
        q = reward + gamma * v[next_state]
        v = torch.logsumexp(q, dim=1)
    return q, v


def greedy_policy(
    reward: np.ndarray | torch.Tensor, next_state: np.ndarray, gamma: float = 0.9, iterations: int = 500
) -> np.ndarray:
    """The optimal deterministic policy ``(S,)`` under ``reward (S, A)`` by (hard) value iteration."""
    r = np.asarray(reward.detach().cpu() if torch.is_tensor(reward) else reward, dtype=np.float64)
    ns = np.asarray(next_state)
    v = np.zeros(r.shape[0])
    for _ in range(int(iterations)):
        q = r + gamma * v[ns]
        v_new = q.max(axis=1)
        if np.max(np.abs(v_new - v)) < 1e-10:
            v = v_new
            break
        v = v_new
    return np.argmax(r + gamma * v[ns], axis=1)


class MaxEntIRLObjective(Objective):
    """``"maxent_irl"``: the demonstrations' negative log-likelihood under the soft-optimal policy of the model.

    Items: demonstration steps ``state (n,)`` (index into the free cells), ``action (n,)``, ``task_index (n,)``.
    Shared: ``irl_obs (T, S, *obs)``, ``irl_next_state (S, A)``, ``irl_done (T, S, A)`` for the ``T`` tasks (one
    layout). A batch runs soft value iteration once per task present in it, so full-batch training is the norm.

    Attributes:
        gamma: Discount of the soft value iteration.
        iterations: Backups per loss evaluation.
        mdps: One :class:`GridMDP` per task id.
    """

    kind = "maxent_irl"

    @classmethod
    def from_data(
        cls,
        data: Any,
        env: Any = None,
        tasks: Sequence[Any] | None = None,
        gamma: float = 0.9,
        iterations: int | None = None,
    ) -> MaxEntIRLObjective:
        """Build from ``Demonstrations`` (``agent_pos``, ``action``, ``task_id``) on the grid of ``env``.

        Args:
            data: Demonstrations (or a mapping with ``agent_pos``, ``action`` and optionally ``task_id``).
            env: A :class:`GridGoalEnv` with the observation mode the model reads; default rebuilt from
                ``data.metadata["env_kwargs"]``.
            tasks: ``GoalTask`` objects (or anything with ``.id`` and ``.goal``) giving each task id's goal; else the
                data's ``metadata["tasks"]``, else the task id (``".../g<row>_<col>"``), else the env's goal.
            gamma: Discount in ``[0, 1)``.
            iterations: Soft value iteration backups (default: until ``gamma**k < 1e-4``).

        Raises:
            ValueError: On no env, an unknown goal, a demonstration step off the free cells, or empty data.
            TypeError: If ``env`` is not a grid env.
        """
        if not 0.0 <= gamma < 1.0:
            raise ValueError(f"gamma={gamma!r} is not allowed: use a float in [0, 1)")
        if env is None:
            env = env_from_metadata(data)
        if env is None:
            raise ValueError(
                "loss='maxent_irl' needs the grid's dynamics: pass env=<GridGoalEnv with the data's obs_mode> "
                "(the data's metadata records no env_kwargs)"
            )
        base = grid_env_of(env)
        pos = np.asarray(_field(data, "agent_pos"), dtype=np.int64)
        action = np.asarray(_field(data, "action"), dtype=np.int64)
        n = len(action)
        task_index, task_ids = _task_index(_field(data, "task_id", required=False), n)
        goals: dict[str, Cell] = {str(t.id): tuple(t.goal) for t in (tasks or [])}
        meta = getattr(data, "metadata", None)
        for record in meta.get("tasks", []) if isinstance(meta, dict) else []:
            if isinstance(record, dict) and "id" in record and "goal" in record:
                goals.setdefault(str(record["id"]), (int(record["goal"][0]), int(record["goal"][1])))
        mdps = []
        for tid in task_ids:
            if tid in goals:
                goal = goals[tid]
            elif tid == "":
                goal = base.goal
            else:
                goal = goal_from_task_id(tid)
            mdps.append(GridMDP.from_env(base, goal))
        states = mdps[0].state_of(pos) if n else np.zeros(0, np.int64)
        items = {
            "state": torch.as_tensor(states),
            "action": torch.as_tensor(action),
            "task_index": task_index,
        }
        shared = {
            "irl_obs": torch.as_tensor(np.stack([m.obs for m in mdps])),
            "irl_next_state": torch.as_tensor(mdps[0].next_state),
            "irl_done": torch.as_tensor(np.stack([m.done for m in mdps])),
        }
        obj = cls(items, task_ids, shared)
        obj.gamma = float(gamma)
        obj.iterations = default_iterations(gamma) if iterations is None else int(iterations)
        obj.mdps = {tid: m for tid, m in zip(task_ids, mdps, strict=True)}
        return obj

    def log_policy(self, model: RewardFn, task_index: int, context: torch.Tensor | None = None) -> torch.Tensor:
        """``log pi(a | s)`` ``(S, A)`` of the soft-optimal policy under ``model`` on task ``task_index``."""
        r = reward_table(
            model, self.shared["irl_obs"][task_index], self.shared["irl_next_state"],
            self.shared["irl_done"][task_index], context,
        )
        q, v = soft_value_iteration(r, self.shared["irl_next_state"], self.gamma, self.iterations)
        return q - v[:, None]

    def loss(self, model: RewardFn, batch: Batch) -> torch.Tensor:
        task_index = batch["task_index"]
        total = None
        ctx_all = batch.get("context")
        for t in torch.unique(task_index).tolist():
            sel = task_index == t
            ctx = None if ctx_all is None else ctx_all[sel][0]
            logp = self.log_policy(model, int(t), ctx)
            nll = -logp[batch["state"][sel], batch["action"][sel]].sum()
            total = nll if total is None else total + nll
        assert total is not None, "empty batch"
        return total / task_index.shape[0]
