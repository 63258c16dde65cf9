"""Interactive feedback during training: the options refuse bad values naming them; the teacher is asked exactly the
budget, at the planned steps; the swapped-in model is the one the wrappers compute; DQN's replay buffer is relabelled
exactly; segments stay within one episode; ``interactive=None`` changes nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv
from typer.testing import CliRunner

from rewardshare.agents import (
    InteractiveFeedback,
    TransitionRecorder,
    make_agent,
    make_config,
    relabel_replay_buffer,
    train_agent,
)
from rewardshare.agents.policy_obs import GridOneHot, PolicyObsVecEnvWrapper
from rewardshare.agents.relabel import reward_wrapper_of
from rewardshare.cli import app
from rewardshare.envs import TaskFamily
from rewardshare.feedback import Preferences, Teacher, Transitions
from rewardshare.rewardmodels import RewardModel, make_loss
from rewardshare.rewardmodels.reuse import AdaptationBudget, make_method
from rewardshare.wrappers import LearnedRewardVecEnvWrapper, RewardOptions

TASK = TaskFamily("open", 5).train[0]
ENV = TASK.make_env()
FAST = AdaptationBudget(steps=5, lr=1e-2)
# PPO rollouts of 32 x 4 = 128 env steps: rounds planned at multiples of 128 run exactly there
PPO = dict(total_timesteps=1024, eval_every=512, eval_episodes=2, n_envs=4,
           agent_kwargs={"n_steps": 32, "batch_size": 64, "n_epochs": 1, "net_arch": [16]})
DQN = dict(total_timesteps=512, eval_every=512, eval_episodes=2, n_envs=4,
           agent_kwargs={"learning_starts": 64, "batch_size": 16, "net_arch": [16]})


def model(seed: int = 0) -> RewardModel:
    return RewardModel(ENV.observation_space, ENV.action_space, hidden_sizes=(8,), seed=seed)


# -- options --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"every": 0}, ValueError, r"every=0 is not allowed: use an int >= 1"),
        ({"every": 1.5}, ValueError, r"every=1.5 is not allowed"),
        ({"budget": -1}, ValueError, r"budget=-1 is not allowed: use an int >= 1"),
        ({"per_round": 0}, ValueError, r"per_round=0 is not allowed: use an int >= 1 or None"),
        ({"window": True}, ValueError, r"window=True is not allowed"),
        ({"segment_length": 0}, ValueError, r"segment_length=0 is not allowed"),
        ({"kind": "demonstrations"}, ValueError, r"kind='demonstrations' is not allowed: use one of \('labels', "
                                                 r"'preferences'\)"),
        ({"adaptation": {}}, ValueError, r"adaptation=\{\} is not allowed: a mapping needs int keys"),
        ({"adaptation": "fast"}, TypeError, r"adaptation='fast' is not allowed: use an AdaptationBudget"),
        ({"method": "latent"}, TypeError, r"method=str is not allowed: use a ReuseMethod or None"),
        ({"teacher": TASK}, TypeError, r"teacher=GoalTask is not allowed"),
    ],
)
def test_options_refuse_bad_values_naming_them(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        InteractiveFeedback(**{"every": 100, "budget": 10, **kwargs})


def test_options_plan_and_budget_choice() -> None:
    opts = InteractiveFeedback(every=300, budget=10, adaptation={0: FAST, 16: AdaptationBudget(50, 1e-3)})
    assert opts.planned_rounds(1000) == [300, 600, 900] and opts.planned_rounds(900) == [300, 600]
    assert opts.budget_for(3) == FAST and opts.budget_for(16).steps == 50 and opts.budget_for(99).steps == 50
    assert InteractiveFeedback(every=1, budget=1, adaptation=lambda n: FAST).budget_for(7) == FAST
    assert opts.to_dict()["adaptation"]["16"] == {"steps": 50, "lr": 1e-3, "params": "all", "prior_weight": 0.0}


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"reward": "true"}, ValueError, r"interactive feedback needs reward=<a RewardModel>"),
        ({"interactive": {"every": 10}}, TypeError, r"interactive=\{'every': 10\} is not allowed: use "
                                                    r"InteractiveFeedback"),
        ({"interactive": InteractiveFeedback(every=1024, budget=4)}, ValueError,
         r"interactive.every=1024 is not allowed with total_timesteps=1024"),
        ({"task_or_env": lambda: TASK.make_env()}, ValueError, r"needs task_or_env to be a GoalTask"),
        ({"interactive": InteractiveFeedback(every=128, budget=4, teacher=Teacher(TaskFamily("open", 5).train[1]))},
         ValueError, r"interactive.teacher teaches task .* but the agent trains on"),
        ({"teacher_kwargs": {"noise": 0.1}, "interactive": InteractiveFeedback(every=128, budget=4,
                                                                               teacher=Teacher(TASK))},
         ValueError, r"teacher_kwargs cannot change interactive.teacher"),
        ({"algo": "dqn", "agent_kwargs": {}, "reward_options": RewardOptions(add_env_reward=True)}, ValueError,
         r"algo='dqn' relabels the replay buffer"),
    ],
)
def test_train_agent_refuses_bad_interactive_arguments(kwargs: dict, error: type, match: str) -> None:
    args = dict(algo="ppo", task_or_env=TASK, reward=model(), interactive=InteractiveFeedback(every=128, budget=4),
                **PPO)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        train_agent(**args)


# -- budget and schedule ----------------------------------------------------------------------------------------------
def test_queries_equal_the_budget_at_the_planned_steps() -> None:
    teacher = Teacher(TASK)
    curve = train_agent("ppo", TASK, model(), **PPO, interactive=InteractiveFeedback(
        every=256, budget=10, adaptation=FAST, teacher=teacher))
    meta = curve.metadata["interactive"]
    rounds = meta["rounds"]
    assert [r["timesteps"] for r in rounds] == [256, 512, 768]
    assert [r["queries"] for r in rounds] == [4, 3, 3]  # 10 over 3 rounds, the extra first
    assert [r["total_items"] for r in rounds] == [4, 7, 10]
    assert meta["queries_used"] == 10 == teacher.spent == meta["teacher_spent"]
    assert meta["every"] == 256 and meta["budget"] == 10 and meta["adaptation"]["steps"] == 5


def test_per_round_and_a_teacher_budget_are_never_exceeded() -> None:
    opts = InteractiveFeedback(every=128, budget=20, per_round=3, adaptation=FAST)
    curve = train_agent("ppo", TASK, model(), **PPO, interactive=opts)
    assert [r["queries"] for r in curve.metadata["interactive"]["rounds"]] == [3, 3, 3, 3, 3, 3, 2]  # 7 rounds
    teacher = Teacher(TASK, budget=5)
    curve = train_agent("ppo", TASK, model(), **PPO, interactive=InteractiveFeedback(
        every=256, budget=10, adaptation=FAST, teacher=teacher))
    assert [r["queries"] for r in curve.metadata["interactive"]["rounds"]] == [2, 2, 1]
    assert teacher.spent == 5 and curve.metadata["interactive"]["queries_used"] == 5


def test_rounds_run_at_the_first_rollout_end_past_each_planned_step() -> None:
    curve = train_agent("ppo", TASK, model(), **PPO, interactive=InteractiveFeedback(every=200, budget=5,
                                                                                     adaptation=FAST))
    assert [r["timesteps"] for r in curve.metadata["interactive"]["rounds"]] == [256, 512, 640, 896, 1024]


# -- the swap -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("use_table", [False, "auto"])
def test_after_a_swap_the_wrapper_computes_the_new_model(use_table: bool | str) -> None:
    seen: list[RewardModel] = []
    curve, agent = train_agent(
        "ppo", TASK, model(), **PPO, reward_options=RewardOptions(use_table=use_table), return_agent=True,
        interactive=InteractiveFeedback(every=512, budget=6, adaptation=FAST, on_round=lambda t, m, d: seen.append(m)),
    )
    assert len(seen) == 1 and curve.metadata["interactive"]["rounds"][0]["items"] == 6
    new = seen[0]
    wrapper, _ = reward_wrapper_of(agent.get_env())
    assert wrapper.source.models[0] is new
    assert (wrapper.table is not None) == (use_table == "auto")  # the table path survives the swap
    obs = wrapper.reset()
    actions = np.array([0, 1, 2, 3])
    wrapper.step_async(actions)
    _, rew, _, infos = wrapper.step_wait()
    learned = np.array([i["learned_reward"] for i in infos])
    expect = new.predict(obs, actions).astype(np.float64)
    if use_table is False:
        np.testing.assert_array_equal(learned, expect)
        np.testing.assert_array_equal(rew, expect.astype(np.float32))
    else:  # a table value is the batched forward over the table's rows: equal to float32 rounding
        np.testing.assert_allclose(learned, expect, rtol=1e-6, atol=1e-7)


def test_each_round_is_the_methods_adaptation_to_all_feedback() -> None:
    method = make_method("scratch", ENV.observation_space, ENV.action_space, seed=4, hidden_sizes=(8,))
    rounds: list[tuple[RewardModel, Transitions]] = []
    train_agent("ppo", TASK, method.start_model(TASK), **PPO, interactive=InteractiveFeedback(
        every=512, budget=8, method=method, adaptation=FAST, on_round=lambda t, m, d: rounds.append((m, d))))
    (new, data), = rounds
    assert isinstance(data, Transitions) and len(data) == 8
    np.testing.assert_array_equal(data.label, Teacher(TASK).true_reward(data.agent_pos, data.action,
                                                                        data.next_agent_pos))
    again = method.adapt(make_loss("mse", data), FAST, TASK)
    np.testing.assert_array_equal(new.predict(data.obs, data.action), again.predict(data.obs, data.action))


def test_preference_segments_lie_within_one_episode() -> None:
    datasets: list[Preferences] = []
    curve = train_agent("ppo", TASK, model(), **PPO, interactive=InteractiveFeedback(
        every=256, budget=9, kind="preferences", segment_length=4, adaptation=FAST,
        on_round=lambda t, m, d: datasets.append(d)))
    assert [r["queries"] for r in curve.metadata["interactive"]["rounds"]] == [3, 3, 3]
    data = datasets[-1]
    assert len(data) == 9 and data.segment_length == 4
    for side in ("a", "b"):
        pos, nxt = getattr(data, f"agent_pos_{side}"), getattr(data, f"next_agent_pos_{side}")
        np.testing.assert_array_equal(nxt[:, :-1], pos[:, 1:])  # consecutive steps of one episode
        assert not getattr(data, f"done_{side}")[:, :-1].any()  # an episode ends only at a segment's last step


# -- the recorder and DQN's replay buffer ----------------------------------------------------------------------------
def test_recorder_keeps_real_transitions() -> None:
    venv = TransitionRecorder(DummyVecEnv([lambda: Monitor(TASK.make_env()) for _ in range(2)]), window=400)
    venv.seed(0)
    venv.reset()
    rng = np.random.default_rng(0)
    for _ in range(200):
        venv.step(rng.integers(4, size=2))
    assert len(venv) == 400 and venv.capacity == 200
    tr = venv.sample_transitions(400, rng)
    expect = [ENV.observation_for(tuple(c)) for c in tr["next_agent_pos"]]
    np.testing.assert_array_equal(tr["next_obs"], np.stack(expect))  # terminal observations included
    np.testing.assert_array_equal(tr["obs"], np.stack([ENV.observation_for(tuple(c)) for c in tr["agent_pos"]]))
    assert tr["done"].sum() == (tr["next_agent_pos"] == TASK.goal).all(axis=1).sum() > 0


def test_relabel_replaces_the_filled_rewards_exactly() -> None:
    venv = TransitionRecorder(DummyVecEnv([lambda: Monitor(TASK.make_env()) for _ in range(4)]), window=64)
    venv.seed(0)
    wrapper = LearnedRewardVecEnvWrapper(venv, model(0))
    onehot = GridOneHot(TASK.make_env())
    agent = make_agent("dqn", PolicyObsVecEnvWrapper(wrapper, onehot), seed=0,
                       config=make_config("dqn", learning_starts=32, net_arch=[8], buffer_size=500))
    agent.learn(200)
    buf = agent.replay_buffer
    n = buf.pos * buf.n_envs
    dones, timeouts = buf.dones.copy(), buf.timeouts.copy()
    new = model(1)
    wrapper.set_reward(new)
    assert relabel_replay_buffer(buf, wrapper, reward_wrapper_of(agent.get_env())[1]) == n == 200
    to_env = dict(zip(map(bytes, onehot.table), onehot.states.observations, strict=True))
    obs = np.stack([to_env[bytes(o)] for o in buf.observations[: buf.pos].reshape(n, -1)])
    expect = new.predict(obs, buf.actions[: buf.pos].reshape(n)).reshape(buf.pos, buf.n_envs)
    np.testing.assert_array_equal(buf.rewards[: buf.pos], expect)
    np.testing.assert_array_equal(buf.dones, dones)
    np.testing.assert_array_equal(buf.timeouts, timeouts)
    assert not buf.rewards[buf.pos:].any()


def test_dqn_rounds_relabel_the_buffer_right_after_the_swap() -> None:
    class Check(BaseCallback):
        """Runs after the interactive callback: compares the buffer with the current reward model."""

        def __init__(self) -> None:
            super().__init__()
            self.checked = 0

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            if len(seen) > self.checked:
                buf = self.model.replay_buffer
                n = buf.pos * buf.n_envs
                _, to_env = reward_wrapper_of(self.training_env)
                obs = to_env(buf.observations[: buf.pos].reshape(n, -1))
                expect = seen[-1].predict(obs, buf.actions[: buf.pos].reshape(n))
                np.testing.assert_array_equal(buf.rewards[: buf.pos].reshape(n), expect)
                self.checked = len(seen)

    seen: list[RewardModel] = []
    check = Check()
    curve = train_agent("dqn", TASK, model(), **DQN, callback=check, interactive=InteractiveFeedback(
        every=128, budget=6, adaptation=FAST, on_round=lambda t, m, d: seen.append(m)))
    rounds = curve.metadata["interactive"]["rounds"]
    assert [r["timesteps"] for r in rounds] == [128, 256, 384] and check.checked == 3
    assert [r["relabelled"] for r in rounds] == [128, 256, 384]


# -- unchanged without it, deterministic with it ----------------------------------------------------------------------
def test_interactive_none_is_todays_run_and_interactive_runs_are_deterministic() -> None:
    plain = train_agent("ppo", TASK, model(), **PPO)
    none = train_agent("ppo", TASK, model(), **PPO, interactive=None)
    assert "interactive" not in none.metadata
    for col in ("timesteps", "success_rate", "true_return", "learned_return", "episode_length"):
        assert getattr(plain, col) == getattr(none, col)
    opts = InteractiveFeedback(every=256, budget=6, adaptation=FAST)
    a = train_agent("ppo", TASK, model(), **PPO, interactive=opts)
    b = train_agent("ppo", TASK, model(), **PPO, interactive=opts)
    assert a.learned_return == b.learned_return and a.true_return == b.true_return
    assert a.learned_return != plain.learned_return  # the eval envs report the swapped-in reward


# -- CLI --------------------------------------------------------------------------------------------------------------
def test_cli_interactive_flags() -> None:
    runner = CliRunner()
    base = ["train-agent", "--env-id", "rewardshare/GridGoal-v0", "--goal", "2,3", "--timesteps", "256",
            "--eval-every", "256", "--eval-episodes", "2", "--n-envs", "2", "--set", "n_steps=32", "--set",
            "batch_size=64", "--no-progress"]
    res = runner.invoke(app, [*base, "--reward", "scratch", "--interactive-every", "128", "--feedback-budget", "5"])
    assert res.exit_code == 0, res.output
    assert "feedback: 5 of 5 queries (5 at 128)" in res.output
    for args, text in [
        (["--interactive-every", "0"], "--interactive-every: 0 is not allowed: use an int >= 1"),
        (["--reward", "scratch", "--interactive-every", "128"], "--interactive-every needs --feedback-budget K"),
        (["--feedback-budget", "5"], "use --feedback-budget only together with --interactive-every N"),
        (["--reward", "scratch"], "scratch needs --interactive-every N"),
        (["--interactive-every", "128", "--feedback-budget", "5"], "--reward: 'teacher' is not allowed: use scratch"),
        (["--reward", "scratch", "--interactive-every", "128", "--feedback-budget", "5", "--feedback-kind", "demos"],
         "--feedback-kind: 'demos' is not allowed"),
    ]:
        res = runner.invoke(app, [*base, *args])
        assert res.exit_code == 2 and text in res.output, res.output
        assert res.output.count("Error:") == 1


def test_benchmark_quick_runs_and_writes_its_table(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "interactive.json"
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "interactive_feedback.py"), "--quick", "--out",
                           str(out)], capture_output=True, text=True, timeout=600, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert set(result["summary"]) == {"6/scratch", "6/latent", "-/teacher"}
    assert set(result["summary"]["6/latent"]) == {"offline", "interactive", "auc_interactive_minus_offline"}
    assert "steps to 0.9 success" in done.stdout
    unit = json.loads((tmp_path / "interactive_units" / "6_latent.json").read_text())["result"]
    assert all(r["interactive"]["queries_used"] == 6 for r in unit["runs"])
