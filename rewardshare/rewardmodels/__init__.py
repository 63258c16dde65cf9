"""Reward models: learning from feedback, reuse across tasks, sharing and evaluation.

``from rewardshare.rewardmodels import RewardModel, fit, load_model, ModelStore``

- :class:`RewardModel` (``model.py``) with featurizers from gymnasium spaces (``featurizers.py``).
- :func:`fit` (``training.py``) over the losses of ``losses.py`` (``"mse"``, ``"bradley_terry"``, ``"trex"``) and
  MaxEnt IRL on grids (``irl.py``).
- :func:`load_model` (``sharing.py``, file format in ``serialization.py``, model cards in ``card.py``) and
  :class:`ModelStore` (``model_store.py``): checked safetensors + JSON directories and a local store of them.
- :func:`evaluate`, :func:`epic_distance`, :func:`preference_accuracy`, :func:`plot_reward_heatmap`
  (``evaluation.py``): judging a reward model against the teacher without RL.
- :func:`make_method`, :func:`list_methods`, :func:`register_method` and the reuse methods (``reuse/``): reusing
  what was learned on source tasks for a new task.
"""

from rewardshare.rewardmodels.evaluation import (
    Evaluation,
    epic_distance,
    evaluate,
    plot_reward_heatmap,
    preference_accuracy,
)
from rewardshare.rewardmodels.featurizers import make_featurizer, space_from_dict, space_to_dict, spaces_equal
from rewardshare.rewardmodels.model import RewardModel
from rewardshare.rewardmodels.model_store import ModelStore
from rewardshare.rewardmodels.objectives import LOSS_KINDS, Objective, make_loss
from rewardshare.rewardmodels.sharing import ModelFormatError, load_model, provenance, save_model
from rewardshare.rewardmodels.training import FitResult, fit

__all__ = [
    "LOSS_KINDS", "Evaluation", "FitResult", "ModelFormatError", "ModelStore", "Objective", "RewardModel",
    "epic_distance", "evaluate", "fit", "load_model", "make_featurizer", "make_loss", "plot_reward_heatmap",
    "preference_accuracy", "provenance", "save_model", "space_from_dict", "space_to_dict", "spaces_equal",
]

# Reuse across tasks (the reuse/ package): build a method by its canonical name with make_method (list_methods()
# gives the names); scratch, transfer, task embedding, shared trunk + heads, goal conditioning, MAML / Meta-SGD,
# MAP under a meta-learned Gaussian prior.
from rewardshare.rewardmodels.reuse import (  # noqa: E402
    FREEZE_OPTIONS,
    MAML,
    AdaptationBudget,
    BudgetSelection,
    GaussianPrior,
    GoalConditioned,
    MAMLConfig,
    MAMLMethod,
    MAPAdaptation,
    ReuseMethod,
    Scratch,
    SharedTrunkHeads,
    TaskEmbedding,
    Transfer,
    finetune,
    finetune_many,
    fit_gaussian_prior,
    goal_descriptor,
    list_methods,
    make_method,
    register_method,
    select_budget,
)

__all__ += [
    "FREEZE_OPTIONS", "MAML", "AdaptationBudget", "BudgetSelection", "GaussianPrior", "GoalConditioned",
    "MAMLConfig", "MAMLMethod", "MAPAdaptation", "ReuseMethod", "Scratch", "SharedTrunkHeads", "TaskEmbedding",
    "Transfer", "finetune", "finetune_many", "fit_gaussian_prior", "goal_descriptor", "list_methods", "make_method",
    "register_method", "select_budget",
]
