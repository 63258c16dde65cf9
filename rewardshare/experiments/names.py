"""The names a learning-curve config may use: reuse and oracle methods, algorithms, feedback kinds, backends, and the
reward-uncertainty variants an agent can be trained with.

Kept apart from the config dataclass so that its checks (:mod:`~rewardshare.experiments.config_checks`) and the
runner can read them without importing the config.
"""

from __future__ import annotations

#: Reward-model reuse methods a config may compare, in report order: canonical names of the method registry
#: (``rewardshare.rewardmodels.list_methods()``; a test checks them). ``scratch`` is the baseline every speedup is
#: measured against.
REUSE_METHODS: tuple[str, ...] = (
    "scratch", "transfer", "task_embedding", "trunk_heads", "goal_conditioned", "maml", "map_prior", "latent",
)
#: Reward-model methods of the default config (and the ``quick`` / ``full`` profiles): every reuse method except
#: ``latent``, which joined later and is compared in the ``collapse`` profile.
DEFAULT_REUSE_METHODS: tuple[str, ...] = REUSE_METHODS[:7]
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
DEFAULT_METHODS: tuple[str, ...] = DEFAULT_REUSE_METHODS + ORACLE_METHODS
ALGOS: tuple[str, ...] = ("ppo", "dqn")
#: Feedback kinds: per-transition reward labels (MSE), segment-pair preferences (Bradley-Terry), demonstrated
#: episodes (MaxEnt IRL; one item is one episode).
FEEDBACK_KINDS: tuple[str, ...] = ("labels", "preferences", "demonstrations")
BACKENDS: tuple[str, ...] = ("local", "ray")

#: How an agent's reward reads a reward model that carries a posterior: ``"none"`` (the model as adapted: a latent
#: model at its MAP latent, one scratch network), ``"mean"`` (the posterior-mean reward) or ``"pessimistic"``
#: (posterior mean - beta * posterior std), as ``rewardshare.wrappers.RewardOptions(uncertainty=...)`` computes them;
#: each optionally ``+potential``: only the potential-based part ``phi(s') - phi(s)`` of that reward
#: (``RewardOptions(shaping="potential")``; ``"potential"`` alone shapes the plain reward).
UNCERTAINTY_VARIANTS: tuple[str, ...] = (
    "none", "mean", "pessimistic", "potential", "mean+potential", "pessimistic+potential",
)
#: The suffix of a variant whose reward is reduced to its potential-based part.
POTENTIAL_SUFFIX = "potential"
#: The methods whose adapted reward has a posterior, and where it comes from: the latent-task method's
#: ``metadata["latent_posterior"]`` (modes of the task latent and their probabilities), and for scratch, which has
#: none of its own, an ensemble of independently initialised networks fitted to the same items. Every other method
#: (and the oracles) is trained on its plain reward only.
POSTERIOR_METHODS: dict[str, str] = {"latent": "latent_posterior", "scratch": "ensemble"}


def run_label(method: str, uncertainty: str = "none") -> str:
    """The name of a method's runs under one uncertainty variant, as results directories and reports show it:
    ``"latent"`` for the plain reward, ``"latent+pessimistic"`` for the pessimistic one,
    ``"latent+pessimistic+potential"`` for the potential-based part of the pessimistic one.

    Raises:
        ValueError: On an unknown variant.
    """
    if uncertainty not in UNCERTAINTY_VARIANTS:
        raise ValueError(f"uncertainty={uncertainty!r} is not allowed: use one of {UNCERTAINTY_VARIANTS}")
    return method if uncertainty == "none" else f"{method}+{uncertainty}"


def split_variant(variant: str) -> tuple[str, str]:
    """A variant's two parts: the posterior reward (``"none"``, ``"mean"``, ``"pessimistic"``) and the shaping
    (``"none"`` or ``"potential"``): ``"pessimistic+potential"`` -> ``("pessimistic", "potential")``,
    ``"potential"`` -> ``("none", "potential")``, ``"mean"`` -> ``("mean", "none")``.

    Raises:
        ValueError: On an unknown variant.
    """
    if variant not in UNCERTAINTY_VARIANTS:
        raise ValueError(f"uncertainty={variant!r} is not allowed: use one of {UNCERTAINTY_VARIANTS}")
    if variant == POTENTIAL_SUFFIX:
        return "none", POTENTIAL_SUFFIX
    base, _, shaping = variant.partition("+")
    return base, shaping or "none"


def split_label(label: str) -> tuple[str, str]:
    """Inverse of :func:`run_label`: ``"latent+mean"`` -> ``("latent", "mean")``, ``"scratch"`` ->
    ``("scratch", "none")``, ``"latent+mean+potential"`` -> ``("latent", "mean+potential")``."""
    method, _, uncertainty = label.partition("+")
    return method, uncertainty or "none"


__all__ = [
    "ALGOS", "BACKENDS", "DEFAULT_METHODS", "DEFAULT_REUSE_METHODS", "FEEDBACK_KINDS", "LEGACY_METHOD_NAMES",
    "METHODS", "ORACLE_METHODS", "POSTERIOR_METHODS", "POTENTIAL_SUFFIX", "REUSE_METHODS", "UNCERTAINTY_VARIANTS",
    "UNTRAINED_METHODS", "run_label", "split_label", "split_variant",
]
