"""Environment throughput: env steps per second, JAX envs against batch size and CPU envs per core.

JAX section (`jax`): gymnax and brax envs stepped inside one jitted `lax.scan` on whatever device
JAX finds, at batch sizes from 1 to 65,536, with random actions and with a policy (an MLP
actor-critic, actions sampled) in the loop. Each env is measured twice in the same run: through
srljax's wrappers (batched, auto-reset keeping the final observation, episode statistics) and
plain (gymnax: its own `step`, with its own auto-reset, under `vmap`; brax: brax's own training
wrappers). The two are timed in alternating repeats and the ratio of medians is reported;
compile time is measured apart and excluded from steps/s.

Gymnasium section (`gym`): srljax's gymnasium vector env (CPU, numpy, one core) with random actions.

Hide-and-seek in JAX (`hns_jax`, not in the default sections): the whole JAX game (`hns_jax/`)
against the whole MuJoCo game, both per CPU second, alternating; with `--xla-threads 1` per core:

    python scripts/bench_envs.py --sections hns_jax --xla-threads 1 --num-envs 64 --repeats 3

CPU section (`cpu`): the MuJoCo hide-and-seek vector env with random actions (full rules and
observations), next to MuJoCo physics alone on the very same models and layouts (`mj_step` with 15
substeps and random controls, no rules, rays or observations), and their ratio.

    python scripts/bench_envs.py                       # all sections, short budgets (~3 min on 2 idle cores)
    python scripts/bench_envs.py --sections jax --batch-sizes 1 4 16 64 256 1024 4096 16384 65536
    python scripts/bench_envs.py --quick               # a few seconds: smoke test
    python scripts/bench_envs.py --sections cpu --variants quadrant full --num-envs 16

Writes the rows as JSON (`--out`) and a log-log plot of steps/s against batch size (`--plot`).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Dict, List  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from srljax.envs.hide_and_seek import make_vec_env  # noqa: E402
from srljax.envs.hide_and_seek.scene import SUBSTEPS, VARIANTS  # noqa: E402

NVEC = np.array([11, 11, 11, 2, 2])


def time_env(env, actions: np.ndarray) -> float:
    """Seconds to step the env through `actions` [T, E, A, 5]."""
    t0 = time.perf_counter()
    for a in actions:
        env.step(a)
    return time.perf_counter() - t0


def time_physics(env, ctrls: np.ndarray) -> float:
    """Seconds for the same number of env steps of physics alone on the env's own models."""
    pairs = list(zip(env.models, env.datas))
    step = mujoco.mj_step
    t0 = time.perf_counter()
    for c in ctrls:
        for e, (m, d) in enumerate(pairs):
            d.ctrl[:] = c[e]
            step(m, d, SUBSTEPS)
    return time.perf_counter() - t0


