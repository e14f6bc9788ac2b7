"""Hand-built games for tests and for studying behaviours.

    sc = Scenario(agents=[Agent((1, 3), yaw=0.0, hider=False), Agent((5, 3), hider=True)],
                  walls=[Wall((3, 1), (3, 5))], prep_steps=0)
    sc.visible(0, 1)          # does agent 0 see agent 1?
    sc.step([act(x=5), act()])  # full force along +x for agent 0, nothing for agent 1
    sc.reward, sc.obs(), sc.agent_pos(0), sc.box_lock(0), ...

A Scenario is a one-env HideAndSeekVecEnv whose scene is sized to exactly the objects given and
whose only layout is the one given; it plays by the rules of `variant` (out-of-bounds rule, ramp
locking) and never auto-resets unless a horizon is given.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from srljax.envs.hide_and_seek.env import HideAndSeekVecEnv
from srljax.envs.hide_and_seek.layout import (AGENT_R, CUBE_HALF, INNER_WALL_H, RAMP_HALF,
                                              WALL_THICK, Layout, outer_walls)
from srljax.envs.hide_and_seek.scene import HIDDEN_GROUP, VARIANTS

Point = Tuple[float, ...]


@dataclasses.dataclass
class Agent:
    """pos: (x, y) on the floor or (x, y, z) (e.g. z = 0.65 to stand on a box)."""

    pos: Point
    yaw: float = 0.0
    hider: bool = True


@dataclasses.dataclass
class Box:
    """A cube, or an elongated box (long=True) whose long side is along x at yaw 0."""

    pos: Point
    yaw: float = 0.0
    long: bool = False


@dataclasses.dataclass
class Ramp:
    """A 45-degree wedge; at yaw 0 it rises towards -y (at yaw pi/2 it rises towards +x)."""

    pos: Point
    yaw: float = 0.0


@dataclasses.dataclass
class Wall:
    """An axis-aligned wall from `start` to `end` (0.1 m thick, centred on that line)."""

    start: Tuple[float, float]
    end: Tuple[float, float]
    height: float = INNER_WALL_H


def act(x: int = 0, y: int = 0, turn: int = 0, grab: bool = False, lock: bool = False) -> np.ndarray:
    """One agent's action from signed bins: x, y, turn in -5..5 (5 is full force), grab, lock."""
    return np.array([x + 5, y + 5, turn + 5, int(grab), int(lock)], dtype=np.int64)


def _wall_row(w: Wall) -> Tuple[float, ...]:
    (x0, y0), (x1, y1) = w.start, w.end
    if abs(x0 - x1) > 1e-9 and abs(y0 - y1) > 1e-9:
        raise ValueError(f"walls must be axis-aligned, got {w}")
    hx = max(abs(x1 - x0) / 2, WALL_THICK / 2)
    hy = max(abs(y1 - y0) / 2, WALL_THICK / 2)
    return ((x0 + x1) / 2, (y0 + y1) / 2, hx, hy, w.height / 2, 0.0)


def _xyz(pos: Point, rest_z: float) -> Tuple[float, float, float]:
    return (float(pos[0]), float(pos[1]), float(pos[2]) if len(pos) > 2 else rest_z)


def scenario_layout(agents: Sequence[Agent], boxes: Sequence[Box] = (), ramps: Sequence[Ramp] = (),
                    walls: Sequence[Wall] = (), outer: bool = True) -> Layout:
    """The Layout of a hand-built game (the outer walls first when `outer`)."""
    wall_rows = (outer_walls() if outer else []) + [_wall_row(w) for w in walls]
    return Layout(
        walls=np.array(wall_rows, dtype=np.float64).reshape(-1, 6),
        agent_pos=np.array([_xyz(a.pos, AGENT_R) for a in agents]).reshape(-1, 3),
        agent_yaw=np.array([a.yaw for a in agents], dtype=np.float64),
        hider=np.array([a.hider for a in agents], dtype=bool),
        box_pos=np.array([_xyz(b.pos, CUBE_HALF[2]) for b in boxes]).reshape(-1, 3),
        box_yaw=np.array([b.yaw for b in boxes], dtype=np.float64),
        box_long=np.array([b.long for b in boxes], dtype=bool),
        ramp_pos=np.array([_xyz(r.pos, RAMP_HALF[2]) for r in ramps]).reshape(-1, 3),
        ramp_yaw=np.array([r.yaw for r in ramps], dtype=np.float64),
    )


