"""Throughput against the number of actor ranks, and the per-role figures a capacity model needs.

    python scripts/bench_scaling.py [--envs cartpole,quadrant] [--actors 1,2,3,4] [--seconds 8]
                                    [--out runs/bench_scaling.json] [--plot runs/bench_scaling.png]

For gymnasium CartPole (`gym/CartPole-v1`, the `gym_cartpole` preset) and hide-and-seek quadrant
(`hns/quadrant`, the `hns_quadrant` preset) it measures:

- roles, one at a time in this process, in CPU seconds (`time.process_time`, so other jobs on the
  machine do not move them much) and in wall-clock rates:
  - actor: srljax's `ActorWorker` stepping its ring of env batches with random actions into
    sample messages: env steps/s and sample bytes/s of one core;
  - policy worker: the jitted `act` call at 1, 2, 4, ... requests of one ring slot's envs:
    requests/s and env steps/s at each batch;
  - trainer: the jitted update on one update's batch (`posts_per_update` messages): samples
    (env steps)/s and bytes/s it can ingest;
- concurrency: the actor alone in 1 process and in as many processes as the machine has cores, at
  once: how much busy cores slow each other (`efficiency`; a VM's vCPUs or SMT siblings share a
  core's execution units, so two busy "cores" do less than twice the work of one);
- message latency and bandwidth: `mpirun -n 2` ping-pong over shared memory and, where network
  namespaces can be made (`netns`), over TCP on a veth between two "hosts";
- scaling: `mpirun -n N+1`, N actor ranks (the real `ActorWorker`, random actions) posting over the
  MPI sample stream to one rank that ingests like a trainer (copies each message into the update
  batch), N = 1, 2, ...: env steps/s consumed; and for CartPole the whole system
  (`python -m srljax --config gym_cartpole`: trainer, policy worker, N actors).

Every figure is recorded with the machine's load (other processes runnable during it), because the
machine is shared. `scripts/capacity_model.py` reads the JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from typing import Dict, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

ENVS = {   # env id, preset, rollout length T, envs per ring slot B (ring of 2)
    "cartpole": {"id": "gym/CartPole-v1", "preset": "gym_cartpole", "T": 32, "B": 32},
    "quadrant": {"id": "hns/quadrant", "preset": "hns_quadrant", "T": 40, "B": 16, "window": 2.5},
}
RING = 2
POSTS_PER_UPDATE = 2


# ----------------------------------------------------------------------------- shared pieces

def make_env(name: str, num_envs: int, seed: int):
    """The env as the actor sees it: hide-and-seek's dict observations flattened per agent."""
    from srljax.envs import make_vector
    env = make_vector(ENVS[name]["id"], num_envs=num_envs, seed=seed)
    return env if name == "cartpole" else FlatAgents(env)


class FlatAgents:
    """[E, A, ...] dict observations -> one float32 [E, A, D] array (keys in sorted order)."""

    def __init__(self, env):
        self.env, self.num_envs, self.num_agents = env, env.num_envs, env.num_agents
        self.action_space = env.action_space
        self.obs_dim = sum(int(np.prod(s.shape)) for s in env.observation_space.values())

    def _flat(self, obs):
        E, A = self.num_envs, self.num_agents
        return np.concatenate([np.asarray(obs[k], np.float32).reshape(E, A, -1) for k in sorted(obs)], axis=2)

    def reset(self, seed):
        return self._flat(self.env.reset(seed))

    def step(self, actions):
        obs, reward, terminated, truncated, info = self.env.step(actions)
        return self._flat(obs), reward, terminated, truncated, {**info, "final_obs": self._flat(info["final_obs"])}

    def close(self):
        getattr(self.env, "close", lambda: None)()


def batch_spec(name: str):
    """The batch spec of one ring slot of `name` (what the training run's actors post)."""
    from srljax.dataflow.wire.schema import BatchSpec
    from srljax.envs import spaces
    e = ENVS[name]
    T, B = e["T"], e["B"]
    if name == "cartpole":
        return BatchSpec(T, B, (4,), spaces.Discrete(2))
    probe = make_env(name, 1, 0)
    A, D = probe.num_agents, probe.obs_dim
    probe.close()
    return BatchSpec(T, B, (A, D), probe.action_space, agents=A)


