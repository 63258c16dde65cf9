"""Why does the posterior-mean reward collapse? Measurements on the committed ``collapse`` profile (open 8x8, PPO);
``--root`` points it at another profile's results (e.g. ``agents_four_rooms``: the planning part only, since that
profile has no posterior-mean runs to re-train).

Two measurements, both on the sweep's own adapted latent models (``cache/targets/latent/k*/...``), read through the
benchmark's store and reward loader, so the rewards are exactly the ones its agents trained on:

1. **Planning on the reward tables** (every goal x seed x k, variants none / mean / pessimistic): the learned reward
   of every (cell, action) of the grid MDP (:class:`rewardshare.envs.mdp.GridMDP`; the env terminates on entering the
   true goal), then value iteration at the agents' discount (PPO ``gamma = 0.99``; PPO bootstraps at the 50-step
   truncation, so the infinite-horizon value is what it maximises; the 50-step finite-horizon value is reported too):

   - ``V_goal``: the best return of a shortest-path policy to the true goal (mean over start cells);
   - ``V_loop``: the best return of a policy that never enters the true goal (VI with those moves forbidden);
   - ``opt_reaches``: fraction of start cells from which the reward-optimal policy reaches the true goal in 50 steps;
   - ``loop_wins``: fraction of start cells where ``V_loop > V_goal``;
   - ``cycle2``: the best two-step cycle ``r(s, a) + r(s', a')`` back to ``s`` (0 for the teacher away from its goal:
     every closer move is undone by a farther one; positive = the reward pays for walking in circles), and whether
     its cells are a *false goal* (the goal cell of a posterior mode of weight >= 0.05 other than the true goal) or
     a neighbour of one.

2. **Where the collapsed agents go**: the collapsed ``latent+mean`` runs (peak, then a fall of >= 0.5) are re-trained
   with the same seed and settings (the result must reproduce the stored curve), and their final greedy policy is
   rolled out from every start cell for the 50-step horizon: fraction of steps on / next to a false goal, true success,
   learned reward collected per episode vs the learned return of the shortest path to the true goal.

    python benchmarks/collapse_analysis.py              # about 3-5 minutes on one core
    python benchmarks/collapse_analysis.py --max-runs 2 # seconds-to-a-minute check

Writes ``benchmarks/results/collapse_analysis.json`` and prints the tables.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from rewardshare.wrappers.shaping import fit_potential

HERE = Path(__file__).resolve().parent
ROOT_DEFAULT = HERE / "results" / "learning_curves" / "collapse"
GAMMA = 0.99  # PPOConfig.gamma
MODE_WEIGHT = 0.05  # a posterior mode below this weight is not counted as a hypothesis


def reward_table(source: Any, mdp: Any, members: bool = False) -> np.ndarray:
    """``(S, A)`` reward of every move of the MDP under a wrapper reward source; with ``members`` (a
    ``PosteriorReward``) the ``(M, S, A)`` rewards of its members."""
    s_idx = np.repeat(np.arange(mdp.n_states), mdp.n_actions)
    a_idx = np.tile(np.arange(mdp.n_actions), mdp.n_states)
    s2 = mdp.next_state[s_idx, a_idx]
    args = (mdp.obs[s_idx], a_idx, mdp.obs[s2], mdp.done[s_idx, a_idx])
    if members:
        r = source.member_rewards(*args, mdp.cells[s_idx], mdp.cells[s2])
        return np.asarray(r, dtype=np.float64).reshape(-1, mdp.n_states, mdp.n_actions)
    r = source(*args, np.zeros(len(s_idx), np.float32), mdp.cells[s_idx], mdp.cells[s2])
    return np.asarray(r, dtype=np.float64).reshape(mdp.n_states, mdp.n_actions)


def value_iteration(r: np.ndarray, mdp: Any, forbid_goal: bool = False, horizon: int | None = None,
                    iters: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """Optimal values and greedy policy; entering the true goal ends the episode (value 0 after it).

    With ``horizon`` the finite-horizon values at t = 0 (undiscounted truncation, discount ``GAMMA`` inside).
    Returns ``(V (S,), policy (S,) at t = 0)``."""
    q_r = r.copy()
    if forbid_goal:
        q_r[mdp.done] = -np.inf
    g = mdp.goal_state
    v = np.zeros(mdp.n_states)
    cont = (~mdp.done).astype(float)
    steps = horizon if horizon is not None else iters
    for _ in range(steps):
        q = q_r + GAMMA * cont * v[mdp.next_state]
        q[g] = -np.inf if forbid_goal else q[g]  # a start at the goal never happens: keep it out of the max
        new = q.max(axis=1)
        new[g] = 0.0
        if horizon is None and np.max(np.abs(new - v)) < 1e-9:
            v = new
            break
        v = new
    q = q_r + GAMMA * cont * v[mdp.next_state]
    return v, q.argmax(axis=1)


def shortest_path_value(r: np.ndarray, mdp: Any, dist: np.ndarray, gamma: float = GAMMA) -> np.ndarray:
    """Best discounted learned return over shortest paths to the true goal (``dist``: BFS distance per state)."""
    v = np.zeros(mdp.n_states)
    order = np.argsort(dist)
    for s in order:
        if dist[s] <= 0:
            continue
        best = -np.inf
        for a in range(mdp.n_actions):
            s2 = mdp.next_state[s, a]
            if dist[s2] == dist[s] - 1:
                best = max(best, r[s, a] + (0.0 if mdp.done[s, a] else gamma * v[s2]))
        v[s] = best
    return v


def rollout(policy: np.ndarray, mdp: Any, r: np.ndarray, start: int, horizon: int) -> dict[str, Any]:
    """Deterministic episode of a state -> action policy: visited states, reached goal, learned return."""
    s, visited, ret = start, [], 0.0
    for _ in range(horizon):
        a = int(policy[s])
        ret += float(r[s, a])
        done = bool(mdp.done[s, a])
        s = int(mdp.next_state[s, a])
        visited.append(s)
        if done:
            return {"visited": visited, "reached": True, "learned_return": ret}
    return {"visited": visited, "reached": False, "learned_return": ret}


def mode_goals(members: np.ndarray, weights: np.ndarray, mdp: Any) -> list[tuple[int, float]]:
    """Each posterior mode's goal state (the cell its reward pays most to enter) and the mode's weight."""
    out = []
    entry = np.full((len(members), mdp.n_states), -np.inf)
    for s in range(mdp.n_states):
        for a in range(mdp.n_actions):
            s2 = mdp.next_state[s, a]
            if s2 != s:
                entry[:, s2] = np.maximum(entry[:, s2], members[:, s, a])
    for m in range(len(members)):
        out.append((int(entry[m].argmax()), float(weights[m])))
    return out


def exit_fix(members: np.ndarray, goals: list[tuple[int, float]], mdp: Any) -> np.ndarray:
    """Members' rewards with every move out of a member's own goal cell charged what that member pays at most for
    entering it (``r_m(G_m, a) -= max_{s, b: T(s, b) = G_m} r_m(s, b)``)."""
    out = members.copy()
    for m, (g, _) in enumerate(goals):
        into = (mdp.next_state == g) & (np.arange(mdp.n_states) != g)[:, None]
        leaving = mdp.next_state[g] != g
        out[m, g, leaving] -= members[m][into].max()
    return out


def potential_projection(r: np.ndarray, mdp: Any) -> np.ndarray:
    """``phi(T(s, a)) - phi(s)`` with ``phi`` the least-squares potential of ``r`` (what
    ``RewardOptions(shaping="potential")`` serves: :func:`~rewardshare.wrappers.shaping.fit_potential`)."""
    phi = fit_potential(r, mdp.next_state)
    return phi[mdp.next_state] - phi[:, None]


def neighbours(mdp: Any, states: set[int]) -> set[int]:
    """``states`` and every state one move away."""
    out = set(states)
    for s in states:
        out.update(int(x) for x in mdp.next_state[s])
    return out


def best_cycle2(r: np.ndarray, mdp: Any) -> tuple[float, int, int]:
    """The best 2-step cycle s -> s' -> s (s != s', neither the true goal, which ends the episode)."""
    best, arg = -np.inf, (-1, -1)
    g = mdp.goal_state
    for s in range(mdp.n_states):
        for a in range(mdp.n_actions):
            s2 = mdp.next_state[s, a]
            if s2 == s or s2 == g or s == g:
                continue
            back = [b for b in range(mdp.n_actions) if mdp.next_state[s2, b] == s]
            val = r[s, a] + max(r[s2, b] for b in back)
            if val > best:
                best, arg = val, (s, int(s2))
    return float(best), arg[0], arg[1]


def false_goal_cycle(r: np.ndarray, mdp: Any, goal_weight: dict[int, float]) -> dict[str, float]:
    """The best in-and-out cycle through a false goal ``F`` (``s -> F -> s``): its reward split into the entry and
    the exit move, and ``DENSE_GOAL_BONUS+1`` times the posterior weight of the modes whose goal is ``F`` (what the
    mixture of absorbing-goal rewards predicts the cycle pays: entering pays the modes' +6, leaving their 0)."""
    best = {"cycle": float("nan"), "entry": float("nan"), "exit": float("nan"), "predicted": float("nan")}
    for f, w in goal_weight.items():
        for s in range(mdp.n_states):
            if s in (f, mdp.goal_state):
                continue
            into = [a for a in range(mdp.n_actions) if mdp.next_state[s, a] == f]
            back = [b for b in range(mdp.n_actions) if mdp.next_state[f, b] == s]
            if not into or not back:
                continue
            e, x = max(r[s, a] for a in into), max(r[f, b] for b in back)
            if not e + x <= best["cycle"]:
                best = {"cycle": float(e + x), "entry": float(e), "exit": float(x), "predicted": 6.0 * w}
    return best


def analyse_tables(config: Any, store: Any, k: int, task: Any, seed: int) -> dict[str, Any]:
    """Planning figures of the none / mean / pessimistic rewards of one adapted latent model."""
    from rewardshare.envs.mdp import GridMDP
    from rewardshare.experiments.pipeline import _load_reward, env_kwargs
    from rewardshare.wrappers import PosteriorReward
    from rewardshare.wrappers.resolve import as_reward_source

    env = task.make_env(**env_kwargs(config))
    mdp = GridMDP.from_env(env)
    model, _ = _load_reward(config, store, "latent", k, task, seed, "none")
    post = PosteriorReward.from_latent(model)
    members = reward_table(post, mdp, members=True)
    weights = post.weights
    goals = mode_goals(members, weights, mdp)
    false_goals = {s for s, w in goals if w >= MODE_WEIGHT and s != mdp.goal_state}
    near_false = neighbours(mdp, false_goals) - {mdp.goal_state}
    goal_weight = {f: float(sum(w for g, w in goals if g == f)) for f in false_goals}
    teacher = reward_table(as_reward_source("teacher", teacher=_teacher(config, task)), mdp)
    dist = _dist(mdp)
    starts = [s for s in range(mdp.n_states) if s != mdp.goal_state]
    out: dict[str, Any] = {
        "k": k, "task_id": task.id, "seed": seed, "true_goal": mdp.goal,
        "modes": [{"goal": tuple(int(x) for x in mdp.cells[s]), "weight": round(w, 4)} for s, w in goals
                  if w >= MODE_WEIGHT],
        "weight_on_true_goal": float(sum(w for s, w in goals if s == mdp.goal_state)),
        "false_goals": [tuple(int(x) for x in mdp.cells[s]) for s in sorted(false_goals)], "variants": {},
    }
    tables = {"teacher": teacher, "none": reward_table(as_reward_source(model), mdp),
              "mean": (weights[:, None, None] * members).sum(0)}
    std = np.sqrt((weights[:, None, None] * (members - tables["mean"]) ** 2).sum(0))
    tables["pessimistic"] = tables["mean"] - config.pessimism_beta * std
    # the proposed fix, measured here before anyone builds it: each mode pays back, on leaving its own goal, what it
    # paid for entering it (so no in-and-out cycle pays under any mode, hence under any mixture of them)
    fixed = exit_fix(members, goals, mdp)
    tables["mean_exitfix"] = (weights[:, None, None] * fixed).sum(0)
    std_f = np.sqrt((weights[:, None, None] * (fixed - tables["mean_exitfix"]) ** 2).sum(0))
    tables["pessimistic_exitfix"] = tables["mean_exitfix"] - config.pessimism_beta * std_f
    # a second candidate: the conservative (potential) part of the posterior-mean reward, r = phi(s') - phi(s) with
    # phi the least-squares fit over every move; every cycle then pays exactly 0 undiscounted
    tables["mean_potential"] = potential_projection(tables["mean"], mdp)
    horizon = int(config.max_steps)
    for name, r in tables.items():
        v_opt, pol = value_iteration(r, mdp)
        v_loop, _ = value_iteration(r, mdp, forbid_goal=True)
        v_goal = shortest_path_value(r, mdp, dist)
        vh_opt, pol_h = value_iteration(r, mdp, horizon=horizon)
        vh_loop, _ = value_iteration(r, mdp, forbid_goal=True, horizon=horizon)
        reach = [rollout(pol, mdp, r, s, horizon)["reached"] for s in starts]
        reach_h = [rollout(pol_h, mdp, r, s, horizon)["reached"] for s in starts]
        c2, c_s, c_s2 = best_cycle2(r, mdp)
        fg = false_goal_cycle(r, mdp, goal_weight)
        out["variants"][name] = {
            "V_goal": float(v_goal[starts].mean()), "V_loop": float(v_loop[starts].mean()),
            "V_opt": float(v_opt[starts].mean()), "loop_wins": float(np.mean(v_loop[starts] > v_goal[starts] + 1e-9)),
            "opt_reaches": float(np.mean(reach)), "H50_V_loop": float(vh_loop[starts].mean()),
            "H50_opt_reaches": float(np.mean(reach_h)),
            "cycle2": c2, "cycle2_cells": [tuple(int(x) for x in mdp.cells[c]) for c in (c_s, c_s2)],
            "cycle2_at_false_goal": bool({c_s, c_s2} & near_false),
            "max_entry_false_goal": float(max((r[mdp.next_state == f].max() for f in false_goals), default=np.nan)),
            "max_entry_true_goal": float(r[mdp.done].max()),
            "false_goal_cycle": fg["cycle"], "false_goal_entry": fg["entry"], "false_goal_exit": fg["exit"],
            "false_goal_cycle_predicted": fg["predicted"],
        }
    return out


def _teacher(config: Any, task: Any) -> Any:
    from rewardshare.feedback import Teacher

    return Teacher(task, reward=config.teacher_reward)


def analyse_run(config: Any, store: Any, run: dict[str, Any], task: Any, table: dict[str, Any]) -> dict[str, Any]:
    """Re-train one collapsed run (same seed and settings) and read where its final greedy policy goes."""
    from rewardshare.agents import train_agent
    from rewardshare.agents.policy_obs import GridOneHot
    from rewardshare.envs.mdp import GridMDP
    from rewardshare.experiments.pipeline import _load_reward, env_kwargs

    k, seed, u = int(run["k"]), int(run["seed"]), run["uncertainty"]
    reward, options = _load_reward(config, store, "latent", k, task, seed, u)
    t0 = time.perf_counter()
    curve, agent = train_agent(
        run["algo"], task, reward=reward, total_timesteps=config.total_timesteps, seed=seed, n_envs=config.n_envs,
        eval_every=config.eval_every, eval_episodes=config.eval_episodes, device="cpu",
        env_kwargs=env_kwargs(config), reward_options=options, return_agent=True,
    )
    reproduced = bool(np.allclose(curve.success_rate, run["curve"]["success"]))
    env = task.make_env(**env_kwargs(config))
    mdp = GridMDP.from_env(env)
    onehot = GridOneHot(env)
    policy = agent.predict(onehot(mdp.obs), deterministic=True)[0].astype(int)
    from rewardshare.wrappers.resolve import as_reward_source

    r = reward_table(as_reward_source(reward) if options is None else _posterior(reward, options), mdp)
    cells = {tuple(c): i for i, c in enumerate(mdp.cells.tolist())}
    false_goals = {cells[tuple(c)] for c in table["false_goals"]}
    near = neighbours(mdp, false_goals) - {mdp.goal_state}
    dist = _dist(mdp)
    v_goal_undisc = shortest_path_value(r, mdp, dist, gamma=1.0)
    starts = [s for s in range(mdp.n_states) if s != mdp.goal_state]
    eps = [rollout(policy, mdp, r, s, int(config.max_steps)) for s in starts]
    steps = [x for e in eps for x in e["visited"]]
    return {
        "k": k, "task_id": task.id, "seed": seed, "uncertainty": u, "reproduced_stored_curve": reproduced,
        "stored_final_success": run["curve"]["success"][-1], "peak_success": max(run["curve"]["success"]),
        "final_success_all_starts": float(np.mean([e["reached"] for e in eps])),
        "frac_steps_on_false_goal": float(np.mean([s in false_goals for s in steps])) if steps else 0.0,
        "frac_steps_on_or_next_to_false_goal": float(np.mean([s in near for s in steps])) if steps else 0.0,
        "frac_steps_on_true_goal_neighbour": float(np.mean([dist[s] == 1 for s in steps])) if steps else 0.0,
        "learned_return_per_episode": float(np.mean([e["learned_return"] for e in eps])),
        "learned_return_shortest_path": float(np.mean(v_goal_undisc[starts])),
        "episode_len": float(np.mean([len(e["visited"]) for e in eps])), "train_s": time.perf_counter() - t0,
    }


def _dist(mdp: Any) -> np.ndarray:
    """BFS distance of every state to the true goal."""
    from rewardshare.envs.mdp import goal_distances

    d = goal_distances(mdp.layout, mdp.goal)
    return np.asarray(d[mdp.cells[:, 0], mdp.cells[:, 1]])


def _posterior(model: Any, options: Any) -> Any:
    from rewardshare.wrappers import PosteriorReward

    return PosteriorReward.from_latent(model, beta=float(options.beta or 0.0))


def _mean(xs: list[float]) -> float:
    xs = [x for x in xs if x == x]
    return float(np.mean(xs)) if xs else float("nan")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run both measurements, print the tables, write the JSON; returns it."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", default=str(ROOT_DEFAULT), help="the collapse profile's results dir (with cache/)")
    p.add_argument("--json", default=str(HERE / "results" / "collapse_analysis.json"))
    p.add_argument("--max-runs", type=int, default=12, help="collapsed latent+mean runs to re-train (k = 16 first)")
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from rewardshare._atomic import atomic_write_json
    from rewardshare.experiments import ResultStore
    from rewardshare.experiments.collapse import collapse_of
    from rewardshare.experiments.config import BenchConfig
    from rewardshare.experiments.runner import task_split

    t0 = time.perf_counter()
    root = Path(args.root)
    config = BenchConfig.from_dict(json.loads((root / "config.json").read_text())["config"])
    store = ResultStore(root, config)
    tasks = {t.id: t for t in task_split(config)["eval"]}
    runs = [store.read(f) for f in store.run_files()]
    tables = {}
    for k in config.rl_ks:
        for tid, task in tasks.items():
            for s in config.seeds:
                tables[(k, tid, s)] = analyse_tables(config, store, k, task, s)
    # which runs collapsed, per variant, keyed like the tables
    status = {}
    for r in runs:
        if r["method"] == "latent" and r["algo"] == "ppo":  # the planning figures are at PPO's discount
            status[(r["uncertainty"], int(r["k"]), r["task_id"], int(r["seed"]))] = collapse_of(
                r["curve"]["success"], config.collapse_drop)[1]

    variants = ("teacher", "none", "mean", "pessimistic", "mean_exitfix", "pessimistic_exitfix", "mean_potential")
    plan_rows = []
    for k in config.rl_ks:
        for v in variants:
            for group in ("all", "collapsed", "not collapsed"):
                keys = [key for key in tables if key[0] == k]
                if group != "all":
                    if v == "teacher":
                        continue
                    want = group == "collapsed"  # the *_exitfix tables grouped by their base variant's runs
                    keys = [key for key in keys if status.get((v.split("_")[0], *key)) == want]
                if not keys:
                    continue
                vs = [tables[key]["variants"][v] for key in keys]
                plan_rows.append({
                    "k": k, "reward": v, "runs": group, "n": len(keys),
                    **{f: _mean([x[f] for x in vs]) for f in ("V_goal", "V_loop", "loop_wins", "opt_reaches",
                                                               "H50_opt_reaches", "cycle2")},
                    "cycle2_at_false_goal": _mean([float(x["cycle2_at_false_goal"]) for x in vs]),
                    **{f: _mean([x[f] for x in vs]) for f in (
                        "max_entry_false_goal", "false_goal_cycle", "false_goal_entry", "false_goal_exit",
                        "false_goal_cycle_predicted")},
                    "weight_on_true_goal": _mean([tables[key]["weight_on_true_goal"] for key in keys]),
                    "n_false_goals": _mean([float(len(tables[key]["false_goals"])) for key in keys]),
                })
    print("Planning on the learned reward tables (mean over goals x seeds; values at gamma 0.99, mean over starts)")
    cols = ["k", "reward", "runs", "n", "V_goal", "V_loop", "loop_wins", "opt_reaches", "H50_opt_reaches", "cycle2",
            "cycle2_at_false_goal", "false_goal_cycle", "false_goal_entry", "false_goal_exit",
            "false_goal_cycle_predicted", "weight_on_true_goal", "n_false_goals"]
    print(" | ".join(cols))
    for row in plan_rows:
        print(" | ".join(f"{row[c]:.2f}" if isinstance(row[c], float) else str(row[c]) for c in cols))

    collapsed = [r for r in runs if r["method"] == "latent" and r["uncertainty"] == "mean" and r["algo"] == "ppo"
                 and collapse_of(r["curve"]["success"], config.collapse_drop)[1]]
    collapsed.sort(key=lambda r: (-int(r["k"]), r["task_id"], int(r["seed"])))
    agent_rows = []
    for r in collapsed[: args.max_runs]:
        row = analyse_run(config, store, r, tasks[r["task_id"]], tables[(int(r["k"]), r["task_id"], int(r["seed"]))])
        agent_rows.append(row)
        print({key: (round(v, 3) if isinstance(v, float) else v) for key, v in row.items()}, flush=True)
    out = {
        "benchmark": "collapse_analysis", "source_results": f"learning_curves/{Path(args.root).name}",
        "profile": config.profile,
        "config_hash": config.config_hash(), "gamma": GAMMA, "horizon": config.max_steps,
        "mode_weight": MODE_WEIGHT, "planning": plan_rows, "collapsed_runs": agent_rows,
        "n_collapsed_latent_mean": len(collapsed),
        "agent_summary": {f: _mean([x[f] for x in agent_rows]) for f in (
            "final_success_all_starts", "frac_steps_on_false_goal", "frac_steps_on_or_next_to_false_goal",
            "frac_steps_on_true_goal_neighbour", "learned_return_per_episode", "learned_return_shortest_path",
            "episode_len")} if agent_rows else {},
        "tables": [{**v, "true_goal": list(v["true_goal"])} for v in tables.values()],
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "wall_s": time.perf_counter() - t0,
    }
    print("collapsed latent+mean runs, final greedy policy (mean):", {
        key: round(v, 3) for key, v in out["agent_summary"].items()})
    atomic_write_json(args.json, out, sort_keys=True)
    print(f"wrote {args.json} in {out['wall_s']:.0f}s")
    return out


if __name__ == "__main__":
    main()
