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


def reach_env():
    """A srljax JaxEnv with dict observations and a Box action (SAC's kind): one-step episodes paying
    -(action - target)^2, the target in `obs["goal"]["target"]`, noise in `obs["noise"]`."""
    from srljax.envs.core import JaxEnv, State
    from srljax.envs.spaces import Box

    class Reach(JaxEnv):
        observation_space = {"goal": {"target": Box(-1.0, 1.0, (1,))}, "noise": Box(-3.0, 3.0, (2,))}
        action_space = Box(-1.0, 1.0, (1,))

        def reset(self, key):
            kt, kn = jax.random.split(key)
            obs = {"goal": {"target": jax.random.uniform(kt, (1,), minval=-1.0, maxval=1.0)},
                   "noise": jax.random.normal(kn, (2,))}
            return State(obs=obs, final_obs=obs, reward=jnp.float32(0), done=jnp.bool_(False),
                         truncated=jnp.bool_(False), inner=jnp.int32(0), metrics={})

        def step(self, state, action):
            reward = -jnp.sum(jnp.square(action - state.obs["goal"]["target"]))
            return state.replace(reward=reward, done=jnp.bool_(True))

    return Reach()


def entity_team_env():
    """A two-agent JaxEnv whose observations are `spaces.Entities` (own features, two boxes with
    visibility masks): the fused entity-attention LSTM network's input. Each agent is paid for
    naming (action part 0) the sign of the second box's x, where it sees that box; 8-step episodes."""
    from srljax.envs.core import JaxEnv, State
    from srljax.envs.spaces import Box, Entities, MultiDiscrete

    class Boxes(JaxEnv):
        num_agents = 2
        observation_space = Entities({"self": Box(-1.0, 1.0, (3,)), "boxes": Box(-1.0, 1.0, (2, 2)),
                                      "boxes_visible": Box(0.0, 1.0, (2,)), "boxes_exists": Box(0.0, 1.0, (2,))})
        action_space = MultiDiscrete((2, 3))

        def _obs(self, key):
            k1, k2, k3 = jax.random.split(key, 3)
            return {"self": jax.random.uniform(k1, (2, 3), minval=-1.0, maxval=1.0),
                    "boxes": jax.random.uniform(k2, (2, 2, 2), minval=-1.0, maxval=1.0),
                    "boxes_visible": (jax.random.uniform(k3, (2, 2)) < 0.7).astype(jnp.float32),
                    "boxes_exists": jnp.ones((2, 2), jnp.float32)}

        def reset(self, key):
            obs = self._obs(key)
            return State(obs=obs, final_obs=obs, reward=jnp.zeros((2,), jnp.float32), done=jnp.bool_(False),
                         truncated=jnp.bool_(False), inner=(key, jnp.int32(0)), metrics={})

        def step(self, state, action):
            key, t = state.inner
            key = jax.random.fold_in(key, t)
            right = (state.obs["boxes"][:, 1, 0] > 0).astype(jnp.int32)          # [agents]
            reward = (action[:, 0] == right).astype(jnp.float32) * state.obs["boxes_visible"][:, 1]
            obs = self._obs(key)
            return state.replace(obs=obs, final_obs=obs, reward=reward, done=jnp.bool_(False),
                                 truncated=t + 1 >= 8, inner=(key, t + 1))

    return Boxes()
