"""Beliefs about the task for query selection: weighted hypotheses, each predicting the teacher's answer to any
query (the exact goal posterior, or a latent model's modes; see :mod:`.queries`)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.special import logsumexp

from rewardshare.envs.tasks import GoalTask
from rewardshare.rewardmodels.evaluation import grid_mdp, reward_tensor, transition_rewards
from rewardshare.rewardmodels.objectives import make_loss
from rewardshare.rewardmodels.reuse.bayes import GoalPosterior
from rewardshare.rewardmodels.reuse.latent import LatentTask
from rewardshare.rewardmodels.reuse.query_pools import PreferencePool


# ------------------------------------------------------------------------------------------------------ beliefs
@dataclass(frozen=True)
class LabelPredictive:
    """Each hypothesis' distribution of the answer to label queries: a mixture of ``K`` components.

    Attributes:
        values: float64 ``(M, N, K)`` component means (the reward values the teacher may state).
        probs: float64 ``(M, N, K)`` component probabilities (summing to 1 over ``K``).
        done: bool ``(M, N, K)``: the env's ``done`` flag that comes with the answer.
        sigma: Gaussian noise on the stated value; 0 means the values are exact.
    """

    values: np.ndarray
    probs: np.ndarray
    done: np.ndarray
    sigma: float

    @property
    def mean(self) -> np.ndarray:
        """float64 ``(M, N)``: each hypothesis' expected label."""
        return (self.values * self.probs).sum(axis=2)


class Belief(ABC):
    """What the learner believes about the task: hypotheses ``m`` with weights, each predicting the teacher."""

    @property
    @abstractmethod
    def weights(self) -> np.ndarray:
        """float64 ``(M,)`` probabilities of the hypotheses."""

    @abstractmethod
    def label_predictive(self, pos: np.ndarray, action: np.ndarray) -> LabelPredictive:
        """Each hypothesis' distribution of the label of ``(pos (N, 2), action (N,))``."""

    @abstractmethod
    def preference_predictive(self, pool: PreferencePool, index: np.ndarray) -> np.ndarray:
        """float64 ``(M, N, 4)``: each hypothesis' probabilities of the outcomes (B, tie, A, skipped) of the pairs
        ``index`` of ``pool``."""

    @abstractmethod
    def observe_labels(self, pos: np.ndarray, action: np.ndarray, label: np.ndarray, done: np.ndarray) -> None:
        """Condition on labels ``(N,)`` of ``(pos, action)`` with the env's ``done`` flags."""

    @abstractmethod
    def observe_preferences(self, pool: PreferencePool, index: np.ndarray, label: np.ndarray) -> None:
        """Condition on the teacher's labels ``(N,)`` of the pairs ``index`` (NaN: skipped)."""

    @abstractmethod
    def reward(self, pos: Any, action: Any, next_pos: Any = None) -> np.ndarray:
        """The posterior-mean reward of transitions (the signature of ``Teacher.true_reward``)."""


class GoalBelief(Belief):
    """The exact posterior over goal cells as a belief (hypotheses = candidate goals; conditioning is exact).

    Args:
        posterior: The posterior, conditioned in place as answers arrive.
    """

    def __init__(self, posterior: GoalPosterior) -> None:
        if not isinstance(posterior, GoalPosterior):
            raise TypeError(f"posterior={posterior!r} is not allowed: use a GoalPosterior")
        self.posterior = posterior

    @property
    def weights(self) -> np.ndarray:
        return self.posterior.weights

    def label_predictive(self, pos: np.ndarray, action: np.ndarray) -> LabelPredictive:
        values, probs, done = self.posterior.label_outcomes(pos, action)
        return LabelPredictive(values, probs, np.repeat(done[..., None], values.shape[2], axis=2),
                               self.posterior.teacher.noise)

    def preference_predictive(self, pool: PreferencePool, index: np.ndarray) -> np.ndarray:
        return self.posterior.preference_outcomes(pool.pos_a[index], pool.action_a[index], pool.pos_b[index],
                                                  pool.action_b[index])

    def observe_labels(self, pos: np.ndarray, action: np.ndarray, label: np.ndarray, done: np.ndarray) -> None:
        self.posterior.condition(self.posterior.label_loglik(pos, action, label, done))

    def observe_preferences(self, pool: PreferencePool, index: np.ndarray, label: np.ndarray) -> None:
        self.posterior.condition(self.posterior.preference_loglik(
            pool.pos_a[index], pool.action_a[index], pool.pos_b[index], pool.action_b[index], label))

    def reward(self, pos: Any, action: Any, next_pos: Any = None) -> np.ndarray:
        return self.posterior.reward(pos, action, next_pos)


