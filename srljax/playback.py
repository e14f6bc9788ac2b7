"""Evaluate any run (`srljax-evaluate --run-dir R`): play its latest checkpoint, report returns, write a GIF.

Works for every env family but hide-and-seek (which `srljax.matchup` plays in matchups): JAX envs
(gymnax/, brax/) are stepped in a jitted loop, CPU envs (gym/, pz/) in numpy. A rollout algorithm's
policy (PPO, V-trace) samples its actions as in training; a replay algorithm's (DQN, SAC) acts
greedily, without exploration: DQN argmax Q, SAC the tanh-squashed mean action (the learner's
`greedy`). `--video out.gif` draws env 0's first episode: gymnasium and PettingZoo
envs through their own `render()` (rgb_array), brax envs through brax's own renderer
(`brax.io.image`: MuJoCo's OpenGL renderer, offline through EGL), and CartPole, Acrobot and Pendulum
(gymnax or gymnasium) with a built-in drawing where gymnasium's renderer (pygame) is not installed,
JaxMARL's MPE envs by the adapter's own drawing of the entities (`JaxMARLEnv.draw`);
other envs are one clear line.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from srljax.envs.spaces import zeros
from srljax.errors import UserError

DRAWN = ("CartPole-v1", "Acrobot-v1", "Pendulum-v1")


def _short(env_id: str) -> str:
    return env_id.split("/", 1)[-1].split(":")[-1]


def check_video(env_id: str) -> None:
    """Refuse before playing what cannot be drawn."""
    family = env_id.split("/", 1)[0]
    if family in ("gym", "brax", "pz") or _short(env_id) in DRAWN or (family == "jaxmarl" and
                                                                      _short(env_id).startswith("MPE_")):
        if family == "brax":            # MuJoCo picks its OpenGL backend when imported: offline, EGL
            os.environ.setdefault("MUJOCO_GL", "egl")
        return
    raise UserError(f"{env_id} cannot be rendered to a video here (gym/, brax/ and pz/ envs, JaxMARL's MPE_* "
                    "and CartPole-v1 / Acrobot-v1 / Pendulum-v1 can)")


class Greedy:
    """A replay algorithm's evaluation policy behind the rollout algorithms' `act(params, obs, key)`:
    the learner's `greedy(params, obs)` (DQN argmax Q, SAC the squashed mean action), no exploration."""

    def __init__(self, algo):
        self.algo = algo

    def act(self, params, obs, key):
        return self.algo.greedy(params, obs), None, None


def acting(algo):
    """(`start(n)`, `act(policy, memory, obs, key) -> (action, memory)`, `ended(memory, flags)`):
    how a policy acts on n envs, carrying a recurrent policy's state (`memory`: its carry and the
    `first` flags, which `ended` sets where an episode just ended; a feedforward policy's is ())."""
    import jax.numpy as jnp

    recurrent = getattr(getattr(algo, "model", None), "recurrent", False)

    def start(n):
        return (algo.initial_state(n), jnp.ones((n,), jnp.float32)) if recurrent else ()

    def act(policy, memory, obs, key):
        if not recurrent:
            return algo.act(policy, obs, key)[0], memory
        h, first = memory
        action, _, _, h = algo.act_step(policy, obs, h, first, key, value=False)
        return action, (h, first)

    def ended(memory, flags):
        return (memory[0], jnp.asarray(flags, jnp.float32)) if recurrent else memory

    return start, act, ended


def pick_member(cfg, run_dir: Optional[Path], member: Optional[int]) -> Optional[int]:
    """The member a population run plays: `member`, else the summary's `best_member`, else 0; None
    for a single run (where `member` is refused)."""
    from srljax.dataflow.fused.population import population_size
    n = population_size(cfg) if cfg.mode == "fused" else 0
    if not n:
        if member is not None:
            raise UserError(f"--member {member}: this run trained one seed, not a population")
        return None
    if member is None:
        from srljax.runlog import read_json_if_exists
        summary = read_json_if_exists(Path(run_dir) / "summary.json") if run_dir is not None else None
        member = int((summary or {}).get("best_member", 0))
    if not 0 <= member < n:
        raise UserError(f"--member {member}: the run's population has members 0..{n - 1}")
    return member


def _member_state(cfg, state: dict, member: Optional[int]) -> dict:
    """A fused checkpoint's state with the population's member axis (after the device axis) taken at `member`."""
    if member is None or "learner" not in state:
        return state
    import jax
    return {**state, "learner": jax.tree.map(lambda x: np.asarray(x)[:, member], state["learner"])}


