"""The one inference path runs the layers' functions, not the modules: it must give exactly what calling the modules
gives, on every space, input combination and activation, and keep hooks, ``functional_call`` and range errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import nn

from rewardshare.rewardmodels import RewardModel
from rewardshare.rewardmodels.featurizers import DiscreteFeaturizer
from rewardshare.rewardmodels.model_layers import ACTIVATIONS, run_layers
from rewardshare.wrappers import as_reward_source

OBS_SPACES = {
    "discrete": spaces.Discrete(7, start=2),
    "box": spaces.Box(low=-2.0, high=3.0, shape=(3,), dtype=np.float32),
    "box2d": spaces.Box(low=0.0, high=1.0, shape=(2, 2), dtype=np.float32),
}
ACTION_SPACES = {"discrete": spaces.Discrete(4), "box": spaces.Box(low=-1.0, high=1.0, shape=(2,), dtype=np.float32)}


def _sample(space: spaces.Space, n: int, rng: np.random.Generator) -> np.ndarray:
    if isinstance(space, spaces.Discrete):
        return rng.integers(space.start, space.start + space.n, size=n)
    # also values outside the bounds: the featurizer rescales, it does not clip
    return rng.uniform(-3.0, 3.0, size=(n, *space.shape)).astype(np.float32)


def _reference(model: RewardModel, obs, action, next_obs=None, done=None, context=None) -> torch.Tensor:
    """The forward written out with module calls and F.one_hot: what the model computed before its fast path."""

    def feat(space, featurizer, x):
        x = torch.as_tensor(x)
        if isinstance(space, spaces.Discrete):
            return F.one_hot(x.long() - space.start, space.n).to(torch.get_default_dtype())
        x = x.reshape(len(x), -1).float()
        return torch.addcmul(featurizer.offset, x, featurizer.scale) if featurizer.normalize else x

    parts = [feat(model.observation_space, model.obs_featurizer, obs),
             feat(model.action_space, model.action_featurizer, action)]
    if model.use_next_obs:
        parts.append(feat(model.observation_space, model.obs_featurizer, next_obs))
    if model.use_done:
        parts.append(torch.as_tensor(done).float()[:, None])
    if model.context_dim:
        ctx = model.context if context is None else torch.as_tensor(context)
        parts.append(ctx.expand(len(parts[0]), -1).float())
    with torch.no_grad():
        return model.head(model.trunk(torch.cat(parts, dim=1))).squeeze(-1)


@pytest.mark.parametrize("obs_kind", list(OBS_SPACES))
@pytest.mark.parametrize("action_kind", list(ACTION_SPACES))
@pytest.mark.parametrize("extras", [(), ("next_obs",), ("done",), ("context",), ("next_obs", "done", "context")])
def test_forward_and_predict_equal_the_module_path_exactly(obs_kind, action_kind, extras):
    obs_space, act_space = OBS_SPACES[obs_kind], ACTION_SPACES[action_kind]
    model = RewardModel(obs_space, act_space, hidden_sizes=(16, 8), use_next_obs="next_obs" in extras,
                        use_done="done" in extras, context_dim=3 if "context" in extras else 0, seed=1)
    rng = np.random.default_rng(0)
    for b in (1, 8, 37):
        obs, act, nxt = _sample(obs_space, b, rng), _sample(act_space, b, rng), _sample(obs_space, b, rng)
        done = rng.random(b) < 0.3
        ctx = rng.normal(size=(b, 3)).astype(np.float32) if "context" in extras else None
        want = _reference(model, obs, act, nxt, done, ctx)
        with torch.no_grad():
            got = model(torch.as_tensor(obs), torch.as_tensor(act), torch.as_tensor(nxt), torch.as_tensor(done),
                        None if ctx is None else torch.as_tensor(ctx))
        assert torch.equal(got, want)
        np.testing.assert_array_equal(model.predict(obs, act, nxt, done, ctx), want.numpy())
        if ctx is not None:  # the stored context (one row broadcast over the batch)
            model.set_context(ctx[0])
            np.testing.assert_array_equal(model.predict(obs, act, nxt, done), _reference(model, obs, act, nxt, done))


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_every_activation_equals_its_module_and_gradients_agree(activation):
    model = RewardModel(OBS_SPACES["box"], ACTION_SPACES["discrete"], hidden_sizes=(32, 32), activation=activation,
                        seed=2)
    rng = np.random.default_rng(1)
    obs, act = _sample(OBS_SPACES["box"], 16, rng), _sample(ACTION_SPACES["discrete"], 16, rng)
    np.testing.assert_array_equal(model.predict(obs, act), _reference(model, obs, act).numpy())
    # training goes through the same path: the gradients of both ways are the same
    x = model.features(torch.as_tensor(obs), torch.as_tensor(act))
    model.zero_grad()
    run_layers(model.trunk, x).sum().backward()
    fast = [p.grad.clone() for p in model.trunk.parameters()]
    model.zero_grad()
    model.trunk(x).sum().backward()
    for a, b in zip(fast, (p.grad for p in model.trunk.parameters()), strict=True):
        assert torch.equal(a, b)


def test_non_default_activation_arguments_and_hooks_run_as_modules():
    model = RewardModel(OBS_SPACES["box"], ACTION_SPACES["discrete"], hidden_sizes=(8,), activation="leaky_relu",
                        seed=3)
    model.trunk[1].negative_slope = 0.3  # not the function's default: the module must run
    rng = np.random.default_rng(2)
    obs, act = _sample(OBS_SPACES["box"], 5, rng), _sample(ACTION_SPACES["discrete"], 5, rng)
    np.testing.assert_array_equal(model.predict(obs, act), _reference(model, obs, act).numpy())
    calls = []
    handle = model.trunk[0].register_forward_hook(lambda m, i, o: calls.append(1) or o * 2.0)
    try:
        np.testing.assert_array_equal(model.predict(obs, act), _reference(model, obs, act).numpy())
    finally:
        handle.remove()
    assert len(calls) == 2  # once for predict, once for the reference
    head_calls = []
    handle = model.head.register_forward_pre_hook(lambda m, i: head_calls.append(1))
    try:
        model.predict(obs, act)
    finally:
        handle.remove()
    assert head_calls == [1]


def test_functional_call_uses_the_swapped_in_weights():
    model = RewardModel(OBS_SPACES["box"], ACTION_SPACES["discrete"], hidden_sizes=(8, 8), seed=4)
    other = RewardModel(OBS_SPACES["box"], ACTION_SPACES["discrete"], hidden_sizes=(8, 8), seed=5)
    rng = np.random.default_rng(3)
    obs = torch.as_tensor(_sample(OBS_SPACES["box"], 6, rng))
    act = torch.as_tensor(_sample(ACTION_SPACES["discrete"], 6, rng))
    params = dict(other.named_parameters())
    with torch.no_grad():
        got = torch.func.functional_call(model, params, (obs, act))
        assert torch.equal(got, other(obs, act))
        assert not torch.equal(got, model(obs, act))


@pytest.mark.parametrize("n", [5, DiscreteFeaturizer.EYE_MAX_N + 1])
def test_discrete_one_hot_and_range_errors_on_both_paths(n):
    space = spaces.Discrete(n, start=-2)
    feat = DiscreteFeaturizer(space)
    assert (feat.eye is None) == (n > DiscreteFeaturizer.EYE_MAX_N)
    x = torch.tensor([-2, n - 3, 0, 1])
    assert torch.equal(feat(x), F.one_hot(x + 2, n).float())
    assert torch.equal(feat(x[:, None].double()), F.one_hot(x + 2, n).float())  # (B, 1) whole-number floats
    for bad in (-3, n - 2):
        with pytest.raises(ValueError, match=rf"value {bad} is outside Discrete\({n}, start=-2\): allowed are -2\.\."):
            feat(torch.tensor([0, bad]))


def test_discrete_one_hot_under_vmap_skips_the_range_check():
    feat = DiscreteFeaturizer(spaces.Discrete(4))
    x = torch.tensor([[0, 3], [2, 1]])
    out = torch.func.vmap(feat)(x)
    assert torch.equal(out, F.one_hot(x, 4).float())


@pytest.mark.parametrize("uncertainty", ["mean", "pessimistic"])
@pytest.mark.parametrize("obs_kind", ["discrete", "box"])
def test_posterior_rewards_equal_the_reference_over_modes(uncertainty, obs_kind):
    obs_space = OBS_SPACES[obs_kind]
    model = RewardModel(obs_space, ACTION_SPACES["discrete"], hidden_sizes=(16, 16), context_dim=4, seed=7)
    rng = np.random.default_rng(5)
    z = rng.normal(size=(5, 4)).astype(np.float32)
    w = rng.random(5)
    model.metadata["latent_posterior"] = {"z": z.tolist(), "weights": w.tolist()}
    beta = 0.7 if uncertainty == "pessimistic" else None
    source = as_reward_source(model, uncertainty=uncertainty, beta=beta)
    b = 9
    obs, act = _sample(obs_space, b, rng), _sample(ACTION_SPACES["discrete"], b, rng)
    got = source(obs, act, obs, np.zeros(b, bool), np.zeros(b))
    # every mode over the same M x B rows in one module-path forward, then the weighted moments
    rows = np.tile(np.arange(b), len(z))
    r = _reference(model, obs[rows], act[rows], context=np.repeat(z, b, axis=0)).numpy().astype(np.float64)
    r = r.reshape(len(z), b)
    wn = (w / w.sum())[:, None]
    mean = (wn * r).sum(axis=0)
    want = mean if beta is None else mean - beta * np.sqrt((wn * (r - mean) ** 2).sum(axis=0))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert got.dtype == np.float64 and got.shape == (b,)


def test_run_layers_falls_back_to_modules_it_does_not_know():
    layers = nn.Sequential(nn.Linear(3, 4), nn.Softplus(), nn.Linear(4, 2), nn.ReLU(inplace=True))
    x = torch.randn(5, 3)
    with torch.no_grad():
        assert torch.equal(run_layers(layers, x), layers(x))


def test_predict_runs_a_subclass_s_own_forward():
    class Doubled(RewardModel):
        def forward(self, *args, **kwargs):
            return 2.0 * super().forward(*args, **kwargs)

    kw = dict(hidden_sizes=(8,), seed=8)
    base = RewardModel(OBS_SPACES["box"], ACTION_SPACES["discrete"], **kw)
    doubled = Doubled(OBS_SPACES["box"], ACTION_SPACES["discrete"], **kw)
    rng = np.random.default_rng(6)
    obs, act = _sample(OBS_SPACES["box"], 4, rng), _sample(ACTION_SPACES["discrete"], 4, rng)
    np.testing.assert_array_equal(doubled.predict(obs, act), 2.0 * base.predict(obs, act))
    assert base.predict(obs, act).shape == (4,) and base.predict(obs, act).dtype == np.float32