def layouts(name: str):
    """(sample layout, reply layout) for one ring slot of `name`."""
    spec = batch_spec(name)
    return spec.samples(), spec.replies()


class RandomPolicy:
    """The actor's inference client, answered at once with random actions (no policy worker)."""

    def __init__(self, name: str, replies, obs_shape, seed: int):
        from srljax.dataflow.wire.schema import META
        self.rng = np.random.default_rng(seed)
        self.views = [replies.views(replies.alloc()) for _ in range(RING)]
        self._obs = [np.zeros(obs_shape, np.float32) for _ in range(RING)]
        self.high = 2 if name == "cartpole" else np.array([11, 11, 11, 2, 2])
        self.meta = META

    def obs(self, slot):
        return self._obs[slot]

    def request(self, slot):
        v = self.views[slot]
        v["action"][...] = self.rng.integers(0, self.high, size=v["action"].shape)

    def response(self, slot):
        return self.views[slot]


class NullPoster:
    """A sample poster that sends nothing (one actor's own cost, without the stream)."""

    def __init__(self, layout, slots):
        self.views = [layout.views(layout.alloc()) for _ in range(slots)]
        self.posted = 0

    def acquire(self):
        return 0

    def post(self, i, version):
        self.posted += 1

    def pending(self):
        return 0


def make_actor(name: str, poster, control, seed: int, fin_to=()):
    from srljax.dataflow.roles.actor import ActorStreams, ActorWorker
    e = ENVS[name]
    spec = batch_spec(name)
    samples, replies = spec.samples(), spec.replies()
    envs = [make_env(name, e["B"], seed + k) for k in range(RING)]
    obs_shape = samples.spec["obs"][0][1:]
    streams = ActorStreams(RandomPolicy(name, replies, obs_shape, seed), poster, control, fin_to)
    actor = ActorWorker(envs, [seed + 17 * k for k in range(RING)], streams, spec)
    return actor, samples


def _busy_cpu_s() -> float:
    """CPU seconds every process on the machine has used (from /proc/stat; steal counts as used)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (v + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


_RANKS: Dict[int, Optional[int]] = {}


def _mpi_rank(pid: int) -> Optional[int]:
    """The MPI rank of a process (PMI_RANK in its environment; None for others), cached per pid."""
    if pid not in _RANKS:
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
            _RANKS[pid] = int(env[b"PMI_RANK"]) if b"PMI_RANK" in env else None
        except (OSError, ValueError):
            _RANKS[pid] = None
    return _RANKS[pid]


def _tree_cpu_s(root: int, by_rank: Optional[dict] = None) -> float:
    """CPU seconds of `root`'s live descendants, with what their own finished children used.
    With `by_rank` (a dict), also each MPI rank's own CPU seconds, keyed by rank."""
    procs = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                v = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        procs[int(pid)] = (int(v[1]), sum(int(x) for x in v[11:15]))     # ppid, utime+stime+cutime+cstime
    ours, grew = {root}, True
    while grew:
        more = {p for p, (pp, _) in procs.items() if pp in ours and p not in ours}
        ours |= more
        grew = bool(more)
    tck = os.sysconf("SC_CLK_TCK")
    if by_rank is not None:
        for p in ours:
            rank = _mpi_rank(p) if p != root and p in procs else None
            if rank is not None:
                by_rank[rank] = by_rank.get(rank, 0.0) + procs[p][1] / tck
    return sum(procs[p][1] for p in ours if p != root and p in procs) / tck


