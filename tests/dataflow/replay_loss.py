"""Custom losses named by import path in the tests (`algorithm.loss=replay_loss:dqn_loss`, `replay_loss:sac_loss`)."""
import jax.numpy as jnp

TRACED = []


def dqn_loss(learner, params, target_params, batch, weight_n):
    """DQN's own Huber loss, scaled by 1 (noted when traced, so a test can tell it was used)."""
    TRACED.append(batch["reward"].shape)
    loss, aux = learner.loss(params, target_params, batch, weight_n)
    return loss * jnp.float32(1.0), aux


SAC_TRACED = []


def sac_loss(learner, critic_params, state, batch, weight_n, key):
    """SAC's own critic loss, scaled by 1 (noted when traced)."""
    SAC_TRACED.append(batch["reward"].shape)
    loss, aux = learner.critic_loss(critic_params, state, batch, weight_n, key)
    return loss * jnp.float32(1.0), aux
