"""Pictures of the JAX game: a `hide_and_seek.render.Frame` from one env's state, drawn and written
by the MuJoCo game's renderer (`write_gif`, `write_png`).

    frames = [frame(state.inner, state.obs, env.prep_steps, state.reward) for state in states]
    write_gif(frames, "episode.gif")

The state is one env's (no batch axis), jax or numpy arrays.
"""
from __future__ import annotations

import numpy as np

from srljax.envs.hide_and_seek.observations import others_index
from srljax.envs.hide_and_seek.render import Frame, write_gif, write_png

__all__ = ["frame", "write_gif", "write_png"]


def frame(game, obs, prep_steps: int, reward) -> Frame:
    """The Frame of one env's `Game` (`game.py`), its observation dict and last reward [A]."""
    w, b = game.world, game.bodies
    on, ob = np.asarray(w.agent_on, bool), np.asarray(w.obj_on, bool)
    A = on.shape[0]
    B = int(np.sum(~np.asarray(w.ramp, bool)))
    p, yaw = np.asarray(b.p), np.asarray(b.yaw)
    wall_on = np.asarray(w.wall_on, bool)
    walls = np.concatenate([np.asarray(w.wall_c), np.asarray(w.wall_h), np.asarray(w.wall_top)[:, None]], 1)[wall_on]
    pose = np.concatenate([p, yaw[:, None]], 1)
    half = np.asarray(w.half)
    lock = np.asarray(game.lock_team)
    hider = np.asarray(game.hider, bool)
    # an agent is seen when an existing agent of the other team sees it (the observation's own flags)
    vis = np.asarray(obs["agents_visible"]) > 0.5                        # [A, A-1]
    seen = np.zeros((A,), bool)
    for i, row in enumerate(others_index(A)):
        for k, j in enumerate(row):
            seen[j] |= bool(on[i] and vis[i, k] and hider[i] != hider[j])
    box, ramp = ob[:B], ob[B:]
    return Frame(walls=walls, agents=pose[:A][on], hider=hider[on],
                 boxes=np.concatenate([pose[A:A + B], half[:B]], 1)[box], box_lock=lock[:B][box],
                 ramps=pose[A + B:][ramp], ramp_lock=lock[B:][ramp], t=int(game.t), prep_steps=int(prep_steps),
                 reward=np.asarray(reward)[on], seen=seen[on])
