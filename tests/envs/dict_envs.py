"""JAX envs with dict observations, for the tests (and `jax/dict_envs:NAME` on the command line)."""
import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class CueState:
    cue: jax.Array
    time: int


@struct.dataclass
class CueParams:
    max_steps_in_episode: int = 1


def cue_env(observation_space=None):
    """One-step episodes: the observation's `cue` (a Discrete, one-hot after the adapter) says which
    action pays 1; `extra` (a nested Dict) holds noise. A policy blind to the cue scores 0.5."""
    from gymnax.environments import environment, spaces

    class Cue(environment.Environment):
        @property
        def default_params(self):
            return CueParams()

        def step_env(self, key, state, action, params):
            reward = (action == state.cue).astype(jnp.float32)
            done = jnp.bool_(True)
            return self.get_obs(state, params, key), state.replace(time=state.time + 1), reward, done, {}

        def reset_env(self, key, params):
            state = CueState(cue=jax.random.bernoulli(key).astype(jnp.int32), time=0)
            return self.get_obs(state, params, key), state

        def get_obs(self, state, params=None, key=None):
            noise = jax.random.normal(jax.random.fold_in(key, 1), (2, 3))
            return {"cue": state.cue, "extra": {"noise": noise, "step": jnp.float32(state.time)}}

        def is_terminal(self, state, params):
            return jnp.bool_(True)

        def action_space(self, params=None):
            return spaces.Discrete(2)

        def observation_space(self, params):
            if observation_space is not None:
                return observation_space
            return spaces.Dict({"cue": spaces.Discrete(2),
                                "extra": spaces.Dict({"noise": spaces.Box(-5.0, 5.0, (2, 3), jnp.float32),
                                                      "step": spaces.Box(0.0, 1.0, (), jnp.float32)})})

    return Cue()


def tuple_cue_env():
    """The cue env declaring a Tuple inside its Dict: what srljax does not drive."""
    from gymnax.environments import spaces
    return cue_env(spaces.Dict({"cue": spaces.Discrete(2),
                                "pair": spaces.Tuple([spaces.Discrete(2), spaces.Discrete(3)])}))
