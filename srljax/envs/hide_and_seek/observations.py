"""Lidar, vision and the observation dict, for a batch of envs at once.

One `mj_multiRay` call per agent casts its 30 lidar rays and its sight rays together, from the
agent's centre and ignoring its own body; everything else is vectorised numpy over [E, A, N].
"""
from __future__ import annotations

from typing import Dict, List

import mujoco
import numpy as np

from srljax.envs.spaces import Box, Entities

N_LIDAR = 30
LIDAR_RANGE = 6.0
HALF_CONE = np.deg2rad(135.0 / 2)
COS_HALF_CONE = float(np.cos(HALF_CONE))
RAY_CUTOFF = float(mujoco.mjMAXVAL)   # no distance limit on sight: mj_multiRay culls nothing by range
AGENT_FEATS = 11    # pos 3, cos, sin, vel 3, yaw rate, hider, prep_obs
OBJECT_FEATS = 15   # pos 3, cos, sin, vel 3, yaw rate, size 3, locked, locked by my team, by me
_LIDAR_ANGLES = 2 * np.pi * np.arange(N_LIDAR) / N_LIDAR
LIDAR_DIRS = np.stack([np.cos(_LIDAR_ANGLES), np.sin(_LIDAR_ANGLES), np.zeros(N_LIDAR)], axis=1)
_GROUPS = np.array([1, 0, 0, 0, 0, 0], dtype=np.uint8)   # group 0 only: no floor, no parked slots
_DOWN = np.array([0.0, 0.0, -1.0])


class RayCaster:
    """Preallocated ray buffers for E envs x A agents x (30 lidar + N sight) rays, and the
    argument tuple of every agent's `mj_multiRay` call, built once so a step only loops over
    them. Sight rays towards non-candidates point straight down (the floor is not in the ray
    group), which costs less than a per-agent gather of the candidates."""

    def __init__(self, models: List[mujoco.MjModel], datas: List[mujoco.MjData], num_agents: int,
                 num_bodies: int, agent_bodies: np.ndarray, geom_body_slot: np.ndarray):
        E, A = len(models), num_agents
        self.nray = nray = N_LIDAR + num_bodies
        self.origin = np.zeros((E, A, 3))
        self.vec = np.zeros((E, A, nray, 3))
        self.vec[:, :, :N_LIDAR] = LIDAR_DIRS
        flat_vec = self.vec.reshape(E, A, nray * 3)
        self.geomid = np.full((E, A, nray), -1, dtype=np.int32)
        self.dist = np.full((E, A, nray), -1.0)
        # slot of the movable body a geom belongs to; index -1 (no hit) maps to the extra last entry
        self.slot_of_geom = np.concatenate([geom_body_slot, [-1]])
        self.arange_n = np.arange(num_bodies)
        self._args = [[(models[e], datas[e], self.origin[e, a], flat_vec[e, a], _GROUPS, 1,
                        int(agent_bodies[a]), self.geomid[e, a], self.dist[e, a], None, nray, RAY_CUTOFF)
                       for a in range(A)] for e in range(E)]
        self._calls: List[tuple] = []

    def set_exists(self, agent_exists: np.ndarray) -> None:
        """Cast rays only for the agents in play (call after a reset changes them)."""
        # last env first: the envs stepped last are still in cache when the rays start
        self._calls = [args for e, row in reversed(list(enumerate(self._args)))
                       for a, args in enumerate(row) if agent_exists[e, a]]

    def cast(self, origin: np.ndarray, targets: np.ndarray, candidates: np.ndarray):
        """Cast the lidar rays and the sight rays towards candidate slots.

        origin [E, A, 3]; targets [E, N, 3]; candidates [E, A, N] bool (slots worth a sight ray:
        in the cone, existing, not the agent itself).

        Returns (lidar [E, A, 30] in metres, clipped to the range; los [E, A, N]: whether the
        sight ray towards slot n hits slot n first; False for non-candidates)."""
        self.origin[:] = origin
        sight = targets[:, None, :, :] - self.origin[:, :, None, :]
        norm = np.sqrt(np.einsum("eanx,eanx->ean", sight, sight))
        np.maximum(norm, 1e-9, out=norm)
        sight /= norm[..., None]
        self.vec[:, :, N_LIDAR:] = np.where(candidates[..., None], sight, _DOWN)
        ray = mujoco.mj_multiRay
        for args in self._calls:
            ray(*args)
        lidar = self.dist[:, :, :N_LIDAR]
        lidar = np.where(lidar < 0, LIDAR_RANGE, np.minimum(lidar, LIDAR_RANGE))
        los = (self.slot_of_geom[self.geomid[:, :, N_LIDAR:]] == self.arange_n) & candidates
        return lidar, los


