"""Reusing reward models across tasks: the method life cycle, its registry, and one module per method family.

``from rewardshare.rewardmodels.reuse import make_method, list_methods, AdaptationBudget``

- :mod:`.base`: :class:`ReuseMethod` (``pretrain -> start_model -> adapt -> RewardModel``) and
  :class:`PerTaskPretrained`; :mod:`.registry`: :func:`register_method`, :func:`make_method`, :func:`list_methods`.
- :mod:`.adapt`: :class:`AdaptationBudget`, batched fine-tuning (:func:`finetune_many`, :func:`finetune`);
  :mod:`.selection`: choosing the budget on validation tasks (:func:`select_budget`).
- :mod:`.functional` (models with substituted weights, per-task items) and :mod:`.pretraining`
  (:func:`train_per_task`): the machinery the methods share.
- Methods, one module per family: :mod:`.scratch`, :mod:`.transfer`, :mod:`.multitask` (task embedding, trunk +
  heads), :mod:`.conditioning`, :mod:`.maml` (MAML, Meta-SGD; the meta-learner in :mod:`.maml_learner`, its backends
  in :mod:`.maml_backends`), :mod:`.prior` (MAP under a meta-learned Gaussian prior), :mod:`.latent` (a latent-task
  model whose new task is inferred: reuse as inference), :mod:`.amortized` (the same with a set encoder
  ``q(z | D)`` trained on random subsets of the source tasks: amortized inference).
- :mod:`.bayes`: the exact posterior over a grid family's goal cells, the reference every few-shot result is compared
  with (it knows the teacher's reward family, so it is not a registered method).

A method module registers its methods when it is imported; importing it below is what puts a new method in
:func:`list_methods` (the order of the imports is the order of the list).
"""

from rewardshare.rewardmodels.reuse.adapt import NO_ADAPTATION, AdaptationBudget, Penalty, finetune, finetune_many
from rewardshare.rewardmodels.reuse.base import PerTaskPretrained, ReuseMethod
from rewardshare.rewardmodels.reuse.bayes import GoalPosterior, TeacherModel
from rewardshare.rewardmodels.reuse.functional import FunctionalModel, select_parameters, split_by_task
from rewardshare.rewardmodels.reuse.pretraining import train_per_task
from rewardshare.rewardmodels.reuse.registry import list_methods, make_method, register_method
from rewardshare.rewardmodels.reuse.selection import BudgetSelection, select_budget

# -- method modules: importing one registers its methods, in this order -------------------------------------------
# isort: off
from rewardshare.rewardmodels.reuse.scratch import Scratch
from rewardshare.rewardmodels.reuse.transfer import FREEZE_OPTIONS, Transfer
from rewardshare.rewardmodels.reuse.multitask import SharedTrunkHeads, TaskEmbedding
from rewardshare.rewardmodels.reuse.conditioning import GoalConditioned, goal_descriptor
from rewardshare.rewardmodels.reuse.maml import MAMLMethod
from rewardshare.rewardmodels.reuse.maml_learner import MAML, MAMLConfig, MetaBatchSampler
from rewardshare.rewardmodels.reuse.prior import GaussianPrior, MAPAdaptation, fit_gaussian_prior
from rewardshare.rewardmodels.reuse.latent import LatentPosterior, LatentTask
from rewardshare.rewardmodels.reuse.cavia import CAVIA, CAVIAMethod
from rewardshare.rewardmodels.reuse.amortized import AmortizedLatent, SetEncoder
# isort: on

__all__ = [
    "AmortizedLatent", "CAVIA", "CAVIAMethod", "SetEncoder",
    "FREEZE_OPTIONS", "MAML", "NO_ADAPTATION", "AdaptationBudget", "BudgetSelection", "FunctionalModel",
    "GaussianPrior", "GoalConditioned", "GoalPosterior", "LatentPosterior", "LatentTask", "MAMLConfig", "MAMLMethod",
    "MAPAdaptation",
    "MetaBatchSampler", "Penalty", "PerTaskPretrained", "ReuseMethod", "Scratch", "SharedTrunkHeads", "TaskEmbedding",
    "Transfer", "finetune", "finetune_many", "fit_gaussian_prior", "goal_descriptor", "list_methods", "make_method",
    "register_method", "select_budget", "select_parameters", "split_by_task", "TeacherModel", "train_per_task",
]

# -- query selection (choosing the next query from a feedback pool) -----------------------------------------------
from rewardshare.rewardmodels.reuse.queries import (  # noqa: E402
    STRATEGIES,
    GoalBelief,
    LabelPool,
    LatentBelief,
    PreferencePool,
    QueryStrategy,
    active_feedback,
    make_strategy,
)

__all__ += [
    "STRATEGIES", "GoalBelief", "LabelPool", "LatentBelief", "PreferencePool", "QueryStrategy", "active_feedback",
    "make_strategy",
]