def _replay_params(algo, env, learner: dict, checkpoint: Path):
    """The online parameters of a replay learner's checkpointed state, checked against this config's
    network (fused checkpoints carry a leading device axis since session 6: replica 0 is taken;
    distributed ones, and fused ones written before, have none)."""
    import jax

    from srljax.checkpoint import into
    if "params" not in learner:
        raise UserError(f"checkpoint {checkpoint} holds no replay learner parameters")
    obs = zeros(env.observation_space, (1,))
    shapes = jax.eval_shape(algo.init, jax.random.PRNGKey(0), obs).params
    template = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    params = learner["params"]
    if np.ndim(learner.get("updates", 0)) == 1:          # [devices]
        params = jax.tree.map(lambda x: np.asarray(x)[0], params)
    return into(template, params, "checkpointed learner")


def load_policy(cfg, checkpoint: Path, member: Optional[int] = None):
    """(algo, policy params) of a fused or distributed checkpoint; a replay algorithm comes back
    as its `Greedy` policy. A population's checkpoint (`seeds`): member `member` (`pick_member`)."""
    import jax

    from srljax.checkpoint import Checkpointer, into
    from srljax.envs.registry import make, make_vector
    from srljax.learners import make_algorithm, registry

    jax_env = cfg.mode == "fused"
    env = (make if jax_env else make_vector)(cfg.env.id, num_envs=1, seed=0, **dict(cfg.env.kwargs))
    algo = make_algorithm(cfg, env.observation_space, env.action_space)
    if registry.for_config(cfg).learns_from == "replay":
        state = _member_state(cfg, Checkpointer(checkpoint.parent.parent).restore(checkpoint)[0], member)
        params = _replay_params(algo, env, state.get("learner") or {}, checkpoint)
        if not jax_env:
            env.close()
        return Greedy(algo), params
    act_shape = tuple(env.action_space.shape)
    discrete = not hasattr(env.action_space, "low")
    obs = zeros(env.observation_space, (1, 1))
    flat = np.zeros((1, 1), np.float32)
    example = {"obs": obs, "final_obs": obs, "logp": flat, "reward": flat, "terminated": flat,
               "truncated": flat, "action": np.zeros((1, 1) + act_shape, np.int32 if discrete else np.float32)}
    template = algo.init(jax.random.PRNGKey(0), example)
    state = _member_state(cfg, Checkpointer(checkpoint.parent.parent).restore(checkpoint)[0], member)
    if "learner" not in state:
        raise UserError(f"checkpoint {checkpoint} holds no learner state")
    learner = state["learner"]
    if jax_env:                                  # fused checkpoints carry a leading device axis
        learner = jax.tree.map(lambda x: np.asarray(x)[0], learner)
    learner = into(template, learner, "checkpointed learner")
    if not jax_env:
        env.close()
    return algo, algo.policy_params(learner)


def play_jax(cfg, algo, policy, episodes: int, seed: int, record: bool):
    """Returns of the first episode of each of `episodes` envs; env 0's observations if `record`."""
    import jax

    from srljax.envs.registry import make
    env = make(cfg.env.id, num_envs=episodes, **dict(cfg.env.kwargs))
    start, act, ended = acting(algo)
    adapter, inner_of = _adapter_state(env)
    pictured = record and getattr(adapter, "drawable", False)   # frames drawn by the adapter (MPE)

    @jax.jit
    def step(carry, key):
        state, memory = carry
        action, memory = act(policy, memory, state.obs, key)
        nxt = env.step(state, action)
        memory = ended(memory, nxt.metrics["episode_ended"])
        seen = inner_of(state.inner) if pictured else state.obs
        return (nxt, memory), (jax.tree.map(lambda x: x[0], seen), nxt.metrics["episode_return"],
                               nxt.metrics["episode_ended"])

    state = (env.reset(jax.random.PRNGKey(seed)), start(episodes))
    key = jax.random.PRNGKey(seed + 1)
    returns = np.full(episodes, np.nan)
    frames: List[np.ndarray] = []
    for t in range(100_000):
        key, k = jax.random.split(key)
        state, (obs0, ret, over) = step(state, k)
        ret, over = np.asarray(ret), np.asarray(over) > 0
        if record and np.isnan(returns[0]):
            frames.append(adapter.draw(obs0) if pictured else np.asarray(obs0))
        returns = np.where(np.isnan(returns) & over, ret, returns)
        if not np.isnan(returns).any():
            break
    return returns, frames


