"""Rendering of hide-and-seek frames (PNG and GIF) and the render script."""
import math
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from srljax.envs.hide_and_seek import Agent, Box, Scenario, act
from srljax.envs.hide_and_seek.render import snapshot, write_gif, write_png

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_snapshot_and_pictures(tmp_path):
    sc = Scenario(agents=[Agent((1.05, 1.0)), Agent((3, 3), yaw=math.pi, hider=False)], boxes=[Box((1.5, 1.0))])
    frames = [snapshot(sc.env)]
    sc.step([act(lock=True), act()])
    frames.append(snapshot(sc.env))
    assert frames[1].box_lock.tolist() == [1] and frames[1].t == 1
    assert frames[1].agents.shape == (2, 3) and len(frames[1].walls) == 4
    write_png(frames[1], str(tmp_path / "s.png"), size_px=160)
    write_gif(frames, str(tmp_path / "e.gif"), size_px=160)
    png = np.asarray(Image.open(tmp_path / "s.png").convert("RGB"))
    assert png.shape == (160, 160, 3) and len(np.unique(png.reshape(-1, 3), axis=0)) > 5
    gif = Image.open(tmp_path / "e.gif")
    assert gif.n_frames == 2


def test_render_script_writes_a_gif(tmp_path):
    out = tmp_path / "q.gif"
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "render_hns.py"), "--variant", "full",
                        "--seed", "1", "--steps", "3", "--size", "120", "--out", str(out)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert Image.open(out).n_frames == 4
    bad = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "render_hns.py"), "--out", "x.txt"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "gif or .png" in bad.stderr
