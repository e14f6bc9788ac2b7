"""Random layouts of the two hide-and-seek variants, drawn in pure numpy (no MuJoCo).

A `Layout` is everything an episode starts from: wall segments, agents (pose, team), boxes (pose,
kind) and ramps. It is cheap to draw, so the tests check thousands of them, and the MuJoCo scene
only copies its numbers into a prebuilt model (scene.py).

Placement follows OpenAI's released code: object centres on a 30 x 30 grid of 0.2 m cells, rejection
sampling per object, and the whole layout redrawn when one placement fails.
"""
from __future__ import annotations

import dataclasses
from typing import List, Optional, Tuple

import numpy as np

FLOOR = 6.0
CELL = 0.2
GRID = 30
WALL_THICK = 0.1
INNER_WALL_H = 0.5
OUTER_WALL_H = 4.0
DOOR = 0.7
AGENT_R = 0.15
CUBE_HALF = (0.25, 0.25, 0.25)
LONG_HALF = (0.825, 0.075, 0.25)
RAMP_HALF = (0.25, 0.25, 0.25)
MIN_ROOM = 1.4
PLACE_TRIES = 40
LAYOUT_TRIES = 200

# Room of the quadrant game: OpenAI's "bottom right" quadrant (its walls lie on x = 3 and y = 3).
QUAD_ROOM = (3.0, 0.0, 6.0, 3.0)
# The floor inside the room's walls (their inner faces): the cubes' footprints lie in it, so a
# cube drawn beside a door cannot stick out through the doorway.
QUAD_ROOM_INSIDE = (QUAD_ROOM[0] + WALL_THICK / 2, QUAD_ROOM[1], QUAD_ROOM[2], QUAD_ROOM[3] - WALL_THICK / 2)


@dataclasses.dataclass
class Layout:
    """The starting state of one episode.

    walls: [W, 6] rows (cx, cy, half_x, half_y, half_z, is_outer), axis-aligned boxes on the floor.
    agent_pos: [A, 3]; agent_yaw: [A]; hider: [A] bool.
    box_pos: [B, 3]; box_yaw: [B]; box_long: [B] bool (elongated box instead of cube).
    ramp_pos: [R, 3]; ramp_yaw: [R].
    rooms: number of closed regions the interior walls make (quadrant: 2, the room and the rest).
    """

    walls: np.ndarray
    agent_pos: np.ndarray
    agent_yaw: np.ndarray
    hider: np.ndarray
    box_pos: np.ndarray
    box_yaw: np.ndarray
    box_long: np.ndarray
    ramp_pos: np.ndarray
    ramp_yaw: np.ndarray
    rooms: int = 1

    @property
    def n_agents(self) -> int:
        return len(self.agent_pos)


def box_half(long: bool, yaw: float) -> np.ndarray:
    """Half extents of a box's axis-aligned footprint (yaw is a multiple of 90 degrees at reset)."""
    hx, hy, hz = LONG_HALF if long else CUBE_HALF
    if int(round(yaw / (np.pi / 2))) % 2:
        hx, hy = hy, hx
    return np.array([hx, hy, hz])


def outer_walls() -> List[Tuple[float, ...]]:
    """The four 4 m walls just outside the 6 m floor."""
    t, h, f = WALL_THICK / 2, OUTER_WALL_H / 2, FLOOR / 2
    return [(f, -t, f + 2 * t, t, h, 1.0), (f, FLOOR + t, f + 2 * t, t, h, 1.0),
            (-t, f, t, f + 2 * t, h, 1.0), (FLOOR + t, f, t, f + 2 * t, h, 1.0)]


def wall_with_door(axis: int, line: float, lo: float, hi: float,
                   door: Optional[float]) -> List[Tuple[float, ...]]:
    """Segments of an interior wall on `line` (x = line for axis 0, y = line for axis 1) from lo to
    hi along the other axis, with a door of width DOOR centred at `door` (None: no door)."""
    spans = [(lo, hi)] if door is None else [(lo, door - DOOR / 2), (door + DOOR / 2, hi)]
    out = []
    for a, b in spans:
        if b - a < 1e-6:
            continue
        mid, half = (a + b) / 2, (b - a) / 2
        if axis == 0:
            out.append((line, mid, WALL_THICK / 2, half, INNER_WALL_H / 2, 0.0))
        else:
            out.append((mid, line, half, WALL_THICK / 2, INNER_WALL_H / 2, 0.0))
    return out


