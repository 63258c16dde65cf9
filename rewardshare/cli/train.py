"""``rewardshare train-agent``: every argument is checked before training starts (the agent's hyperparameters, the
device, the goal, the output file), the env and task are read from a saved reward model when it knows them, and an
existing curve file is replaced only with ``--force``. ``train-reward`` lives in :mod:`.train_reward`."""

from __future__ import annotations

import dataclasses
import difflib
import math
import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from rewardshare.cli._common import (
    app,
    bad,
    check_choice,
    check_float,
    check_int,
    check_new_file,
    console,
    interactive,
    parse_overrides,
    user_errors,
)

#: Ranges of the agent hyperparameters ``--set`` may change: name -> (low, high, low excluded).
_AGENT_RANGES: dict[str, tuple[float, float, bool]] = {
    "learning_rate": (0, math.inf, True), "gamma": (0, 1, True), "gae_lambda": (0, 1, False),
    "clip_range": (0, math.inf, True), "ent_coef": (0, math.inf, False), "vf_coef": (0, math.inf, False),
    "max_grad_norm": (0, math.inf, True), "exploration_fraction": (0, 1, False),
    "exploration_final_eps": (0, 1, False), "n_steps": (1, math.inf, False), "batch_size": (2, math.inf, False),
    "n_epochs": (1, math.inf, False), "buffer_size": (1, math.inf, False), "learning_starts": (0, math.inf, False),
    "train_freq": (1, math.inf, False), "gradient_steps": (1, math.inf, False),
    "target_update_interval": (1, math.inf, False),
}


