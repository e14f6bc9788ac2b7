r"""The entity-attention network of Baker et al. 2019 (as SRL trained it), in flax.

Policy (what an agent may see):

    lidar [30] --circular conv1d--> flatten --+
    self [11] ---------------------------------+--> self features s
    s                    --Dense--> self embedding            \
    [agent_j, self]      --Dense_agents--> embeddings          \  masked residual self-attention
    [box_j,   self]      --Dense_boxes --> embeddings           >  (keys masked by *_visible),
    [ramp_j,  self]      --Dense_ramps --> embeddings          /   masked average pooling
    [pooled, self embedding] --Dense(hidden)--> LSTM(hidden) --> five heads (x, y, turn, grab, lock)

Value (omniscient critic): the same encoder with its own weights, entities masked by `*_exists`
(every entity in play, seen or not), then Dense(hidden) and a linear value. It is feedforward:
the critic sees the whole state (positions, velocities, lock flags, the preparation clock), which
is close to Markov, so memory buys it little, and a feedforward critic values `final_obs` (the
bootstrap at truncation) without the policy's recurrent state and halves what actors carry.

One set of weights serves every agent of both teams (the team flag is in `self`). Entities of a
type share their embedding, and attention plus mean pooling is symmetric, so the output does not
depend on the order of entities; a masked-out entity has exactly zero attention weight and zero
pooling weight, so its features cannot change the output.

Sizes: `embed` (entity embedding and attention width) and `hidden` (dense layer and LSTM). The paper
used 128 / 256 with 4 heads; the 2-core presets use 16 / 64.

Inputs are a per-agent observation dict (lidar, self, one key per entity type with its masks) with any leading axes;
`__call__` is time-major: obs leaves [T, N, ...], first [T, N], state [N, 2 * hidden].
"""
from __future__ import annotations

import math
from typing import Sequence, Tuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from srljax.learners.networks import ScanCell

ENTITY_TYPES = ("agents", "boxes", "ramps")


def _dense(features: int, scale: float = math.sqrt(2.0), name=None) -> nn.Dense:
    return nn.Dense(features, kernel_init=nn.initializers.orthogonal(scale), bias_init=nn.initializers.zeros,
                    name=name)


def circular_pad(x: jax.Array, width: int) -> jax.Array:
    """Wrap `width` entries of the second-to-last (ray) axis around each end: [..., R, C] -> [..., R + 2w, C]."""
    if width == 0:
        return x
    return jnp.concatenate([x[..., -width:, :], x, x[..., :width, :]], axis=-2)


def masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    """Mean of x [..., E, D] over the entities where mask [..., E] is 1 (0 where none is)."""
    chex.assert_equal_shape_prefix([x, mask], mask.ndim)
    m = mask[..., None]
    return jnp.sum(x * m, axis=-2) / jnp.maximum(jnp.sum(m, axis=-2), 1.0)


