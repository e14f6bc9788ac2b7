"""Hide-and-seek matchups: a checkpoint's teams against themselves or against random-action opponents.

Matchups (which team plays the checkpoint; the other plays uniformly random actions):
`self` (both teams), `seekers` (trained seekers v random hiders), `hiders` (trained hiders v
random seekers), `random` (both random: the baseline). Each gives the mean over K episodes of
the env's per-episode statistics (`hider_seen_frac` is over the rewarded steps, as in training).
With every matchup played, the result also holds `learning_check`:

    seekers_gain = hider_seen_frac(seekers) - hider_seen_frac(random)   (issue 5 asks >= 0.15)
    hiders_gain  = hider_seen_frac(random) - hider_seen_frac(hiders)    (issue 5 asks >= 0.15)

Episodes MuJoCo flagged unstable are counted and left out of the means. The JAX game (`hns_jax/`, a
fused run's checkpoint) plays each round of games as one jitted `scan` (`play_jax`). The command is
`srljax-evaluate` (`srljax.evaluate`); any other env plays through `srljax.playback`.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

from srljax.errors import UserError

MATCHUPS = ("self", "seekers", "hiders", "random")
STATS = ("hider_seen_frac", "hider_return", "seeker_return", "max_box_move_prep", "max_box_move",
         "max_ramp_move_prep", "max_ramp_move", "num_box_lock_prep", "num_box_lock", "num_ramp_lock_prep",
         "num_ramp_lock", "length")


def example_batch(env, state_size: int, chunk_len: int) -> Dict[str, np.ndarray]:
    """Zeros shaped like a one-env, one-chunk sample of this multi-agent env (what `algo.init` needs):
    the posted-sample example distributed mode builds (`dataflow.roles.policy.example_batch`)."""
    from srljax.dataflow.roles.multiagent import ObsPacker
    from srljax.dataflow.roles.policy import example_batch as posted_example
    from srljax.dataflow.wire.schema import BatchSpec
    packer = ObsPacker(env.observation_space)
    spec = BatchSpec(chunk_len, 1, (env.num_agents, packer.size), env.action_space, agents=env.num_agents,
                     state_size=state_size, chunk_len=chunk_len)
    return posted_example(spec, packer)


def load_policy(cfg, env, checkpoint: Optional[Path]):
    """(algo, policy params): from a checkpoint's `learner` entry, or freshly initialised when None."""
    import jax
    from srljax.checkpoint import Checkpointer, into
    from srljax.learners import make_algorithm

    algo = make_algorithm(cfg, env.observation_space, env.action_space)
    if not getattr(algo.model, "recurrent", False):
        raise UserError(f"config {cfg.name!r} does not use the hide-and-seek entity network")
    example = example_batch(env, algo.model.state_size, 1)
    key = jax.random.PRNGKey(cfg.seed)
    if checkpoint is None:
        return algo, algo.policy_params(jax.jit(algo.init)(key, example))
    shapes = jax.eval_shape(lambda k: algo.policy_params(algo.init(k, example)), key)
    template = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
    if not checkpoint.is_file():
        raise UserError(f"no checkpoint at {checkpoint}")
    state, _ = Checkpointer(checkpoint.parent.parent).restore(checkpoint)
    if "learner" not in state:
        raise UserError(f"checkpoint {checkpoint} holds no learner state")
    saved = state["learner"]
    fields = {k: saved.get(k) for k in ("params", "obs_norm", "value_norm")}
    return algo, into(template, fields, f"checkpoint {checkpoint}")


def make_act(algo, greedy: bool):
    """The jitted policy step for every agent column: (policy, obs, state, first, key) -> (action, state)."""
    import jax

    def act(policy, obs, state, first, key):
        if not greedy:
            action, _, _, state = algo.act_step(policy, obs, state, first, key, value=False)
            return action, state
        out, _, state = algo.model.step(policy.params, algo._norm(policy.obs_norm, obs), state, first, value=False)
        return algo.model.dist.mode(out), state

    return jax.jit(act)


