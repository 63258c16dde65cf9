"""Demonstrations: the Boltzmann-rational likelihood and MaxEnt IRL (``"maxent_irl"``) on finite grids.

Maximum-entropy IRL on finite grids with known dynamics (Ziebart et al. 2008), differentiable in torch. On a grid the
dynamics are the planner's deterministic transition table (:class:`~rewardshare.envs.GridMDP`), so the soft-optimal
policy under a reward model ``R_theta`` is computed exactly by *discounted soft value iteration* over every free cell
``s`` and action ``a``::

    Q(s, a) = R_theta(s, a, T(s, a)) + gamma * V(T(s, a))
    V(s)    = log sum_a exp Q(s, a)                 # iterated K times from V = 0
    log pi(a | s) = Q(s, a) - V(s)

and IRL maximises the demonstrations' log-likelihood ``sum_t log pi(a_t | s_t)`` (the transition terms of the
trajectory likelihood are constant under known deterministic dynamics). With a temperature ``tau``,
``V = tau log sum_a exp(Q / tau)`` and ``log pi = (Q - V) / tau``; IRL uses ``tau = 1``, since the reward's scale
absorbs it. The same policy is the *Boltzmann-rational* demonstrator, so :func:`soft_value_iteration` and
:func:`demonstration_log_likelihood` also give the likelihood of demonstrations under any reward table, e.g. one per
candidate goal for an exact posterior over goals (:func:`boltzmann_log_likelihood`). Choices, documented:

- *Discounted, infinite horizon* (stationary policy) rather than finite horizon: demonstrations of different lengths
  and start cells share one policy. ``gamma`` defaults to 0.9; ``K`` defaults to the smallest ``k`` with
  ``gamma**k < 1e-4`` (88 for 0.9), unrolled so gradients flow through every iteration.
- *No terminal state*: the goal is not made absorbing in the dynamics, since knowing where episodes end would tell
  the learner where the goal is; the reward alone has to explain the demonstrations.
- *Where episodes end* is evidence too, when a :class:`TerminationLink` is given (a model of how the teacher's
  episodes end given the reward, calibrated on source tasks, e.g. by
  :class:`~rewardshare.rewardmodels.reuse.LatentTask`): ``log p(done_t | R(s_t, a_t))`` is added for every
  demonstrated step, so an episode that ends in a cell says that its reward is the one that ends episodes there.
- The ``done`` input of a model built with ``use_done=True`` is ``True`` on every transition into a cell where one of
  the task's demonstrations *ended* its episode (the grid envs end episodes on reaching a cell): what the env
  reports once a demonstration has reached the goal, and no more than the data shows (a task whose demonstrations
  never reached its goal has no such transition).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from rewardshare.envs import Cell, GridMDP, env_from_metadata, goal_from_task_id, grid_env_of
from rewardshare.rewardmodels.objectives.base import Batch, Objective, RewardFn, call_reward, get_field, task_indices


def reward_table(
    model: RewardFn,
    obs: torch.Tensor,
    next_state: torch.Tensor,
    done: torch.Tensor,
    context: torch.Tensor | None = None,
) -> torch.Tensor:
    """``R(s, a, T(s, a))`` for every state and action, at one context or at each of ``M`` contexts.

    Args:
        model: A reward model (called like :meth:`RewardModel.forward`).
        obs: ``(S, *obs_shape)`` per-state observations.
        next_state: ``(S, A)`` int64.
        done: ``(S, A)`` bool.
        context: ``(context_dim,)``, ``(M, context_dim)`` (one table per row, in one model call) or ``None``.

    Returns:
        ``(S, A)`` rewards, or ``(M, S, A)`` for ``M`` contexts (differentiable).
    """
    n_states, n_actions = next_state.shape
    state = torch.arange(n_states, device=obs.device).repeat_interleave(n_actions)
    action = torch.arange(n_actions, device=obs.device).repeat(n_states)
    inputs = [obs[state], action, obs[next_state.reshape(-1)], done.reshape(-1)]
    if context is None or context.dim() == 1:
        return call_reward(model, *inputs, context).reshape(n_states, n_actions)
    m = context.shape[0]  # one table per context row: every input repeated m times, in one call
    inputs = [x.repeat(m, *([1] * (x.dim() - 1))) for x in inputs]
    return call_reward(model, *inputs, context.repeat_interleave(len(state), dim=0)).reshape(m, n_states, n_actions)


def default_iterations(gamma: float, tol: float = 1e-4) -> int:
    """The smallest ``k`` with ``gamma**k < tol`` (at least 1)."""
    return max(1, math.ceil(math.log(tol) / math.log(gamma))) if gamma > 0 else 1


class SoftValues(NamedTuple):
    """The result of :func:`soft_value_iteration` (arrays of the reward's kind: torch tensors or numpy arrays).

    Attributes:
        value: ``(S,)`` soft state values ``V``.
        q: ``(S, A)`` soft action values ``Q``.
        log_policy: ``(S, A)`` ``log pi(a | s)`` of the soft-optimal (Boltzmann-rational) policy.
    """

    value: Any
    q: Any
    log_policy: Any


def soft_value_iteration(
    reward: torch.Tensor | np.ndarray,
    mdp: GridMDP | torch.Tensor | np.ndarray,
    gamma: float = 0.9,
    temperature: float = 1.0,
    iterations: int | None = None,
) -> SoftValues:
    """Discounted soft (log-sum-exp) value iteration on a deterministic finite MDP.

    Args:
        reward: ``(..., S, A)`` rewards ``R(s, a)``, any leading batch dimensions (a torch tensor keeps the graph;
            a numpy array is computed in float64 and the results come back as numpy arrays).
        mdp: The :class:`~rewardshare.envs.GridMDP`, or its ``(S, A)`` int64 next-state table.
        gamma: Discount in ``[0, 1)``.
        temperature: Boltzmann temperature ``tau > 0``: ``pi(a | s) ∝ exp(Q(s, a) / tau)``.
        iterations: Number of backups from ``V = 0`` (default :func:`default_iterations`).

    Returns:
        ``SoftValues(value (..., S), q (..., S, A), log_policy (..., S, A))``; unpack as ``V, Q, log_pi = ...``.

    Raises:
        ValueError: On ``gamma`` outside ``[0, 1)`` or a temperature that is not a finite float > 0.
    """
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma={gamma!r} is not allowed: use a float in [0, 1)")
    tau = float(temperature)
    if not 0.0 < tau < math.inf:
        raise ValueError(f"temperature={temperature!r} is not allowed: use a finite float > 0")
    as_numpy = not torch.is_tensor(reward)
    r = torch.as_tensor(np.asarray(reward, dtype=np.float64)) if as_numpy else reward
    table = mdp.next_state if isinstance(mdp, GridMDP) else mdp
    if torch.is_tensor(table):
        next_state = table.to(device=r.device, dtype=torch.int64)
    else:
        next_state = torch.as_tensor(np.asarray(table, dtype=np.int64), device=r.device)
    k = default_iterations(gamma) if iterations is None else int(iterations)
    v = torch.zeros(r.shape[:-1], dtype=r.dtype, device=r.device)
    q = r
    for _ in range(k):
        q = r + gamma * v[..., next_state]
        # tau = 1 (IRL, every backup of every loss evaluation) skips two no-op tensor ops
        v = torch.logsumexp(q, dim=-1) if tau == 1.0 else tau * torch.logsumexp(q / tau, dim=-1)
    log_policy = q - v[..., None] if tau == 1.0 else (q - v[..., None]) / tau
    if as_numpy:
        return SoftValues(v.numpy(), q.numpy(), log_policy.numpy())
    return SoftValues(v, q, log_policy)


def demonstration_log_likelihood(
    log_policy: torch.Tensor | np.ndarray, states: Any, actions: Any
) -> torch.Tensor | float:
    """``sum_t log pi(a_t | s_t)``: the log-likelihood of demonstrated steps under a policy.

    Under known deterministic dynamics the transition terms of a trajectory's likelihood are constant, so this is
    the demonstrations' log-likelihood up to a constant that does not depend on the reward.

    Args:
        log_policy: ``(S, A)`` log-probabilities (e.g. :attr:`SoftValues.log_policy`).
        states: ``(N,)`` int state indices (:meth:`GridMDP.state_of` of the demonstrated cells).
        actions: ``(N,)`` int actions.

    Returns:
        A scalar tensor (differentiable) for a tensor policy, else a float.
    """
    if torch.is_tensor(log_policy):
        s, a = (
            x.to(device=log_policy.device, dtype=torch.int64) if torch.is_tensor(x)
            else torch.as_tensor(np.asarray(x, dtype=np.int64), device=log_policy.device)
            for x in (states, actions)
        )
        return log_policy[s, a].sum()
    lp = np.asarray(log_policy)
    return float(lp[np.asarray(states, dtype=np.int64), np.asarray(actions, dtype=np.int64)].sum())


def boltzmann_log_likelihood(
    reward: torch.Tensor | np.ndarray,
    mdp: GridMDP,
    states: Any,
    actions: Any,
    gamma: float = 0.9,
    temperature: float = 1.0,
    iterations: int | None = None,
) -> torch.Tensor | float:
    """Log-likelihood of demonstrated steps under a Boltzmann-rational expert of ``reward``.

    The expert acts by the soft-optimal policy of :func:`soft_value_iteration`; see
    :func:`demonstration_log_likelihood` for the arguments and the result.
    """
    log_policy = soft_value_iteration(reward, mdp, gamma, temperature, iterations).log_policy
    return demonstration_log_likelihood(log_policy, states, actions)


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


@dataclass(frozen=True)
class TerminationLink:
    """How a teacher's episodes end, given the reward of the step: ``p(done | r) = sigmoid(scale * r + bias)``.

    Fitted (:meth:`fit`) by logistic regression on transitions whose reward and episode-end flag are both known,
    e.g. a model's predictions on its source tasks' labels; a small L2 penalty on ``scale`` keeps it finite when the
    two classes separate (the goal-reaching transition's reward stands apart from every other). With it, the
    demonstrations' likelihood (:meth:`MaxEntIRLObjective.latent_losses`) also scores where each episode ended.

    Attributes:
        scale: Slope of the logit in the reward.
        bias: The logit at reward 0.
    """

    scale: float
    bias: float

    def log_prob(self, reward: torch.Tensor, done: torch.Tensor) -> torch.Tensor:
        """Elementwise ``log p(done | reward)`` (differentiable in ``reward``)."""
        logits = self.scale * reward + self.bias
        target = torch.broadcast_to(done.to(logits.dtype), logits.shape)
        return -F.binary_cross_entropy_with_logits(logits, target, reduction="none")

    @classmethod
    def fit(cls, reward: torch.Tensor, done: torch.Tensor, l2: float = 1e-3) -> TerminationLink:
        """Maximum-likelihood ``(scale, bias)`` with the penalty ``l2 * scale^2`` on the mean log-likelihood.

        Args:
            reward: ``(n,)`` rewards of the steps.
            done: ``(n,)`` bool, whether each step ended its episode.
            l2: Penalty weight (> 0).

        Raises:
            ValueError: If ``done`` is all ``True`` or all ``False`` (nothing to learn the link from), if ``reward``
                and ``done`` differ in size, or on ``l2 <= 0``.
        """
        if not (isinstance(l2, (int, float)) and math.isfinite(l2) and l2 > 0):
            raise ValueError(f"l2={l2!r} is not allowed: use a finite float > 0")
        r = torch.as_tensor(reward, dtype=torch.float64).reshape(-1).detach()
        y = torch.as_tensor(done).reshape(-1).to(torch.float64)
        if r.shape != y.shape or not 0 < float(y.sum()) < len(y):
            raise ValueError("a termination link needs rewards of steps that ended episodes and of steps that did not")
        theta = torch.zeros(2, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([theta], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = F.binary_cross_entropy_with_logits(theta[0] * r + theta[1], y) + l2 * theta[0] ** 2
            loss.backward()
            return loss

        opt.step(closure)
        return cls(float(theta[0].detach()), float(theta[1].detach()))


class MaxEntIRLObjective(Objective):
    """``"maxent_irl"``: the demonstrations' negative log-likelihood under the soft-optimal policy of the model.

    Items: demonstration steps ``state (n,)`` (index into the free cells), ``action (n,)``, ``done (n,)`` (the step
    ended its episode at the goal), ``task_index (n,)``.
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
        pos = np.asarray(get_field(data, "agent_pos"), dtype=np.int64)
        action = np.asarray(get_field(data, "action"), dtype=np.int64)
        n = len(action)
        task_index, task_ids = task_indices(get_field(data, "task_id", required=False), n)
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
        done = get_field(data, "done", required=False)
        items = {
            "state": torch.as_tensor(states),
            "action": torch.as_tensor(action),
            "done": torch.as_tensor(np.zeros(n, bool) if done is None else np.asarray(done, dtype=bool)),
            "task_index": task_index,
        }
        next_state = mdps[0].next_state
        done_tables = []
        for t in range(len(task_ids)):  # moves into the cells where the task's episodes ended (module docstring)
            sel = items["done"].numpy() & (task_index.numpy() == t)
            ended = np.unique(next_state[states[sel], action[sel]])
            done_tables.append(np.isin(next_state, ended) & ~np.isin(np.arange(len(next_state)), ended)[:, None])
        shared = {
            "irl_obs": torch.as_tensor(np.stack([m.obs for m in mdps])),
            "irl_next_state": torch.as_tensor(next_state),
            "irl_done": torch.as_tensor(np.stack(done_tables)),
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
        return soft_value_iteration(r, self.shared["irl_next_state"], self.gamma, iterations=self.iterations).log_policy

    def loss(self, model: RewardFn, batch: Batch) -> torch.Tensor:
        """Mean negative log-likelihood of the batch's steps, one soft value iteration per task in the batch."""
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

    def latent_losses(
        self, model: RewardFn, contexts: torch.Tensor, termination: TerminationLink | None = None
    ) -> torch.Tensor:
        """``(M,)``: :meth:`loss` of all items under ``model`` at each of ``M`` contexts ``(M, context_dim)``, with one
        batched reward table and soft value iteration per task (a latent-task model's many candidate latents at the
        cost of a few).

        With a ``termination`` link, ``-log p(done_t | R(s_t, a_t))`` of every step is added: where the episodes
        ended (and where they did not) is evidence about the reward. Means over the steps, like :meth:`loss`.
        """
        task_index = self.items["task_index"]
        total = contexts.new_zeros(contexts.shape[0])
        for t in torch.unique(task_index).tolist():
            sel = task_index == t
            r = reward_table(model, self.shared["irl_obs"][t], self.shared["irl_next_state"],
                             self.shared["irl_done"][t], contexts)
            logp = soft_value_iteration(r, self.shared["irl_next_state"], self.gamma,
                                        iterations=self.iterations).log_policy
            s, a = self.items["state"][sel], self.items["action"][sel]
            total = total - logp[:, s, a].sum(dim=1)
            if termination is not None:
                total = total - termination.log_prob(r[:, s, a], self.items["done"][sel]).sum(dim=1)
        return total / task_index.shape[0]
