"""The benchmark's wiring to the rest of the package: every call into feedback, rewardmodels and agents is here.

:func:`execute_unit` runs one unit of a sweep (see :mod:`rewardshare.experiments.runner`) in a worker process:

- ``source``: :func:`~rewardshare.feedback.collect_transitions` (or ``collect_preferences``, ``collect_demonstrations``:
  the kind of ``BenchConfig.source_kind``) on the source tasks;
- ``prep/<method>``: build the reuse method (:func:`make_method`), pre-train it on the source feedback, choose its
  adaptation budget per k with :func:`~rewardshare.rewardmodels.reuse.select_budget` on the validation tasks (EPIC to
  the teacher as the score), then adapt it to every held-out task x seed x k and save the adapted reward model
  (at ``k = 0``, zero-shot, the method's start model for the task, unadapted; scratch has no ``k = 0`` model),
  plus the ensemble members of scratch when an uncertainty variant needs them;
- ``run``: :func:`~rewardshare.agents.train_agent` on the adapted model (or the ``"true"`` / ``"teacher"`` oracle),
  evaluated on the true reward; under a ``reward_uncertainty`` variant, on the model's posterior-mean or pessimistic
  reward (:class:`~rewardshare.wrappers.RewardOptions`): the latent model's own posterior over its task latent, or
  for scratch an ensemble (the model plus ``ensemble_size - 1`` networks from other initialisations, fitted by the
  ``prep`` unit to the same items with the same budget).

Everything random is seeded from the config: the source feedback and pre-training from ``pretrain_seed``; the k
target items of a held-out task from (task, k, evaluation seed), so every method sees the *same* items; the agent
and its evaluation episodes from the evaluation seed, so every method's run is paired with scratch's.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rewardshare.errors import InvalidArgumentError
from rewardshare.experiments.active import active_draw, active_labels, uses_active
from rewardshare.experiments.config import BenchConfig
from rewardshare.experiments.names import POSTERIOR_METHODS, UNTRAINED_METHODS, split_variant
from rewardshare.experiments.runner import stable_seed, task_split
from rewardshare.experiments.store import ResultStore

SOURCE_FILE = "source.npz"


# -- feedback ----------------------------------------------------------------------------------------------------
def collect_feedback(config: BenchConfig, tasks: Any, n: int, seed: int, kind: str | None = None) -> Any:
    """``n`` feedback items of the config's kind (or of ``kind``: the source feedback's, see
    :attr:`BenchConfig.source_kind`), split evenly over ``tasks`` (a GoalTask or a sequence).

    Returns:
        ``Transitions`` (labels), ``Preferences`` or ``Demonstrations`` (``n`` episodes).
    """
    from rewardshare.feedback import EnvOptions, collect_demonstrations, collect_preferences, collect_transitions

    common = {"reward": config.teacher_reward, "env": EnvOptions(obs_mode=config.obs_mode, max_steps=config.max_steps),
              "seed": int(seed)}
    kind = kind or config.feedback
    if kind == "labels":
        return collect_transitions(tasks, int(n), coverage="uniform", noise=config.teacher_noise, **common)
    if kind == "demonstrations":
        return collect_demonstrations(tasks, n_episodes=int(n), **common)
    return collect_preferences(tasks, int(n), **common)


def objective(data: Any, config: BenchConfig, kind: str | None = None) -> Any:
    """The training objective of a feedback dataset of the config's kind (or of ``kind``): MSE for labels,
    Bradley-Terry for preferences, MaxEnt IRL with ``config.irl_iterations`` soft value iteration backups for
    demonstrations (on the grid its metadata records)."""
    from rewardshare.rewardmodels import make_loss

    if (kind or config.feedback) == "demonstrations":
        return make_loss("maxent_irl", data, iterations=config.irl_iterations)
    return make_loss("auto", data)


def _draw_episodes(config: BenchConfig) -> Any:
    """``select_budget``'s draw for demonstrations: ``k`` whole episodes of a validation pool (a Demonstrations
    dataset), chosen as the default draw chooses ``k`` items, so ``k`` counts demonstrations and not their steps."""
    import numpy as np

    def draw(pool: Any, k: int, seed: int) -> Any:
        idx = np.random.default_rng(seed).choice(len(pool), size=k, replace=False)
        return objective(pool.select(np.sort(idx)), config)

    return draw


def env_kwargs(config: BenchConfig) -> dict[str, Any]:
    """The env arguments every env of the sweep gets (observation mode, horizon)."""
    out: dict[str, Any] = {"obs_mode": config.obs_mode}
    if config.max_steps is not None:
        out["max_steps"] = config.max_steps
    return out


def spaces_for(config: BenchConfig, task: Any) -> tuple[Any, Any]:
    """The (observation, action) spaces of ``task``'s env in the config's observation mode."""
    env = task.make_env(**env_kwargs(config))
    return env.observation_space, env.action_space


# -- reuse methods -------------------------------------------------------------------------------------------------
def method_settings(name: str, config: BenchConfig) -> dict[str, Any]:
    """The keyword settings the registry builds method ``name`` with, read from the config.

    Every method gets the model size and the pre-training seed; the MAML family its meta-training settings; every
    other pre-trained method the pre-training steps (so a newly registered per-task method needs no entry here).
    """
    common: dict[str, Any] = {"hidden_sizes": tuple(config.hidden_sizes), "seed": config.pretrain_seed}
    if config.use_done:  # absent at the default, so the methods' stored settings (and results) stay as they were
        common["use_done"] = True
    maml = {"iterations": config.maml_iterations, "inner_steps": config.maml_inner_steps,
            "inner_lr": config.maml_inner_lr, "support_size": config.maml_support_size,
            "query_size": config.maml_query_size}
    if name == "scratch":
        return common
    if name in ("maml", "meta_sgd"):
        return {**common, **maml}
    if name == "map_prior":  # the prior mean is the benchmark's MAML (Meta-SGD under maml_meta_sgd)
        return {**common, **maml, "base": "meta_sgd" if config.maml_meta_sgd else "maml",
                "max_prior_tasks": config.max_prior_tasks}
    return {**common, "steps": config.pretrain_steps}


def make_method(name: str, config: BenchConfig, observation_space: Any, action_space: Any) -> Any:
    """The :class:`~rewardshare.rewardmodels.reuse.ReuseMethod` registered as ``name``, with the config's settings.

    Args:
        name: One of :data:`~rewardshare.experiments.config.REUSE_METHODS` (canonical registry names).
        config: Pre-training settings (steps, MAML iterations, hidden sizes, seed).
        observation_space: The env's observation space.
        action_space: The env's action space.

    Raises:
        ValueError: On a name the registry does not know.
    """
    from rewardshare.rewardmodels.reuse import make_method as build

    registered = "meta_sgd" if name == "maml" and config.maml_meta_sgd else name  # the config's switch to Meta-SGD
    return build(registered, observation_space, action_space, **method_settings(name, config))


def _teacher(config: BenchConfig, task: Any) -> Any:
    from rewardshare.feedback import Teacher

    return Teacher(task, reward=config.teacher_reward)  # noiseless: the reference every model is judged against


def _epic(model: Any, task: Any, teacher: Any) -> dict[str, float | None]:
    from rewardshare.rewardmodels import evaluate

    return evaluate(model, task, teacher).to_dict()


def _select(config: BenchConfig, method: Any, name: str, k: int, validation: list[tuple[Any, Any]],
            teachers: dict[str, Any]) -> dict[str, Any]:
    from rewardshare.rewardmodels import select_budget

    def score(model: Any, task: Any) -> float:
        epic = _epic(model, task, teachers[task.id])["epic"]
        return 1.0 if epic is None else float(epic)  # a constant model has no EPIC: count it as the worst

    kwargs: dict[str, Any] = {"seeds": tuple(config.selection_seeds)}
    if uses_active(config, name):  # validation labels chosen like the targets: the "pool" is the task itself
        kwargs["draw"] = active_draw(config, method, lambda data: objective(data, config))
        validation = [(task, task) for task, _ in validation]
    elif config.feedback == "demonstrations":  # the pools are datasets; a draw is k episodes, not k steps
        kwargs["draw"] = _draw_episodes(config)
    if config.adapt_steps is not None:
        kwargs["steps"] = tuple(config.adapt_steps)
    if config.adapt_lrs is not None:
        kwargs["lrs"] = tuple(config.adapt_lrs)
    if config.prior_weights is not None and name == "map_prior":
        kwargs["prior_weights"] = tuple(config.prior_weights)
    return select_budget(method, validation, int(k), score, **kwargs).to_dict()


def target_feedback(config: BenchConfig, method: Any, name: str, task: Any, k: int, seed: int) -> Any:
    """The ``k`` target items of held-out ``task`` for evaluation seed ``seed``, as the dataset collected.

    Uniformly drawn (:func:`collect_feedback`, the same items for every method) unless ``config.query`` is active and
    ``name`` has a belief (:data:`~rewardshare.experiments.active.BELIEF_METHODS`): then chosen one at a time by
    that belief (:func:`~rewardshare.experiments.active.active_labels`, metadata ``query_strategy``). Both are seeded
    by (task, k, seed).
    """
    item_seed = stable_seed("target", task.id, k, seed)
    if uses_active(config, name):
        return active_labels(config, method, task, k, item_seed)
    return collect_feedback(config, task, k, item_seed)


# -- units -----------------------------------------------------------------------------------------------------------
def _run_source(config: BenchConfig, store: ResultStore) -> None:
    t0 = time.perf_counter()
    tasks = task_split(config)["source"]
    n = config.source_budget * len(tasks)
    data = collect_feedback(config, tasks, n, stable_seed("source", config.pretrain_seed), config.source_kind)
    store.source_dir().mkdir(parents=True, exist_ok=True)
    data.save(store.source_dir() / SOURCE_FILE)
    store.write(store.source_path(), {"n_items": len(data), "tasks": [t.id for t in tasks], "kind": config.source_kind,
                                      "seconds": time.perf_counter() - t0})


def _zero_shot(method: Any, name: str, task: Any) -> Any:
    """The method's start model for ``task`` (no target feedback, no adaptation), stamped like an adapted one.

    Raises:
        InvalidArgumentError: For a method that cannot predict without feedback (scratch's start model is an
            untrained network); :func:`~rewardshare.experiments.runner.plan` never asks for one.
    """
    from rewardshare.rewardmodels.reuse import NO_ADAPTATION

    if name in UNTRAINED_METHODS:
        raise InvalidArgumentError(f"k=0 with method={name!r} is not allowed: {name} cannot predict zero-shot (its "
                                   "start model is untrained); use k >= 1 or a pre-trained method")
    model = method.start_model(task)
    model.metadata["reuse"] = {"method": getattr(method, "name", name), "budget": NO_ADAPTATION.to_dict(),
                               "n_target_items": 0, "config": method.config()}
    return model


def _ensemble(config: BenchConfig, store: ResultStore, name: str, target: Any, budget: Any, task: Any, seed: int,
              k: int, teachers: dict[str, Any]) -> dict[str, Any]:
    """Members 1..M-1 of an adapted model's ensemble (member 0 is the model itself): the method rebuilt from other
    initialisation seeds, adapted to the same ``target`` items with the same budget, each saved next to the model.

    Returns:
        ``{"n_members", "seeds", "epic"}``: the members' count, their initialisation seeds and EPICs (member 0
        excluded: it is the record's own ``epic``).
    """
    from rewardshare.rewardmodels.reuse import make_method as build

    obs_space, act_space = spaces_for(config, task)
    seeds = [stable_seed("ensemble", config.pretrain_seed, i) for i in range(1, config.ensemble_size)]
    epics = []
    for i, member_seed in enumerate(seeds, start=1):
        settings = {**method_settings(name, config), "seed": member_seed}
        member = build(name, obs_space, act_space, **settings).adapt(target, budget, task)
        member.save(store.member_model_dir(name, k, task.id, seed, i), overwrite=True,
                    metadata={"method": name, "tasks": [task.id], "seed": seed, "ensemble_member": i,
                              "feedback": {"kind": config.feedback, "n_items": k},
                              "benchmark_config_hash": config.config_hash()})
        epics.append(_epic(member, task, teachers[task.id])["epic"])
    return {"n_members": config.ensemble_size, "seeds": seeds, "epic": epics}


def _run_prep(config: BenchConfig, store: ResultStore, params: dict[str, Any]) -> None:
    from rewardshare.feedback import load_dataset
    from rewardshare.rewardmodels.reuse import NO_ADAPTATION, AdaptationBudget

    name = params["method"]
    split = task_split(config)
    by_id = {t.id: t for t in split["eval"]}
    obs_space, act_space = spaces_for(config, split["eval"][0])
    t0 = time.perf_counter()
    method = make_method(name, config, obs_space, act_space)
    if name != "scratch":
        source = objective(load_dataset(store.source_dir() / SOURCE_FILE), config, config.source_kind)
        method.pretrain(source, split["source"], seed=config.pretrain_seed)
    pretrain_s = time.perf_counter() - t0

    teachers = {t.id: _teacher(config, t) for t in list(split["validation"]) + list(split["eval"])}
    pools: list[tuple[Any, Any]] | None = None
    budgets: dict[int, Any] = {}
    for k in config.ks:
        if k == 0:  # zero-shot: nothing to adapt, so nothing to choose
            budgets[k] = NO_ADAPTATION
            continue
        path = store.adapt_path(name, k)
        if store.done(path):
            sel = store.read(path)["selection"]
        else:
            if pools is None:  # validation feedback: the same pools for every method (seeded by task only)
                pools = [(t, collect_feedback(config, t, config.validation_pool,
                                              stable_seed("validation", t.id, config.pretrain_seed)))
                         for t in split["validation"]]
                if config.feedback != "demonstrations":  # demonstrations stay datasets: drawn by episode
                    pools = [(t, objective(data, config)) for t, data in pools]
            sel = _select(config, method, name, k, pools, teachers)
            store.write(path, {"method": name, "k": k, "selection": sel,
                               "validation_tasks": [t.id for t in split["validation"]],
                               **({"query": config.query} if uses_active(config, name) else {})})
        budgets[k] = AdaptationBudget.from_dict(sel["budget"])

    for target in params["targets"]:
        k, task_id, seed = int(target["k"]), target["task_id"], int(target["seed"])
        path = store.target_path(name, k, task_id, seed)
        if store.done(path):
            continue
        t1 = time.perf_counter()
        task = by_id[task_id]
        extra: dict[str, Any] = {}
        if k == 0:
            model = _zero_shot(method, name, task)
            before = after = _epic(model, task, teachers[task_id])
        else:
            data = target_feedback(config, method, name, task, k, seed)
            if "query_strategy" in data.metadata:
                extra["query"] = {"strategy": data.metadata["query_strategy"],
                                  "indices": list(data.metadata["query_indices"])}
            target = objective(data, config)
            before = _epic(method.start_model(task), task, teachers[task_id])
            model = method.adapt(target, budgets[k], task)
            after = _epic(model, task, teachers[task_id])
            if config.needs_ensemble(name):
                extra["members"] = _ensemble(config, store, name, target, budgets[k], task, seed, k, teachers)
        # overwrite: a unit interrupted after saving this model but before writing its result file redoes the
        # target (same seeds, same model) and must be able to save it again
        model.save(store.target_model_dir(name, k, task_id, seed), overwrite=True,
                   metadata={"method": name, "tasks": [task_id], "seed": seed,
                             "feedback": {"kind": config.feedback, "n_items": k,
                                          **({"query": extra["query"]["strategy"]} if "query" in extra else {})},
                             "benchmark_config_hash": config.config_hash()})
        store.write(path, {"method": name, "k": k, "task_id": task_id, "seed": seed, "epic": after["epic"],
                           "epic_unadapted": before["epic"], "eval": after, "eval_unadapted": before,
                           "budget": budgets[k].to_dict(), "seconds": time.perf_counter() - t1, **extra})
    store.write(store.prep_path(name), {"method": name, "pretrain_seconds": pretrain_s,
                                        "seconds": time.perf_counter() - t0,
                                        "budgets": {str(k): b.to_dict() for k, b in budgets.items()}})


def _load_reward(config: BenchConfig, store: ResultStore, method: str, k: int, task: Any, seed: int,
                 uncertainty: str) -> tuple[Any, Any]:
    """The reward an agent of ``method`` trains on and the reward options that read it.

    ``"none"``: the adapted model. ``"mean"`` / ``"pessimistic"``: the model's posterior through
    ``RewardOptions(uncertainty=...)``: the latent model itself (its ``metadata["latent_posterior"]``), or for an
    ensemble method the model and its saved members (a list, uniform weights). A ``+potential`` variant (or
    ``"potential"``) adds ``RewardOptions(shaping="potential")``: the potential-based part of that reward.

    Raises:
        FileNotFoundError: If an adapted model or member is missing (a deleted cache).
    """
    from rewardshare.rewardmodels import load_model
    from rewardshare.wrappers import RewardOptions

    obs_space, act_space = spaces_for(config, task)
    posterior, shaping = split_variant(uncertainty)
    dirs = [store.target_model_dir(method, k, task.id, seed)]
    if posterior != "none" and POSTERIOR_METHODS.get(method) == "ensemble":
        dirs += [store.member_model_dir(method, k, task.id, seed, i) for i in range(1, config.ensemble_size)]
    missing = [d for d in dirs if not d.exists()]
    if missing:
        raise FileNotFoundError(
            f"{missing[0]} is missing (the cache was deleted?): delete {store.prep_path(method)} and "
            f"{store.target_path(method, k, task.id, seed).parent} and re-run to recompute the adapted models"
        )
    models = [load_model(d, observation_space=obs_space, action_space=act_space) for d in dirs]
    if uncertainty == "none":
        return models[0], None
    beta = config.pessimism_beta if posterior == "pessimistic" else None
    options = RewardOptions(uncertainty=None if posterior == "none" else posterior, beta=beta, shaping=shaping)
    return (models if len(models) > 1 else models[0]), options


def _run_agent(config: BenchConfig, store: ResultStore, params: dict[str, Any]) -> None:
    from rewardshare.agents import train_agent

    algo, method, k, task_id, seed = params["algo"], params["method"], int(params["k"]), params["task_id"], int(
        params["seed"])
    uncertainty = params.get("uncertainty", "none")
    task = next(t for t in task_split(config)["eval"] if t.id == task_id)
    epic, options = None, None
    if method in ("true", "teacher"):
        reward: Any = method
    else:
        reward, options = _load_reward(config, store, method, k, task, seed, uncertainty)
        epic = store.read(store.target_path(method, k, task_id, seed))["epic"]
    t0 = time.perf_counter()
    curve = train_agent(
        algo, task, reward=reward, total_timesteps=config.total_timesteps, seed=seed, n_envs=config.n_envs,
        eval_every=config.eval_every, eval_episodes=config.eval_episodes, device="cpu",
        env_kwargs=env_kwargs(config), reward_options=options,
    )
    source = curve.metadata.get("reward") or {}
    store.write(store.run_path(algo, method, k, task_id, seed, uncertainty), {
        **params, "uncertainty": uncertainty, "epic": epic, "wall_s": time.perf_counter() - t0,
        "curve": {"timesteps": [int(t) for t in curve.timesteps], "success": [float(x) for x in curve.success_rate],
                  "true_return": [float(x) for x in curve.true_return],
                  "learned_return": [None if x != x else float(x) for x in curve.learned_return],
                  "wall_time": [float(x) for x in curve.wall_time]},
        "agent": {key: v for key, v in curve.metadata.items()
                  if key in ("agent_config", "n_envs", "eval_seed", "versions", "reward_options")},
        "reward": {key: source.get(key) for key in ("kind", "beta", "n_members") if key in source},
    })


def execute_unit(root: str, config: dict[str, Any], unit: dict[str, Any]) -> None:
    """Run one unit of a sweep and write its result file(s) atomically (the runner's default executor).

    Args:
        root: The results directory.
        config: The sweep's config as :meth:`BenchConfig.to_dict`.
        unit: The unit as :meth:`Unit.to_dict` (``stage``, ``params``, ``output``).

    Raises:
        ValueError: On an unknown stage.
    """
    cfg = BenchConfig.from_dict(config)
    store = ResultStore(Path(root), cfg)
    stage = unit["stage"]
    if stage == "source":
        _run_source(cfg, store)
    elif stage == "prep":
        _run_prep(cfg, store, unit["params"])
    elif stage == "run":
        _run_agent(cfg, store, unit["params"])
    else:
        raise ValueError(f"unit stage={stage!r} is not allowed: use 'source', 'prep' or 'run'")


__all__ = [
    "collect_feedback", "env_kwargs", "execute_unit", "make_method", "method_settings", "objective", "spaces_for",
    "target_feedback",
]