def _adapter_state(env):
    """(the adapter under a training stack's wrappers, a function from the stack's `state.inner` to
    the adapter's own: `EpisodeStats` and `AutoReset` nest theirs as (inner, extra))."""
    from srljax.envs.core import AutoReset, EpisodeStats, Wrapper
    nested = 0
    while isinstance(env, Wrapper):
        nested += isinstance(env, (AutoReset, EpisodeStats))
        env = env.env

    def inner_of(inner):
        for _ in range(nested):
            inner = inner[0]
        return inner

    return env, inner_of


def play_cpu(cfg, algo, policy, episodes: int, seed: int):
    import jax

    from srljax.envs.registry import make_vector
    env = make_vector(cfg.env.id, num_envs=episodes, seed=seed, **dict(cfg.env.kwargs))
    act = jax.jit(lambda p, o, k: algo.act(p, o, k)[0])
    obs, key = env.reset(seed), jax.random.PRNGKey(seed + 1)
    done = np.zeros(episodes, bool)
    first = np.full(episodes, np.nan)
    while not done.all():
        key, k = jax.random.split(key)
        obs, _, term, trunc, info = env.step(np.asarray(act(policy, obs, k)))
        ended = np.flatnonzero(np.asarray(term) | np.asarray(trunc))
        for i, ep in zip(ended, info["episodes"]):
            if not done[i]:
                first[i], done[i] = ep["return"], True
    env.close()
    return first


def gym_frames(cfg, algo, policy, seed: int):
    """One episode of a gymnasium env with the policy: rgb frames, or observations to draw."""
    import gymnasium
    import jax

    from srljax.envs import gymnasium_adapter as ga
    env_id = _short(cfg.env.id)
    ga.register_id(cfg.env.id)                          # registers "module:Id" envs, checks the id
    try:
        env = gymnasium.make(env_id, render_mode="rgb_array", **dict(cfg.env.kwargs))
        env.reset(seed=seed)
        env.render()
        drawn = False
    except (gymnasium.error.DependencyNotInstalled, ImportError):
        if env_id not in DRAWN:
            raise UserError(f"{cfg.env.id} renders with pygame, which is not installed "
                            "(pip install pygame)") from None
        env, drawn = gymnasium.make(env_id, **dict(cfg.env.kwargs)), True
    obs, _ = env.reset(seed=seed)
    key, frames = jax.random.PRNGKey(seed), []
    act = jax.jit(lambda p, o, k: algo.act(p, o, k)[0])
    for _ in range(10_000):
        frames.append(np.asarray(obs, np.float32) if drawn else env.render())
        key, k = jax.random.split(key)
        a = np.asarray(act(policy, np.asarray(obs, np.float32)[None], k))[0]
        obs, _, term, trunc, _ = env.step(a.item() if a.ndim == 0 else a)
        if term or trunc:
            break
    env.close()
    return frames, drawn


def pz_frames(cfg, algo, policy, seed: int) -> List[np.ndarray]:
    """One episode of a PettingZoo env with the policy, drawn by the env's own render() (rgb_array)."""
    import jax

    from srljax.envs.registry import make_vector
    env = make_vector(cfg.env.id, num_envs=1, seed=seed, **{**dict(cfg.env.kwargs), "render_mode": "rgb_array"})
    act = jax.jit(lambda p, o, k: algo.act(p, o, k)[0])
    obs, key, frames = env.reset(seed), jax.random.PRNGKey(seed), []
    for _ in range(10_000):
        frames.append(np.asarray(env.render()))
        key, k = jax.random.split(key)
        obs, _, term, trunc, _ = env.step(np.asarray(act(policy, obs, k)))
        if term[0] or trunc[0]:
            break
    env.close()
    return frames


