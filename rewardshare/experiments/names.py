"""The names a learning-curve config may use: reuse and oracle methods, algorithms, feedback kinds, backends.

Kept apart from the config dataclass so that its checks (:mod:`~rewardshare.experiments.config_checks`) and the
runner can read them without importing the config.
"""

from __future__ import annotations

#: Reward-model reuse methods compared by default, in report order: canonical names of the method registry
#: (``rewardshare.rewardmodels.list_methods()``; a test checks them). ``scratch`` is the baseline every speedup is
#: measured against.
REUSE_METHODS: tuple[str, ...] = (
    "scratch", "transfer", "task_embedding", "trunk_heads", "goal_conditioned", "maml", "map_prior",
)
#: Reuse methods with nothing learned before the target feedback arrives: their start model is an untrained
#: network, so they cannot predict zero-shot and are skipped at ``k = 0``.
UNTRAINED_METHODS: tuple[str, ...] = ("scratch",)
#: Names some reuse methods had in results written before the method registry; a stored config or result is read
#: under today's name (:meth:`BenchConfig.from_dict`, :mod:`~rewardshare.experiments.report`).
LEGACY_METHOD_NAMES: dict[str, str] = {
    "multitask": "task_embedding", "multitask_embedding": "task_embedding", "shared_trunk_heads": "trunk_heads",
}
#: Oracle rewards: the env's own sparse reward and the teacher's noiseless dense reward. They need no feedback.
ORACLE_METHODS: tuple[str, ...] = ("true", "teacher")
METHODS: tuple[str, ...] = REUSE_METHODS + ORACLE_METHODS
ALGOS: tuple[str, ...] = ("ppo", "dqn")
FEEDBACK_KINDS: tuple[str, ...] = ("labels", "preferences")
BACKENDS: tuple[str, ...] = ("local", "ray")

__all__ = [
    "ALGOS", "BACKENDS", "FEEDBACK_KINDS", "LEGACY_METHOD_NAMES", "METHODS", "ORACLE_METHODS", "REUSE_METHODS",
    "UNTRAINED_METHODS",
]