class Player:
    """The checkpoint's policy for every agent slot of E envs, with its recurrent state."""

    def __init__(self, act, algo, policy, num_columns: int, seed: int):
        import jax
        self.act, self.policy = act, policy
        self.state = algo.initial_state(num_columns)
        self.key = jax.random.PRNGKey(seed)

    def __call__(self, obs: Dict[str, np.ndarray], first: np.ndarray) -> np.ndarray:
        import jax
        E, A = first.shape
        flat = {k: v.reshape((E * A,) + v.shape[2:]) for k, v in obs.items()}
        self.key, k = jax.random.split(self.key)
        action, self.state = self.act(self.policy, flat, self.state, first.reshape(-1).astype(np.float32), k)
        return np.asarray(action).reshape(E, A, -1)


def play(cfg, algo, policy, act, matchup: str, episodes: int, num_envs: int, seed: int,
         gif: Optional[str] = None) -> Dict[str, float]:
    """Mean statistics over the first `episodes` stable episodes of `num_envs` games in lockstep."""
    from srljax.envs.registry import make as make_env

    env = make_env(cfg.env.id, num_envs=num_envs, seed=seed, **dict(cfg.env.kwargs))
    rng = np.random.default_rng(seed)
    nvec = np.array(env.action_space.nvec)
    player = Player(act, algo, policy, num_envs * env.num_agents, seed) if matchup != "random" else None
    frames, recording = [], gif is not None
    if recording:
        from srljax.envs.hide_and_seek.render import snapshot, write_gif
    obs = env.reset(seed)
    first = np.ones((num_envs, env.num_agents), bool)
    done: List[dict] = []
    unstable = steps = 0
    sim_s = 0.0
    if recording:
        frames.append(snapshot(env, 0))
    while len(done) < episodes:
        actions = rng.integers(0, nvec, size=(num_envs, env.num_agents, len(nvec)))
        if player is not None:
            trained = {"self": env.agent_exists, "seekers": ~env.hider, "hiders": env.hider}[matchup]
            actions = np.where(trained[..., None], player(obs, first), actions)
        t0 = time.thread_time()
        obs, _, terminated, truncated, info = env.step(actions)
        sim_s += time.thread_time() - t0
        steps += num_envs
        ended = terminated | truncated
        first = np.repeat(ended[:, None], env.num_agents, axis=1)
        for ep in info["episodes"]:
            if ep.get("unstable"):
                unstable += 1
            elif len(done) < episodes:
                done.append(ep)
        if recording:
            if ended[0]:
                write_gif(frames, gif)
                recording = False
            else:
                frames.append(snapshot(env, 0))
    if recording:
        write_gif(frames, gif)
    env.close()
    out = {k: float(np.mean([ep[k] for ep in done])) for k in STATS if k in done[0]}
    # The simulator's own cost under this matchup's behaviour (CPU time inside env.step): trained
    # agents move boxes and collide more than random ones, and the physics costs more per step.
    out.update(episodes=len(done), unstable_episodes=unstable, sim_steps_per_cpu_s=steps / max(sim_s, 1e-9))
    return out


def record_actions(cfg, algo, policy, act, num_envs: int, steps: int, seed: int) -> np.ndarray:
    """The checkpoint's own actions in self-play for `steps` steps of `num_envs` games: [steps, E, A, 5]."""
    from srljax.envs.registry import make as make_env

    env = make_env(cfg.env.id, num_envs=num_envs, seed=seed, **dict(cfg.env.kwargs))
    player = Player(act, algo, policy, num_envs * env.num_agents, seed)
    obs = env.reset(seed)
    first = np.ones((num_envs, env.num_agents), bool)
    out = np.zeros((steps, num_envs, env.num_agents, len(env.action_space.nvec)), np.int8)
    for t in range(steps):
        out[t] = player(obs, first)
        obs, _, terminated, truncated, _ = env.step(out[t])
        first = np.repeat((terminated | truncated)[:, None], env.num_agents, axis=1)
    env.close()
    return out