def brax_frames(cfg, algo, policy, seed: int, most: int = 200) -> List[np.ndarray]:
    """One episode of a brax env with the policy, drawn by brax's renderer (at most `most` frames)."""
    import jax

    from srljax.envs.registry import make
    env = make(cfg.env.id, **dict(cfg.env.kwargs))          # one unbatched env
    start, act, _ = acting(algo)

    @jax.jit
    def step(state, memory, key):
        action, memory = act(policy, memory, state.obs[None], key)
        return env.step(state, action[0]), memory

    state, key, states = env.reset(jax.random.PRNGKey(seed)), jax.random.PRNGKey(seed + 1), []
    memory = start(1)
    for _ in range(env.episode_length):
        states.append(jax.device_get(state.inner[0].pipeline_state))
        key, k = jax.random.split(key)
        state, memory = step(state, memory, k)
        if bool(state.done) or bool(state.truncated):
            break
    try:
        from brax.io import image
        return image.render_array(env.system, states[::max(1, -(-len(states) // most))], height=240, width=320)
    except Exception as exc:             # no OpenGL context offline: MuJoCo says why in its own words
        raise UserError(f"{cfg.env.id}: brax draws with MuJoCo's OpenGL renderer, which could not start here "
                        f"(MUJOCO_GL={os.environ.get('MUJOCO_GL', 'unset')}: {type(exc).__name__}); offline it needs "
                        "EGL (libEGL, MUJOCO_GL=egl) or OSMesa (libOSMesa, MUJOCO_GL=osmesa)") from None


def draw(env_id: str, obs: np.ndarray, size: int = 200) -> np.ndarray:
    """A plain RGB picture of a CartPole or Acrobot observation."""
    img = np.full((size, 2 * size, 3), 255, np.uint8)

    def line(x0, y0, x1, y1, color, width=3):
        n = int(max(abs(x1 - x0), abs(y1 - y0))) + 1
        for t in np.linspace(0.0, 1.0, n):
            x, y = int(x0 + t * (x1 - x0)), int(y0 + t * (y1 - y0))
            img[max(0, y - width):y + width, max(0, x - width):x + width] = color

    if _short(env_id) == "CartPole-v1":
        x, theta = float(obs[0]), float(obs[2])
        cx, cy = int(size + x / 2.4 * size * 0.9), int(size * 0.75)
        img[cy - 10:cy + 10, max(0, cx - 25):cx + 25] = (40, 40, 40)
        line(cx, cy - 10, cx + 90 * np.sin(theta), cy - 10 - 90 * np.cos(theta), (204, 120, 60))
        img[cy + 10:cy + 12] = (0, 0, 0)
    elif _short(env_id) == "Pendulum-v1":         # cos, sin of the angle from upright, angular velocity
        theta = np.arctan2(obs[1], obs[0])
        line(size, size // 2, size + 80 * np.sin(theta), size // 2 - 80 * np.cos(theta), (204, 60, 60))
        img[size // 2 - 4:size // 2 + 4, size - 4:size + 4] = (0, 0, 0)
    else:                                        # Acrobot: cos/sin of both joint angles
        t1, t2 = np.arctan2(obs[1], obs[0]), np.arctan2(obs[3], obs[2])
        ox, oy = size, size // 2
        x1, y1 = ox + 45 * np.sin(t1), oy + 45 * np.cos(t1)
        line(ox, oy, x1, y1, (60, 60, 200))
        line(x1, y1, x1 + 45 * np.sin(t1 + t2), y1 + 45 * np.cos(t1 + t2), (60, 160, 60))
    return img


def write_gif(frames: List[np.ndarray], path: str, fps: int = 30) -> None:
    from PIL import Image
    images = [Image.fromarray(np.asarray(f, np.uint8)) for f in frames]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)


def play_checkpoint(cfg, checkpoint: Path, episodes: int, seed: int, video: Optional[str],
                    member: Optional[int] = None) -> Dict[str, Any]:
    """Play `episodes` with the checkpoint's policy (`member`: a population's, `pick_member`)."""
    if video:
        check_video(cfg.env.id)
    member = pick_member(cfg, checkpoint.parent.parent, member)
    algo, policy = load_policy(cfg, checkpoint, member)
    frames, drawn = [], True
    if cfg.mode == "fused":
        brax = cfg.env.id.startswith("brax/")
        returns, frames = play_jax(cfg, algo, policy, episodes, seed, record=bool(video) and not brax)
        drawn = not cfg.env.id.startswith("jaxmarl/")            # the adapter drew its frames itself
        if video and brax:
            frames, drawn = brax_frames(cfg, algo, policy, seed), False
    else:
        returns = play_cpu(cfg, algo, policy, episodes, seed)
        if video and cfg.env.id.startswith("pz/"):
            frames, drawn = pz_frames(cfg, algo, policy, seed), False
        elif video:
            frames, drawn = gym_frames(cfg, algo, policy, seed)
    out = {"env": cfg.env.id, "checkpoint": str(checkpoint), "algorithm": cfg.algorithm.name,
           **({} if member is None else {"member": member, "member_seed": cfg.seed + member}),
           "policy": "greedy" if isinstance(algo, Greedy) else "sampled", "episodes": int(episodes),
           "return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
           "return_min": float(np.min(returns)), "return_max": float(np.max(returns))}
    if video:
        images = [draw(cfg.env.id, f) for f in frames] if drawn else frames
        write_gif(images, video)
        out["video"], out["video_frames"] = video, len(images)
    return out