class LatentBelief(Belief):
    """A pre-trained latent-task model's posterior over ``z`` as a belief (hypotheses = its modes).

    Before any answer the hypotheses are the source tasks' latents, equally weighted (the empirical prior the model
    was fitted on); after answers they are the modes of :meth:`~.latent.LatentTask.infer` on everything observed so
    far, with their posterior weights. A label under mode ``m`` is ``N(R(s, a, z_m), sigma^2)`` with ``sigma^2`` the
    model's own noise variance; a comparison is Bradley-Terry on the modes' segment returns (the model knows no ties
    or skips: a skipped pair is not used). One belief takes one feedback kind.

    Args:
        method: A pre-trained :class:`~.latent.LatentTask`.
        task: The task whose env emits the observations (its goal is read only if the observation shows it).
        seed: Seeds the inference's prior draws.

    Raises:
        TypeError: If ``method`` is not a LatentTask.
        RuntimeError: If it is not pre-trained.
    """

    def __init__(self, method: LatentTask, task: GoalTask, seed: int = 0) -> None:
        if not isinstance(method, LatentTask):
            raise TypeError(f"method={method!r} is not allowed: use a pre-trained LatentTask")
        if method.prior_mean is None or method.embeddings is None or method.model is None:
            raise RuntimeError("the LatentTask is not pre-trained: call pretrain(...) first")
        self.method, self.seed = method, int(seed)
        self.mdp = grid_mdp(task, method.model)
        self.sigma = math.sqrt(method.noise_variance)
        self._items: dict[str, list[np.ndarray]] = {}
        self._kind: str | None = None
        self._set_modes(method.embeddings.detach(), torch.full((len(method.embeddings),), -math.log(
            len(method.embeddings))))

    def _set_modes(self, z: torch.Tensor, log_weights: torch.Tensor) -> None:
        tables = []
        for zm in z:
            tables.append(transition_rewards(reward_tensor(self.method.model_at(zm), self.mdp), self.mdp))
        self.z = z
        self.table = np.stack(tables)  # (M, S, 4)
        self._log_weights = log_weights.double().numpy()

    @property
    def weights(self) -> np.ndarray:
        return np.exp(self._log_weights - logsumexp(self._log_weights))

    def _states(self, pos: np.ndarray) -> np.ndarray:
        pos = np.asarray(pos, dtype=np.int64)
        return self.mdp.cell_index[pos[..., 0] * self.mdp.layout.width + pos[..., 1]]

    def label_predictive(self, pos: np.ndarray, action: np.ndarray) -> LabelPredictive:
        values = self.table[:, self._states(pos), np.asarray(action, dtype=np.int64)][..., None]
        return LabelPredictive(values, np.ones_like(values), np.zeros(values.shape, bool), self.sigma)

    def _returns(self, pos: np.ndarray, action: np.ndarray) -> np.ndarray:
        return self.table[:, self._states(pos), np.asarray(action, dtype=np.int64)].sum(axis=-1)

    def preference_predictive(self, pool: PreferencePool, index: np.ndarray) -> np.ndarray:
        diff = self._returns(pool.pos_a[index], pool.action_a[index]) - self._returns(pool.pos_b[index],
                                                                                      pool.action_b[index])
        p_a = 0.5 * (1.0 + np.tanh(0.5 * diff))
        zero = np.zeros_like(p_a)
        return np.stack([1.0 - p_a, zero, p_a, zero], axis=-1)

    def _fields(self, pos: np.ndarray, action: np.ndarray) -> dict[str, np.ndarray]:
        s = self._states(pos)
        action = np.asarray(action, dtype=np.int64)
        s2 = self.mdp.next_state[s, action]
        return {"obs": self.mdp.obs[s], "action": action, "next_obs": self.mdp.obs[s2],
                "done": np.zeros(action.shape, bool)}

    def _observe(self, kind: str, items: dict[str, np.ndarray]) -> None:
        if self._kind not in (None, kind):
            raise ValueError(f"this LatentBelief holds {self._kind}: it takes one feedback kind, not {kind} too")
        self._kind = kind
        for key, value in items.items():
            self._items.setdefault(key, []).append(value)
        data = {key: np.concatenate(parts) for key, parts in self._items.items()}
        objective = make_loss("mse" if kind == "labels" else "bradley_terry", data)
        post = self.method.infer([objective], seed=self.seed)[0]
        self._set_modes(post.z.detach(), post.log_weights.detach())

    def observe_labels(self, pos: np.ndarray, action: np.ndarray, label: np.ndarray, done: np.ndarray) -> None:
        # the model reads no done flag (labels of a state-action reward), so done carries nothing for it
        self._observe("labels", {**self._fields(pos, action), "label": np.asarray(label, dtype=np.float32)})

    def observe_preferences(self, pool: PreferencePool, index: np.ndarray, label: np.ndarray) -> None:
        keep = ~np.isnan(np.asarray(label, dtype=np.float64))
        if not keep.any():
            return
        index = np.asarray(index)[keep]
        items = {"label": np.asarray(label, dtype=np.float32)[keep]}
        for side in ("a", "b"):
            fields = self._fields(getattr(pool, f"pos_{side}")[index], getattr(pool, f"action_{side}")[index])
            items.update({f"{key}_{side}": value for key, value in fields.items()})
        self._observe("preferences", items)

    def reward(self, pos: Any, action: Any, next_pos: Any = None) -> np.ndarray:
        mean = np.tensordot(self.weights, self.table, axes=1)  # (S, 4)
        return mean[self._states(pos), np.asarray(action, dtype=np.int64)].astype(np.float32)