class LoadProbe:
    """The machine's load while a measurement runs (it is shared with other engineers' jobs):

    - `others_cores`: cores busy with processes not ours (/proc/stat less this process and its
      children), so `cores_available` = cores - others_cores;
    - `cores_used(window)`: cores our child processes used in the last `window` seconds before
      they ended (sampled 10 times a second), what the job really got.
    """

    def __enter__(self):
        self.t0, self.busy0, self.own0 = time.perf_counter(), _busy_cpu_s(), _own_cpu_s()
        self.series, self.stop = [], threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while not self.stop.wait(0.1):
            ranks: Dict[int, float] = {}
            self.series.append((time.perf_counter(), _tree_cpu_s(os.getpid(), ranks), ranks))

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        wall = max(time.perf_counter() - self.t0, 1e-9)
        others = (_busy_cpu_s() - self.busy0 - (_own_cpu_s() - self.own0)) / wall
        cores = os.cpu_count() or 1
        self.others_cores = min(max(others, 0.0), cores)
        self.cores_available = cores - self.others_cores

    def _window(self, window: float, skip_end: float):
        pts = [p for p in self.series if p[1] > 0]
        if len(pts) < 3:
            return None
        end = pts[-1][0] - skip_end
        inside = [p for p in pts if end - window <= p[0] <= end]
        if len(inside) < 2 or inside[-1][0] - inside[0][0] < 0.5:
            return None
        return inside[0], inside[-1]

    def cores_used(self, window: float, skip_end: float = 0.3) -> Optional[float]:
        w = self._window(window, skip_end)
        return None if w is None else (w[1][1] - w[0][1]) / (w[1][0] - w[0][0])

    def rank_cores(self, window: float, skip_end: float = 0.3) -> Optional[Dict[int, float]]:
        """Cores each MPI rank used over the same window as `cores_used`."""
        w = self._window(window, skip_end)
        if w is None:
            return None
        (t0, _, a), (t1, _, b) = w
        return {r: (b[r] - a.get(r, 0.0)) / (t1 - t0) for r in sorted(b)}


# ----------------------------------------------------------------------------- roles, in process

def timed(fn, min_seconds: float):
    """(calls, cpu seconds, wall seconds) of calling fn() for at least `min_seconds` of wall time."""
    fn()
    n, c0, w0 = 0, time.process_time(), time.perf_counter()
    while time.perf_counter() - w0 < min_seconds:
        fn()
        n += 1
    return n, time.process_time() - c0, time.perf_counter() - w0


def bench_actor(name: str, seconds: float) -> dict:
    from srljax.dataflow.wire.streams import LocalControl
    samples, _ = layouts(name)
    poster = NullPoster(samples, RING + 2)
    actor, _ = make_actor(name, poster, LocalControl({}, 0), seed=1)
    for _ in range(20):
        actor.poll()
    s0 = actor.env_steps
    n, cpu, wall = timed(actor.poll, seconds)
    steps = actor.env_steps - s0
    e = ENVS[name]
    per_step = samples.nbytes / (e["T"] * e["B"])
    return {"env_steps_per_cpu_s": steps / cpu, "env_steps_per_s": steps / wall, "cpu_s": cpu, "wall_s": wall,
            "sample_bytes_per_env_step": per_step, "bytes_per_s": per_step * steps / wall,
            "sample_message_bytes": samples.nbytes, "envs_per_actor": RING * e["B"]}


def actor_loop(name: str, seconds: float) -> None:
    """One process of the concurrency probe: the actor alone (as `bench_actor`), its rate as JSON."""
    fig = bench_actor(name, seconds)
    print(json.dumps({"env_steps_per_s": fig["env_steps_per_s"], "env_steps_per_cpu_s": fig["env_steps_per_cpu_s"]}),
          flush=True)


def concurrency(name: str, seconds: float, processes: int) -> dict:
    """How much one more busy process slows the others: the actor alone in 1 process, then in
    `processes` at once. `efficiency` = rate(P) / (P x rate(1)); 1.0 where cores are independent,
    lower where they share execution units, caches or memory bandwidth (SMT siblings, a VM's
    vCPUs). The capacity model scales a job's cores by it."""
    rows = []
    for n in sorted({1, processes}):
        cmd = [sys.executable, __file__, "--mpi-worker", "actor_loop", "--envs", name, "--seconds", str(seconds)]
        with LoadProbe() as probe:
            procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
                     for _ in range(n)]
            outs = [pr.communicate(timeout=120 + 4 * seconds) for pr in procs]
        for pr, (out, err) in zip(procs, outs):
            if pr.returncode != 0:
                raise RuntimeError(f"actor_loop failed ({pr.returncode}):\n{err[-2000:]}")
        rates = [json.loads(out.strip().splitlines()[-1])["env_steps_per_s"] for out, _ in outs]
        rows.append({"processes": n, "env_steps_per_s": sum(rates), "per_process": rates,
                     "others_cores": probe.others_cores})
    one = rows[0]["env_steps_per_s"]
    eff = rows[-1]["env_steps_per_s"] / (rows[-1]["processes"] * one)
    print(f"  {name}: {processes} processes at once run at {eff:.2f} of {processes} x one", file=sys.stderr)
    return {"rows": rows, "processes": rows[-1]["processes"], "efficiency": eff}


