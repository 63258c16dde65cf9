"""The GridGoal environment: find the goal on a 2-D grid (goal / start checks and episode draws: :mod:`.episodes`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from rewardshare.envs.episodes import EpisodeCells
from rewardshare.envs.layouts import Cell, Layout, make_layout, maze_layout
from rewardshare.envs.planner import ACTION_NAMES, N_ACTIONS, transition_table

OBS_MODES: tuple[str, ...] = ("coords", "onehot", "grid")
RENDER_MODES: tuple[str, ...] = ("rgb_array", "ansi")
_ACTIONS = {a: a for a in range(N_ACTIONS)}  # dict lookup accepts int and numpy ints and is the fastest check
# floats and bools hash like ints, so the dict alone would accept 1.0 or True: the type must be an integer type too
_INT_TYPES = frozenset(
    {int, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.intc, np.uintc,
     np.longlong, np.ulonglong}
)


def task_id_for(layout: Layout, goal: Cell) -> str:
    """The stable id of the task "reach ``goal`` on ``layout``", e.g. ``"open-8x8/g7_7"``."""
    return f"{layout.name}/g{goal[0]}_{goal[1]}"


_GOAL_IN_ID = re.compile(r"/g(\d+)_(\d+)$")


def goal_from_task_id(task_id: str) -> Cell:
    """The goal cell encoded in a task id such as ``"open-8x8/g7_7"`` (the inverse of :func:`task_id_for`).

    Raises:
        ValueError: If the id does not end in ``/g<row>_<col>``.
    """
    match = _GOAL_IN_ID.search(str(task_id))
    if not match:
        raise ValueError(f"task_id={task_id!r} does not name a goal (expected '<layout>/g<row>_<col>'); pass tasks=")
    return int(match.group(1)), int(match.group(2))


class GridGoalEnv(gym.Env[np.ndarray, np.int64]):
    """Find the goal on a 2-D grid with walls.

    The agent starts on a free cell and moves one cell per step. Reaching the goal ends the episode
    (``terminated``); after ``max_steps`` steps the episode is ``truncated``. Each *task* is a goal placement
    (see :class:`rewardshare.envs.TaskFamily`).

    ## Action space
    ``Discrete(4)``: ``0`` up, ``1`` right, ``2`` down, ``3`` left. A move into a wall or off the grid leaves the
    agent in place. An action outside the space raises ``ValueError``.

    ## Observation space
    Chosen by ``obs_mode`` (all ``float32``; every call returns new arrays, as gymnasium asks, so a kept
    observation or info never changes under the caller):

    - ``"coords"``: ``Box(0, max(H, W) - 1, (2,))``, the agent's ``(row, col)``.
    - ``"onehot"``: ``Box(0, 1, (H * W,))``, a one-hot of the agent's flat cell index ``row * W + col``.
    - ``"grid"``: ``Box(0, 1, (C, H, W))``, channels ``walls``, ``agent`` (and ``goal`` if ``observe_goal``).

    With ``observe_goal=True`` the goal is appended: its coordinates (``coords``, shape ``(4,)``), its one-hot
    (``onehot``, shape ``(2 * H * W,)``) or a third channel (``grid``).

    ## Rewards
    ``goal_reward`` (default ``+1``) on the step that reaches the goal, minus ``step_cost`` (default ``0``) on
    every step. With ``absorbing_goal=True`` the goal becomes absorbing: the episode does not terminate there,
    every action keeps the agent on the goal and earns ``0`` (no step cost), and the episode runs until
    ``max_steps``. This fixed-horizon form keeps the termination signal from leaking the reward to a learner.

    ## Info
    Every ``reset`` and ``step`` returns ``agent_pos`` and ``goal`` (int64 arrays ``(row, col)``),
    ``is_success`` (the goal has been reached in this episode) and ``task_id`` (a stable string such as
    ``"open-8x8/g7_7"``).

    ## Arguments
    - ``size`` (int, default 8): side length of named layouts (>= 2; four rooms >= 5; maze >= 3).
    - ``layout`` (str or Layout, default ``"open"``): ``"open"``, ``"four_rooms"``, ``"maze"`` or an ASCII map
      (``#`` wall, ``.`` free, optional ``S``/``G`` markers).
    - ``layout_seed`` (int or None, default 0): the maze's seed; ``None`` draws a new maze at every ``reset`` from
      the env's RNG (a fixed goal or start must then be a room cell, i.e. even coordinates, which every maze keeps).
    - ``goal`` (cell, ``"random"`` or None): a ``(row, col)`` cell; ``"random"`` draws one per reset from ``goals``;
      ``None`` uses the map's ``G`` marker or else the bottom-right free cell.
    - ``goals`` (sequence of cells or None): the candidates for ``goal="random"``; default every free cell the start
      can reach (other than a fixed start itself; with a random start, every cell some other cell can reach).
    - ``start`` (cell, ``"random"`` or None): a cell; ``"random"`` draws, per reset, a uniform free cell other than
      the goal among those that can reach it; ``None`` uses the map's ``S`` marker or else the top-left free cell.
    - ``max_steps`` (int or None): the truncation horizon; default ``4 * H * W``.
    - ``obs_mode`` (str, default ``"coords"``), ``observe_goal`` (bool, default False): see above.
    - ``goal_reward`` (float, default 1.0), ``step_cost`` (float, default 0.0), ``absorbing_goal`` (bool).
    - ``render_mode``: ``"rgb_array"`` (an ``(H * 16, W * 16, 3)`` uint8 image) or ``"ansi"`` (text).

    ## Registered IDs
    - ``rewardshare/GridGoal-v0``: open 8x8, goal bottom-right, start top-left.
    - ``rewardshare/GridGoal-FourRooms-v0``: four rooms 9x9, goal bottom-right, start top-left.
    - ``rewardshare/GridGoal-Maze-v0``: 9x9 maze of seed 0, goal bottom-right, start top-left.
    - ``rewardshare/GridGoal-MultiGoal-v0``: open 8x8, a random goal per episode, observed; random start.

    Every ID also has a native vector env: ``gym.make_vec(ID, num_envs=N, vectorization_mode="vector_entry_point")``
    (:class:`rewardshare.envs.GridGoalVectorEnv`).

    ## Raises
    ``ValueError`` naming the argument, the value and what is allowed: a ``size`` below what the layout needs, an
    unknown ``layout`` / ``obs_mode`` / ``render_mode``, a malformed ASCII map, a goal or start outside the grid or
    on a wall, a start equal to the goal, a goal unreachable from the start, and (in ``step``) an action outside
    ``Discrete(4)``.
    """

    metadata = {"render_modes": list(RENDER_MODES), "render_fps": 8}

    def __init__(
        self,
        size: int = 8,
        layout: str | Layout = "open",
        goal: Sequence[int] | str | None = None,
        start: Sequence[int] | str | None = None,
        max_steps: int | None = None,
        obs_mode: str = "coords",
        observe_goal: bool = False,
        goals: Sequence[Sequence[int]] | None = None,
        layout_seed: int | None = 0,
        goal_reward: float = 1.0,
        step_cost: float = 0.0,
        absorbing_goal: bool = False,
        render_mode: str | None = None,
    ) -> None:
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode={obs_mode!r} is not allowed: use one of {OBS_MODES}")
        if render_mode is not None and render_mode not in RENDER_MODES:
            raise ValueError(f"render_mode={render_mode!r} is not allowed: use one of {RENDER_MODES} or None")
        if layout_seed is None and layout != "maze":
            raise ValueError(f"layout_seed=None (a new maze per reset) needs layout='maze', got layout={layout!r}")
        self.random_layout = layout_seed is None
        self.layout = make_layout(layout, size, 0 if layout_seed is None else layout_seed)
        self.layout_seed = layout_seed
        self.obs_mode = obs_mode
        self.observe_goal = bool(observe_goal)
        self.goal_reward = float(goal_reward)
        self.step_cost = float(step_cost)
        self.absorbing_goal = bool(absorbing_goal)
        self.render_mode = render_mode
        h, w = self.layout.height, self.layout.width
        if max_steps is None:
            max_steps = 4 * h * w
        if isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer)) or max_steps < 1:
            raise ValueError(f"max_steps={max_steps!r} is not allowed: use an int >= 1 or None")
        self.max_steps = int(max_steps)

        self._goal_arg = goal
        self._start_arg = start
        self._goals_arg = goals
        self._set_layout(self.layout)

        self.action_space = spaces.Discrete(N_ACTIONS)
        self.observation_space = self._make_observation_space()
        self._agent = self._start if self._start is not None else self.layout.free_cells[0]
        self._goal_cell = self._goal if self._goal is not None else self.layout.free_cells[-1]
        self._steps = 0
        self._success = False
        self._load_task(self._goal_cell)

    # -- set-up -------------------------------------------------------------------------------------------------
    def _set_layout(self, layout: Layout) -> None:
        """Validate the goal/start arguments against ``layout`` and build its lookup tables."""
        self.layout = layout
        self._episodes = EpisodeCells(layout, self._goal_arg, self._start_arg, self._goals_arg)
        self._goal: Cell | None = self._episodes.goal
        self._start: Cell | None = self._episodes.start
        h, w = layout.height, layout.width
        self._next = transition_table(layout).tolist()
        self._cells = [(i // w, i % w) for i in range(h * w)]
        self._pos_arrays = []
        for cell in self._cells:
            arr = np.array(cell, dtype=np.int64)
            arr.flags.writeable = False
            self._pos_arrays.append(arr)
        self._obs_cache: dict[int, list[np.ndarray]] = {}

    def _make_observation_space(self) -> spaces.Box:
        h, w = self.layout.height, self.layout.width
        if self.obs_mode == "coords":
            n = 4 if self.observe_goal else 2
            return spaces.Box(0.0, float(max(h, w) - 1), (n,), np.float32)
        if self.obs_mode == "onehot":
            n = 2 * h * w if self.observe_goal else h * w
            return spaces.Box(0.0, 1.0, (n,), np.float32)
        return spaces.Box(0.0, 1.0, (3 if self.observe_goal else 2, h, w), np.float32)

    def _observation_table(self, goal_index: int) -> list[np.ndarray]:
        """One read-only observation per flat cell index, for the given goal (built once, then cached)."""
        key = goal_index if self.observe_goal else -1
        table = self._obs_cache.get(key)
        if table is None:
            table = [self._build_obs(i, goal_index) for i in range(self.layout.height * self.layout.width)]
            for arr in table:
                arr.flags.writeable = False
            self._obs_cache[key] = table
        return table

    def observation_for(self, cell: Cell, goal: Cell | None = None) -> np.ndarray:
        """The observation this env emits with the agent on ``cell`` and the goal on ``goal`` (default: current).

        Lets reward learning and evaluation enumerate every state of the grid. Returns a read-only array.
        """
        w = self.layout.width
        goal = self._goal_cell if goal is None else goal
        return self._observation_table(goal[0] * w + goal[1])[cell[0] * w + cell[1]]

    def _build_obs(self, cell_index: int, goal_index: int) -> np.ndarray:
        h, w = self.layout.height, self.layout.width
        cell, goal = self._cells[cell_index], self._cells[goal_index]
        if self.obs_mode == "coords":
            vals = cell + goal if self.observe_goal else cell
            return np.array(vals, dtype=np.float32)
        if self.obs_mode == "onehot":
            obs = np.zeros(self.observation_space.shape, dtype=np.float32)
            obs[cell_index] = 1.0
            if self.observe_goal:
                obs[h * w + goal_index] = 1.0
            return obs
        obs = np.zeros(self.observation_space.shape, dtype=np.float32)
        obs[0] = self.layout.walls
        obs[1][cell] = 1.0
        if self.observe_goal:
            obs[2][goal] = 1.0
        return obs

    def _load_task(self, goal: Cell) -> None:
        w = self.layout.width
        self._goal_cell = goal
        self._goal_index = goal[0] * w + goal[1]
        self._obs_table = self._observation_table(self._goal_index)
        self._goal_array = self._pos_arrays[self._goal_index]
        self._task_id = task_id_for(self.layout, goal)

    # -- properties ---------------------------------------------------------------------------------------------
    @property
    def agent_pos(self) -> Cell:
        """The agent's current ``(row, col)``."""
        return self._agent

    @property
    def goal(self) -> Cell:
        """The current episode's goal ``(row, col)``."""
        return self._goal_cell

    @property
    def task_id(self) -> str:
        """The stable id of the current task (layout and goal)."""
        return self._task_id

    # -- gymnasium API ------------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start an episode.

        Args:
            seed: Seeds the env's RNG (random goals, starts and mazes).
            options: Optional ``{"goal": cell, "start": cell}`` overriding this episode's goal and/or start.

        Returns:
            ``(observation, info)``; see the class docstring for their shapes and keys.

        Raises:
            ValueError: If an ``options`` cell is not a free cell, equals the other one, or cannot reach the goal.
        """
        super().reset(seed=seed)
        if self.random_layout:
            self._set_layout(maze_layout(self.layout.height, self.np_random))
        goal, start = self.draw_episode(self.np_random, options or {})
        self._load_task(goal)
        self._agent = start
        self._agent_index = start[0] * self.layout.width + start[1]
        self._steps = 0
        self._success = False
        return self._obs_table[self._agent_index].copy(), self._info()

    def draw_episode(self, rng: np.random.Generator, options: dict[str, Any]) -> tuple[Cell, Cell]:
        """Draw an episode's ``(goal, start)`` from ``rng`` (shared with the vector env so both draw alike).

        Args:
            rng: The generator random goals and starts are drawn from.
            options: Optional ``"goal"`` and ``"start"`` cells overriding the env's goal / start for this episode.

        Returns:
            ``(goal, start)``, two different free cells, the goal reachable from the start.

        Raises:
            ValueError: If an ``options`` cell is not a free cell, the two coincide, or the goal is unreachable.
        """
        return self._episodes.draw_episode(rng, options)

    def draw_start(self, rng: np.random.Generator, goal: Cell) -> Cell:
        """Draw a random start for ``goal``: a uniform free cell other than the goal, in the goal's region.

        ``goal`` must be a free cell that some other free cell can reach (the callers check this).
        """
        return self._episodes.draw_start(rng, goal)

    def step(self, action: Any) -> tuple[np.ndarray, SupportsFloat, bool, bool, dict]:
        """Move one cell. See the class docstring for rewards and termination.

        Args:
            action: An int in ``0..3`` (Python or numpy integer, or a 0-d integer array).

        Returns:
            ``(observation, reward, terminated, truncated, info)``.

        Raises:
            ValueError: If ``action`` is not an integer in ``0..3`` (floats and bools are refused too).
        """
        try:
            a = _ACTIONS[action]
        except (KeyError, TypeError):
            a = self._coerce_action(action)
        else:
            if action.__class__ not in _INT_TYPES:
                a = self._coerce_action(action)
        self._steps += 1
        reward = 0.0
        if self._success and self.absorbing_goal:
            nxt = self._agent_index
        else:
            nxt = self._next[self._agent_index][a]
            reward = -self.step_cost
            if nxt == self._goal_index:
                self._success = True
                reward += self.goal_reward
        self._agent_index = nxt
        self._agent = self._cells[nxt]
        terminated = self._success and not self.absorbing_goal
        truncated = not terminated and self._steps >= self.max_steps
        return self._obs_table[nxt].copy(), reward, terminated, truncated, self._info()

    def _coerce_action(self, action: Any) -> int:
        arr = np.asarray(action)
        if arr.shape == () and np.issubdtype(arr.dtype, np.integer) and 0 <= int(arr) < N_ACTIONS:
            return int(arr)
        raise ValueError(f"action={action!r} is not allowed: use an int in 0..{N_ACTIONS - 1} {ACTION_NAMES}")

    def _info(self) -> dict[str, Any]:
        return {
            "agent_pos": self._pos_arrays[self._agent_index].copy(),
            "goal": self._goal_array.copy(),
            "is_success": self._success,
            "task_id": self._task_id,
        }

    def render(self) -> np.ndarray | str | None:
        """Render the grid: an RGB image for ``"rgb_array"``, text for ``"ansi"``, nothing otherwise."""
        if self.render_mode == "ansi":
            return self.layout.to_ascii({self._goal_cell: "G", self._agent: "A"}) + "\n"
        if self.render_mode == "rgb_array":
            tile = 16
            colors = np.full((self.layout.height, self.layout.width, 3), 235, dtype=np.uint8)
            colors[self.layout.walls] = (60, 60, 60)
            colors[self._goal_cell] = (40, 180, 60)
            colors[self._agent] = (220, 50, 50)
            img = np.repeat(np.repeat(colors, tile, axis=0), tile, axis=1)
            img[::tile, :] = 200  # grid lines
            img[:, ::tile] = 200
            return img
        return None
