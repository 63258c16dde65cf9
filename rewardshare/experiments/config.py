"""The learning-curve benchmark's configuration: one frozen dataclass, a docstring per field, named profiles.

Everything that decides what a result *means* is a field here and therefore part of the config hash written
into every result file: the task family and its split, which held-out tasks are evaluated, the evaluation seeds,
the success threshold, the budgets. They are fixed before any result is looked at; the report never chooses them.

The names a field may take (methods, algorithms, ...) live in :mod:`~rewardshare.experiments.names` and the checks
every value goes through in :mod:`~rewardshare.experiments.config_checks`; both are re-exported here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from rewardshare.errors import IncompatibleArtifactError, InvalidArgumentError
from rewardshare.experiments.active import BELIEF_METHODS, QUERY_MODES
from rewardshare.experiments.config_checks import check_types, check_values
from rewardshare.experiments.names import (
    ALGOS,
    BACKENDS,
    DEFAULT_METHODS,
    FEEDBACK_KINDS,
    LEGACY_METHOD_NAMES,
    METHODS,
    ORACLE_METHODS,
    POSTERIOR_METHODS,
    REUSE_METHODS,
    UNCERTAINTY_VARIANTS,
    UNTRAINED_METHODS,
    run_label,
    split_variant,
)

#: Bumped whenever the meaning of a field changes, so old result files are refused instead of misread.
CONFIG_VERSION = 1

#: Fields added after version 1, with their defaults. A field at its default is left out of the config hash, so the
#: results of a config written before the field existed keep their hash (they were run with that default); a
#: non-default value is hashed like every other field.
ADDED_FIELDS: dict[str, Any] = {
    "irl_iterations": 30, "reward_uncertainty": ["none"], "pessimism_beta": 1.0, "ensemble_size": 5,
    "collapse_drop": 0.5, "query": "uniform", "source_feedback": None, "use_done": False,
}


@dataclass(frozen=True)
class BenchConfig:
    """One learning-curve sweep. Build it from a profile (:func:`get_profile`) and override fields with
    :func:`dataclasses.replace`; :meth:`validate` runs on construction.
    """

    profile: str = "quick"
    """Name of the profile this config came from (informational; part of the hash like every field)."""

    # -- tasks ----------------------------------------------------------------------------------------------------
    layout: str = "open"
    """Layout of the task family (``"open"``, ``"four_rooms"``, ``"maze"``)."""
    size: int = 8
    """Side length of the layout."""
    subset: str = "all"
    """Which free cells are goals of the family (see :class:`rewardshare.envs.TaskFamily`)."""
    layout_seed: int = 0
    """Maze seed (ignored by other layouts)."""
    held_out_fraction: float = 0.25
    """Fraction of the family's tasks in the ``held_out`` split. Held-out tasks are never pre-trained on or tuned on."""
    split_seed: int = 0
    """Seed of the family's train / held-out split."""
    n_eval_tasks: int = 2
    """How many held-out tasks are evaluated: the first ``n`` of a permutation of the held-out split seeded by
    ``eval_task_seed``. Fixed here so nobody picks the tasks that flatter a method."""
    eval_task_seed: int = 0
    """Seed of the permutation that picks the evaluated held-out tasks."""
    n_validation_tasks: int = 2
    """Train tasks set aside (never pre-trained on) to choose each method's adaptation settings per k: the only
    place any setting is chosen. The rest of the train split is the source of the pre-training feedback."""
    validation_seed: int = 0
    """Seed of the pick of validation tasks from the train split."""

    # -- feedback and reward models ------------------------------------------------------------------------------
    obs_mode: str = "coords"
    """Observation mode of every env (agents and reward models see the same observations)."""
    max_steps: int | None = 50
    """Episode horizon of every env (training, evaluation and feedback rollouts); None = the env's 4 * H * W. A
    horizon a few times the longest shortest path keeps failed evaluation episodes from dominating the run time."""
    feedback: str = "labels"
    """Feedback kind: ``"labels"`` (per-transition reward labels, MSE), ``"preferences"`` (segment pairs,
    Bradley-Terry) or ``"demonstrations"`` (the teacher's episodes from random starts, MaxEnt IRL). Every budget
    (``source_budget``, ``ks``, ``validation_pool``) counts items of this kind: one demonstration is one episode."""
    irl_iterations: int = 30
    """Soft value iteration backups of the MaxEnt-IRL likelihood of demonstrations (``gamma = 0.9``: ``0.9^30 =
    0.04``); only read with ``feedback="demonstrations"``."""
    teacher_reward: str = "dense"
    """The teacher's reward (``"dense"``: +1 closer, -1 farther or bump, +5 goal bonus; or ``"sparse"``)."""
    teacher_noise: float = 0.0
    """Gaussian noise (std) on the teacher's labels."""
    source_budget: int = 256
    """Feedback items collected per source (train) task for pre-training."""
    source_feedback: str | None = None
    """Feedback kind of the source tasks' pre-training items (``source_budget`` of them per task); None = the same
    kind as ``feedback``. E.g. ``"labels"`` with ``feedback="demonstrations"``: a model pre-trained on reward
    labels of the source goals, adapted to a few demonstrations of the new one (as the few-shot benchmark does)."""
    query: str = "uniform"
    """How the ``k`` target labels of a run (and the labels of the validation draws that choose the adaptation
    budget) are chosen for a method with a belief about the task (:data:`BELIEF_METHODS`: ``latent``, through its
    :class:`~rewardshare.rewardmodels.reuse.queries.LatentBelief`): ``"uniform"`` (the plain uniform draw every
    method gets), or ``"disagreement"`` / ``"information_gain"``: asked one at a time from every ``(cell, action)``
    pair of the grid (``LabelPool.grid``) by :func:`~rewardshare.rewardmodels.reuse.queries.active_feedback`, the
    belief conditioned after each, the teacher and seed those of the run. Methods without a belief (``scratch``
    and the rest) keep the uniform draw: they are compared at the same budget ``k``. Labels only."""
    ks: tuple[int, ...] = (4, 16, 64)
    """Target budgets: feedback items collected on each held-out task. Reward-model EPIC is measured at every k.
    ``0`` is zero-shot: each pre-trained method's start model for the task, with no target feedback and no
    adaptation; ``scratch`` (an untrained network until it sees feedback) cannot predict zero-shot and is skipped
    at ``k = 0``."""
    rl_ks: tuple[int, ...] = (16,)
    """The subset of ``ks`` at which agents are trained (RL is the expensive part; EPIC is cheap). Agents on a
    zero-shot reward (``k = 0``) are compared with scratch at every positive agent k, like the oracles."""
    hidden_sizes: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of every reward model."""
    use_done: bool = False
    """Every reward model also reads the env's episode-end flag (``RewardModel(use_done=True)``, as imitation's
    reward nets may): on these tasks an episode ends only on entering the goal, so a model pre-trained on source
    goals learns what reaching *a* goal pays without being told where this one is, and the wrappers' tables pass the
    env's own flag. With ``"potential"`` rewards this puts the potential's peak at the true goal."""
    pretrain_steps: int = 2000
    """Gradient steps of pre-training on the source tasks (transfer, multi-task, trunk + heads, goal-conditioned)."""
    maml_iterations: int = 500
    """Meta-iterations of MAML (also the prior mean of MAP-prior)."""
    maml_meta_sgd: bool = False
    """Learn one inner learning rate per weight (Meta-SGD) instead of MAML's single rate."""
    maml_inner_steps: int = 5
    """MAML inner-loop steps in meta-training."""
    maml_inner_lr: float = 0.05
    """MAML inner learning rate (Meta-SGD's initial per-weight rate)."""
    max_prior_tasks: int = 24
    """MAP-prior: source tasks used to estimate how much each weight varies between tasks."""
    maml_support_size: int = 16
    """MAML support items per source task and meta-iteration (the few-shot k it is meta-trained for)."""
    maml_query_size: int = 32
    """MAML query items per source task and meta-iteration (disjoint from the support items)."""
    adapt_steps: tuple[int, ...] | None = None
    """Adaptation step counts tried on the validation tasks (0, no adaptation, is always tried); None = each
    method's own candidates (``ReuseMethod.candidate_steps``)."""
    adapt_lrs: tuple[float, ...] | None = None
    """Adaptation learning rates tried on the validation tasks; None = each method's own candidates."""
    prior_weights: tuple[float, ...] | None = None
    """Prior strengths lambda tried for MAP-prior on the validation tasks; None = the method's own candidates."""
    selection_seeds: tuple[int, ...] = (0,)
    """Draws of the k items per validation task when choosing adaptation settings."""
    validation_pool: int = 256
    """Feedback items collected per validation task, from which the k items of each selection draw are taken."""
    pretrain_seed: int = 0
    """Seed of source feedback collection, pre-training and validation pools."""

    # -- agents ---------------------------------------------------------------------------------------------------
    methods: tuple[str, ...] = DEFAULT_METHODS
    """Methods compared: reuse methods from :data:`REUSE_METHODS` and oracles from :data:`ORACLE_METHODS` (default:
    all but ``latent``)."""
    algos: tuple[str, ...] = ALGOS
    """Stable-Baselines3 algorithms (``"ppo"``, ``"dqn"``)."""
    seeds: tuple[int, ...] = (0, 1)
    """Evaluation seeds: each seeds the target feedback draw, the adaptation and the agent of one run."""
    total_timesteps: int = 20_000
    """Agent training budget per run, in env steps (summed over parallel envs)."""
    n_envs: int | None = None
    """Parallel training envs per run (one process; batched reward); None = the agents' default (PPO 8, DQN 4)."""
    eval_every: int = 2_000
    """Evaluate the agent on the true reward every this many env steps."""
    eval_episodes: int = 20
    """Episodes per evaluation (random starts, true reward)."""
    success_threshold: float = 0.9
    """Success rate that counts as solved: steps-to-threshold and the speedup are measured at it."""
    collapse_drop: float = 0.5
    """A run *collapses* when its true success rate, after first reaching its peak (the maximum over its
    evaluations), is at some later evaluation ``<= peak - collapse_drop``: it found the goal, then learned to
    exploit the learned reward's error instead."""
    reward_uncertainty: tuple[str, ...] = ("none",)
    """Rewards the agents of a method with a posterior (:data:`POSTERIOR_METHODS`) are trained on, each on the same
    adapted models, seeds and tasks: ``"none"`` (the model as adapted), ``"mean"`` (posterior-mean reward),
    ``"pessimistic"`` (posterior mean - ``pessimism_beta`` * std), and ``"potential"``, ``"mean+potential"``,
    ``"pessimistic+potential"``: only the potential-based part ``phi(s') - phi(s)`` of the plain / mean /
    pessimistic reward (``RewardOptions(shaping="potential")``). Runs are labelled ``method+variant`` (e.g.
    ``latent+pessimistic``, ``latent+pessimistic+potential``). Methods without a posterior, and the oracles, run
    ``"none"`` only. Must hold ``"none"`` (the baseline), in the order of
    :data:`~rewardshare.experiments.names.UNCERTAINTY_VARIANTS`."""
    pessimism_beta: float = 1.0
    """``beta`` of the ``"pessimistic"`` reward (finite, ``>= 0``); a value other than 1.0 needs ``"pessimistic"``
    in ``reward_uncertainty``."""
    ensemble_size: int = 5
    """Members of the scratch ensemble that gives scratch a posterior for the ``"mean"`` / ``"pessimistic"``
    rewards: member 0 is scratch's own model (the ``"none"`` reward), the others are fitted to the same target items
    with the same chosen budget from other initialisation seeds. Only built when scratch runs such a variant."""

    def __post_init__(self) -> None:
        check_types(self)  # first: a string where a list belongs would otherwise be split into characters
        # normalise list inputs (from JSON or a CLI) to tuples so the dataclass stays hashable and comparable
        for f in ("ks", "rl_ks", "hidden_sizes", "methods", "algos", "seeds", "selection_seeds",
                  "reward_uncertainty"):
            object.__setattr__(self, f, tuple(getattr(self, f)))
        for f in ("pessimism_beta", "collapse_drop"):  # 1 and 1.0 are one config
            object.__setattr__(self, f, float(getattr(self, f)))
        for f in ("adapt_steps", "adapt_lrs", "prior_weights"):
            if getattr(self, f) is not None:
                object.__setattr__(self, f, tuple(getattr(self, f)))
        self.validate()

    def validate(self) -> None:
        """Check every field: its type, its range or allowed values, and how fields fit together
        (:mod:`~rewardshare.experiments.config_checks`).

        Raises:
            InvalidArgumentError: Naming the field, the bad value and what is allowed (a ``ValueError``).
        """
        check_types(self)
        check_values(self)
        _check_query(self)

    # -- derived --------------------------------------------------------------------------------------------------
    @property
    def source_kind(self) -> str:
        """The feedback kind of the source items: :attr:`source_feedback`, or :attr:`feedback` when None."""
        return self.source_feedback or self.feedback

    @property
    def reuse_methods(self) -> tuple[str, ...]:
        """The configured methods that learn a reward model (everything but the oracles)."""
        return tuple(m for m in self.methods if m in REUSE_METHODS)

    @property
    def oracle_methods(self) -> tuple[str, ...]:
        """The configured oracle methods."""
        return tuple(m for m in self.methods if m in ORACLE_METHODS)

    @property
    def pretrained_methods(self) -> tuple[str, ...]:
        """Reuse methods that are pre-trained on the source tasks (all but scratch)."""
        return tuple(m for m in self.reuse_methods if m not in UNTRAINED_METHODS)

    def uncertainty_of(self, method: str, k: int | None = None) -> tuple[str, ...]:
        """The reward variants ``method``'s agents are trained on (at budget ``k``, if given):
        :attr:`reward_uncertainty` for a method with a posterior (:data:`POSTERIOR_METHODS`), ``("none",)`` for
        every other method, the oracles and zero-shot models (``k = 0``: no target feedback, no posterior)."""
        return self.reward_uncertainty if method in POSTERIOR_METHODS and k != 0 else ("none",)

    def run_labels(self) -> tuple[str, ...]:
        """Every ``method+variant`` label of the runs, in report order (a method, then its variants)."""
        return tuple(run_label(m, u) for m in self.methods for u in self.uncertainty_of(m))

    def needs_ensemble(self, method: str) -> bool:
        """Whether ``method``'s adapted models need ensemble members (scratch under a posterior variant)."""
        return POSTERIOR_METHODS.get(method) == "ensemble" and any(
            split_variant(u)[0] != "none" for u in self.uncertainty_of(method))

    def methods_at(self, k: int) -> tuple[str, ...]:
        """The reuse methods that have a reward model at target budget ``k``: all of them, except at ``k = 0``
        (zero-shot), where the untrained ones (scratch) have nothing to offer and are skipped."""
        return self.pretrained_methods if k == 0 else self.reuse_methods

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field plus ``config_version``."""
        d = dataclasses.asdict(self)
        d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}
        for f in ("adapt_lrs", "prior_weights"):  # 1e-3 and 0.001 are one config: hash floats as floats
            if d[f] is not None:
                d[f] = [float(x) for x in d[f]]
        d["config_version"] = CONFIG_VERSION
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchConfig:
        """Inverse of :meth:`to_dict`.

        Raises:
            InvalidArgumentError: On an unknown field or an invalid value.
            IncompatibleArtifactError: On a different ``config_version``.
        """
        data = dict(data)
        # a config written under legacy method names is read under today's names but keeps the hash it was written
        # with: its results' stamps still match, and a sweep of today's config (another hash) never resumes into it
        written = _digest(data) if any(m in LEGACY_METHOD_NAMES for m in data.get("methods", ())) else None
        if written is not None:
            data["methods"] = [LEGACY_METHOD_NAMES.get(m, m) for m in data["methods"]]
        version = data.pop("config_version", None)
        if version != CONFIG_VERSION:
            raise IncompatibleArtifactError(
                f"config_version={version!r} is not supported: this rewardshare reads {CONFIG_VERSION}"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidArgumentError(f"unknown config field(s) {unknown}: allowed fields are {sorted(names)}")
        config = cls(**data)
        if written is not None:
            object.__setattr__(config, "_written_hash", written)
        return config

    def config_hash(self) -> str:
        """A 16-hex-digit SHA-256 of the canonical JSON of :meth:`to_dict`; equal configs give equal hashes (a config
        read from results with legacy method names keeps the hash they were written with, see :meth:`from_dict`; fields
        of :data:`ADDED_FIELDS` at their defaults are left out, so older results keep theirs)."""
        return getattr(self, "_written_hash", None) or _digest(self.to_dict())


def _check_query(c: BenchConfig) -> None:
    """``source_feedback``: a kind or None. ``query``: a known mode; an active one needs labels and a method with a
    belief."""
    if c.source_feedback is not None and c.source_feedback not in FEEDBACK_KINDS:
        raise InvalidArgumentError(f"source_feedback={c.source_feedback!r} is not allowed: use one of "
                                   f"{FEEDBACK_KINDS} or None (the kind of feedback)")
    if c.query not in QUERY_MODES:
        raise InvalidArgumentError(f"query={c.query!r} is not allowed: use one of {QUERY_MODES}")
    if c.query == "uniform":
        return
    if c.feedback != "labels":
        raise InvalidArgumentError(f"query={c.query!r} is not allowed with feedback={c.feedback!r}: active queries "
                                   "choose reward labels; use feedback='labels' or query='uniform'")
    if not any(m in BELIEF_METHODS for m in c.methods):
        raise InvalidArgumentError(f"query={c.query!r} is not allowed with methods={c.methods!r}: active queries "
                                   f"need a method with a belief, one of {BELIEF_METHODS}; add one or use "
                                   "query='uniform'")


def _digest(data: dict[str, Any]) -> str:
    data = {k: v for k, v in data.items() if not (k in ADDED_FIELDS and v == ADDED_FIELDS[k])}
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def _profiles() -> dict[str, BenchConfig]:
    from rewardshare.experiments.profiles import all_profiles

    return all_profiles(BenchConfig)


#: Named profiles (:func:`rewardshare.experiments.profiles.all_profiles` says what each is for and how long it takes).
PROFILES: dict[str, BenchConfig] = _profiles()


def get_profile(name: str = "quick", **overrides: Any) -> BenchConfig:
    """The named profile, optionally with fields overridden.

    Args:
        name: One of :data:`PROFILES`: ``"smoke"``, ``"quick"``, ``"full"``, ``"collapse"``,
            ``"collapse_potential"``, ``"agents_four_rooms"``, ``"agents_dqn_open"``, ``"agents_active"``,
            ``"agents_active_four_rooms"``, ``"agents_demos"``, ``"agents_demos_four_rooms"``,
            ``"agents_four_rooms_done"``, ``"collapse_done"``, ``"agents_active_four_rooms_done"``,
            ``"agents_demos_four_rooms_done"``, ``"agents_maze_done"`` or ``"agents_demos_done"``.
        **overrides: Field values replacing the profile's.

    Returns:
        The config (validated).

    Raises:
        ValueError: On an unknown profile or field, or an invalid value.
    """
    if name not in PROFILES:
        raise InvalidArgumentError(f"profile={name!r} is not allowed: use one of {tuple(PROFILES)}")
    names = {f.name for f in dataclasses.fields(BenchConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        import difflib

        hints = {u: difflib.get_close_matches(u, sorted(names), n=1) for u in unknown}
        close = "; ".join(f"{u!r}: did you mean {h[0]!r}?" for u, h in hints.items() if h)
        raise InvalidArgumentError(f"unknown config field(s) {unknown}{' (' + close + ')' if close else ''}: allowed "
                                   f"fields are {sorted(names)}")
    return dataclasses.replace(PROFILES[name], **overrides)


def field_docs() -> dict[str, str]:
    """Each field's docstring (read from the source), for ``--help`` texts and the report."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(BenchConfig)))
    docs: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, nxt in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


__all__ = [
    "ADDED_FIELDS", "ALGOS", "BACKENDS", "BELIEF_METHODS", "CONFIG_VERSION", "DEFAULT_METHODS", "FEEDBACK_KINDS",
    "LEGACY_METHOD_NAMES", "METHODS", "ORACLE_METHODS", "POSTERIOR_METHODS", "PROFILES", "QUERY_MODES",
    "REUSE_METHODS", "UNCERTAINTY_VARIANTS",
    "UNTRAINED_METHODS", "BenchConfig", "field_docs", "get_profile",
]