class CircularConv(nn.Module):
    """A 1-D convolution around the ring of lidar rays, flattened: [..., R] -> [..., R * channels]."""

    channels: int = 4
    kernel: int = 3

    @nn.compact
    def __call__(self, lidar):
        lead, rays = lidar.shape[:-1], lidar.shape[-1]
        x = lidar.reshape((-1, rays, 1))
        x = circular_pad(x, self.kernel // 2)
        x = nn.relu(nn.Conv(self.channels, (self.kernel,), padding="VALID")(x))
        return x.reshape(lead + (rays * self.channels,))


class EntityEncoder(nn.Module):
    """Self features (own obs + lidar conv) and per-type embeddings of [entity, own obs] -> masked
    self-attention -> pooled features [..., hidden].

    `mask` picks the entity masks: "visible" (policy) or "exists" (critic).
    """

    embed: int = 64
    hidden: int = 128
    heads: int = 4
    lidar_channels: int = 4
    mask: str = "visible"

    @nn.compact
    def __call__(self, obs):
        own = obs["self"]
        lead = own.shape[:-1]
        feats = [own]
        if "lidar" in obs and obs["lidar"].shape[-1] > 0:
            feats.append(CircularConv(self.lidar_channels, name="lidar_conv")(obs["lidar"]))
        s = jnp.concatenate(feats, axis=-1)
        tokens = [nn.relu(_dense(self.embed, name="embed_self")(s))[..., None, :]]
        masks = [jnp.ones(lead + (1,), s.dtype)]
        for kind in ENTITY_TYPES:
            ents = obs.get(kind)
            if ents is None or ents.shape[-2] == 0:
                continue
            n = ents.shape[-2]
            chex.assert_shape(obs[f"{kind}_{self.mask}"], lead + (n,))
            x = jnp.concatenate([ents, jnp.broadcast_to(own[..., None, :], lead + (n, own.shape[-1]))], axis=-1)
            tokens.append(nn.relu(_dense(self.embed, name=f"embed_{kind}")(x)))
            masks.append(obs[f"{kind}_{self.mask}"].astype(s.dtype))
        x = jnp.concatenate(tokens, axis=-2)           # [..., E, embed]
        mask = jnp.concatenate(masks, axis=-1)          # [..., E]; the self token is always on
        attn_mask = (mask[..., None, None, :] > 0.5)   # [..., heads (bcast), query (bcast), key]
        att = nn.MultiHeadDotProductAttention(num_heads=self.heads, qkv_features=self.embed,
                                              name="attention")(x, x, mask=attn_mask)
        x = nn.LayerNorm(name="attention_norm")(x + att)
        x = nn.LayerNorm(name="post_norm")(x + nn.relu(_dense(self.embed, name="post_dense")(x)))
        pooled = masked_mean(x, mask)
        h = jnp.concatenate([pooled, x[..., 0, :]], axis=-1)
        return nn.relu(_dense(self.hidden, name="dense")(h))


class EntityActorCritic(nn.Module):
    """Recurrent entity-attention policy and feedforward omniscient critic.

    `__call__(obs, first, state)`: obs leaves [T, N, ...], first [T, N] (1 where an episode starts:
    the carry is zeroed before that step), state [N, 2 * hidden] (the carry before step 0, as
    concatenated (c, h)). Returns (logits [T, N, sum(nvec)], value [T, N], state after step T-1).
    """

    nvec: Tuple[int, ...]
    embed: int = 64
    hidden: int = 128
    heads: int = 4
    lidar_channels: int = 4

    def setup(self):
        self.policy_encoder = EntityEncoder(self.embed, self.hidden, self.heads, self.lidar_channels, "visible")
        self.critic_encoder = EntityEncoder(self.embed, self.hidden, self.heads, self.lidar_channels, "exists")
        self.lstm = ScanCell(self.hidden, "lstm")
        self.action_heads = [_dense(n, 0.01, name=f"head_{i}") for i, n in enumerate(self.nvec)]
        self.value_dense = _dense(self.hidden)
        self.value_head = _dense(1, 1.0)

    @property
    def state_size(self) -> int:
        """LSTM (c, h); `learners.models.recurrent_state_size` gives the dataflow the same figure."""
        return 2 * self.hidden

    def __call__(self, obs, first, state):
        logits, state = self.policy(obs, first, state)
        return logits, self.value(obs), state

    def policy(self, obs, first, state):
        chex.assert_rank(first, 2)
        T, N = first.shape
        chex.assert_shape(state, (N, 2 * self.hidden))
        x = self.policy_encoder(obs)                   # [T, N, hidden]
        carry = (state[:, :self.hidden], state[:, self.hidden:])
        carry, y = self.lstm(carry, (x, first))
        logits = jnp.concatenate([head(y) for head in self.action_heads], axis=-1)
        return logits, jnp.concatenate(carry, axis=-1)

    def value(self, obs):
        """The critic over any leading axes: obs leaves [..., ...] -> value [...]."""
        v = nn.relu(self.value_dense(self.critic_encoder(obs)))
        return self.value_head(v)[..., 0]


def make_entity_network(nvec: Sequence[int], sizes: Sequence[int], heads: int = 4,
                        lidar_channels: int = 4) -> EntityActorCritic:
    """`sizes` = (embed, hidden): the config's `network.hidden` for entity networks."""
    if len(sizes) != 2:
        raise ValueError(f"the entity network takes network.hidden = [embed, hidden], got {list(sizes)}")
    embed, hidden = (int(v) for v in sizes)
    if embed % heads:
        raise ValueError(f"entity embedding size {embed} must divide into {heads} attention heads")
    return EntityActorCritic(nvec=tuple(int(n) for n in nvec), embed=embed, hidden=hidden, heads=heads,
                             lidar_channels=lidar_channels)


def unnormalized_keys(obs_space) -> Tuple[str, ...]:
    """Observation keys that are masks or flags (never normalised): *_visible, *_exists."""
    return tuple(k for k in obs_space if k.endswith(("_visible", "_exists")))
