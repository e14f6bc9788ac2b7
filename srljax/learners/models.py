"""Which network a config and an observation space get, and its recurrent state size.

- An observation space the env declares as `envs.spaces.Entities` (entity games'): the recurrent
  entity-attention network (`learners.entity_net`; `network.hidden` = [embed, hidden]).
- `envs.spaces.WorldState` ({"obs", "state"}): the policy reads `obs`, the critic the global
  `state` (a centralised critic, MAPPO's).
- Any other (a Box, or a dict of them, nested too): MLPs over the flattened observation;
  feedforward (`networks.ActorCritic`), or with `network.core` = lstm or gru a recurrent policy
  (`networks.RecurrentActorCritic`).

`recurrent_state_size` is what the dataflow sizes its messages by; it imports no jax, so actor
ranks (numpy only) can call it. The network reports its own `state_size` too, and the dataflow
checks the two agree when it builds the learner (`dataflow.plan.Plan.algorithm`).
"""
from __future__ import annotations

from srljax.envs.spaces import Box, Entities, WorldState
from srljax.errors import UserError


def recurrent_state_size(network_cfg, obs_space) -> int:
    """Width of the carry of the network `make_model` builds (0: feedforward)."""
    width = int(network_cfg.hidden[-1])
    if isinstance(obs_space, Entities):
        return 2 * width                                              # the entity network's LSTM (c, h)
    core = getattr(network_cfg, "core", "feedforward")
    return {"lstm": 2 * width, "gru": width}.get(core, 0)


def make_model(cfg, obs_space, action_space):
    """The model `cfg.network` asks for over `obs_space` (see the module docstring)."""
    from srljax.learners import distributions
    from srljax.learners.learner import Model, RecurrentModel
    from srljax.learners.networks import ActorCritic, RecurrentActorCritic, obs_rank

    dist = distributions.for_space(action_space)
    n = cfg.network
    if isinstance(obs_space, Entities):
        from srljax.learners.entity_net import make_entity_network, unnormalized_keys
        if isinstance(action_space, Box):
            raise UserError("the entity network (an env's Entities observations) acts on Discrete or MultiDiscrete "
                            "actions, not a Box")
        network = make_entity_network(getattr(dist, "nvec", None) or (action_space.n,), n.hidden)
        return RecurrentModel(network=network, dist=dist, unnormalized=unnormalized_keys(obs_space),
                              state_size=network.state_size)
    split = isinstance(obs_space, WorldState)             # a centralised critic over obs["state"]
    rank = (obs_rank(obs_space["obs"]), obs_rank(obs_space["state"])) if split else obs_rank(obs_space)
    kwargs = dict(dist=dist, obs_ndim=rank, hidden=tuple(n.hidden), activation=n.activation, init_scheme=n.init,
                  split=split)
    core = getattr(n, "core", "feedforward")
    if core != "feedforward":
        network = RecurrentActorCritic(core=core, **kwargs)
        return RecurrentModel(network=network, dist=dist, state_size=network.state_size)
    return Model(network=ActorCritic(**kwargs), dist=dist)
