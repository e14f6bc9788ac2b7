"""Episode layouts for the JAX game: the MuJoCo game's own generator, drawn in numpy into a bank.

Rejection sampling (objects on a 0.2 m grid, the whole layout redrawn when a placement fails) has no
fixed cost, which `jit` needs; so the env draws `layouts` layouts with the very generator the MuJoCo
game uses (`hide_and_seek.layout.draw_layout`) when it is built, and each reset picks one of them and
draws the agents' headings afresh. The starting states therefore follow the MuJoCo game's
distribution exactly, over a finite sample (4,096 by default: about 2 s for the quadrant game and 8 s
for the full game, once per process and seed; `layouts=` sets the number).
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from srljax.envs.hide_and_seek.layout import (AGENT_R, CUBE_HALF, LONG_HALF, RAMP_HALF, Layout,
                                              draw_layout)
from srljax.envs.hide_and_seek.scene import Variant

_BANKS: Dict[tuple, Dict[str, np.ndarray]] = {}


def layout_arrays(layout: Layout, v: Variant) -> Dict[str, np.ndarray]:
    """One layout as the padded float32/bool arrays of a variant's largest scene.

    Keys: wall_c [W, 2], wall_h [W, 2], wall_top [W], wall_on [W]; agent_pos [A, 3], agent_yaw [A],
    hider [A], agent_on [A]; obj_p [O, 2], obj_yaw [O], half [O, 2], obj_on [O] (boxes, then ramps)."""
    A, B, R, W = v.max_agents, v.max_boxes, v.max_ramps, v.wall_slots
    walls = np.asarray(layout.walls, dtype=np.float64).reshape(-1, 6)
    counts = (layout.n_agents, len(layout.box_pos), len(layout.ramp_pos), len(walls))
    if counts[0] > A or counts[1] > B or counts[2] > R or counts[3] > W:
        raise ValueError(f"layout has (agents, boxes, ramps, walls) = {counts}; the {v.name} scene holds at "
                         f"most {(A, B, R, W)}")
    out = {
        "wall_c": np.full((W, 2), -50.0), "wall_h": np.full((W, 2), 0.05), "wall_top": np.zeros(W),
        "wall_on": np.zeros(W, bool),
        "agent_pos": np.zeros((A, 3)), "agent_yaw": np.zeros(A), "hider": np.zeros(A, bool),
        "agent_on": np.zeros(A, bool),
        "obj_p": np.zeros((B + R, 2)), "obj_yaw": np.zeros(B + R), "half": np.zeros((B + R, 2)),
        "obj_on": np.zeros(B + R, bool),
    }
    nw = counts[3]
    out["wall_c"][:nw] = walls[:, :2]
    out["wall_h"][:nw] = walls[:, 2:4]
    out["wall_top"][:nw] = 2 * walls[:, 4]
    out["wall_on"][:nw] = True
    n = counts[0]
    # absent slots are parked far apart, outside the floor (they collide with nothing)
    out["agent_pos"][:, 0] = -20.0 - 2.0 * np.arange(A)
    out["agent_pos"][:, 1] = -20.0
    out["agent_pos"][:, 2] = AGENT_R
    out["agent_pos"][:n] = layout.agent_pos
    out["agent_yaw"][:n] = layout.agent_yaw
    out["hider"][:n] = layout.hider
    out["agent_on"][:n] = True
    out["obj_p"][:, 0] = -30.0 - 2.0 * np.arange(B + R)
    out["obj_p"][:, 1] = -30.0
    out["half"][:B] = CUBE_HALF[:2]
    out["half"][B:] = RAMP_HALF[:2]
    nb, nr = counts[1], counts[2]
    out["obj_p"][:nb] = layout.box_pos[:, :2]
    out["obj_yaw"][:nb] = layout.box_yaw
    out["half"][:nb] = np.where(np.asarray(layout.box_long)[:, None], LONG_HALF[:2], CUBE_HALF[:2])
    out["obj_on"][:nb] = True
    out["obj_p"][B:B + nr] = layout.ramp_pos[:, :2]
    out["obj_yaw"][B:B + nr] = layout.ramp_yaw
    out["obj_on"][B:B + nr] = True
    return {k: (a.astype(np.float32) if a.dtype.kind == "f" else a) for k, a in out.items()}


def stack(rows: Sequence[Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


def bank(v: Variant, n: int, seed: int) -> Dict[str, np.ndarray]:
    """`n` layouts of variant `v` drawn from seed `seed`, stacked on a leading axis (cached)."""
    key = (v, int(n), int(seed))
    if key not in _BANKS:
        if n < 1:
            raise ValueError(f"layouts must be >= 1, got {n}")
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x4A5]))
        _BANKS[key] = stack([layout_arrays(draw_layout(v.name, rng), v) for _ in range(int(n))])
    return _BANKS[key]