def play_jax(episode, policy, matchup: str, episodes: int, num_envs: int, seed: int,
             gif: Optional[str] = None) -> Dict[str, float]:
    """The JAX game's matchup (`hns_jax/`): rounds of `num_envs` games, each round one whole episode
    in one jitted `scan`; `episode` is `_jax_episode`'s (env, program), one for every matchup (the
    matchup is an argument); mean statistics over the first `episodes` games. The random team is
    drawn here (the run's `random_opponents` is not applied), so every matchup plays the same layouts."""
    import jax
    import jax.numpy as jnp

    env, run = episode
    from srljax.envs.hns_jax.game import STAT_KEYS
    got: Dict[str, List[np.ndarray]] = {k: [] for k in STAT_KEYS}
    t0 = time.perf_counter()
    for r in range(-(-episodes // num_envs)):
        stats, first, shown = run(policy, jax.random.fold_in(jax.random.PRNGKey(seed), r),
                                  jnp.int32(MATCHUPS.index(matchup)))
        for k in STAT_KEYS:
            got[k].append(np.asarray(stats[k]))
        if gif and r == 0:
            from srljax.envs.hns_jax.render import frame, write_gif
            steps = [first] + [jax.tree.map(lambda x, t=t: np.asarray(x)[t], shown) for t in range(env.horizon)]
            write_gif([frame(g, obs, env.prep_steps, reward) for g, obs, reward in steps], gif)
    out = {k: float(np.mean(np.concatenate(v)[:episodes])) for k, v in got.items()}
    out.update(length=float(env.horizon), episodes=episodes, unstable_episodes=0, wall_s=time.perf_counter() - t0)
    return out


def _jax_episode(cfg, algo, act, E: int, record: bool):
    """(env, jitted (policy, key, matchup index) -> (statistics [E] per key, env 0's first state,
    env 0's states after each step)); the states only when `record`."""
    import jax
    import jax.numpy as jnp

    from srljax.envs.hns_jax import HideAndSeekJax
    from srljax.envs.hns_jax.game import STAT_KEYS

    kwargs = {k: v for k, v in dict(cfg.env.kwargs).items() if k != "random_opponents"}
    env = HideAndSeekJax(cfg.env.id.split("/", 1)[1], **kwargs)
    A, nvec = env.num_agents, jnp.asarray(env.action_space.nvec)
    cols = lambda x: x.reshape((E * A,) + x.shape[2:])      # noqa: E731
    one = lambda s: jax.tree.map(lambda x: x[0], (s.inner, s.obs, s.reward)) if record else None   # noqa: E731

    def episode(policy, key, which):
        k_reset, k_run = jax.random.split(key)
        start = jax.vmap(env.reset)(jax.random.split(k_reset, E))

        def step(carry, k):
            state, h, first = carry
            k_act, k_rand = jax.random.split(k)
            g = state.inner
            trained_action, h = act(policy, jax.tree.map(cols, state.obs), h, first, k_act)
            # MATCHUPS' order: self, seekers, hiders, random
            trained = jnp.stack([g.world.agent_on, ~g.hider, g.hider, jnp.zeros_like(g.hider)])[which]
            action = jax.random.randint(k_rand, (E, A, len(env.action_space.nvec)), 0, nvec)
            action = jnp.where(trained[..., None], trained_action.reshape(E, A, -1), action)
            nxt = jax.vmap(env.step)(state, action)
            return (nxt, h, jnp.zeros_like(first)), one(nxt)

        carry = (start, algo.initial_state(E * A), jnp.ones((E * A,), jnp.float32))
        (last, _, _), shown = jax.lax.scan(step, carry, jax.random.split(k_run, env.horizon))
        return {k: last.metrics["episode_stat_" + k] for k in STAT_KEYS}, one(start), shown

    return env, jax.jit(episode)


def _jax_policy(cfg, args, checkpoint: Optional[Path]):
    """(algo, policy) of a fused hide-and-seek run's checkpoint (a population's: --member), or fresh."""
    if checkpoint is None:
        from srljax.envs.registry import make as make_env
        return load_policy(cfg, make_env(cfg.env.id, num_envs=1, **dict(cfg.env.kwargs)), None)
    if not checkpoint.is_file():
        raise UserError(f"no checkpoint at {checkpoint}")
    from srljax.playback import load_policy as load_fused
    from srljax.playback import pick_member
    return load_fused(cfg, checkpoint, pick_member(cfg, checkpoint.parent.parent, getattr(args, "member", None)))


def evaluate_matchups(cfg, args, checkpoint: Optional[Path]) -> dict:
    """`srljax-evaluate` on a hide-and-seek run (`args`: its parsed flags), the MuJoCo game's (`hns/`)
    or the JAX game's (`hns_jax/`): every matchup asked for, and --sim-alone (MuJoCo only). Bad input
    is a UserError before anything is played. `checkpoint` None: fresh weights."""
    if args.episodes < 1 or args.num_envs < 1:
        raise UserError("--episodes and --num-envs must be >= 1")
    if args.sim_alone < 0 or args.sim_steps < 1:
        raise UserError("--sim-alone must be >= 0 and --sim-steps >= 1")
    jax_game = cfg.env.id.startswith("hns_jax/")
    if jax_game and args.sim_alone:
        raise UserError("--sim-alone times the MuJoCo game's simulator; the JAX game's own throughput: "
                        "python scripts/bench_envs.py --sections hns_jax")
    if jax_game:
        algo, policy = _jax_policy(cfg, args, checkpoint)
    else:
        from srljax.envs.registry import make as make_env
        probe = make_env(cfg.env.id, num_envs=1, seed=0, **dict(cfg.env.kwargs))
        try:
            algo, policy = load_policy(cfg, probe, checkpoint)
            nvec = np.array(probe.action_space.nvec)
        finally:
            probe.close()
    matchups = MATCHUPS if args.matchup == "all" else (args.matchup,)
    result = {"checkpoint": None if checkpoint is None else str(checkpoint), "env": cfg.env.id,
              "episodes_per_matchup": args.episodes, "greedy": args.greedy, "matchups": {}}
    act = make_act(algo, args.greedy)
    episode = _jax_episode(cfg, algo, act, args.num_envs, bool(args.gif)) if jax_game else None
    for i, m in enumerate(matchups):
        # the same seed for every matchup: the same layouts, a paired comparison
        gif = args.gif if i == 0 else None
        result["matchups"][m] = (play_jax(episode, policy, m, args.episodes, args.num_envs, args.seed, gif)
                                 if jax_game else
                                 play(cfg, algo, policy, act, m, args.episodes, args.num_envs, args.seed, gif))
    got = result["matchups"]
    if {"seekers", "hiders", "random"} <= set(got):
        base = got["random"]["hider_seen_frac"]
        result["learning_check"] = {"seekers_gain": got["seekers"]["hider_seen_frac"] - base,
                                    "hiders_gain": base - got["hiders"]["hider_seen_frac"], "required": 0.15}
    if args.sim_alone:
        from srljax.envs.recorded_actions import simulator_alone
        E = cfg.env.num_envs // cfg.distributed.ring_size      # the games an actor steps at once
        trained = record_actions(cfg, algo, policy, act, E, args.sim_steps, args.seed)
        rng = np.random.default_rng(args.seed)
        random = rng.integers(0, nvec, size=trained.shape).astype(np.int8)
        result["simulator_alone"] = {
            "processes": args.sim_alone, "games_per_process": E, "steps_per_process": args.sim_steps,
            "env_steps_per_s_trained_actions": simulator_alone(cfg.env.id, dict(cfg.env.kwargs), trained,
                                                               args.sim_alone, args.seed),
            "env_steps_per_s_random_actions": simulator_alone(cfg.env.id, dict(cfg.env.kwargs), random,
                                                              args.sim_alone, args.seed)}
    return result
