"""Small feedback datasets on tiny grids, built directly from the teacher and the planner (fast, deterministic),
and the task family and helpers the reuse tests (test_reuse.py, test_maml.py) share.

Imported by the rewardmodels tests as ``from rm_data import ...`` (pytest puts this folder on sys.path).
"""

from __future__ import annotations

import numpy as np
import torch

from rewardshare.envs import GoalTask, TaskFamily, optimal_actions, transition_table
from rewardshare.feedback import Demonstrations, Preferences, Teacher, Transitions

TINY = GoalTask("open", 5, (4, 4))
#: The reuse tests' task family: 5x5 open grid, its train split for source tasks, held_out for targets.
FAMILY = TaskFamily("open", 5)


def loss_of(objective, model) -> float:
    """``objective``'s loss of ``model`` as a float, without building a graph."""
    with torch.no_grad():
        return float(objective(model))


def _step(task: GoalTask, pos: np.ndarray, action: np.ndarray) -> np.ndarray:
    layout = task.resolve_layout()
    w = layout.width
    flat = transition_table(layout)[pos[:, 0] * w + pos[:, 1], action]
    return np.stack([flat // w, flat % w], axis=1).astype(np.int64)


def _obs(env, cells: np.ndarray) -> np.ndarray:
    rows = [env.observation_for((int(r), int(c))) for r, c in cells.reshape(-1, 2)]
    flat = np.stack(rows) if rows else np.zeros((0, *env.observation_space.shape), np.float32)
    return flat.reshape(*cells.shape[:-1], *env.observation_space.shape)


def make_transitions(task: GoalTask = TINY, n: int = 200, seed: int = 0, obs_mode: str = "coords") -> Transitions:
    """Uniform coverage over free cells and actions, labelled with the dense teacher's noiseless reward."""
    rng = np.random.default_rng(seed)
    env = task.make_env(obs_mode=obs_mode)
    cells = np.asarray(env.layout.free_cells, dtype=np.int64)
    pos = cells[rng.integers(len(cells), size=n)]
    action = rng.integers(4, size=n).astype(np.int64)
    nxt = _step(task, pos, action)
    label = Teacher(task).true_reward(pos, action, nxt)
    done = (nxt == task.goal).all(1) & (pos != task.goal).any(1)
    return Transitions(
        obs=_obs(env, pos), action=action, next_obs=_obs(env, nxt), done=done,
        label=label, task_id=np.full(n, task.id), agent_pos=pos, next_agent_pos=nxt,
        metadata={"env_kwargs": {**task.env_kwargs(), "obs_mode": obs_mode}, "tasks": [task.to_dict()]},
    )


def _walk(task: GoalTask, rng: np.random.Generator, n: int, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    layout = task.resolve_layout()
    cells = np.asarray(layout.free_cells, dtype=np.int64)
    pos = np.zeros((n, length, 2), np.int64)
    act = rng.integers(4, size=(n, length)).astype(np.int64)
    nxt = np.zeros_like(pos)
    cur = cells[rng.integers(len(cells), size=n)]
    for t in range(length):
        pos[:, t] = cur
        cur = _step(task, cur, act[:, t])
        nxt[:, t] = cur
    return pos, act, nxt


def make_preferences(task: GoalTask = TINY, n: int = 200, length: int = 4, seed: int = 0) -> Preferences:
    """Random-walk segment pairs labelled by the noiseless dense return (1 A, 0 B, 0.5 tie)."""
    rng = np.random.default_rng(seed)
    env = task.make_env()
    teacher = Teacher(task)
    fields = {}
    returns = []
    for side in ("a", "b"):
        pos, act, nxt = _walk(task, rng, n, length)
        returns.append(teacher.true_reward(pos, act, nxt).sum(axis=1))
        fields.update({
            f"obs_{side}": _obs(env, pos), f"action_{side}": act, f"next_obs_{side}": _obs(env, nxt),
            f"done_{side}": (nxt == task.goal).all(-1), f"agent_pos_{side}": pos, f"next_agent_pos_{side}": nxt,
        })
    label = np.where(returns[0] > returns[1], 1.0, np.where(returns[0] < returns[1], 0.0, 0.5)).astype(np.float32)
    return Preferences(label=label, task_id=np.full(n, task.id), **fields)


def make_demonstrations(
    task: GoalTask = TINY, episodes: int = 12, noises: tuple[float, ...] = (0.0,), seed: int = 0, max_steps: int = 25
) -> Demonstrations:
    """Epsilon-greedy shortest-path demonstrations from random starts; ``noises`` cycle over episodes."""
    rng = np.random.default_rng(seed)
    layout = task.resolve_layout()
    env = task.make_env()
    teacher = Teacher(task)
    opt = optimal_actions(layout, task.goal)
    cells = [c for c in layout.free_cells if c != task.goal]
    steps: dict[str, list] = {k: [] for k in ("pos", "act", "nxt", "ep")}
    ep_noise, ep_return, ep_success = [], [], []
    for e in range(episodes):
        eps = noises[e % len(noises)]
        cur = np.array(cells[rng.integers(len(cells))])
        ret, success = 0.0, False
        for _ in range(max_steps):
            best = np.flatnonzero(opt[tuple(cur)])
            a = int(rng.integers(4)) if rng.random() < eps else int(rng.choice(best))
            nxt = _step(task, cur[None], np.array([a]))[0]
            steps["pos"].append(cur)
            steps["act"].append(a)
            steps["nxt"].append(nxt)
            steps["ep"].append(e)
            ret += float(teacher.true_reward(cur[None], np.array([a]), nxt[None])[0])
            cur = nxt
            if tuple(cur) == task.goal:
                success = True
                break
        ep_noise.append(eps)
        ep_return.append(ret)
        ep_success.append(success)
    pos, nxt = np.array(steps["pos"], np.int64), np.array(steps["nxt"], np.int64)
    ep = np.array(steps["ep"], np.int64)
    done = np.zeros(len(ep), bool)
    last = np.r_[ep[1:] != ep[:-1], True]
    done[last] = np.array(ep_success)
    return Demonstrations(
        obs=_obs(env, pos), action=np.array(steps["act"], np.int64), next_obs=_obs(env, nxt), done=done,
        agent_pos=pos, next_agent_pos=nxt, task_id=np.full(len(ep), task.id), episode=ep,
        episode_task_id=np.full(episodes, task.id), episode_return=np.array(ep_return, np.float32),
        demonstrator_noise=np.array(ep_noise, np.float32), episode_success=np.array(ep_success),
        metadata={"env_kwargs": {**task.env_kwargs(), "obs_mode": "coords"}, "tasks": [task.to_dict()]},
    )