def _algorithm(name: str):
    from srljax import presets
    from srljax.learners import make_algorithm
    from srljax.envs import make_vector
    cfg = presets.get(ENVS[name]["preset"])
    probe = make_vector(ENVS[name]["id"], num_envs=1, seed=0)
    obs_space, action_space = probe.observation_space, probe.action_space
    probe.close()
    return cfg, make_algorithm(cfg, obs_space, action_space, num_updates=10**6)


def _hns_obs(name: str, lead):
    env = make_env(name, 1, 0).env
    return {k: np.zeros(lead + tuple(s.shape), np.float32) for k, s in env.observation_space.items()}


def bench_policy(name: str, seconds: float, batches=(1, 2, 4, 8, 16, 32)) -> dict:
    import jax
    cfg, algo = _algorithm(name)
    B = ENVS[name]["B"]
    key = jax.random.PRNGKey(0)
    rows = []
    if name == "cartpole":
        from srljax.dataflow.roles.policy import _jit_act
        params = algo.policy_params(jax.jit(algo.init)(key, _cartpole_batch(1)))
        act = _jit_act(algo)
        for k in batches:
            obs = np.zeros((k * B, 4), np.float32)
            fn = lambda: jax.block_until_ready(act(params, obs, key, 0))   # noqa: E731
            rows.append(_policy_row(k, B, *timed(fn, seconds / len(batches))))
    else:
        A = make_env(name, 1, 0).num_agents
        state0 = algo.init(key, _hns_batch(name, algo, 10, 1))
        params = algo.policy_params(state0)
        step = jax.jit(algo.act_step)
        for k in batches:
            n = k * B * A
            obs = _hns_obs(name, (n,))
            carry, first = algo.initial_state(n), np.zeros(n, np.float32)
            fn = lambda: jax.block_until_ready(step(params, obs, carry, first, key))  # noqa: E731
            rows.append(_policy_row(k, B, *timed(fn, seconds / len(batches))))
    from jax.flatten_util import ravel_pytree
    return {"envs_per_request": B, "batches": rows, "param_count": int(ravel_pytree(params)[0].size)}


def _policy_row(k, B, calls, cpu, wall):
    return {"requests_per_call": k, "env_steps_per_call": k * B, "calls": calls,
            "requests_per_cpu_s": k * calls / cpu, "requests_per_s": k * calls / wall,
            "env_steps_per_cpu_s": k * B * calls / cpu, "ms_per_call_cpu": 1e3 * cpu / calls}


def _cartpole_batch(B, T=32):
    from srljax.dataflow.roles.policy import example_batch
    from srljax.dataflow.wire.schema import BatchSpec
    from srljax.envs import spaces
    return example_batch(BatchSpec(T, B, (4,), spaces.Discrete(2)))


