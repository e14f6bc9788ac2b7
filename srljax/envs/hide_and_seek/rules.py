"""The rules of hide-and-seek as pure numpy functions over a batch of envs.

Arrays carry a leading env axis E, then agents A and/or objects O (boxes first, then ramps). Teams
are integers: 1 hider, 0 seeker, -1 for an absent agent slot; an object's lock team is -1 when it is
unlocked. Nothing here touches MuJoCo: env.py turns the decisions into weld switches.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

NVEC = (11, 11, 11, 2, 2)
ACTION_LIM = 0.9
REACH = 0.25            # grab/lock range from the agent's centre to the object's surface
OOB_PENALTY = -10.0
QUADRANT_BOUNDS = (0.1, 5.9)
FULL_BOUNDS = (-6.0, 12.0)
_NVEC = np.array(NVEC)


def validate_actions(actions, num_envs: int, num_agents: int) -> np.ndarray:
    """Check a batch of actions and return it as int64 [E, A, 5]; a clear ValueError otherwise."""
    a = np.asarray(actions)
    want = (num_envs, num_agents, len(NVEC))
    if a.shape != want:
        raise ValueError(f"actions must have shape {want} (num_envs, num_agents, 5), got {a.shape}")
    if a.dtype.kind == "b":
        a = a.astype(np.int64)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)):
            raise ValueError("actions contain NaN or infinite values; expected integer bins")
        if not np.all(a == np.round(a)):
            raise ValueError("actions must be integers (MultiDiscrete bins), got non-integer values")
    elif a.dtype.kind not in "iu":
        raise ValueError(f"actions must be integers (MultiDiscrete bins), got dtype {a.dtype}")
    a = a.astype(np.int64, copy=False)
    bad = (a < 0) | (a >= _NVEC)
    if bad.any():
        e, i, k = np.argwhere(bad)[0]
        raise ValueError(f"action part {k} of env {e}, agent {i} is {a[e, i, k]}, outside "
                         f"[0, {NVEC[k] - 1}] (MultiDiscrete {list(NVEC)})")
    return a


def movement(actions: np.ndarray) -> np.ndarray:
    """Bins 0..10 of x force, y force and z torque to motor controls in [-0.9, 0.9] (bin 5 is 0)."""
    return (actions[..., :3] - 5) * (ACTION_LIM / 5)


def yaw_rotate(local: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate xy of vectors [..., 3] by yaw (given as cos, sin broadcastable to [...])."""
    out = local.copy()
    out[..., 0] = cos * local[..., 0] - sin * local[..., 1]
    out[..., 1] = sin * local[..., 0] + cos * local[..., 1]
    return out


def surface_distance(agent_pos: np.ndarray, obj_pos: np.ndarray, obj_cos: np.ndarray,
                     obj_sin: np.ndarray, obj_half: np.ndarray) -> np.ndarray:
    """Distance [E, A, O] from each agent's centre to each object's (yawed) box, 0 inside it.

    Ramps are measured against their 0.5 m bounding cube, as OpenAI measured every object against
    its geom's box (`dist_pt_to_cuboid`)."""
    E, O = obj_cos.shape
    rot = np.zeros((E, O, 3, 3))            # local-from-world rotation of each object
    rot[..., 0, 0] = rot[..., 1, 1] = obj_cos
    rot[..., 0, 1] = obj_sin
    rot[..., 1, 0] = -obj_sin
    rot[..., 2, 2] = 1.0
    rel = agent_pos[:, :, None, :] - obj_pos[:, None, :, :]
    local = np.abs(np.einsum("eoij,eaoj->eaoi", rot, rel))
    local -= obj_half[:, None]
    np.maximum(local, 0.0, out=local)
    return np.sqrt(np.einsum("eaoi,eaoi->eao", local, local))


def interaction_targets(dist: np.ndarray, seen: np.ndarray, obj_exists: np.ndarray) -> np.ndarray:
    """Per agent, the closest object within REACH that it saw last step, or -1: the one object a
    grab or lock action applies to."""
    ok = (dist <= REACH) & seen & obj_exists[:, None, :]
    if ok.shape[-1] == 0:
        return -np.ones(ok.shape[:2], dtype=np.int64)
    masked = np.where(ok, dist, np.inf)
    target = np.argmin(masked, axis=-1)
    return np.where(ok.any(axis=-1), target, -1)


def lock_decisions(target: np.ndarray, lock_bit: np.ndarray, team: np.ndarray,
                   lock_team: np.ndarray, lockable: np.ndarray
                   ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which objects become locked (and by which agent) and which become unlocked this step.

    Following OpenAI's "all_lock_team_specific": an unlocked object is locked by any agent that
    targets it and presses lock (the lowest-numbered such agent is its locker); a locked object is
    unlocked when a member of the locking team targets it without pressing lock, which wins over a
    teammate pressing lock; the other team can neither unlock nor re-lock it.

    Returns new_lock [E, O] bool, locker [E, O] (agent index, -1 where no new lock), unlock [E, O].
    """
    E, A = target.shape
    O = lock_team.shape[1]
    onehot = (target[:, :, None] == np.arange(O)) & lockable[:, None, :]
    pressing = onehot & lock_bit[:, :, None]
    locked = lock_team >= 0
    same_team = team[:, :, None] == lock_team[:, None, :]
    unlock = locked & (onehot & ~lock_bit[:, :, None] & same_team).any(axis=1)
    want = pressing.any(axis=1)
    new_lock = want & ~locked
    locker = np.where(new_lock, np.argmax(pressing, axis=1), -1)
    return new_lock, locker, unlock


def team_reward(vis_aa: np.ndarray, hider: np.ndarray, agent_exists: np.ndarray
                ) -> Tuple[np.ndarray, np.ndarray]:
    """Hiders +1 when no seeker sees any hider, else -1; seekers the opposite; 0 for absent slots.

    vis_aa [E, A, A]: vis_aa[e, i, j] is whether agent i sees agent j. Returns (reward [E, A],
    any_hider_seen [E])."""
    seeker = agent_exists & ~hider
    seen = (vis_aa & seeker[:, :, None] & hider[:, None, :]).any(axis=(1, 2))
    hider_r = np.where(seen, -1.0, 1.0)[:, None]
    reward = np.where(hider, hider_r, -hider_r)
    return np.where(agent_exists, reward, 0.0), seen


def out_of_bounds(variant: str, agent_xy: np.ndarray, agent_exists: np.ndarray,
                  obj_xy: np.ndarray, obj_exists: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Where the -10 penalty replaces the reward: [E, A] bool per agent.

    quadrant: every agent when any box or ramp leaves [0.1, 5.9]^2 (and, as OpenAI's
    RestrictAgentsRect did, an agent that leaves it itself); full: an agent outside [-6, 12]^2.
    Returns (penalised [E, A], any object out [E])."""
    lo, hi = QUADRANT_BOUNDS if variant == "quadrant" else FULL_BOUNDS
    agent_out = ((agent_xy < lo) | (agent_xy > hi)).any(axis=-1) & agent_exists
    obj_out = (((obj_xy < lo) | (obj_xy > hi)).any(axis=-1) & obj_exists).any(axis=-1)
    if variant != "quadrant":
        return agent_out, np.zeros_like(obj_out)
    return (agent_out | obj_out[:, None]) & agent_exists, obj_out