def bench_hns(variant: str, num_envs: int, env_steps: int, chunk: int = 400, seed: int = 0) -> Dict:
    """Env and physics-alone throughput, timed in alternating chunks of about `chunk` env steps so
    that load from other processes on a shared machine hits both alike; the ratio is of the totals."""
    env = make_vec_env(variant, num_envs=num_envs, seed=seed)
    env.reset(seed)
    rng = np.random.default_rng(seed)
    n_agents, nu = env.num_agents, env.models[0].nu
    time_env(env, rng.integers(0, NVEC, size=(10, num_envs, n_agents, 5)))      # warm up
    steps = max(1, chunk // num_envs)
    n_chunks = max(1, env_steps // (steps * num_envs))
    env_s, phys_s = [], []
    for _ in range(n_chunks):
        env_s.append(time_env(env, rng.integers(0, NVEC, size=(steps, num_envs, n_agents, 5))))
        phys_s.append(time_physics(env, rng.uniform(-0.9, 0.9, size=(steps, num_envs, nu))))
    n = steps * num_envs * n_chunks
    env_sps, phys_sps = n / sum(env_s), n / sum(phys_s)
    return {"section": "cpu", "env": f"hns/{variant}", "num_envs": num_envs, "env_steps": n,
            "env_steps_per_s": env_sps, "physics_steps_per_s": phys_sps,
            "ratio": env_sps / phys_sps, "us_per_env_step": 1e6 / env_sps,
            "us_per_physics_step": 1e6 / phys_sps,
            "best_chunk_env_steps_per_s": steps * num_envs / min(env_s),
            "best_chunk_physics_steps_per_s": steps * num_envs / min(phys_s)}


def cpu_section(args) -> List[Dict]:
    print_header()
    rows = []
    for variant in args.variants:
        for e in args.num_envs:
            rows.append(bench_hns(variant, e, args.env_steps, args.chunk, args.seed))
            print_row(rows[-1])
    return rows


# ------------------------------------------------------------------------------------------ JAX

def _jax():
    import jax
    return jax


def device_name() -> str:
    jax = _jax()
    d = jax.devices()[0]
    if d.platform == "cpu":
        return f"cpu: {cpu_model()} ({os.cpu_count()} cores)"
    return f"{d.platform}: {d.device_kind}"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def random_actions(key, space, batch: int):
    """Uniform random actions for a batch: the one draw used by srljax and plain runs alike."""
    import jax.numpy as jnp
    from srljax.envs.spaces import Box, Discrete

    jax = _jax()
    if isinstance(space, Discrete):
        return jax.random.randint(key, (batch,), 0, space.n)
    if isinstance(space, Box):
        low = jnp.maximum(jnp.asarray(space.low, jnp.float32), -1.0)
        high = jnp.minimum(jnp.asarray(space.high, jnp.float32), 1.0)
        return jax.random.uniform(key, (batch,) + tuple(space.shape), minval=low, maxval=high)
    raise TypeError(f"no random actions for {space!r}")


def make_policy(obs_space, action_space, seed: int = 0):
    """An MLP actor-critic (64, 64, tanh) with random weights: `act(obs, key) -> action`."""
    from srljax.learners import distributions
    from srljax.learners.networks import ActorCritic

    jax = _jax()
    dist = distributions.for_space(action_space)
    net = ActorCritic(dist=dist, obs_ndim=len(obs_space.shape))
    params = net.init(jax.random.PRNGKey(seed), jax.numpy.zeros((1,) + tuple(obs_space.shape)))

    def act(obs, key):
        out, _ = net.apply(params, obs)
        return dist.sample(out, key)
    return act


class Runner:
    """One way of stepping `batch` envs: `init(key) -> carry`, `step(carry, key) -> carry` (one env
    step of every env); `run` scans `steps` of them inside one jitted call."""

    def __init__(self, init, step, batch: int, steps: int):
        jax = _jax()
        self.batch, self.steps = batch, steps

        def run(carry, key):
            def body(c, k):
                c, reward = step(c, k)
                return c, reward.sum()
            carry, rewards = jax.lax.scan(body, carry, jax.random.split(key, steps))
            return carry, rewards.sum()

        t0 = time.perf_counter()
        self.carry = jax.block_until_ready(jax.jit(init)(jax.random.PRNGKey(0)))
        self.setup_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        self._run = jax.jit(run, donate_argnums=0).lower(self.carry, jax.random.PRNGKey(1)).compile()
        self.compile_s = time.perf_counter() - t0
        self.calls = 0
        self.once()                                     # first call: warm-up, not timed
        self.checksum = 0.0

    def once(self):
        jax = _jax()
        self.calls += 1
        self.carry, r = self._run(self.carry, jax.random.PRNGKey(self.calls + 1))
        jax.block_until_ready(r)
        return r

    def timed(self, min_time: float):
        """Env steps per second of wall time and per second of this process's CPU time, over whole
        calls lasting at least `min_time` together. With one XLA thread, the CPU-time figure is
        what an idle core gives, even while other processes share the machine."""
        n, t0, c0 = 0, time.perf_counter(), time.process_time()
        while True:
            self.checksum += float(self.once())
            n += 1
            dt = time.perf_counter() - t0
            if dt >= min_time:
                steps = n * self.steps * self.batch
                return steps / dt, steps / max(time.process_time() - c0, 1e-9)


def srljax_runner(name: str, batch: int, steps: int, policy: bool) -> Runner:
    """srljax's stack: EpisodeStats(AutoReset(Batched(adapter)))."""
    from srljax.envs import make

    jax = _jax()
    env = make(name, num_envs=batch)
    act = make_policy(env.observation_space, env.action_space) if policy else None

    def step(state, key):
        if act is None:
            action = random_actions(jax.random.split(key)[0], env.action_space, batch)
        else:
            action = act(state.obs, key)
        state = env.step(state, action)
        return state, state.reward + state.metrics["episode_return"]
    return Runner(env.reset, step, batch, steps)


def plain_gymnax_runner(name: str, batch: int, steps: int, policy: bool) -> Runner:
    """Plain gymnax: `vmap` of gymnax's own `step` (which auto-resets), per-env keys split each step."""
    import gymnax
    from srljax.envs.adapters import GymnaxEnv

    jax = _jax()
    spec = GymnaxEnv(name.split("/", 1)[1])       # for the spaces only
    env, params = gymnax.make(name.split("/", 1)[1])
    act = make_policy(spec.observation_space, spec.action_space) if policy else None

    def init(key):
        return jax.vmap(env.reset, (0, None))(jax.random.split(key, batch), params)

    def step(carry, key):
        obs, state = carry
        k_act, k_env = jax.random.split(key)
        if act is None:
            action = random_actions(k_act, spec.action_space, batch)
        else:
            action = act(obs, key)
        obs, state, reward, _, _, _ = jax.vmap(env.step, (0, 0, 0, None))(
            jax.random.split(k_env, batch), state, action, params)
        return (obs, state), reward
    return Runner(init, step, batch, steps)


def plain_brax_runner(name: str, batch: int, steps: int, policy: bool) -> Runner:
    """Plain brax: brax's own training wrappers (episode limit, vmap, auto-reset to the first state)."""
    from brax.envs.wrappers.training import wrap
    from srljax.envs.adapters import BraxEnv

    jax = _jax()
    spec = BraxEnv(name.split("/", 1)[1])
    env = wrap(spec._env, episode_length=spec.episode_length)
    act = make_policy(spec.observation_space, spec.action_space) if policy else None

    def init(key):
        return env.reset(jax.random.split(key, batch))

    def step(state, key):
        if act is None:
            action = random_actions(jax.random.split(key)[0], spec.action_space, batch)
        else:
            action = act(state.obs, key)
        state = env.step(state, action)
        return state, state.reward
    return Runner(init, step, batch, steps)


PLAIN = {"gymnax": plain_gymnax_runner, "brax": plain_brax_runner}


def steps_per_call(family: str, batch: int, args) -> int:
    """Scan length: about `--env-steps-per-call` env steps per jitted call (brax: `--brax-...`)."""
    budget = args.brax_env_steps_per_call if family == "brax" else args.env_steps_per_call
    return int(min(args.max_scan, max(args.min_scan, budget // batch)))


def bench_jax(name: str, batch: int, actions: str, args) -> List[Dict]:
    """srljax and plain runs of one env at one batch size, timed in alternating repeats.

    `steps_per_s` is per second of wall time. On a CPU, `steps_per_cpu_s` is per second of this
    process's CPU time: with one XLA thread (`--xla-threads 1`) it is what one idle core gives,
    even on a machine shared with other processes, and the ratio is taken from it.
    """
    family = name.split("/", 1)[0]
    policy = actions == "policy"
    steps = steps_per_call(family, batch, args)
    runners = {"srljax": srljax_runner(name, batch, steps, policy)}
    if not args.no_plain:
        runners["plain"] = PLAIN[family](name, batch, steps, policy)
    wall: Dict[str, List[float]] = {k: [] for k in runners}
    cpu: Dict[str, List[float]] = {k: [] for k in runners}
    for _ in range(args.repeats):
        for impl, runner in runners.items():
            w, c = runner.timed(args.min_time)
            wall[impl].append(w)
            cpu[impl].append(c)
    on_cpu = _jax().devices()[0].platform == "cpu"
    basis = cpu if on_cpu else wall
    device = device_name()
    rows = []
    for impl, runner in runners.items():
        rows.append({"section": "jax", "env": name, "impl": impl, "actions": actions, "batch": batch,
                     "device": device, "scan_steps": steps, "repeats": args.repeats,
                     "steps_per_s": float(np.median(wall[impl])), "best_steps_per_s": max(wall[impl]),
                     "all_steps_per_s": wall[impl],
                     "steps_per_cpu_s": float(np.median(cpu[impl])) if on_cpu else None,
                     "all_steps_per_cpu_s": cpu[impl] if on_cpu else None,
                     "ratio_basis": "cpu_time" if on_cpu else "wall_time",
                     "compile_s": runner.compile_s, "setup_s": runner.setup_s})
    if "plain" in runners:
        # Each repeat times srljax and plain back to back, so their ratio sees the same load from
        # other processes; the median of those ratios is the figure reported.
        per_repeat = [a / b for a, b in zip(basis["srljax"], basis["plain"])]
        for r in rows:
            r["srljax_over_plain"] = float(np.median(per_repeat))
            r["srljax_over_plain_best"] = max(basis["srljax"]) / max(basis["plain"])
            r["srljax_over_plain_repeats"] = per_repeat
    return rows


def jax_section(args) -> List[Dict]:
    jax = _jax()
    on_cpu = jax.devices()[0].platform == "cpu"
    print(f"# JAX envs on {device_name()} (jax {jax.__version__}, XLA threads: {args.xla_threads or 'default'}); "
          f"median of {args.repeats} alternating repeats, compile excluded; ratio srljax/plain: median of "
          f"the repeats' ratios and ratio of the best, {'per CPU second' if on_cpu else 'wall time'}", flush=True)
    cpu_cols = f" {'srljax/cpu-s':>12} {'plain/cpu-s':>12}" if on_cpu else ""
    print(f"{'env':<22} {'actions':<7} {'batch':>6} {'srljax/s':>12} {'plain/s':>12}{cpu_cols} {'ratio':>6} "
          f"{'best':>6} {'compile s':>9}", flush=True)
    rows = []
    for name in args.jax_envs:
        family = name.split("/", 1)[0]
        batches, actions_list = args.batch_sizes, args.actions
        if family == "brax":
            batches = args.brax_batch_sizes or (BRAX_CPU_BATCHES if on_cpu else args.batch_sizes)
            actions_list = args.brax_actions or args.actions
        for actions in actions_list:
            for b in batches:
                got = bench_jax(name, b, actions, args)
                rows += got
                print_jax_row(got)
    return rows


def print_jax_row(rows: List[Dict]) -> None:
    def num(r, key):
        return f"{r[key]:>12,.0f}" if r is not None and r.get(key) is not None else f"{'-':>12}"

    r, p = rows[0], (rows[1] if len(rows) > 1 else None)
    cpu_cols = f" {num(r, 'steps_per_cpu_s')} {num(p, 'steps_per_cpu_s')}" if r["steps_per_cpu_s"] else ""
    ratio = (f"{r['srljax_over_plain']:>6.2f} {r['srljax_over_plain_best']:>6.2f}" if p is not None
             else f"{'-':>6} {'-':>6}")
    print(f"{r['env']:<22} {r['actions']:<7} {r['batch']:>6} {num(r, 'steps_per_s')} {num(p, 'steps_per_s')}"
          f"{cpu_cols} {ratio} {r['compile_s']:>9.1f}", flush=True)


# ------------------------------------------------------------------------------------ gymnasium

def bench_gym(env_id: str, num_envs: int, env_steps: int, seed: int = 0) -> Dict:
    """srljax's gymnasium vector env on one core (as actors step it), random actions drawn up front."""
    from srljax.envs import make_vector

    env = make_vector(f"gym/{env_id}", num_envs=num_envs, seed=seed)
    env.reset(seed)
    rng = np.random.default_rng(seed)
    space = env.action_space
    steps = max(1, env_steps // num_envs)
    if hasattr(space, "n"):
        actions = rng.integers(0, space.n, size=(steps, num_envs))
    else:
        actions = rng.uniform(np.maximum(space.low, -1), np.minimum(space.high, 1),
                              size=(steps, num_envs) + tuple(space.shape)).astype(np.float32)
    env.step(actions[0])
    t0, c0 = time.perf_counter(), time.process_time()
    for a in actions:
        env.step(a)
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    env.close()
    n = steps * num_envs
    return {"section": "gym", "env": f"gym/{env_id}", "num_envs": num_envs, "env_steps": n,
            "env_steps_per_s": n / dt, "env_steps_per_cpu_s": n / max(dc, 1e-9), "us_per_env_step": 1e6 * dt / n}


def gym_section(args) -> List[Dict]:
    print(f"# gymnasium vector envs, one core ({cpu_model()})", flush=True)
    rows = []
    for env_id in args.gym_envs:
        for n in args.gym_num_envs:
            rows.append(bench_gym(env_id, n, args.gym_env_steps, args.seed))
            r = rows[-1]
            print(f"{r['env']:<22} envs {n:>5} {r['env_steps_per_s']:>12,.0f} steps/s "
                  f"{r['env_steps_per_cpu_s']:>12,.0f} per CPU-s {r['us_per_env_step']:>7.1f} us/step", flush=True)
    return rows


# ----------------------------------------------------------------------------------------- plot

def plot(rows: List[Dict], path: str, title: str) -> None:
    """Steps/s against batch size, log-log: one line per (env, impl, actions); CPU envs as points."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    lines: Dict[tuple, List] = {}
    for r in rows:
        if r["section"] == "jax":
            rate = r.get("steps_per_cpu_s") or r["steps_per_s"]
            lines.setdefault((r["env"], r["impl"], r["actions"]), []).append((r["batch"], rate))
    styles = {("srljax", "random"): "-", ("plain", "random"): "--", ("srljax", "policy"): ":",
              ("plain", "policy"): "-."}
    colors: Dict[str, str] = {}
    for (env, impl, actions), pts in sorted(lines.items()):
        color = colors.setdefault(env, f"C{len(colors)}")
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], styles[(impl, actions)], color=color,
                marker="o" if impl == "srljax" else "x", markersize=4, label=f"{env} {impl} {actions}")
    for r in rows:
        if r["section"] in ("gym", "cpu"):
            label = None if r["env"] in colors else f"{r['env']} (1 core)"
            color = colors.setdefault(r["env"], f"C{len(colors)}")
            rate = r.get("env_steps_per_cpu_s") or r["env_steps_per_s"]
            ax.plot([r["num_envs"]], [rate], "s", color=color, label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size (envs stepped together)")
    ax.set_ylabel("env steps / s (on a CPU: per CPU-second)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ------------------------------------------------------------------------------- hide-and-seek in JAX

def hns_jax_runner(variant: str, batch: int, steps: int, seed: int = 0, layouts: int = 512) -> Runner:
    """The whole JAX game (`hns_jax/`: rules, lidar, vision, observations) at `batch` envs under
    `vmap`, uniformly random actions, `steps` a call (also `gpu_check.py`'s section)."""
    from srljax.envs.hns_jax import HideAndSeekJax
    jax = _jax()
    import jax.numpy as jnp

    env = HideAndSeekJax(variant, layouts=layouts, layout_seed=seed)
    A, nvec = env.num_agents, jnp.asarray(NVEC)

    def step(state, key):
        action = jax.random.randint(key, (batch, A, 5), 0, nvec)
        state = jax.vmap(env.step)(state, action)
        return state, state.reward
    runner = Runner(lambda k: jax.vmap(env.reset)(jax.random.split(k, batch)), step, batch, steps)
    runner.num_agents = A
    return runner


def bench_hns_jax(variant: str, batch: int, mj_envs: int, args) -> Dict:
    """The whole JAX game (rules, lidar, vision, observations; random actions) at `batch` envs in
    one jitted scan, against the whole MuJoCo game at `mj_envs` envs on one core, timed in
    alternating repeats of at least `--min-time` (2 s at least) each. Both are per second of this
    process's CPU time (run with `--xla-threads 1`, the JAX side uses one core too); the ratio is
    the median of the repeats' ratios."""
    runner = hns_jax_runner(variant, batch, max(8, min(VARIANTS[variant].horizon, 2 ** 16 // batch)), args.seed)
    A = runner.num_agents
    mj = make_vec_env(variant, num_envs=mj_envs, seed=args.seed)
    mj.reset(args.seed)
    rng = np.random.default_rng(args.seed)
    time_env(mj, rng.integers(0, NVEC, size=(5, mj_envs, A, 5)))                    # warm up
    min_time = max(args.min_time, 2.0)
    jx, mu = [], []
    for _ in range(args.repeats):
        jx.append(runner.timed(min_time)[1])
        n, c0 = 0, time.process_time()
        while time.process_time() - c0 < min_time:
            time_env(mj, rng.integers(0, NVEC, size=(10, mj_envs, A, 5)))
            n += 10 * mj_envs
        mu.append(n / (time.process_time() - c0))
    ratios = [a / b for a, b in zip(jx, mu)]
    return {"section": "hns_jax", "env": f"hns_jax/{variant}", "batch": batch, "mujoco_envs": mj_envs,
            "device": device_name(), "jax_env_steps_per_cpu_s": float(np.median(jx)),
            "mujoco_env_steps_per_cpu_s": float(np.median(mu)), "jax_over_mujoco": float(np.median(ratios)),
            "all_jax": jx, "all_mujoco": mu, "compile_s": runner.compile_s, "repeats": args.repeats}


def hns_jax_section(args) -> List[Dict]:
    print(f"# hide-and-seek in JAX against the MuJoCo game, per CPU second, XLA threads: "
          f"{args.xla_threads or 'default'} (use 1 for a per-core figure); median of {args.repeats} "
          "alternating repeats, compile excluded", flush=True)
    print(f"{'env':<20} {'batch':>6} {'JAX steps/s':>12} {'MuJoCo steps/s':>15} {'ratio':>6} {'compile s':>10}")
    rows = []
    for variant in args.variants:
        for b in args.hns_batch_sizes:
            r = bench_hns_jax(variant, b, args.num_envs[-1], args)
            rows.append(r)
            print(f"{r['env']:<20} {b:>6} {r['jax_env_steps_per_cpu_s']:>12.0f} "
                  f"{r['mujoco_env_steps_per_cpu_s']:>15.0f} {r['jax_over_mujoco']:>6.2f} {r['compile_s']:>10.1f}",
                  flush=True)
    return rows


BRAX_CPU_BATCHES = [256]
DEFAULT_BATCHES = [1, 64, 4096, 65536]


SECTIONS = {"jax": jax_section, "gym": gym_section, "cpu": cpu_section, "hns_jax": hns_jax_section}


def print_header() -> None:
    print(f"{'env':<14} {'envs':>5} {'env steps/s':>12} {'physics/s':>10} {'ratio':>6} "
          f"{'us/step':>8} {'us/phys':>8}")


def print_row(r: Dict) -> None:
    print(f"{r['env']:<14} {r['num_envs']:>5} {r['env_steps_per_s']:>12.0f} "
          f"{r['physics_steps_per_s']:>10.0f} {r['ratio']:>6.2f} {r['us_per_env_step']:>8.0f} "
          f"{r['us_per_physics_step']:>8.0f}", flush=True)


QUICK = {"sections": ["jax", "gym"], "jax_envs": ["gymnax/CartPole-v1"], "batch_sizes": [8],
         "repeats": 2, "min_time": 0.0, "env_steps_per_call": 4096, "max_scan": 64, "gym_num_envs": [4],
         "gym_env_steps": 200}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", nargs="+", default=["jax", "gym", "cpu"], choices=sorted(SECTIONS))
    p.add_argument("--quick", action="store_true", help="tiny budgets (smoke test): " + ", ".join(QUICK))
    p.add_argument("--out", default=None, help="write the rows as JSON here")
    p.add_argument("--plot", default=None, help="write the log-log plot here (default: --out with .png)")
    p.add_argument("--seed", type=int, default=0)
    g = p.add_argument_group("jax section")
    g.add_argument("--jax-envs", nargs="+", default=["gymnax/CartPole-v1", "gymnax/Acrobot-v1", "brax/ant"])
    g.add_argument("--batch-sizes", nargs="+", type=int, default=DEFAULT_BATCHES)
    g.add_argument("--brax-batch-sizes", nargs="+", type=int, default=None,
                   help=f"brax batch sizes (default: {BRAX_CPU_BATCHES} on a CPU, --batch-sizes elsewhere)")
    g.add_argument("--actions", nargs="+", default=["random", "policy"], choices=["random", "policy"])
    g.add_argument("--brax-actions", nargs="+", default=None, choices=["random", "policy"],
                   help="actions for brax envs (default: random on a CPU, --actions elsewhere)")
    g.add_argument("--repeats", type=int, default=5, help="alternating timed repeats of srljax and plain")
    g.add_argument("--min-time", type=float, default=0.1, help="seconds timed per repeat (whole calls)")
    g.add_argument("--env-steps-per-call", type=int, default=2 ** 19, help="env steps per jitted call")
    g.add_argument("--brax-env-steps-per-call", type=int, default=2 ** 14)
    g.add_argument("--min-scan", type=int, default=8, help="fewest env steps per env in one call")
    g.add_argument("--max-scan", type=int, default=1000, help="most env steps per env in one call")
    g.add_argument("--no-plain", action="store_true", help="time srljax's wrappers only")
    g.add_argument("--xla-threads", type=int, default=None,
                   help="on a CPU, XLA threads per op (default: XLA's own, all cores)")
    g = p.add_argument_group("gym section")
    g.add_argument("--gym-envs", nargs="+", default=["CartPole-v1", "Pendulum-v1"])
    g.add_argument("--gym-num-envs", nargs="+", type=int, default=[16, 256])
    g.add_argument("--gym-env-steps", type=int, default=40_000, help="env steps timed per row")
    g = p.add_argument_group("cpu section (hide-and-seek)")
    g.add_argument("--variants", nargs="+", default=["quadrant", "full"], choices=["quadrant", "full"])
    g.add_argument("--num-envs", nargs="+", type=int, default=[16],
                   help="batch sizes (envs stepped by one core)")
    g.add_argument("--env-steps", type=int, default=4800, help="env steps timed per row (each of env "
                   "and physics alone)")
    g.add_argument("--chunk", type=int, default=400, help="env steps per alternating timed chunk")
    g = p.add_argument_group("hns_jax section (hide-and-seek in JAX against the MuJoCo game; --variants, "
                             "--num-envs: the MuJoCo side's envs per core)")
    g.add_argument("--hns-batch-sizes", nargs="+", type=int, default=[1024], help="JAX game batch sizes")
    first = p.parse_args(argv)
    if first.quick:
        p.set_defaults(**QUICK)
        return p.parse_args(argv)
    return first


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.xla_threads is not None:        # read when JAX's CPU backend starts, i.e. at first use
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false "
                                   f"intra_op_parallelism_threads={args.xla_threads}").strip()
    jax = _jax()
    if args.brax_actions is None and jax.devices()[0].platform == "cpu":
        args.brax_actions = ["random"]
    t0 = time.perf_counter()
    rows = []
    for s in args.sections:
        rows += SECTIONS[s](args)
    wall = time.perf_counter() - t0
    print(f"# {wall:.0f} s in all", flush=True)
    meta = {"python": platform.python_version(), "jax": jax.__version__, "mujoco": mujoco.__version__,
            "device": device_name(), "cpu": cpu_model(), "cores": os.cpu_count(),
            "machine": platform.machine(), "xla_flags": os.environ.get("XLA_FLAGS", ""),
            "threads": os.environ.get("OMP_NUM_THREADS"), "argv": sys.argv[1:] if argv is None else list(argv),
            "wall_s": wall}
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=2)
    plot_path = args.plot or (os.path.splitext(args.out)[0] + ".png" if args.out else None)
    if plot_path and rows:
        plot(rows, plot_path, f"env steps/s, {meta['device']}, jax {jax.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
