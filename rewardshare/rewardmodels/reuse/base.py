"""The reuse-method interface: one life cycle from source tasks to a new task's reward model.

Every reuse method (one module per family in this package) follows it:

1. ``method.pretrain(source, tasks)`` learns from the *source* tasks' feedback (an :class:`~rewardshare.rewardmodels.
   losses.Objective` whose items carry ``task_index``);
2. ``method.start_model(task)`` is the :class:`~rewardshare.rewardmodels.model.RewardModel` it offers a new task
   before seeing any of its feedback (zero-shot);
3. ``method.adapt(target, budget, task)`` adapts that model to the new task's few items (``target``, an Objective of
   any loss kind: reward labels, preferences, T-REX, MaxEnt IRL) within an :class:`~.adapt.AdaptationBudget` and
   returns a plain ``RewardModel``.

:func:`~.selection.select_budget` chooses the budget on validation tasks; :mod:`.registry` builds a method from its
canonical name. :class:`PerTaskPretrained` is the shared base of the methods pre-trained on every source task with
that task's own tensors (task embedding, trunk + heads, goal conditioning).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from gymnasium import spaces
from torch import Tensor, nn

from rewardshare.rewardmodels.model import RewardModel
from rewardshare.rewardmodels.objectives import Objective
from rewardshare.rewardmodels.reuse.adapt import NO_ADAPTATION, AdaptationBudget, Penalty, finetune_many
from rewardshare.rewardmodels.reuse.pretraining import train_per_task


class ReuseMethod(ABC):
    """A way to reuse what was learned on source tasks for a new task (see the module docstring).

    Subclasses set :attr:`name`, implement :meth:`pretrain` and :meth:`start_model`, and may override
    :meth:`adapt` and :meth:`candidate_params`.
    """

    name: str = ""

    @abstractmethod
    def pretrain(self, source: Objective, tasks: Sequence[Any] | None = None, *, seed: int = 0) -> ReuseMethod:
        """Learn from the source tasks' items (``source.items["task_index"]`` names each item's task).

        Args:
            source: Pooled feedback of the source tasks.
            tasks: ``GoalTask`` objects of the source tasks (needed by methods that read the goal).
            seed: Seeds initialisation and sampling.

        Returns:
            ``self``.
        """

    @abstractmethod
    def start_model(self, task: Any = None) -> RewardModel:
        """The model offered to a new task before any of its feedback (a fresh object each call)."""

    def adapt(
        self, target: Objective, budget: AdaptationBudget = NO_ADAPTATION, task: Any = None, **kwargs: Any
    ) -> RewardModel:
        """Adapt :meth:`start_model` to ``target`` within ``budget`` (one run of :meth:`adapt_many`).

        Args:
            target: The new task's items (any loss kind).
            budget: Steps, learning rate, trained parameters (and prior weight).
            task: The new task (methods that read the goal need it).
            **kwargs: ``checkpoints`` / ``on_checkpoint(step, model)`` as in :func:`finetune`.

        Returns:
            A plain :class:`RewardModel` whose ``metadata["reuse"]`` records the method and budget.
        """
        hook = kwargs.pop("on_checkpoint", None)
        if hook is not None:
            kwargs["on_checkpoint"] = lambda step, ms: hook(step, ms[0])
        return self.adapt_many([target], budget, [task], **kwargs)[0]

    def adapt_many(
        self,
        targets: Sequence[Objective],
        budget: AdaptationBudget | Sequence[AdaptationBudget] = NO_ADAPTATION,
        tasks: Sequence[Any] | None = None,
        *,
        checkpoints: Iterable[int] = (),
        on_checkpoint: Callable[[int, list[RewardModel]], None] | None = None,
        on_divergence: str = "raise",
    ) -> list[RewardModel]:
        """Adapt one start model per target, all in one batched computation (:func:`finetune_many`).

        Args:
            targets: Items of each run's task.
            budget: One budget for all runs, or one per run; per-run budgets may differ only in ``lr``.
            tasks: Each run's task (default ``None`` for all).
            checkpoints: Step counts at which ``on_checkpoint(step, models)`` sees the current models.
            on_checkpoint: See ``checkpoints``.
            on_divergence: ``"raise"`` or ``"stop"`` a run whose loss becomes non-finite (see :func:`finetune_many`).

        Returns:
            One adapted model per target.

        Raises:
            ValueError: On mismatched lengths, or per-run budgets that differ in more than ``lr``.
        """
        tasks = [None] * len(targets) if tasks is None else list(tasks)
        budgets = [budget] * len(targets) if isinstance(budget, AdaptationBudget) else list(budget)
        if not (len(tasks) == len(budgets) == len(targets)):
            raise ValueError(
                f"got {len(targets)} targets, {len(tasks)} tasks and {len(budgets)} budgets: give one per target"
            )
        shared = {(b.steps, b.params, b.prior_weight) for b in budgets}
        if len(shared) > 1:
            raise ValueError(f"per-run budgets may differ only in lr; got (steps, params, prior_weight) {shared}")
        starts = self.start_models(targets, tasks)
        models = self._run(starts, targets, budgets, checkpoints, on_checkpoint, on_divergence)
        for m, t, b in zip(models, targets, budgets, strict=True):
            self._finish(m)
            self._stamp(m, b, len(t))
        return models

    def start_models(self, targets: Sequence[Objective], tasks: Sequence[Any]) -> list[RewardModel]:
        """The model each run starts adapting from: :meth:`start_model` of its task by default.

        A method that *infers* the new task from its feedback (:mod:`.latent`) overrides this to read ``targets``;
        the budget's gradient steps then start from the inferred model.
        """
        return [self.start_model(t) for t in tasks]

    def _run(
        self,
        starts: list[RewardModel],
        targets: Sequence[Objective],
        budgets: list[AdaptationBudget],
        checkpoints: Iterable[int],
        on_checkpoint: Callable[[int, list[RewardModel]], None] | None,
        on_divergence: str = "raise",
    ) -> list[RewardModel]:
        b = budgets[0]
        return finetune_many(
            starts,
            targets,
            steps=b.steps,
            lr=[x.lr for x in budgets],
            params=b.params,
            penalty=self.penalty(b),
            checkpoints=checkpoints,
            on_checkpoint=on_checkpoint,
            on_divergence=on_divergence,
        )

    def _finish(self, model: RewardModel) -> None:
        """Turn an adapted model into its final form (e.g. freeze a learned context); in place."""
        return None

    def penalty(self, budget: AdaptationBudget) -> Penalty | None:
        """An extra adaptation loss term for ``budget`` (MAP adaptation's prior); ``None`` by default."""
        return None

    def candidate_params(self) -> list[str | tuple[str, ...]]:
        """The parameter choices :func:`select_budget` tries for this method."""
        return ["all"]

    def candidate_lrs(self) -> list[float]:
        """The learning rates :func:`select_budget` tries for this method."""
        return [1e-3, 1e-2]

    def candidate_prior_weights(self) -> list[float]:
        """The prior strengths :func:`select_budget` tries (only MAP adaptation uses one)."""
        return [0.0]

    def candidate_steps(self) -> list[int]:
        """The step counts :func:`select_budget` tries for this method (0, no adaptation, is always added)."""
        return [0, 10, 30, 100, 300]

    def config(self) -> dict[str, Any]:
        """JSON-ready settings (for provenance)."""
        return {"method": self.name}

    def _stamp(self, model: RewardModel, budget: AdaptationBudget, n_target: int) -> None:
        model.metadata["reuse"] = {
            "method": self.name,
            "budget": budget.to_dict(),
            "n_target_items": int(n_target),
            "config": self.config(),
        }

    def _require_pretrained(self, ready: bool) -> None:
        if not ready:
            raise RuntimeError(f"{type(self).__name__} is not pretrained: call .pretrain(source, tasks) first")


def jsonable(x: Any) -> Any:
    """``x`` as JSON writes it back (tuples become lists), so a method's :meth:`~ReuseMethod.config` round-trips."""
    if isinstance(x, tuple):
        return list(x)
    return x


class PerTaskPretrained(ReuseMethod):
    """Base of the methods pre-trained with :func:`train_per_task` on every source task, each item with its own
    task's tensors (task embedding, trunk + heads, goal conditioning): their settings, what pre-training leaves
    (:attr:`model`, :attr:`task_ids`, :attr:`history`) and the shared part of their :meth:`config`.

    Args:
        observation_space: The env's observation space.
        action_space: The env's action space.
        steps: Pre-training steps.
        lr: Pre-training learning rate.
        items_per_task: Items per task per step.
        tasks_per_step: Tasks per step (``None``: all).
        seed: Seeds initialisation and sampling.
        **model_kwargs: Passed to :class:`RewardModel`.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        *,
        steps: int = 3000,
        lr: float = 1e-3,
        items_per_task: int = 32,
        tasks_per_step: int | None = None,
        seed: int = 0,
        **model_kwargs: Any,
    ) -> None:
        self.observation_space = observation_space
        self.action_space = action_space
        self.steps, self.lr, self.items_per_task, self.seed = int(steps), float(lr), int(items_per_task), int(seed)
        self.tasks_per_step = tasks_per_step
        self.model_kwargs = model_kwargs
        self.model: RewardModel | None = None
        self.task_ids: list[str] = []
        self.history: list[float] = []

    def _new_model(self, seed: int, **kwargs: Any) -> RewardModel:
        """A fresh model of this method's spaces and ``model_kwargs`` (plus ``kwargs``, e.g. a context)."""
        return RewardModel(self.observation_space, self.action_space, seed=seed, **kwargs, **self.model_kwargs)

    def _train(
        self,
        model: RewardModel,
        source: Objective,
        task_ids: Sequence[str],
        seed: int,
        overrides: Mapping[str, Tensor],
        extra_params: Iterable[nn.Parameter] = (),
    ) -> list[float]:
        """:func:`train_per_task` with this method's settings; returns (and keeps in :attr:`history`) the losses."""
        self.history = train_per_task(
            model,
            source,
            task_ids,
            overrides=overrides,
            extra_params=extra_params,
            steps=self.steps,
            lr=self.lr,
            items_per_task=self.items_per_task,
            tasks_per_step=self.tasks_per_step,
            seed=seed,
        )
        return self.history

    def _base_config(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "steps": self.steps,
            "lr": self.lr,
            "items_per_task": self.items_per_task,
            "tasks_per_step": self.tasks_per_step,
            "seed": self.seed,
            "n_source_tasks": len(self.task_ids),
            "model": {k: jsonable(v) for k, v in self.model_kwargs.items()},
        }
