"""Policy and value networks (flax). A network maps observations to (policy output, value).

Observations are an array or a pytree of arrays (a dict observation space): the MLPs read them
flattened (`flatten_obs`, each leaf's feature axes flattened and the leaves concatenated, in
jax's leaf order), given the rank of one observation (`obs_rank`: an int, or one per leaf).
"""
from __future__ import annotations

import math
from typing import Any, Sequence, Tuple, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from srljax.learners.distributions import DiagGaussian

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu, "elu": nn.elu, "swish": nn.swish}


def _dense(features: int, scale: float) -> nn.Dense:
    return nn.Dense(features, kernel_init=nn.initializers.orthogonal(scale), bias_init=nn.initializers.zeros)


Rank = Union[int, Tuple[int, ...]]


def obs_rank(obs_space) -> Rank:
    """The rank of one observation: `len(shape)` of a Box; of a dict space, a tuple with one rank
    per leaf, in the order `jax.tree.leaves` gives the observation's arrays (sorted keys)."""
    if isinstance(obs_space, dict):
        return tuple(len(s.shape) for s in jax.tree.leaves(_plain(obs_space)))
    return len(obs_space.shape)


def _plain(space):
    """Dict spaces as plain dicts (jax flattens a dict, not a subclass such as `spaces.Entities`)."""
    return {k: _plain(v) for k, v in space.items()} if isinstance(space, dict) else space


def flatten_obs(obs, rank: Rank):
    """Observations with any leading axes [..., *obs_shape] -> float32 [..., features]: a pytree's
    leaves flattened and concatenated (`rank`: `obs_rank` of the space)."""
    if isinstance(rank, int):
        lead = obs.shape[: obs.ndim - rank]
        return obs.reshape(lead + (-1,)).astype(jnp.float32)
    leaves = jax.tree.leaves(obs)
    if len(leaves) != len(rank):
        raise ValueError(f"observation has {len(leaves)} arrays, its space {len(rank)}")
    lead = leaves[0].shape[: leaves[0].ndim - rank[0]]
    return jnp.concatenate([x.reshape(lead + (-1,)).astype(jnp.float32) for x in leaves], axis=-1)


INITS = ("orthogonal", "lecun")
"""Hidden-layer initialisations (`network.init`): orthogonal with gain sqrt(2) and zero biases (PPO's,
PureJaxRL's), or flax's default LeCun normal (rejax's DQN and SAC)."""


class MLP(nn.Module):
    hidden: Sequence[int]
    activation: str = "tanh"
    init_scheme: str = "orthogonal"

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        for h in self.hidden:
            x = act((_dense(h, math.sqrt(2.0)) if self.init_scheme == "orthogonal" else nn.Dense(h))(x))
        return x


def policy_and_critic_inputs(obs, rank, split: bool):
    """The flattened inputs of the policy and of the critic: the whole observation for both, or with
    `split` (a `spaces.WorldState` observation, `rank` a pair) `obs["obs"]` and `obs["state"]`."""
    if not split:
        x = flatten_obs(obs, rank)
        return x, x
    return flatten_obs(obs["obs"], rank[0]), flatten_obs(obs["state"], rank[1])


class ActorCritic(nn.Module):
    """Separate policy and value MLPs over the flattened observation (with `split`, the policy's over
    `obs["obs"]` and the critic's over the global `obs["state"]`: a centralised critic).

    `obs_ndim` is the rank of one observation (`obs_rank`; with `split`, the pair of the two
    halves'), so any leading batch axes pass through.
    """

    dist: Any
    obs_ndim: Any
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    init_scheme: str = "orthogonal"      # the torsos' (`network.init`)
    split: bool = False

    @nn.compact
    def __call__(self, obs):
        x, x_value = policy_and_critic_inputs(obs, self.obs_ndim, self.split)
        h = MLP(self.hidden, self.activation, self.init_scheme, name="policy_torso")(x)
        out = _dense(self.dist.out_size, 0.01)(h)
        if isinstance(self.dist, DiagGaussian):
            log_std = self.param("log_std", nn.initializers.zeros, (self.dist.dim,))
            out = (out, jnp.broadcast_to(log_std, out.shape))
        v = MLP(self.hidden, self.activation, self.init_scheme, name="value_torso")(x_value)
        value = _dense(1, 1.0)(v)[..., 0]
        return out, value


