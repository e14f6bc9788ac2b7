"""Hand-built games on the JAX game, with the MuJoCo `Scenario`'s API, for rule-by-rule parity.

    sc = JaxScenario(agents=[Agent((1, 3), yaw=0.0, hider=False), Agent((5, 3), hider=True)],
                     walls=[Wall((3, 1), (3, 5))], prep_steps=0)
    sc.visible(0, 1); sc.step([act(x=5), act()]); sc.reward, sc.obs(), sc.agent_pos(0), ...

The same arguments give the same layout as `hide_and_seek.Scenario` (`scenario_layout`). Every
scenario of one variant's rules is padded to the same slot counts (`SLOTS`), so all of them share one
compiled step.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from srljax.envs.hide_and_seek.scenario import Agent, Box, Ramp, Wall, act, lock_name, scenario_layout
from srljax.envs.hide_and_seek.scene import VARIANTS
from srljax.envs.hns_jax import physics as P
from srljax.envs.hns_jax.game import HideAndSeekJax
from srljax.envs.hns_jax.layouts import layout_arrays, stack

__all__ = ["Agent", "Box", "JaxScenario", "Ramp", "Wall", "act"]

SLOTS = dict(max_agents=4, max_boxes=3, max_ramps=1, wall_slots=8)
_ENVS: Dict[tuple, tuple] = {}


def _env(variant: str, prep_steps: int, horizon: int, layout):
    key = (variant, prep_steps, horizon)
    if key not in _ENVS:
        spec = dataclasses.replace(VARIANTS[variant], horizon=horizon, **SLOTS)
        bank = stack([layout_arrays(layout, spec)])           # resets are not used: any bank will do
        env = HideAndSeekJax(spec, prep_steps=prep_steps, bank=bank)
        _ENVS[key] = (env, jax.jit(env.start), jax.jit(env.step))
    return _ENVS[key]


class JaxScenario:
    """A single JAX game at given poses (at most `SLOTS` agents, boxes, ramps and walls)."""

    def __init__(self, agents: Sequence[Agent], boxes: Sequence[Box] = (), ramps: Sequence[Ramp] = (),
                 walls: Sequence[Wall] = (), variant: str = "quadrant", prep_steps: int = 0,
                 outer: bool = True, horizon: int = 10 ** 6):
        self.layout = layout = scenario_layout(agents, boxes, ramps, walls, outer)
        self.env, start, self._step = _env(variant, prep_steps, horizon, layout)
        self.n_agents, self.n_boxes = len(agents), len(boxes)
        lay = {k: jnp.asarray(v) for k, v in layout_arrays(layout, self.env.spec).items()}
        self.state = start(lay, jax.random.key(0))
        self.reward = np.zeros(len(agents), dtype=np.float32)
        self.info: Dict = {}
        self.outer = outer

    @property
    def num_agents(self) -> int:
        return self.n_agents

    @property
    def t(self) -> int:
        return int(self.state.inner.t)

    def step(self, actions, n: int = 1) -> np.ndarray:
        """Apply the same per-agent actions [A, 5] for n steps; returns the last step's rewards."""
        a = np.zeros((self.env.num_agents, 5), np.int32)
        a[:, :3] = 5
        a[: self.n_agents] = np.asarray(actions)
        for _ in range(n):
            self.state = self._step(self.state, jnp.asarray(a))
            self.info = {"final_obs": {k: np.asarray(v)[None] for k, v in self.state.obs.items()},
                         "episodes": [self._episode()] if bool(self.state.truncated) else []}
        self.reward = np.asarray(self.state.reward)[: self.n_agents]
        return self.reward

    def _episode(self) -> Dict:
        """The ended episode's statistics, as the MuJoCo game's `info["episodes"]` rows."""
        g, m = self.state.inner, self.state.metrics
        on, hider = np.asarray(g.world.agent_on), np.asarray(g.hider)
        ep = {k[len("episode_stat_"):]: float(v) for k, v in m.items() if k.startswith("episode_stat_")}
        ep.update({"return": float(np.asarray(g.ret)[on].mean()), "length": int(g.t), "unstable": False,
                   "n_hiders": int((on & hider).sum()), "n_seekers": int((on & ~hider).sum())})
        return ep

    def remove_wall(self, k: int) -> None:
        """Take wall k (of the `walls` given, outer walls not counted) out of the game and refresh
        the observation, without stepping."""
        g = self.state.inner
        world = g.world.replace(wall_on=g.world.wall_on.at[k + (4 if self.outer else 0)].set(False))
        obs, g, _ = jax.jit(self.env._observe)(g.replace(world=world))
        self.state = self.state.replace(inner=g, obs=obs)

    def still(self) -> np.ndarray:
        return np.stack([act() for _ in range(self.n_agents)])

    def obs(self) -> Dict[str, np.ndarray]:
        """This game's observations for its own agents (padded slots dropped from the agent axis)."""
        return {k: np.asarray(v)[: self.n_agents] for k, v in self.state.obs.items()}

    def _vis(self) -> np.ndarray:
        from srljax.envs.hns_jax.sight import observe_rays
        g = self.state.inner
        return np.asarray(observe_rays(g.world, g.bodies, self.env.num_agents)[1])

    def visible(self, i: int, j: int) -> bool:
        return bool(self._vis()[i, j])

    def sees_box(self, i: int, k: int) -> bool:
        return bool(self._vis()[i, self.env.num_agents + k])

    def sees_ramp(self, i: int, k: int) -> bool:
        return bool(self._vis()[i, self.env.num_agents + self.env.num_boxes + k])

    def agent_pos(self, i: int) -> np.ndarray:
        b = self.state.inner.bodies
        return np.array([*np.asarray(b.p[i]), float(b.base[i]) + P.AGENT_R])

    def _obj(self, o: int) -> np.ndarray:
        b = self.state.inner.bodies
        return np.array([*np.asarray(b.p[self.env.num_agents + o]), 0.25])

    def box_pos(self, k: int) -> np.ndarray:
        return self._obj(k)

    def ramp_pos(self, k: int) -> np.ndarray:
        return self._obj(self.env.num_boxes + k)

    def _lock(self, o: int) -> Optional[str]:
        return lock_name(int(self.state.inner.lock_team[o]))

    def box_lock(self, k: int) -> Optional[str]:
        return self._lock(k)

    def ramp_lock(self, k: int) -> Optional[str]:
        return self._lock(self.env.num_boxes + k)

    def held(self, i: int) -> Optional[int]:
        """The object index (this scenario's boxes first, then its ramps) agent i holds, or None."""
        o = int(self.state.inner.holds.held[i])
        if o < 0:
            return None
        return o if o < self.env.num_boxes else self.n_boxes + (o - self.env.num_boxes)
