"""A minimal PPO in one function, the yardstick for scripts/bench_train.py.

Written for srljax in the structure PureJaxRL made popular: the whole run is one pure function
(`lax.scan` over updates; inside, a `lax.scan` rollout that also computes values, GAE, then epochs
of shuffled minibatches), gymnax's own `step` with its built-in auto-reset, no wrappers, no
normalisation, no sharding. It shares no code with srljax's learner, so the ratio between the two
is the cost (or gain) of srljax's structure.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax


class _Net(nn.Module):
    n_actions: int
    hidden: tuple

    @nn.compact
    def __call__(self, x):
        ortho = nn.initializers.orthogonal
        a = x
        for h in self.hidden:
            a = nn.tanh(nn.Dense(h, kernel_init=ortho(np.sqrt(2)))(a))
        logits = nn.Dense(self.n_actions, kernel_init=ortho(0.01))(a)
        v = x
        for h in self.hidden:
            v = nn.tanh(nn.Dense(h, kernel_init=ortho(np.sqrt(2)))(v))
        return logits, nn.Dense(1, kernel_init=ortho(1.0))(v)[..., 0]


def make_reference_train(cfg):
    """`train(key) -> mean return of episodes completed in the last update` for a gymnax config."""
    import gymnax

    env, params = gymnax.make(cfg.env.id.split("/", 1)[1])
    p = cfg.ppo
    n_envs, T = cfg.env.num_envs, cfg.rollout.rollout_len
    n_updates = cfg.num_updates()
    mb_size = n_envs * T // p.minibatches
    net = _Net(env.action_space(params).n, tuple(cfg.network.hidden))
    lr = optax.linear_schedule(p.lr, 0.0, n_updates * p.epochs * p.minibatches) if p.anneal_lr else p.lr
    tx = optax.chain(optax.clip_by_global_norm(p.max_grad_norm), optax.adam(lr, eps=p.adam_eps))

    def train(key):
        key, k_init, k_reset = jax.random.split(key, 3)
        obs_shape = env.observation_space(params).shape
        net_params = net.init(k_init, jnp.zeros(obs_shape))
        opt_state = tx.init(net_params)
        obs, env_state = jax.vmap(env.reset, (0, None))(jax.random.split(k_reset, n_envs), params)
        ep_ret = jnp.zeros(n_envs)

        def env_step(carry, _):
            net_params, env_state, obs, ep_ret, key = carry
            key, k_act, k_step = jax.random.split(key, 3)
            logits, value = net.apply(net_params, obs)
            action = jax.random.categorical(k_act, logits)
            logp = jax.nn.log_softmax(logits)[jnp.arange(n_envs), action]
            obs2, env_state, reward, term, trunc, _ = jax.vmap(env.step, (0, 0, 0, None))(
                jax.random.split(k_step, n_envs), env_state, action, params)
            done = jnp.logical_or(term, trunc)
            ep_ret = ep_ret + reward
            tr = (obs, action, logp, value, reward, done, ep_ret * done)
            return (net_params, env_state, obs2, ep_ret * (1 - done), key), tr

        def update(carry, _):
            net_params, opt_state, env_state, obs, ep_ret, key = carry
            (_, env_state, obs, ep_ret, key), tr = jax.lax.scan(
                env_step, (net_params, env_state, obs, ep_ret, key), None, T)
            b_obs, b_act, b_logp, b_val, b_rew, b_done, b_epret = tr
            _, last_val = net.apply(net_params, obs)

            def gae_step(carry, x):
                adv, next_val = carry
                rew, val, done = x
                delta = rew + p.gamma * next_val * (1 - done) - val
                adv = delta + p.gamma * p.gae_lambda * (1 - done) * adv
                return (adv, val), adv

            _, adv = jax.lax.scan(gae_step, (jnp.zeros(n_envs), last_val), (b_rew, b_val, b_done), reverse=True)
            targets = adv + b_val

            def loss_fn(prm, mb):
                obs_, act_, logp_old, val_old, adv_, tgt_ = mb
                logits, value = net.apply(prm, obs_)
                logp_all = jax.nn.log_softmax(logits)
                logp = jnp.take_along_axis(logp_all, act_[:, None], 1)[:, 0]
                ratio = jnp.exp(logp - logp_old)
                adv_ = (adv_ - adv_.mean()) / (adv_.std() + 1e-8)
                pg = -jnp.minimum(ratio * adv_, jnp.clip(ratio, 1 - p.clip_eps, 1 + p.clip_eps) * adv_).mean()
                v_clip = val_old + jnp.clip(value - val_old, -p.clip_eps, p.clip_eps)
                v_loss = 0.5 * jnp.maximum((value - tgt_) ** 2, (v_clip - tgt_) ** 2).mean()
                ent = -(jnp.exp(logp_all) * logp_all).sum(-1).mean()
                return pg + p.vf_coef * v_loss - p.ent_coef * ent

            def epoch(carry, k):
                net_params, opt_state = carry
                flat = jax.tree.map(lambda x: x.reshape((n_envs * T,) + x.shape[2:]),
                                    (b_obs, b_act, b_logp, b_val, adv, targets))
                perm = jax.random.permutation(k, n_envs * T)
                mbs = jax.tree.map(lambda x: x[perm].reshape((p.minibatches, mb_size) + x.shape[1:]), flat)

                def mb_step(carry, mb):
                    prm, ost = carry
                    grads = jax.grad(loss_fn)(prm, mb)
                    upd, ost = tx.update(grads, ost, prm)
                    return (optax.apply_updates(prm, upd), ost), None

                return jax.lax.scan(mb_step, (net_params, opt_state), mbs)[0], None

            key, k_ep = jax.random.split(key)
            (net_params, opt_state), _ = jax.lax.scan(epoch, (net_params, opt_state), jax.random.split(k_ep, p.epochs))
            mean_ret = b_epret.sum() / jnp.maximum(b_done.sum(), 1)
            return (net_params, opt_state, env_state, obs, ep_ret, key), mean_ret

        carry = (net_params, opt_state, env_state, obs, ep_ret, key)
        _, returns = jax.lax.scan(update, carry, None, n_updates)
        return returns[-1]

    return train