def scenario_variant(layout: Layout, variant: str = "quadrant", horizon: int = 10 ** 9):
    """A variant sized to exactly a layout's objects, playing by `variant`'s rules."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {sorted(VARIANTS)}")
    return dataclasses.replace(VARIANTS[variant], max_agents=layout.n_agents, max_boxes=len(layout.box_pos),
                               max_ramps=len(layout.ramp_pos), wall_slots=max(len(layout.walls), 1),
                               horizon=horizon)


def lock_name(team: int) -> Optional[str]:
    """An object's lock team as a scenario reports it: None (unlocked), "hider" or "seeker"."""
    return None if team < 0 else ("hider" if team == 1 else "seeker")


class Scenario:
    """A single game at given poses; see the module docstring."""

    def __init__(self, agents: Sequence[Agent], boxes: Sequence[Box] = (), ramps: Sequence[Ramp] = (),
                 walls: Sequence[Wall] = (), variant: str = "quadrant", prep_steps: int = 0,
                 outer: bool = True, horizon: int = 10 ** 9):
        self.layout = layout = scenario_layout(agents, boxes, ramps, walls, outer)
        spec = scenario_variant(layout, variant, horizon)
        self.env = HideAndSeekVecEnv(spec, num_envs=1, prep_steps=prep_steps,
                                     layout_fn=lambda rng: layout)
        self._obs = self.env.reset(0)
        self.reward = np.zeros(len(agents), dtype=np.float32)
        self.info: Dict = {}

    @property
    def num_agents(self) -> int:
        return self.env.num_agents

    @property
    def t(self) -> int:
        return int(self.env.t[0])

    def step(self, actions: Sequence[np.ndarray] | np.ndarray, n: int = 1) -> np.ndarray:
        """Apply the same per-agent actions [A, 5] for n steps; returns the last step's rewards."""
        a = np.asarray(actions)[None]
        for _ in range(n):
            obs, reward, _, _, self.info = self.env.step(a)
            self._obs, self.reward = obs, reward[0]
        return self.reward

    def still(self) -> np.ndarray:
        """The zero action for every agent."""
        return np.stack([act() for _ in range(self.num_agents)])

    def obs(self) -> Dict[str, np.ndarray]:
        """This game's observations, without the env axis: obs[k][i] belongs to agent i."""
        return {k: v[0] for k, v in self._obs.items()}

    def visible(self, i: int, j: int) -> bool:
        """Whether agent i sees agent j (cone and line of sight, as of the last observation)."""
        return bool(self.env.vis[0, i, j])

    def sees_box(self, i: int, k: int) -> bool:
        return bool(self.env.vis[0, i, self.num_agents + k])

    def sees_ramp(self, i: int, k: int) -> bool:
        return bool(self.env.vis[0, i, self.num_agents + self.env.num_boxes + k])

    def agent_pos(self, i: int) -> np.ndarray:
        return self.env.q[0, i, :3].copy()

    def box_pos(self, k: int) -> np.ndarray:
        return self.env.q[0, self.num_agents + k, :3].copy()

    def ramp_pos(self, k: int) -> np.ndarray:
        return self.env.q[0, self.num_agents + self.env.num_boxes + k, :3].copy()

    def _lock(self, o: int) -> Optional[str]:
        return lock_name(self.env.lock_team[0, o])

    def box_lock(self, k: int) -> Optional[str]:
        """None when box k is unlocked, else the team that locked it ("hider" or "seeker")."""
        return self._lock(k)

    def ramp_lock(self, k: int) -> Optional[str]:
        return self._lock(self.env.num_boxes + k)

    def held(self, i: int) -> Optional[int]:
        """The object index (boxes first, then ramps) agent i holds, or None."""
        o = int(self.env.held[0, i])
        return None if o < 0 else o

    def remove_wall(self, k: int) -> None:
        """Take wall k (index into the `walls` given, outer walls not counted) out of the game and
        refresh the observation, without stepping the physics."""
        g = self.env.ids.wall_geoms[k + (4 if self._has_outer() else 0)]
        m = self.env.models[0]
        m.geom_contype[g] = m.geom_conaffinity[g] = 0
        m.geom_group[g] = HIDDEN_GROUP
        self._obs = self.env._observe()

    def _has_outer(self) -> bool:
        return bool(len(self.layout.walls) and self.layout.walls[0, 5] == 1.0)