# -- recurrent cores ---------------------------------------------------------------------------

CORES = ("feedforward", "lstm", "gru")
"""`network.core`: the policy's memory (`config.CORES` keeps the same names without jax)."""


def carry_size(core: str, features: int) -> int:
    """Width of the flat carry a core of `features` units keeps: LSTM (c, h), GRU h."""
    return {"feedforward": 0, "lstm": 2 * features, "gru": features}[core]


class ResetCell(nn.Module):
    """One recurrent step over rows [N, ...] that first zeroes the carry of the rows starting an
    episode (`first` [N] is 1 there)."""

    features: int
    core: str = "lstm"

    @nn.compact
    def __call__(self, carry, xs):
        x, first = xs
        keep = (1.0 - first.astype(x.dtype))[:, None]
        carry = jax.tree.map(lambda c: c * keep, carry)
        if self.core == "lstm":
            return nn.OptimizedLSTMCell(self.features, name="cell")(carry, x)
        return nn.GRUCell(self.features, name="cell")(carry, x)


ScanCell = nn.scan(ResetCell, variable_broadcast="params", split_rngs={"params": False}, in_axes=0, out_axes=0)
"""`ResetCell` over a time-major sequence: (carry, (x [T, N, D], first [T, N])) -> (carry, y [T, N, F])."""


def split_carry(core: str, state, features: int):
    """The flat carry [N, carry_size] as the cell keeps it."""
    return (state[:, :features], state[:, features:]) if core == "lstm" else state


def join_carry(core: str, carry):
    return jnp.concatenate(carry, axis=-1) if core == "lstm" else carry


class RecurrentActorCritic(nn.Module):
    """A recurrent policy (MLP torso, then an LSTM or GRU core of width hidden[-1], then the head)
    and a feedforward critic MLP, over the flattened observation: `learner.RecurrentModel`'s
    network for any env (`network.core`). Time-major: `__call__(obs, first, state)` takes obs
    leaves [T, N, ...], first [T, N] (1 where an episode starts: the carry is zeroed before that
    step) and state [N, state_size] (the carry before step 0); returns (policy output, value [T, N],
    state after step T-1)."""

    dist: Any
    obs_ndim: Any
    hidden: Sequence[int] = (64, 64)
    activation: str = "tanh"
    init_scheme: str = "orthogonal"
    core: str = "lstm"
    split: bool = False          # `ActorCritic.split`: a centralised critic over obs["state"]

    def setup(self):
        self.policy_torso = MLP(self.hidden, self.activation, self.init_scheme)
        self.memory = ScanCell(int(self.hidden[-1]), self.core)
        self.policy_head = _dense(self.dist.out_size, 0.01)
        if isinstance(self.dist, DiagGaussian):
            self.log_std = self.param("log_std", nn.initializers.zeros, (self.dist.dim,))
        self.value_torso = MLP(self.hidden, self.activation, self.init_scheme)
        self.value_head = _dense(1, 1.0)

    @property
    def state_size(self) -> int:
        return carry_size(self.core, int(self.hidden[-1]))

    def __call__(self, obs, first, state):
        out, state = self.policy(obs, first, state)
        return out, self.value(obs), state

    def policy(self, obs, first, state):
        x = self.policy_torso(policy_and_critic_inputs(obs, self.obs_ndim, self.split)[0])     # [T, N, H]
        features = int(self.hidden[-1])
        carry, y = self.memory(split_carry(self.core, state, features), (x, first))
        out = self.policy_head(y)
        if isinstance(self.dist, DiagGaussian):
            out = (out, jnp.broadcast_to(self.log_std, out.shape))
        return out, join_carry(self.core, carry)

    def value(self, obs):
        """The critic over any leading axes."""
        return self.value_head(self.value_torso(policy_and_critic_inputs(obs, self.obs_ndim, self.split)[1]))[..., 0]