def _door_centre(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A door centre on the 0.1 m lattice, at least 0.1 m of wall left on each side."""
    a, b = lo + DOOR / 2 + 0.1, hi - DOOR / 2 - 0.1
    steps = int(np.floor((b - a) / 0.1 + 1e-9))
    return a + 0.1 * int(rng.integers(0, steps + 1))


def quadrant_walls(rng: np.random.Generator) -> List[Tuple[float, ...]]:
    """Outer walls plus the 3 m room's two walls, each with a door; with probability 0.5 one of the
    two walls (chosen at random) has none."""
    x0, y0, x1, y1 = QUAD_ROOM
    doors = [_door_centre(rng, y0, y1), _door_centre(rng, x0, x1)]
    if rng.random() < 0.5:
        doors[int(rng.integers(0, 2))] = None
    return (outer_walls() + wall_with_door(0, x0, y0, y1, doors[0])
            + wall_with_door(1, y1, x0, x1, doors[1]))


def random_room_walls(rng: np.random.Generator, n_rooms: int, outer: bool
                      ) -> Optional[List[Tuple[float, ...]]]:
    """Split the floor into `n_rooms` rectangles by recursive splits on 0.2 m grid lines; each
    split wall gets one door, and no later wall may end inside an earlier door. None on failure."""
    rooms = [(0.0, 0.0, FLOOR, FLOOR)]
    doors: List[Tuple[int, float, float, float]] = []   # (axis of wall, line, lo, hi)
    walls = outer_walls() if outer else []
    for _ in range(n_rooms - 1):
        options = []
        for k, (x0, y0, x1, y1) in enumerate(rooms):
            for axis, (a, b, lo, hi) in enumerate(((x0, x1, y0, y1), (y0, y1, x0, x1))):
                for i in range(int(round((a + MIN_ROOM) / CELL)), int(round((b - MIN_ROOM) / CELL)) + 1):
                    c = i * CELL
                    if not _blocks_door(doors, axis, c, lo, hi):
                        options.append((k, axis, c))
        if not options:
            return None
        k, axis, c = options[int(rng.integers(0, len(options)))]
        x0, y0, x1, y1 = rooms.pop(k)
        lo, hi = (y0, y1) if axis == 0 else (x0, x1)
        d = _door_centre(rng, lo, hi)
        doors.append((axis, c, d - DOOR / 2, d + DOOR / 2))
        walls += wall_with_door(axis, c, lo, hi, d)
        rooms += ([(x0, y0, c, y1), (c, y0, x1, y1)] if axis == 0 else [(x0, y0, x1, c), (x0, c, x1, y1)])
    return walls


def _blocks_door(doors, axis: int, c: float, lo: float, hi: float) -> bool:
    """Whether a wall at coordinate c along `axis` (spanning lo..hi) would end inside a door of a
    perpendicular wall lying on lo or hi."""
    for d_axis, line, a, b in doors:
        if d_axis != axis and (abs(line - lo) < 1e-6 or abs(line - hi) < 1e-6) and a - 0.2 <= c <= b + 0.2:
            return True
    return False


class _Placer:
    """Rejection sampling of axis-aligned footprints on the grid, against walls and earlier objects."""

    def __init__(self, rng: np.random.Generator, walls: np.ndarray):
        self.rng = rng
        self.boxes = [(w[0], w[1], w[2], w[3]) for w in walls]

    def free(self, cx: float, cy: float, hx: float, hy: float) -> bool:
        if cx - hx < 0 or cy - hy < 0 or cx + hx > FLOOR or cy + hy > FLOOR:
            return False
        for bx, by, bhx, bhy in self.boxes:
            if abs(cx - bx) < hx + bhx + 0.01 and abs(cy - by) < hy + bhy + 0.01:
                return False
        return True

    def place(self, hx: float, hy: float, region=(0.0, 0.0, FLOOR, FLOOR), near=None,
              exclude=None) -> Optional[Tuple[float, float]]:
        """A free grid-cell centre for a footprint of half extents (hx, hy) wholly inside `region`
        (centres drawn over the region's cells, footprints reaching out of it rejected), within
        0.5 m of `near` if given (then `region` is not used), outside the rectangle `exclude` if
        given."""
        x0, y0, x1, y1 = region
        for _ in range(PLACE_TRIES):
            if near is None:
                i = self.rng.integers(int(round(x0 / CELL)), int(round(x1 / CELL)))
                j = self.rng.integers(int(round(y0 / CELL)), int(round(y1 / CELL)))
                cx, cy = (i + 0.5) * CELL, (j + 0.5) * CELL
                if (cx - hx < x0 - 1e-9 or cx + hx > x1 + 1e-9 or cy - hy < y0 - 1e-9
                        or cy + hy > y1 + 1e-9):
                    continue
            else:
                off = self.rng.integers(-2, 3, size=2) * CELL
                cx, cy = near[0] + off[0], near[1] + off[1]
                if np.hypot(*off) > 0.5 + 1e-9:
                    continue
            if exclude is not None and (exclude[0] - hx < cx < exclude[2] + hx
                                        and exclude[1] - hy < cy < exclude[3] + hy):
                continue
            if self.free(cx, cy, hx, hy):
                self.boxes.append((cx, cy, hx, hy))
                return cx, cy
        return None


def _place_all(rng, walls, n_hiders, n_seekers, box_long, n_ramps, variant) -> Optional[Layout]:
    """Place agents, boxes and ramps for one wall layout; None when a placement fails."""
    walls = np.asarray(walls, dtype=np.float64).reshape(-1, 6)
    placer = _Placer(rng, walls)
    box_pos, box_yaw = [], []
    box_region = QUAD_ROOM_INSIDE if variant == "quadrant" else (0.0, 0.0, FLOOR, FLOOR)
    for long in box_long:
        yaw = float(rng.integers(0, 2)) * np.pi / 2 if long else 0.0
        h = box_half(long, yaw)
        p = placer.place(h[0], h[1], region=box_region)
        if p is None:
            return None
        box_pos.append((p[0], p[1], h[2]))
        box_yaw.append(yaw)
    ramp_pos, ramp_yaw = [], []
    for _ in range(n_ramps):
        p = placer.place(RAMP_HALF[0], RAMP_HALF[1])
        if p is None:
            return None
        ramp_pos.append((p[0], p[1], RAMP_HALF[2]))
        ramp_yaw.append(float(rng.integers(0, 4)) * np.pi / 2)
    agent_pos = []
    for team, n in ((True, n_hiders), (False, n_seekers)):
        first = None
        for k in range(n):
            exclude = QUAD_ROOM if (variant == "quadrant" and not team) else None
            near = first if (variant == "full" and k > 0) else None
            p = placer.place(AGENT_R, AGENT_R, near=near, exclude=exclude)
            if p is None:
                return None
            first = first or p
            agent_pos.append((p[0], p[1], AGENT_R))
    n_agents = n_hiders + n_seekers
    return Layout(
        walls=walls,
        agent_pos=np.array(agent_pos, dtype=np.float64).reshape(n_agents, 3),
        agent_yaw=rng.uniform(-np.pi, np.pi, size=n_agents),
        hider=np.array([True] * n_hiders + [False] * n_seekers),
        box_pos=np.array(box_pos, dtype=np.float64).reshape(len(box_long), 3),
        box_yaw=np.array(box_yaw, dtype=np.float64),
        box_long=np.asarray(box_long, dtype=bool),
        ramp_pos=np.array(ramp_pos, dtype=np.float64).reshape(n_ramps, 3),
        ramp_yaw=np.array(ramp_yaw, dtype=np.float64),
    )


def quadrant_layout(rng: np.random.Generator) -> Layout:
    """2 hiders anywhere, 2 seekers outside the room, 2 cubes inside it, 1 ramp anywhere."""
    for _ in range(LAYOUT_TRIES):
        layout = _place_all(rng, quadrant_walls(rng), 2, 2, [False, False], 1, "quadrant")
        if layout is not None:
            layout.rooms = 2
            return layout
    raise RuntimeError("could not place a quadrant layout")


def full_layout(rng: np.random.Generator) -> Layout:
    """1-4 random rooms, outer walls with probability 0.5, 1-3 hiders and 1-3 seekers (teammates
    within 0.5 m of each other), 3-9 boxes of which at least 3 elongated, 2 ramps."""
    for _ in range(LAYOUT_TRIES):
        n_rooms = int(rng.integers(1, 5))
        walls = random_room_walls(rng, n_rooms, outer=bool(rng.random() < 0.5))
        if walls is None:
            continue
        n_hiders, n_seekers = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        n_boxes = int(rng.integers(3, 10))
        n_long = int(rng.integers(3, n_boxes + 1))
        long = [True] * n_long + [False] * (n_boxes - n_long)
        layout = _place_all(rng, walls, n_hiders, n_seekers, long, 2, "full")
        if layout is not None:
            layout.rooms = n_rooms
            return layout
    raise RuntimeError("could not place a full-game layout")


def draw_layout(variant: str, rng: np.random.Generator) -> Layout:
    """The layout generator of one variant."""
    if variant == "quadrant":
        return quadrant_layout(rng)
    if variant == "full":
        return full_layout(rng)
    raise ValueError(f"unknown hide-and-seek variant {variant!r}; expected 'quadrant' or 'full'")
