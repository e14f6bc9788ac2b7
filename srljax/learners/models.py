"""Which network a config and an observation space get, and its recurrent state size.

`recurrent_state_size` is what the dataflow sizes its messages by; it imports no jax, so actor
ranks (numpy only) can call it. The network reports its own `state_size` too, and the dataflow
checks the two agree when it builds the learner (`dataflow.plan.Plan.algorithm`).
"""
from __future__ import annotations


def recurrent_state_size(network_cfg, obs_space) -> int:
    """Width of the carry of the network `make_model` builds (0: feedforward). Dict observations
    get the recurrent entity network (`network.hidden` = [embed, hidden])."""
    return 2 * int(network_cfg.hidden[-1]) if isinstance(obs_space, dict) else 0   # LSTM (c, h)


def make_model(cfg, obs_space, action_space):
    """An MLP actor-critic for array observations; for entity-dict observations (one key per
    entity type, masks under `*_visible` / `*_exists`), the recurrent entity-attention network."""
    from srljax.learners import distributions
    from srljax.learners.learner import Model, RecurrentModel
    from srljax.learners.networks import ActorCritic

    dist = distributions.for_space(action_space)
    if isinstance(obs_space, dict):
        from srljax.learners.entity_net import make_entity_network, unnormalized_keys
        network = make_entity_network(dist.nvec, cfg.network.hidden)
        return RecurrentModel(network=network, dist=dist, unnormalized=unnormalized_keys(obs_space),
                              state_size=network.state_size)
    network = ActorCritic(dist=dist, obs_ndim=len(obs_space.shape), hidden=tuple(cfg.network.hidden),
                          activation=cfg.network.activation, init_scheme=cfg.network.init)
    return Model(network=network, dist=dist)
