"""Small envs with the spaces a user may bring (tests/envs/test_spaces.py): a gymnasium env, a PettingZoo
ParallelEnv, a srljax `JaxEnv` and a gymnax env, each with the spaces it is given by name (`SPACES`).

The gymnasium and PettingZoo envs raise on an action outside their action space, so a run that ends
has passed only valid actions (a Discrete `start` added back included); they record the actions
they got. gymnasium ids: `gym/space_envs:Spaces-OBS-ACT-v0` for the names below (this module
registers them when imported; tests/envs must be on sys.path)."""
import gymnasium
import numpy as np
from gymnasium import spaces as S

SPACES = {
    "box": lambda: S.Box(-1.0, 1.0, (3,), np.float32),
    "image": lambda: S.Box(0, 255, (6, 6, 3), np.uint8),
    "unbounded": lambda: S.Box(-np.inf, np.inf, (3,), np.float32),
    "boxact": lambda: S.Box(-1.0, 1.0, (2,), np.float32),
    "unboundedact": lambda: S.Box(-np.inf, np.inf, (2,), np.float32),
    "box2d": lambda: S.Box(-1.0, 1.0, (2, 2), np.float32),
    "discrete": lambda: S.Discrete(3),
    "shifted": lambda: S.Discrete(3, start=-1),
    "multishifted": lambda: S.MultiDiscrete([2, 3], start=[1, -2]),
    "multidiscrete": lambda: S.MultiDiscrete([2, 3]),
    "multibinary": lambda: S.MultiBinary(4),
    "multibinary2d": lambda: S.MultiBinary([2, 3]),
    "tuple": lambda: S.Tuple((S.Discrete(2), S.Box(-1.0, 1.0, (2,), np.float32))),
    "dict": lambda: S.Dict({"pos": S.Box(-1.0, 1.0, (2,), np.float32),
                            "inner": S.Dict({"flag": S.Discrete(2), "bits": S.MultiBinary(3)})}),
}


def _valid(space, action):
    if isinstance(space, S.Discrete):
        return isinstance(action, (int, np.integer)) and space.contains(int(action))
    return space.contains(np.asarray(action, space.dtype)) and np.asarray(action).shape == space.shape


class SpaceEnv(gymnasium.Env):
    """Observations drawn from the `obs` space (seeded by reset); 4-step episodes; reward 1 for the
    space's lowest action (a Discrete's `start`), else 0."""

    def __init__(self, obs="box", act="discrete"):
        self.observation_space, self.action_space = SPACES[obs](), SPACES[act]()
        self.actions = []

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self.observation_space.seed(seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        if not _valid(self.action_space, action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        self.actions.append(action)
        self.t += 1
        low = getattr(self.action_space, "start", 0)
        reward = float(np.all(np.asarray(action) == low))
        return self.observation_space.sample(), reward, self.t >= 4, False, {}


def env_id(obs: str, act: str) -> str:
    return f"gym/space_envs:Spaces-{obs}-{act}-v0"


for _obs in SPACES:
    for _act in SPACES:
        gymnasium.register(f"Spaces-{_obs}-{_act}-v0", entry_point=SpaceEnv, kwargs={"obs": _obs, "act": _act})


class Agents:
    """A PettingZoo ParallelEnv: agent k observes from `obs[k]`, acts in `act[k]` (space names);
    4-step episodes; reward 1 for an agent's lowest action."""

    metadata = {"name": "agents"}

    def __init__(self, obs=("box", "image"), act=("shifted", "shifted")):
        self.possible_agents = [f"a{k}" for k in range(len(obs))]
        self._obs = {a: SPACES[o]() for a, o in zip(self.possible_agents, obs)}
        self._act = {a: SPACES[o]() for a, o in zip(self.possible_agents, act)}
        self.actions = []

    def observation_space(self, agent):
        return self._obs[agent]

    def action_space(self, agent):
        return self._act[agent]

    def _observe(self):
        return {a: self._obs[a].sample() for a in self.agents}

    def reset(self, seed=None, options=None):
        for k, a in enumerate(self.possible_agents):
            self._obs[a].seed(None if seed is None else seed + k)
        self.t, self.agents = 0, list(self.possible_agents)
        return self._observe(), {a: {} for a in self.agents}

    def step(self, actions):
        for a, action in actions.items():
            if not _valid(self._act[a], action):
                raise ValueError(f"agent {a}: action {action!r} is not in {self._act[a]}")
        self.actions.append(dict(actions))
        self.t += 1
        rewards = {a: float(np.all(np.asarray(x) == getattr(self._act[a], "start", 0))) for a, x in actions.items()}
        done = {a: self.t >= 4 for a in self.agents}
        obs = self._observe()
        if self.t >= 4:
            self.agents = []
        return obs, rewards, done, {a: False for a in done}, {a: {} for a in done}

    def close(self):
        pass


def image_jax_env(obs_space=None, action_space=None):
    """A srljax `JaxEnv` whose observations are uint8 images [4, 4, 1] (the step count, 0..255) and
    whose action 1 pays 1; 4-step episodes. `obs_space` / `action_space`: declare others instead."""
    import jax.numpy as jnp

    from srljax.envs.core import JaxEnv, State
    from srljax.envs.spaces import Box, Discrete
    declared = (obs_space, action_space)

    class ImageEnv(JaxEnv):
        observation_space = Box(0.0, 255.0, (4, 4, 1)) if declared[0] is None else declared[0]
        action_space = Discrete(2) if declared[1] is None else declared[1]

        def reset(self, key):
            obs = jnp.zeros((4, 4, 1), jnp.uint8)
            return State(obs=obs, final_obs=obs, reward=jnp.float32(0), done=jnp.bool_(False),
                         truncated=jnp.bool_(False), inner=jnp.int32(0), metrics={})

        def step(self, state, action):
            t = state.inner + 1
            obs = jnp.full((4, 4, 1), 60 * t, jnp.uint8)
            return state.replace(obs=obs, final_obs=obs, reward=(action == 1).astype(jnp.float32), done=t >= 4,
                                 inner=t)

    return ImageEnv()


def gymnax_env(obs_space, action_space):
    """A gymnax Environment (a Pendulum) that declares the given gymnax spaces."""
    from gymnax.environments.classic_control.pendulum import Pendulum

    class Declared(Pendulum):
        def observation_space(self, params):
            return obs_space

        def action_space(self, params=None):
            return action_space

    return Declared()