def in_cone(origin: np.ndarray, cos_yaw: np.ndarray, sin_yaw: np.ndarray,
            targets: np.ndarray) -> np.ndarray:
    """[E, A, N]: whether each target lies within 67.5 degrees of each agent's heading, in the
    horizontal plane (as OpenAI's `in_cone2d`); no distance limit."""
    dx = targets[:, None, :, 0] - origin[:, :, None, 0]
    dy = targets[:, None, :, 1] - origin[:, :, None, 1]
    along = dx * cos_yaw[:, :, None] + dy * sin_yaw[:, :, None]
    return along >= COS_HALF_CONE * np.sqrt(dx * dx + dy * dy)


def observation_space(num_agents: int, num_boxes: int, num_ramps: int) -> Dict[str, Box]:
    """Per-agent shapes: obs[k] has shape (num_envs, num_agents) + space[k].shape."""
    inf = np.float32(np.inf)
    o = num_agents - 1
    return Entities({
        "self": Box(-inf, inf, (AGENT_FEATS,)),
        "agents": Box(-inf, inf, (o, AGENT_FEATS)),
        "agents_visible": Box(0.0, 1.0, (o,)),
        "agents_exists": Box(0.0, 1.0, (o,)),
        "boxes": Box(-inf, inf, (num_boxes, OBJECT_FEATS)),
        "boxes_visible": Box(0.0, 1.0, (num_boxes,)),
        "boxes_exists": Box(0.0, 1.0, (num_boxes,)),
        "ramps": Box(-inf, inf, (num_ramps, OBJECT_FEATS)),
        "ramps_visible": Box(0.0, 1.0, (num_ramps,)),
        "ramps_exists": Box(0.0, 1.0, (num_ramps,)),
        "lidar": Box(0.0, LIDAR_RANGE, (N_LIDAR,)),
        "agent_exists": Box(0.0, 1.0, ()),
    })


def others_index(num_agents: int) -> np.ndarray:
    """[A, A-1]: the other agents' slots, in order, for each agent."""
    idx = np.arange(num_agents)
    return np.stack([np.delete(idx, a) for a in idx]) if num_agents > 1 else np.zeros((1, 0), int)


def build_obs(q: np.ndarray, qd: np.ndarray, cos_yaw: np.ndarray, sin_yaw: np.ndarray,
              hider: np.ndarray, agent_exists: np.ndarray, obj_exists: np.ndarray,
              obj_size: np.ndarray, lock_team: np.ndarray, locker: np.ndarray, team: np.ndarray,
              prep_obs: np.ndarray, vis: np.ndarray, lidar: np.ndarray, others: np.ndarray,
              num_boxes: int) -> Dict[str, np.ndarray]:
    """The observation dict (float32) of every agent of every env.

    q, qd [E, N, 4] (x, y, z, yaw and their rates), bodies ordered agents, boxes, ramps;
    vis [E, A, N] visibility of every body slot; features of absent slots are 0."""
    E, N, _ = q.shape
    A = hider.shape[1]
    O = N - A
    feats = np.empty((E, N, AGENT_FEATS), dtype=np.float32)
    feats[..., 0:3] = q[..., :3]
    feats[..., 3] = cos_yaw
    feats[..., 4] = sin_yaw
    feats[..., 5:9] = qd
    feats[:, :A, 9] = hider
    feats[:, :A, 10] = prep_obs[:, None]
    feats[:, A:, 9:] = 0.0
    exists = np.concatenate([agent_exists, obj_exists], axis=1)
    feats *= exists[..., None]
    obs = {}
    agents = feats[:, :A]
    obs["self"] = agents
    obs["agents"] = agents[:, others]
    ar = np.arange(A)[:, None]
    obs["agents_visible"] = vis[:, ar, others].astype(np.float32)
    obs["agents_exists"] = (agent_exists[:, others] & agent_exists[:, :, None]).astype(np.float32)
    objf = np.empty((E, A, O, OBJECT_FEATS), dtype=np.float32)
    objf[..., :9] = feats[:, None, A:, :9]
    objf[..., 9:12] = obj_size[:, None]
    locked = lock_team >= 0
    objf[..., 12] = locked[:, None, :]
    objf[..., 13] = locked[:, None, :] & (lock_team[:, None, :] == team[:, :, None])
    objf[..., 14] = locker[:, None, :] == ar[None]
    objf *= obj_exists[:, None, :, None]
    obj_vis = vis[:, :, A:].astype(np.float32)
    obj_ex = (obj_exists[:, None, :] & agent_exists[:, :, None]).astype(np.float32)
    B = num_boxes
    obs["boxes"], obs["ramps"] = objf[:, :, :B], objf[:, :, B:]
    obs["boxes_visible"], obs["ramps_visible"] = obj_vis[:, :, :B], obj_vis[:, :, B:]
    obs["boxes_exists"], obs["ramps_exists"] = obj_ex[:, :, :B], obj_ex[:, :, B:]
    obs["lidar"] = (lidar * agent_exists[..., None]).astype(np.float32)
    obs["agent_exists"] = agent_exists.astype(np.float32)
    return obs
