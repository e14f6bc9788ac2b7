"""Top-down pictures of hide-and-seek games: PNG for one state, GIF for an episode.

    frames = [snapshot(env, 0)]           # after reset and after each step
    write_gif(frames, "episode.gif")      # or write_png(frames[0], "state.png")

A `Frame` holds plain numpy copies of what is drawn, so frames can be collected during training or
evaluation (scripts/evaluate.py) and drawn later. Hiders are blue, seekers red; each agent's
135-degree vision cone is drawn as a wedge; a locked box or ramp is drawn in its locking team's
colour with a heavy outline.
"""
from __future__ import annotations

import dataclasses
import io
from typing import List, Sequence

import numpy as np

HIDER = "#2f7ed8"
SEEKER = "#d8412f"
BOX = "#c8a165"
RAMP = "#8fbf6a"
WALL = "#555555"
CONE_R = 1.2


@dataclasses.dataclass
class Frame:
    """One state of one env, as drawn."""

    walls: np.ndarray        # [W, 5] cx, cy, half_x, half_y, height
    agents: np.ndarray       # [A, 3] x, y, yaw (existing agents only)
    hider: np.ndarray        # [A] bool
    boxes: np.ndarray        # [B, 5] x, y, yaw, half_x, half_y
    box_lock: np.ndarray     # [B] -1 unlocked, 1 hiders, 0 seekers
    ramps: np.ndarray        # [R, 3] x, y, yaw
    ramp_lock: np.ndarray    # [R]
    t: int
    prep_steps: int
    reward: np.ndarray       # [A] last reward of the existing agents
    seen: np.ndarray         # [A] bool: agent seen by an opponent


def snapshot(env, e: int = 0) -> Frame:
    """A Frame of env e of a HideAndSeekVecEnv (or of `Scenario.env`)."""
    m, A, B = env.models[e], env.num_agents, env.num_boxes
    g = env.ids.wall_geoms
    on = m.geom_contype[g] > 0
    walls = np.concatenate([m.geom_pos[g][on][:, :2], m.geom_size[g][on][:, :2],
                            2 * m.geom_size[g][on][:, 2:3]], axis=1)
    q = env.q[e]
    ax = env.agent_exists[e]
    ob = env.obj_exists[e]
    bx, rx = ob[:B], ob[B:]
    boxes = np.concatenate([q[A:A + B, [0, 1, 3]], env.obj_half[e, :B, :2]], axis=1)[bx]
    vis = env.vis[e, :A, :A]
    hider = env.hider[e]
    seen = (vis & (hider[:, None] != hider[None, :]) & ax[:, None]).any(axis=0)
    return Frame(walls=walls, agents=q[:A, [0, 1, 3]][ax].copy(), hider=hider[ax].copy(),
                 boxes=boxes, box_lock=env.lock_team[e, :B][bx].copy(),
                 ramps=q[A + B:, [0, 1, 3]][rx].copy(), ramp_lock=env.lock_team[e, B:][rx].copy(),
                 t=int(env.t[e]), prep_steps=int(env.prep_steps),
                 reward=np.asarray(env.last_reward[e])[ax].copy(), seen=seen[ax])


def _team_colour(team: int, default: str) -> str:
    return default if team < 0 else (HIDER if team == 1 else SEEKER)


def draw(ax, frame: Frame, extent=(-0.3, 6.3)) -> None:
    """Draw a frame on a matplotlib Axes."""
    from matplotlib import patches, transforms

    ax.clear()
    ax.set_xlim(*extent)
    ax.set_ylim(*extent)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.add_patch(patches.Rectangle((0, 0), 6, 6, color="#f4f1ea", zorder=0))
    for cx, cy, hx, hy, h in frame.walls:
        ax.add_patch(patches.Rectangle((cx - hx, cy - hy), 2 * hx, 2 * hy,
                                       color="#222222" if h > 1 else WALL, zorder=2))
    for (x, y, yaw, hx, hy), lock in zip(frame.boxes, frame.box_lock):
        rect = patches.Rectangle((x - hx, y - hy), 2 * hx, 2 * hy, zorder=3,
                                 facecolor=BOX if lock < 0 else _team_colour(lock, BOX),
                                 edgecolor="black", linewidth=2.5 if lock >= 0 else 0.8)
        rect.set_transform(transforms.Affine2D().rotate_around(x, y, yaw) + ax.transData)
        ax.add_patch(rect)
    for (x, y, yaw), lock in zip(frame.ramps, frame.ramp_lock):
        # the wedge rises towards local -y: draw the footprint and a triangle pointing uphill
        tri = patches.Polygon([(x - 0.25, y + 0.25), (x + 0.25, y + 0.25), (x, y - 0.25)], closed=True,
                              facecolor=RAMP if lock < 0 else _team_colour(lock, RAMP),
                              edgecolor="black", linewidth=2.5 if lock >= 0 else 0.8, zorder=3)
        rect = patches.Rectangle((x - 0.25, y - 0.25), 0.5, 0.5, fill=False, edgecolor="#4a7a30",
                                 linewidth=0.8, zorder=3)
        tr = transforms.Affine2D().rotate_around(x, y, yaw) + ax.transData
        tri.set_transform(tr)
        rect.set_transform(tr)
        ax.add_patch(rect)
        ax.add_patch(tri)
    for (x, y, yaw), hider, seen in zip(frame.agents, frame.hider, frame.seen):
        colour = HIDER if hider else SEEKER
        deg = np.degrees(yaw)
        ax.add_patch(patches.Wedge((x, y), CONE_R, deg - 67.5, deg + 67.5, color=colour, alpha=0.12,
                                   zorder=1))
        ax.add_patch(patches.Circle((x, y), 0.15, facecolor=colour, zorder=4,
                                    edgecolor="yellow" if (hider and seen) else "black",
                                    linewidth=2.0 if (hider and seen) else 0.8))
        ax.plot([x, x + 0.2 * np.cos(yaw)], [y, y + 0.2 * np.sin(yaw)], color="white", lw=1.2, zorder=5)
    phase = "preparation" if frame.t <= frame.prep_steps and frame.prep_steps else "seeking"
    hider_r = frame.reward[frame.hider]
    r = f"  hider reward {hider_r[0]:+.0f}" if len(hider_r) and frame.t > frame.prep_steps else ""
    ax.set_title(f"t={frame.t} {phase}{r}", fontsize=9)


def _render_rgb(frames: Sequence[Frame], size_px: int) -> List[np.ndarray]:
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    dpi = 100
    fig, ax = plt.subplots(figsize=(size_px / dpi, size_px / dpi), dpi=dpi)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.93)
    out = []
    for f in frames:
        draw(ax, f)
        fig.canvas.draw()
        out.append(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    plt.close(fig)
    return out


def write_png(frame: Frame, path: str, size_px: int = 480) -> None:
    """Write one state as a PNG."""
    from PIL import Image

    Image.fromarray(_render_rgb([frame], size_px)[0]).save(path)


def write_gif(frames: Sequence[Frame], path: str, fps: int = 8, size_px: int = 320) -> None:
    """Write an episode as an animated GIF (one shared palette keeps it small)."""
    from PIL import Image

    rgb = _render_rgb(frames, size_px)
    sample = np.concatenate(rgb[:: max(1, len(rgb) // 8)], axis=0)   # palette from several frames
    palette = Image.fromarray(sample).quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    images = [Image.fromarray(a).quantize(palette=palette, dither=Image.Dither.NONE) for a in rgb]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=int(1000 / fps), loop=0, optimize=True)
    with open(path, "wb") as f:
        f.write(buf.getvalue())
