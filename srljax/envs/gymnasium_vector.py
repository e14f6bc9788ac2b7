"""Any `gymnasium.vector.VectorEnv` seen as srljax's CPU vector env (`srljax.envs.vector`).

    env = FromGymnasium(gymnasium.make_vec("CartPole-v1", 8))
    obs = env.reset(seed)                               # float32 [8, 4]
    obs, reward, terminated, truncated, info = env.step(actions)
    info["final_obs"], info["episodes"]                 # srljax's auto-reset contract

What it adds: srljax's spaces (one env's, from `single_observation_space` / `single_action_space`),
`reset(seed) -> obs`, float32 observations, and srljax's auto-reset contract whatever the env's
own autoreset mode (`metadata["autoreset_mode"]`):

- SAME_STEP: the env resets ended episodes itself; the final observations come from its
  `info["final_obs"]` (rows marked by `info["_final_obs"]`).
- NEXT_STEP (gymnasium's default) and DISABLED: the observation `step` returns for an ended
  episode is its final observation; this view keeps it as `info["final_obs"]` and resets those
  envs at once with `reset(options={"reset_mask": ended})`, so the next action is a real step of
  the new episode (no wasted step, nothing to bootstrap wrongly on truncation). gymnasium's
  `SyncVectorEnv` and `AsyncVectorEnv` (and wrappers over them) do that; an env that resets every
  copy instead (gymnasium's numpy `CartPoleVectorEnv`, the default of `make_vec("CartPole-v1")`)
  is refused in one line when wrapped (checked with one masked reset), naming the fix
  (`vectorization_mode="sync"`, or autoreset mode SAME_STEP).

Episode returns and lengths are counted here, unless the env reports them itself
(`GymVectorEnv`, whose `step` already keeps this contract and is used as is: no copy, no cost).
Box actions are clipped to the action space's bounds; a Discrete or MultiDiscrete action space's
`start` is added to srljax's actions (which lie in [0, n), `space_check.action_offset`).
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import gymnasium
import numpy as np

from srljax.envs import spaces
from srljax.envs.gymnasium_adapter import GymVectorEnv, convert_space
from srljax.envs.space_check import action_offset, one_hot
from srljax.errors import UserError

SAME_STEP = gymnasium.vector.AutoresetMode.SAME_STEP


def autoreset_mode(env) -> gymnasium.vector.AutoresetMode:
    mode = (getattr(env, "metadata", None) or {}).get("autoreset_mode", gymnasium.vector.AutoresetMode.NEXT_STEP)
    return mode if isinstance(mode, gymnasium.vector.AutoresetMode) else gymnasium.vector.AutoresetMode(mode)


class FromGymnasium:
    """A gymnasium VectorEnv with srljax's interface. `owned`: `close()` closes the env too (not
    for an env object a user handed in, which stays the user's to close)."""

    num_agents = None

    def __init__(self, env: gymnasium.vector.VectorEnv, owned: bool = True):
        self.env, self.owned = env, owned
        self.num_envs = int(env.num_envs)
        name = getattr(getattr(env, "spec", None), "id", None) or type(env).__name__
        label = getattr(env.unwrapped, "label", None) or f"custom/{name}"     # as in messages and config.json
        self.observation_space = convert_space(env.single_observation_space, "observation", label)
        self.action_space = convert_space(env.single_action_space, "action", label)
        self._offset = action_offset(env.single_action_space)     # a Discrete / MultiDiscrete `start`
        encode = one_hot(env.single_observation_space)       # srljax's float32 observations (Discrete: one-hot)
        self._obs = (lambda o: np.array(o, np.float32)) if encode is None else encode
        self.mode = autoreset_mode(env)
        self.name = name
        self._fast = isinstance(env.unwrapped, GymVectorEnv) and env is env.unwrapped
        self._clip = None
        if isinstance(self.action_space, spaces.Box):
            self._clip = (np.asarray(self.action_space.low, np.float32), np.asarray(self.action_space.high, np.float32))
        self._ep_return = np.zeros(self.num_envs, np.float64)
        self._ep_length = np.zeros(self.num_envs, np.int64)
        if self.mode != SAME_STEP and self.num_envs > 1:
            self._check_reset_mask()

    def _check_reset_mask(self) -> None:
        """Refuse an env whose masked reset resets the other copies too (see the module docstring)."""
        before = self._obs(self.env.reset(seed=0)[0])
        mask = np.zeros(self.num_envs, bool)
        mask[0] = True
        after = self._reset_ended(mask)
        if not np.array_equal(before[1:], after[1:]):
            raise UserError(f"{self.name} ({type(self.env.unwrapped).__name__}): its autoreset mode "
                            f"{self.mode.value} needs reset(options={{'reset_mask': ...}}) to reset only the "
                            "masked envs, and it resets them all; use gymnasium.make_vec(..., vectorization_mode="
                            "'sync') or a SyncVectorEnv, or autoreset mode SameStep")

    def reset(self, seed: int) -> np.ndarray:
        obs, _ = self.env.reset(seed=int(seed))
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        return self._obs(obs)

    def step(self, actions: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Dict[str, Any]]:
        if self._offset is not None:       # srljax's actions are in [0, n): the env's start back on
            actions = np.asarray(actions) + self._offset
        if self._fast:                     # srljax's contract already (see gymnasium_adapter)
            return self.env.step(actions)
        actions = np.asarray(actions)
        if self._clip is not None:
            actions = np.clip(actions, *self._clip)
        obs, reward, terminated, truncated, info = self.env.step(actions)
        obs = self._obs(obs)
        reward = np.asarray(reward, np.float32).reshape(self.num_envs)
        terminated = np.asarray(terminated, bool).reshape(self.num_envs)
        truncated = np.asarray(truncated, bool).reshape(self.num_envs) & ~terminated
        ended = terminated | truncated
        final = obs.copy()
        if ended.any():
            if self.mode == SAME_STEP:
                if "final_obs" not in info:
                    raise UserError(f"{self.name}: autoreset mode SameStep but no info['final_obs'] when an "
                                    "episode ended")
                mask = np.asarray(info.get("_final_obs", ended), bool)
                for i in np.flatnonzero(mask):
                    final[i] = self._obs(info["final_obs"][i])
            else:
                obs[ended] = self._reset_ended(ended)[ended]
        self._ep_return += reward
        self._ep_length += 1
        episodes: List[Dict[str, float]] = []
        for i in np.flatnonzero(ended):
            episodes.append({"return": float(self._ep_return[i]), "length": int(self._ep_length[i])})
            self._ep_return[i], self._ep_length[i] = 0.0, 0
        return obs, reward, terminated, truncated, {"final_obs": final, "episodes": episodes}

    def _reset_ended(self, ended: np.ndarray) -> np.ndarray:
        try:
            fresh, _ = self.env.reset(options={"reset_mask": ended})
        except (AssertionError, TypeError, KeyError, ValueError) as exc:
            raise UserError(f"{self.name}: its autoreset mode {self.mode.value} needs reset(options="
                            f"{{'reset_mask': ...}}), which it refused ({exc}); make it with "
                            "vector_kwargs={'autoreset_mode': 'SameStep'}") from None
        return self._obs(fresh)

    def close(self) -> None:
        if self.owned:
            self.env.close()


def as_srljax(env):
    """srljax's view of a CPU vector env: gymnasium VectorEnvs get `FromGymnasium`, srljax's own
    vector envs (hide-and-seek, PettingZoo adapter) pass through."""
    return FromGymnasium(env) if isinstance(env, gymnasium.vector.VectorEnv) else env