def check_agent_overrides(algo: str, overrides: dict[str, Any]) -> None:
    """Refuse ``--set`` values no agent can train with, by the config's field types and :data:`_AGENT_RANGES`."""
    from rewardshare.agents.algos import CONFIGS

    fields = {f.name: str(f.type) for f in dataclasses.fields(CONFIGS[algo])}
    for key, value in overrides.items():
        shown = f"{key}={value!r}"
        if key not in fields:
            close = difflib.get_close_matches(key, sorted(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            bad("--set", shown, f"a {algo} hyperparameter{hint}: {', '.join(sorted(fields))}")
        kind = fields[key]
        if kind == "list[int]":
            if not isinstance(value, list) or not value or not all(
                    isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
                bad("--set", shown, f"{key}=[...], a JSON list of layer widths > 0, e.g. {key}=[64,64]")
            continue
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not numeric or (kind == "int" and not isinstance(value, int)) or not math.isfinite(value):
            bad("--set", shown, f"{key}=<{'an int' if kind == 'int' else 'a number'}>")
        low, high, low_open = _AGENT_RANGES.get(key, (-math.inf, math.inf, False))
        if value < low or (low_open and value == low) or value > high:
            bad("--set", shown, f"{key} in {'(' if low_open else '['}{low}, {high}]")


def check_device(device: str) -> None:
    """Refuse a torch device this machine does not have (``auto`` always works)."""
    import torch

    allowed = "auto | cpu | cuda | cuda:N | mps"
    if device == "auto":
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        bad("--device", device, allowed)
    if dev.type not in ("cpu", "cuda", "mps"):
        bad("--device", device, allowed)
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        bad("--device", device, f"a device this machine has ({torch.cuda.device_count()} CUDA device(s)): auto or cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        bad("--device", device, "a device this machine has (no MPS here): auto or cpu")


def _trained_steps(algo: str, timesteps: int, n_envs: int | None, overrides: dict[str, Any]) -> tuple[int, str]:
    """The env steps SB3 really trains for ``timesteps`` (it only stops between whole rollouts) and why."""
    from rewardshare.agents.algos import make_config

    config = make_config(algo, **overrides)
    envs = n_envs or {"ppo": 8, "dqn": 4}[algo]
    if algo == "ppo":
        chunk, why = config.n_steps * envs, f"rollouts of n_steps x n_envs = {config.n_steps} x {envs}"
    else:
        chunk, why = config.train_freq * envs, f"steps of train_freq x n_envs = {config.train_freq} x {envs}"
    return -(-timesteps // chunk) * chunk, f"{why} = {chunk} env steps"


def _percent_callback(total: int, label: str) -> Any:
    """An SB3 callback printing one line per 10% of training (for piped output, where bars do not update)."""
    from stable_baselines3.common.callbacks import BaseCallback

    class PercentLines(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.next_pct, self.t0 = 10, time.perf_counter()

        def _on_step(self) -> bool:
            pct = 100 * self.num_timesteps // max(total, 1)
            if pct >= self.next_pct:
                typer.echo(f"{label}: {min(pct, 100)}% ({self.num_timesteps}/{total} steps, "
                           f"{time.perf_counter() - self.t0:.0f}s)", err=True)
                self.next_pct = (pct // 10 + 1) * 10
            return True

    return PercentLines()


def _task_from_model(meta: dict[str, Any], env_id: str) -> Any:
    """The one GoalTask a model's provenance names (None if it names none); refuses a multi-task model, which does
    not say which of its tasks the agent should learn."""
    from rewardshare.envs import GoalTask, goal_from_task_id

    tasks = [str(t) for t in meta.get("tasks") or []]
    if not tasks:
        return None
    if len(tasks) > 1:
        shown = ", ".join(tasks[:4]) + (", ..." if len(tasks) > 4 else "")
        raise typer.BadParameter(f"the reward model was trained on {len(tasks)} tasks ({shown}): pick the one to "
                                 "train the agent on with --goal row,col", param_hint="--goal")
    specs = [s for s in meta.get("task_specs") or [] if isinstance(s, dict) and s.get("id") == tasks[0]]
    with user_errors():
        if specs:
            return GoalTask.from_dict(specs[0])
        from rewardshare.envs import ENV_IDS

        kw = ENV_IDS[env_id]
        return GoalTask(kw["layout"], kw["size"], goal_from_task_id(tasks[0]), kw.get("layout_seed", 0))


def _check_interactive(reward: str, every: int | None, budget: int | None, per_round: int | None, kind: str) -> None:
    """Refuse interactive-feedback options that do not go together (before any work)."""
    check_int("--interactive-every", every, 1)
    check_int("--feedback-budget", budget, 1)
    check_int("--feedback-per-round", per_round, 1)
    check_choice("--feedback-kind", kind, ("labels", "preferences"))
    if every is None:
        for option, value in (("--feedback-budget", budget), ("--feedback-per-round", per_round)):
            if value is not None:
                bad(option, value, f"{option} only together with --interactive-every N")
        if kind != "labels":
            bad("--feedback-kind", kind, "--feedback-kind only together with --interactive-every N")
        if reward == "scratch":
            bad("--reward", reward, "true, teacher or a saved model directory (scratch needs --interactive-every N)")
        return
    if budget is None:
        raise typer.BadParameter("--interactive-every needs --feedback-budget K (an int >= 1: the total teacher "
                                 "queries)", param_hint="--feedback-budget")
    if reward in ("true", "teacher"):
        bad("--reward", reward, "scratch or a saved model directory with --interactive-every (the model the "
                                "feedback updates)")


@app.command("train-agent")
def train_agent_cmd(
    algo: str = typer.Option("ppo", "--algo", help="ppo | dqn."),
    reward: str = typer.Option("teacher", "--reward", help="true (the env's reward) | teacher (the dense teacher's "
                               "noiseless reward) | a saved reward model directory (its env id, task and obs mode "
                               "are read from it) | scratch (a fresh model; with --interactive-every)."),
    env_id: str = typer.Option(None, "--env-id", help="A rewardshare GridGoal ID (the task is its layout with "
                               "--goal) or any gymnasium ID (e.g. CartPole-v1); default: the reward model's env id, "
                               "else rewardshare/GridGoal-v0."),
    goal: str = typer.Option(None, "--goal", help="Goal cell 'row,col' of the GridGoal task (default: the reward "
                             "model's task, else the ID's goal, the bottom-right free cell)."),
    timesteps: int = typer.Option(50_000, "--timesteps", help="Env steps to train for (over all sub-envs); SB3 "
                                  "stops only between whole rollouts (PPO: n_steps x n_envs, DQN: train_freq x "
                                  "n_envs), so it is rounded up to one, and the command says so."),
    seed: int = typer.Option(0, "--seed", help="Seed of the agent, the envs and the eval episodes."),
    n_envs: int = typer.Option(None, "--n-envs", help="Training sub-envs (default 8 for ppo, 4 for dqn)."),
    eval_every: int = typer.Option(5_000, "--eval-every", help="Env steps between evaluations on the true reward."),
    eval_episodes: int = typer.Option(20, "--eval-episodes", help="Episodes per evaluation."),
    obs_mode: str = typer.Option(None, "--obs-mode", help="GridGoal obs mode coords | onehot | grid (default: the "
                                 "reward model's, else coords)."),
    policy_obs: str = typer.Option("auto", "--policy-obs", help="What the policy sees: auto | env | onehot."),
    normalize: bool = typer.Option(False, "--normalize/--no-normalize", help="Running reward normalisation."),
    scale: float = typer.Option(1.0, "--scale", help="Multiply the learned reward."),
    clip: float = typer.Option(None, "--clip", help="Clip the reward to [-clip, clip]."),
    add_env_reward: bool = typer.Option(False, "--add-env-reward", help="Add the env's reward to the learned one."),
    uncertainty: str = typer.Option("none", "--uncertainty", help="none | mean (the posterior-mean reward) | "
                                    "pessimistic (posterior mean - --beta x std): needs a model with a posterior "
                                    "(an adapted latent model) or an ensemble."),
    beta: float = typer.Option(None, "--beta", help="Pessimism of --uncertainty pessimistic (>= 0; default 1)."),
    shaping: str = typer.Option("none", "--shaping", help="none | potential (serve only the potential-based part "
                                "phi(s') - phi(s) of the reward, so no cycle of moves pays; GridGoal IDs only). "
                                "With a model that reads the episode-end flag (train-reward --use-done) the "
                                "potential peaks at the goal: the combination the learning-curve benchmark "
                                "measures on four rooms."),
    overrides: list[str] = typer.Option(None, "--set", help="Agent hyperparameter FIELD=VALUE (JSON value), "  # noqa: B008
                                        "repeatable, e.g. --set learning_rate=0.0005; checked before training."),
    out: str = typer.Option(None, "--out", help="Write the learning curve here (.json or .csv, in an existing "
                            "directory)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    device: str = typer.Option("auto", "--device", help="Torch device of the agent: auto | cpu | cuda | cuda:N | mps."),
    tensorboard_log: str = typer.Option(None, "--tensorboard-log", help="TensorBoard log directory."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress (a bar on a terminal, a "
                                  "line per 10% when piped)."),
    interactive_every: int = typer.Option(None, "--interactive-every", help="Interactive feedback: every N env steps "
                                          "ask the dense teacher about the agent's recent transitions and update the "
                                          "reward model (needs --feedback-budget and --reward scratch or a saved "
                                          "model to start from; GridGoal IDs only)."),
    feedback_budget: int = typer.Option(None, "--feedback-budget", help="Total teacher queries over the run "
                                        "(with --interactive-every); never exceeded."),
    feedback_per_round: int = typer.Option(None, "--feedback-per-round", help="Queries per round (default: the "
                                           "budget spread evenly over the rounds)."),
    feedback_kind: str = typer.Option("labels", "--feedback-kind", help="labels (reward labels of transitions) | "
                                      "preferences (pairs of segments of recent episodes)."),
) -> None:
    """Train a PPO/DQN agent on a reward (true, teacher or a saved model) and print its true-reward learning curve."""
    import gymnasium as gym

    from rewardshare.agents import train_agent
    from rewardshare.envs import ENV_IDS, OBS_MODES, GoalTask, make_layout
    from rewardshare.wrappers import RewardOptions

    # -- every check before any training ----------------------------------------------------------------------------
    check_choice("--algo", algo.lower(), ("ppo", "dqn"))
    algo = algo.lower()
    for option, value, low in (("--timesteps", timesteps, 1), ("--seed", seed, 0), ("--n-envs", n_envs, 1),
                               ("--eval-every", eval_every, 1), ("--eval-episodes", eval_episodes, 1)):
        check_int(option, value, low)
    check_choice("--policy-obs", policy_obs, ("auto", "env", "onehot"))
    if obs_mode is not None:
        check_choice("--obs-mode", obs_mode, OBS_MODES)
    check_float("--scale", scale)
    check_float("--clip", clip, 0.0, low_open=True)
    check_choice("--uncertainty", uncertainty, ("none", "mean", "pessimistic"))
    check_float("--beta", beta, 0.0)
    if beta is not None and uncertainty != "pessimistic":
        bad("--beta", beta, "--beta only together with --uncertainty pessimistic")
    check_choice("--shaping", shaping, ("none", "potential"))
    if (uncertainty != "none" or shaping != "none") and reward in ("true", "teacher", "scratch"):
        bad("--reward", reward, "a saved reward model directory with --uncertainty or --shaping (they reshape a "
                                "learned reward)")
    check_device(device)
    agent_kwargs = parse_overrides(overrides)
    check_agent_overrides(algo, agent_kwargs)
    out_path = check_new_file("--out", out, force, (".json", ".csv")) if out else None
    _check_interactive(reward, interactive_every, feedback_budget, feedback_per_round, feedback_kind)
    reward_arg: object = reward
    model_task = None
    if reward not in ("true", "teacher", "scratch"):
        if not Path(reward).is_dir():
            bad("--reward", reward, "true, teacher or a saved model directory")
        from rewardshare.rewardmodels import load_model

        with user_errors():
            reward_arg = load_model(reward)
        meta = reward_arg.metadata  # type: ignore[attr-defined]
        model_env = meta.get("env_id") if meta.get("env_id") in ENV_IDS else None
        env_id = env_id or model_env  # the files know the env: no need to repeat it
        if goal is None and env_id is not None and env_id == model_env:
            model_task = _task_from_model(meta, env_id)
    env_id = env_id or "rewardshare/GridGoal-v0"
    env_kwargs: dict[str, object] = {}
    if env_id in ENV_IDS:
        kw = ENV_IDS[env_id]
        if model_task is not None:
            target = model_task
        else:
            layout = make_layout(kw["layout"], kw["size"], kw.get("layout_seed", 0))
            if goal is not None:
                try:
                    cell = tuple(int(v) for v in goal.split(","))
                    if len(cell) != 2:
                        raise ValueError(goal)
                except ValueError:
                    bad("--goal", goal, "'row,col', e.g. 7,7")
            elif isinstance(kw.get("goal"), str):
                raise typer.BadParameter(f"{env_id} draws a goal per episode: pick one task with --goal row,col",
                                         param_hint="--goal")
            else:
                cell = layout.goal if layout.goal is not None else layout.free_cells[-1]
            if tuple(cell) not in {tuple(c) for c in layout.free_cells}:
                bad("--goal", goal, f"a free cell 'row,col' of {env_id}'s layout (not a wall, inside the grid), e.g. "
                                    f"{','.join(map(str, layout.free_cells[-1]))}")
            try:
                target = GoalTask(kw["layout"], kw["size"], cell, kw.get("layout_seed", 0))
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint="--goal") from None
        if obs_mode is not None:  # else: the model's own obs mode (train_agent reads it from its spaces)
            env_kwargs["obs_mode"] = obs_mode
    else:
        if env_id not in gym.registry:
            bad("--env-id", env_id, "a rewardshare GridGoal ID (see `rewardshare envs`) or a registered gymnasium ID")
        if goal is not None or obs_mode is not None:
            raise typer.BadParameter("--goal and --obs-mode only apply to rewardshare GridGoal IDs",
                                     param_hint="--env-id")
        target = env_id
    options = None
    with user_errors():
        if reward == "scratch":  # a fresh model of the env's spaces, learned from the interactive feedback alone
            from rewardshare.rewardmodels import RewardModel

            probe = target.make_env(**env_kwargs)
            reward_arg = RewardModel(probe.observation_space, probe.action_space, seed=seed)
        if interactive_every is not None:
            from rewardshare.agents import InteractiveFeedback

            options = InteractiveFeedback(every=interactive_every, budget=feedback_budget,
                                          per_round=feedback_per_round, kind=feedback_kind)
        reward_options = RewardOptions(normalize=normalize, scale=scale, clip=clip, add_env_reward=add_env_reward,
                                       uncertainty=None if uncertainty == "none" else uncertainty, beta=beta,
                                       shaping=shaping)
        steps, why = _trained_steps(algo, timesteps, n_envs, agent_kwargs)
    if steps != timesteps:
        typer.echo(f"note: {algo} trains in {why}, so --timesteps {timesteps} trains {steps} steps", err=True)
    bars = progress and interactive()
    label = f"train-agent {algo} on {getattr(target, 'id', target)}"
    if progress and not bars:
        typer.echo(f"{label}: training for {steps} steps", err=True)

    with user_errors():
        curve = train_agent(
            algo, target, reward_arg, total_timesteps=timesteps, seed=seed, n_envs=n_envs, eval_every=eval_every,
            eval_episodes=eval_episodes, device=device, progress_bar=bars, tensorboard_log=tensorboard_log,
            env_kwargs=env_kwargs, agent_kwargs=agent_kwargs, reward_options=reward_options, policy_obs=policy_obs,
            callback=_percent_callback(steps, label) if progress and not bars else None, interactive=options,
        )
    table = Table(title=f"{algo} on {curve.metadata.get('task', {}).get('id', env_id)}, reward={reward}, seed={seed}")
    for col in ("timesteps", "success", "true return", "learned return", "episode length", "train s"):
        table.add_column(col, justify="right")
    for i in range(len(curve)):
        table.add_row(
            str(curve.timesteps[i]), f"{curve.success_rate[i]:.2f}", f"{curve.true_return[i]:.3f}",
            f"{curve.learned_return[i]:.3f}", f"{curve.episode_length[i]:.1f}", f"{curve.wall_time[i]:.1f}",
        )
    console.print(table)
    if options is not None:
        rounds = curve.metadata["interactive"]["rounds"]
        shown = ", ".join(f"{r['queries']} at {r['timesteps']}" for r in rounds)
        console.print(f"feedback: {curve.metadata['interactive']['queries_used']} of {feedback_budget} queries "
                      f"({shown})")
    reached = curve.timesteps_to(0.9)
    console.print(f"steps to 0.9 success: {reached if reached is not None else 'not reached'}")
    if out_path is not None:
        with user_errors():
            console.print(f"curve: {curve.save(out_path)}")