def _hns_batch(name, algo, T, B):
    A = make_env(name, 1, 0).num_agents
    L = 10
    rng = np.random.default_rng(0)
    f = lambda *s: np.zeros(s, np.float32)   # noqa: E731
    first = f(T, B)
    first[0] = 1
    return {"obs": _hns_obs(name, (T, B, A)), "final_obs": _hns_obs(name, (T, B, A)),
            "action": rng.integers(0, 2, size=(T, B, A, 5)).astype(np.int32), "reward": f(T, B, A),
            "terminated": f(T, B), "truncated": f(T, B), "logp": f(T, B, A) - 1.0, "first": first,
            "state": np.zeros((T // L, B, A, algo.initial_state(1).shape[-1]), np.float32)}


def bench_trainer(name: str, seconds: float) -> dict:
    import jax
    cfg, algo = _algorithm(name)
    e = ENVS[name]
    T, Bu = e["T"], e["B"] * POSTS_PER_UPDATE
    batch = _cartpole_batch(Bu, T) if name == "cartpole" else _hns_batch(name, algo, T, Bu)
    state = jax.jit(algo.init)(jax.random.PRNGKey(0), batch)
    update = jax.jit(algo.update)
    holder = [state]

    def fn():
        holder[0], m = update(holder[0], batch)
        jax.block_until_ready(m)

    calls, cpu, wall = timed(fn, seconds)
    samples, _ = layouts(name)
    steps = T * Bu
    return {"env_steps_per_update": steps, "updates": calls, "s_per_update_cpu": cpu / calls,
            "env_steps_per_cpu_s": steps * calls / cpu, "env_steps_per_s": steps * calls / wall,
            "bytes_per_cpu_s": POSTS_PER_UPDATE * samples.nbytes * calls / cpu,
            "epochs": cfg.ppo.epochs, "minibatches": cfg.ppo.minibatches}


# ----------------------------------------------------------------------------- MPI workers

def mpi_pingpong(sizes=(64, 4096, 65536, 1 << 20), seconds=0.5) -> None:
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    rows = []
    for size in sizes:
        buf = np.zeros(size, np.uint8)
        n = int(max(20, min(5000, seconds * 2e9 / max(size, 20000) / 10)))
        best = float("inf")
        for _ in range(3):
            comm.Barrier()
            t = time.perf_counter()
            for _ in range(n):
                if comm.rank == 0:
                    comm.Send(buf, 1)
                    comm.Recv(buf, 1)
                else:
                    comm.Recv(buf, 0)
                    comm.Send(buf, 0)
            best = min(best, (time.perf_counter() - t) / n / 2)
        rows.append({"bytes": size, "one_way_us": best * 1e6, "GBps": size / best / 1e9})
    if comm.rank == 0:
        print(json.dumps(rows))


def mpi_sampling(name: str, seconds: float, warmup: float) -> None:
    """Rank 0 ingests like a trainer; ranks 1.. are actors. Prints rank 0's figures as JSON."""
    from mpi4py import MPI
    from srljax.dataflow.launch.waiting import Backoff
    from srljax.dataflow.wire.mpi import MpiControl, MpiSampleConsumer, MpiSamplePoster
    comm = MPI.COMM_WORLD
    control = MpiControl(comm)
    samples, _ = layouts(name)
    actors = list(range(1, comm.size))
    backoff = Backoff()
    comm.Barrier()
    if comm.rank == 0:
        consumer = MpiSampleConsumer(comm, samples, POSTS_PER_UPDATE + len(actors))
        T, B = ENVS[name]["T"], ENVS[name]["B"]
        staging = {k: np.zeros((T, B * POSTS_PER_UPDATE) + s[0][2:], s[1])
                   for k, s in samples.spec.items() if tuple(s[0][:2]) == (T, B)}
        start = time.perf_counter()
        t0 = start + warmup
        steps, k, c0 = 0, 0, None
        while time.perf_counter() < t0 + seconds:
            got = consumer.consume()
            if got is None:
                backoff.idle()
                continue
            backoff.busy()
            cols = slice(k * B, (k + 1) * B)
            for f in staging:
                staging[f][:, cols] = got.data[f]
            k = (k + 1) % POSTS_PER_UPDATE
            if time.perf_counter() >= t0:
                if c0 is None:
                    c0 = time.process_time()
                    t0 = time.perf_counter()
                steps += T * B
        wall = time.perf_counter() - t0
        cpu = time.process_time() - (c0 or time.process_time())
        control.send_stop(actors)
        while not set(actors) <= set(control.poll_fins()):
            consumer.consume()
        consumer.consume()
        consumer.close()
        own = comm.gather(None, root=0)[1:]
        print(json.dumps({"env_steps_per_s": steps / wall, "ingest_cpu_frac": cpu / wall, "wall_s": wall,
                          "bytes_per_s": steps / (T * B) * samples.nbytes / wall,
                          "actor_cpu_us_per_step": 1e6 * sum(o[0] for o in own) / max(sum(o[1] for o in own), 1),
                          "actor_cores": sum(o[0] / o[2] for o in own)}),
              flush=True)
    else:
        poster = MpiSamplePoster(comm, 0, samples, RING + 2)
        actor, _ = make_actor(name, poster, control, seed=1000 * comm.rank, fin_to=[0])
        c0, w0, n0 = time.process_time(), time.perf_counter(), actor.env_steps
        while not actor.done:
            backoff.busy() if actor.poll() else backoff.idle()
        comm.gather((time.process_time() - c0, actor.env_steps - n0, time.perf_counter() - w0), root=0)
    control.finish()


# ----------------------------------------------------------------------------- driver

def run_json(cmd, timeout, env=None, window=None, skip_end=0.3):
    """Run a command: its last stdout line that is JSON, the load of other jobs meanwhile, seconds."""
    with LoadProbe() as probe:
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
        secs = time.perf_counter() - t
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    line = [l for l in proc.stdout.splitlines() if l.startswith(("{", "["))][-1]
    fig = json.loads(line)
    window = window(fig) if callable(window) else window
    if window is None and isinstance(fig, dict):
        window = fig.get("wall_s")
    used = probe.cores_used(window, skip_end) if window else None
    ranks = probe.rank_cores(window, skip_end) if window else None
    return fig, {"others_cores": probe.others_cores, "cores_available": probe.cores_available,
                 "cores_used": used, "rank_cores": ranks}, secs


def mpirun(n):
    from netns import find_mpirun
    return [find_mpirun() or "mpirun", "-n", str(n), sys.executable]


def latency(seconds: float) -> dict:
    out = {}
    rows, load, _ = run_json(mpirun(2) + [__file__, "--mpi-worker", "pingpong"], 120)
    out["shared_memory"] = {"rows": rows, **load}
    import netns
    ok, why = netns.available()
    if not ok:
        out["veth_tcp"] = {"skipped": why}
        return out
    with netns.VirtualCluster(2) as cluster:
        argv = cluster.mpirun_argv([1, 1], [sys.executable, __file__, "--mpi-worker", "pingpong"],
                                   netns.find_mpirun() or "mpirun")
        rows, load, _ = run_json(argv, 120)
    out["veth_tcp"] = {"rows": rows, **load}
    return out


def scaling(name: str, actors, seconds: float) -> list:
    seconds *= ENVS[name].get("window", 1.0)
    rows = []
    for n in actors:
        fig, load, secs = run_json(mpirun(n + 1) + [__file__, "--mpi-worker", "sampling", "--envs", name,
                                                    "--seconds", str(seconds)], 120 + 4 * seconds)
        rows.append({"mode": "sampling", "actors": n, "ranks": n + 1, **load,
                     "loadavg": os.getloadavg()[0], "command_s": secs, **fig})
        print(f"  {name} sampling, {n} actor(s): {fig['env_steps_per_s']:,.0f} env steps/s "
              f"(other jobs used {load['others_cores']:.2f} cores)", file=sys.stderr)
    return rows


def scaling_full(actors, steps: int) -> list:
    rows = []
    for n in actors:
        cmd = mpirun(n + 2) + ["-m", "srljax", "--config", "gym_cartpole", "--quiet", "--no-run-dir", "--print-summary",
                               "--set", "distributed.stop_at_return=null", "--set", f"total_env_steps={steps}",
                               "--set", "distributed.log_interval_s=5"]
        s, load, secs = run_json(cmd, 300, skip_end=1.5,       # after training: shutdown, summary, plot
                                 window=lambda s: s["wall_s"] - s.get("first_update_s", 0.0))
        row = {"mode": "train", "actors": n, "ranks": n + 2, **load,
               "loadavg": os.getloadavg()[0], "command_s": secs, "env_steps_per_s": s["steps_per_s"],
               "env_steps": s["env_steps"], "dropped_env_steps": s["dropped_env_steps"],
               "updates": s["updates"], "updates_per_s": s["updates"] / max(s["wall_s"] - s.get("first_update_s", 0.0), 1e-9)}
        rc = load.get("rank_cores")
        if rc and len(rc) == n + 2:
            # gym_cartpole's layout: rank 0 trainer, rank 1 policy worker, the rest actors
            per = lambda cores: 1e6 * cores / s["steps_per_s"]             # noqa: E731 - CPU us per env step
            row["role_cores"] = {"trainer": rc[0], "policy": rc[1], "actors": sum(rc[r] for r in range(2, n + 2))}
            row["role_cpu_us_per_step"] = {k: per(v) for k, v in row["role_cores"].items()}
        rows.append(row)
        print(f"  cartpole train, {n} actor(s): {s['steps_per_s']:,.0f} env steps/s "
              f"(other jobs used {load['others_cores']:.2f} cores)", file=sys.stderr)
    return rows


def plot(result: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(result["envs"])
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names):
        r = result["envs"][name]
        for mode, marker in (("sampling", "o-"), ("train", "s-")):
            pts = [x for x in r["scaling"] if x["mode"] == mode]
            if pts:
                ax.plot([p["actors"] for p in pts], [p["env_steps_per_s"] for p in pts], marker, label=mode)
        one = [p for p in r["scaling"] if p["mode"] == "sampling" and p["actors"] == 1]
        if one:
            xs = [p["actors"] for p in r["scaling"] if p["mode"] == "sampling"]
            ax.plot(xs, [one[0]["env_steps_per_s"] * x for x in xs], ":", color="grey", label="linear")
        ax.axvline(result["machine"]["cores"] - 1, color="red", lw=0.8, ls="--", label="cores - 1")
        ax.set_xlabel("actor ranks")
        ax.set_ylabel("env steps/s")
        ax.set_title(f"{name} ({result['machine']['cores']} cores, shared)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--envs", default="cartpole,quadrant")
    p.add_argument("--actors", default=None, help="actor counts (default 1, 2, 4, ... up to cores, plus cores+1)")
    p.add_argument("--seconds", type=float, default=8.0, help="measuring time per scaling point")
    p.add_argument("--role-seconds", type=float, default=3.0, help="time per role benchmark")
    p.add_argument("--train-steps", type=int, default=600000, help="env steps of each CartPole training run")
    p.add_argument("--skip", default="", help="comma list of parts to skip: roles,latency,sampling,train "
                                               "(roles includes the concurrency probe)")
    p.add_argument("--out", default="runs/bench_scaling.json")
    p.add_argument("--plot", default=None, help="PNG path (default: --out with .png)")
    p.add_argument("--mpi-worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    from srljax.dataflow.launch.process import configure_process
    configure_process()
    if args.mpi_worker == "pingpong":
        mpi_pingpong()
        return 0
    if args.mpi_worker == "actor_loop":
        actor_loop(args.envs, args.seconds)
        return 0
    if args.mpi_worker == "sampling":
        mpi_sampling(args.envs, args.seconds, warmup=2.0)
        return 0
    cores = os.cpu_count() or 1
    if args.actors:
        counts = [int(x) for x in args.actors.split(",")]
    else:
        counts, n = [], 1
        while n < cores:
            counts.append(n)
            n *= 2
        counts += [c for c in (cores - 1, cores, cores + 1) if c >= 1 and c not in counts]
    skip = set(filter(None, args.skip.split(",")))
    result = {"machine": {"cores": cores, "cpu": platform.processor() or platform.machine(),
                          "loadavg_start": os.getloadavg(), "time": time.strftime("%Y-%m-%d %H:%M:%S")},
              "settings": {"ring": RING, "posts_per_update": POSTS_PER_UPDATE, "envs": ENVS,
                           "seconds": args.seconds, "actor_counts": counts},
              "envs": {}}
    if "latency" not in skip:
        print("latency ...", file=sys.stderr)
        result["latency"] = latency(args.seconds)
    for name in args.envs.split(","):
        r = result["envs"][name] = {"env": ENVS[name]["id"]}
        if "roles" not in skip:
            print(f"{name}: roles ...", file=sys.stderr)
            with LoadProbe() as probe:
                r["actor"] = bench_actor(name, args.role_seconds)
                for role, fn in (("policy", bench_policy), ("trainer", bench_trainer)):
                    try:
                        r[role] = fn(name, args.role_seconds)
                    except Exception as exc:  # noqa: BLE001 - record and go on with the rest
                        r[role] = {"error": f"{type(exc).__name__}: {exc}"}
            r["roles_others_cores"] = probe.others_cores
            if cores > 1:
                r["concurrency"] = concurrency(name, args.role_seconds * ENVS[name].get("window", 1.0), cores)
        r["scaling"] = []
        if "sampling" not in skip:
            r["scaling"] += scaling(name, counts, args.seconds)
        if name == "cartpole" and "train" not in skip:
            r["scaling"] += scaling_full([c for c in counts if c + 2 <= max(cores, 4) + 1], args.train_steps)
    result["machine"]["loadavg_end"] = os.getloadavg()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    png = args.plot or os.path.splitext(args.out)[0] + ".png"
    plot(result, png)
    print(f"wrote {args.out} and {png}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
