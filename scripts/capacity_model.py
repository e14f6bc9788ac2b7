"""Capacity model: throughput of an srljax layout from the per-role figures of bench_scaling.py.

    python scripts/capacity_model.py [runs/bench_scaling.json]            # prediction vs measured
    python scripts/capacity_model.py BENCH --cluster CORES GPUS [--env quadrant] [--gpu-speedup 100]
    python scripts/capacity_model.py BENCH --srl                           # SRL's hide-and-seek scale

Every worker costs CPU time per env step, measured one role at a time (docs/capacity_model.md):
actor `a` (simulation, plus one copy of its sample bytes into the stream), policy worker `p(k)`
(per env step when one call serves k requests), trainer `t` (the update), ingest `i` (receiving a
sample and copying it into the update batch). Inside a training run each role also pays for its
waiting turns, replies and parameter traffic: `o_a`, `o_p`, `o_t`, taken from the per-rank CPU
of the 1-actor training run (the training curve's calibration point). A job whose ranks get `c`
cores between them runs at

    X = s(c) x min( min(N, c) / a',  P / p',  T / t',  c / (a' + p' + t') )
    a' = a + o_a,  p' = p(k) + o_p,  t' = t + i + o_t

where s(c) is how fast each busy core works when c are busy at once, relative to one alone
(measured by bench_scaling's concurrency probe: 1 at one core, its `efficiency` with every core
busy, linear between), with N actors, P policy workers, T trainers (sampling runs: one ingesting
rank, cost i, no policy or trainer): each stage's own limit (a rank is at most one core busy),
and the shared CPU. Without per-rank figures in the bench, an assumed handoff cost `h` (the
policy worker and the actor each re-testing 200 us per inference round, `launch.Backoff`:
2 x 200 us / B per env step) stands in for `o_p` (session 2 found it 3-6x too large). The
smallest term names the bottleneck.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Dict, List, Optional

RING = 2
SPIN_S = 2e-4     # srljax.dataflow.launch.waiting.Backoff: a rank that runs out of work re-tests for 200 us first


# ----------------------------------------------------------------------------- role costs

class Roles:
    """CPU seconds per env step of each role of one env, read from a bench_scaling.py result."""

    def __init__(self, bench: dict, env: str):
        r = bench["envs"][env]
        self.env = env
        actor = r["actor"]
        self.bytes_per_step = actor["sample_bytes_per_env_step"]
        self.message_bytes = actor["sample_message_bytes"]
        self.bandwidth = bandwidth(bench, self.message_bytes)          # bytes/s, shared memory
        self.copy = self.bytes_per_step / self.bandwidth               # one copy of a step's bytes
        # One actor rank's CPU per env step posting over the real stream (the 1-actor sampling run),
        # else the actor alone in one process plus one copy of its bytes.
        one = [p for p in r.get("scaling", []) if p["mode"] == "sampling" and p["actors"] == 1
               and p.get("actor_cpu_us_per_step")]
        self.a_alone = 1.0 / actor["env_steps_per_cpu_s"] + self.copy
        self.a = one[0]["actor_cpu_us_per_step"] * 1e-6 if one else self.a_alone
        self.a_source = "1-actor sampling run" if one else "actor alone"
        e = bench.get("settings", {}).get("envs", {}).get(env, {})
        self.T, self.B = e.get("T", 32), e.get("B", 32)
        # receive + copy into the batch, and the ingesting rank's spin while it waits for the next message
        self.i = 2 * self.copy + SPIN_S / (self.T * self.B)
        # Each inference round (one per B env steps) leaves the policy worker and the actor idle for a
        # moment: each spins (re-tests) before it sleeps. The assumed cost, used only when the bench
        # has no per-rank CPU of a training run (measured `overheads` replace it).
        self.handoff = 2 * SPIN_S / self.B
        self.t = 1.0 / r["trainer"]["env_steps_per_cpu_s"] if "env_steps_per_cpu_s" in r.get("trainer", {}) else None
        self.policy_rows = sorted(r.get("policy", {}).get("batches", []), key=lambda x: x["requests_per_call"])
        # What a role costs inside a training run beyond its bench figure (waiting turns, replies,
        # parameter publishing and loading, metrics), per env step, from the per-rank CPU of the
        # 1-actor training run: the calibration point of the training curve.
        # Without per-rank figures: the assumed handoff on the policy worker, nothing on the others.
        self.overheads: Dict[str, float] = {"actor": 0.0, "policy": self.handoff, "trainer": 0.0}
        self.overheads_from: Optional[int] = None
        cal = [p for p in r.get("scaling", []) if p["mode"] == "train" and p.get("role_cpu_us_per_step")]
        if cal and self.t is not None and self.policy_rows:
            pt = min(cal, key=lambda p: p["actors"])
            run = {k: v * 1e-6 for k, v in pt["role_cpu_us_per_step"].items()}
            k = pt["actors"] * RING / 2
            self.overheads = {"actor": run["actors"] - self.a, "policy": run["policy"] - self.p(k),
                              "trainer": run["trainer"] - self.t - self.i}
            self.overheads_from = pt["actors"]
        conc = r.get("concurrency") or {}
        self.conc_procs, self.conc_eff = conc.get("processes", 1), conc.get("efficiency", 1.0)

    def speed(self, cores: float) -> float:
        """Work per busy core when `cores` cores are busy at once, relative to one alone: 1 at one
        core, the measured concurrency efficiency at the probe's process count, linear between
        (a job that used 1.3 of 2 cores had both busy about 30% of the time)."""
        if cores <= 1 or self.conc_procs <= 1:
            return 1.0
        w = min((cores - 1) / (self.conc_procs - 1), 1.0)
        return 1.0 - w * (1.0 - self.conc_eff)

    def p(self, k: float) -> Optional[float]:
        """Policy CPU s per env step when a call answers k requests (log-linear between measured k)."""
        rows = self.policy_rows
        if not rows:
            return None
        ks = [x["requests_per_call"] for x in rows]
        cost = [1.0 / x["env_steps_per_cpu_s"] for x in rows]
        k = min(max(k, ks[0]), ks[-1])
        for (k0, c0), (k1, c1) in zip(zip(ks, cost), zip(ks[1:], cost[1:])):
            if k0 <= k <= k1:
                w = (math.log(k) - math.log(k0)) / (math.log(k1) - math.log(k0))
                return c0 + w * (c1 - c0)
        return cost[0]

    def best_p(self):
        """(k, cost) of the policy batch with the least CPU per env step."""
        k = min(self.policy_rows, key=lambda x: 1.0 / x["env_steps_per_cpu_s"])["requests_per_call"]
        return k, self.p(k)


def bandwidth(bench: dict, size: float) -> float:
    """Shared-memory bytes/s for a message of `size` bytes (the largest measured size at or below it)."""
    rows = bench.get("latency", {}).get("shared_memory", {}).get("rows") or [{"bytes": 1 << 20, "GBps": 1.0}]
    fit = [r for r in rows if r["bytes"] <= size] or rows[:1]
    return max(fit, key=lambda r: r["bytes"])["GBps"] * 1e9


# ----------------------------------------------------------------------------- one machine

def predict(roles: Roles, mode: str, actors: int, cores: float, policy_workers: int = 1,
            trainers: int = 1) -> Dict[str, float]:
    """Env steps/s of a layout on `cores` cores; `mode` 'sampling' (actors -> one ingesting rank)
    or 'train' (actors, policy workers, trainers). Returns the rate and every stage's limit."""
    if mode == "sampling":
        ranks = actors + 1
        stages = {"actors": (actors, roles.a), "ingest": (1, roles.i)}
    else:
        ranks = actors + policy_workers + trainers
        k = actors * RING / (2 * policy_workers)        # about half the ring slots wait at a time
        o = roles.overheads
        stages = {"actors": (actors, roles.a + o["actor"]), "policy": (policy_workers, roles.p(k) + o["policy"]),
                  "trainer": (trainers, roles.t + roles.i + o["trainer"])}
    # A work-conserving scheduler: any load with every rank at most one core busy and the ranks
    # together within the cores is served (ranks waiting on others leave their share to them).
    # Per-step costs are measured with one core busy; with several busy at once each does less
    # (`Roles.speed`, the machine's measured concurrency efficiency).
    speed = roles.speed(cores)
    limits = {name: min(n, cores) * speed / cost for name, (n, cost) in stages.items()}
    limits["cpu"] = cores * speed / sum(cost for _, cost in stages.values())
    bottleneck = min(limits, key=limits.get)
    return {"env_steps_per_s": limits[bottleneck], "bottleneck": bottleneck, "ranks": ranks, "cores": cores,
            "speed": speed,
            **{f"limit_{k}": v for k, v in limits.items()}}


def check(bench: dict, cores_from: str = "used") -> List[dict]:
    """Prediction against every measured scaling point of the bench (cores: what the job could use)."""
    rows = []
    for env, r in bench["envs"].items():
        if "actor" not in r:
            continue
        roles = Roles(bench, env)
        for pt in r.get("scaling", []):
            if pt["mode"] == "train" and roles.t is None:
                continue
            # The cores the job's processes got: other jobs share this machine; on a dedicated one,
            # this is min(ranks, cores).
            # `cores_from` "available": the machine's cores less what other jobs used (no figure of
            # the run itself goes in).
            cores = pt.get("cores_used") if cores_from == "used" else None
            cores = cores or pt.get("cores_available") or bench["machine"]["cores"]
            pred = predict(roles, pt["mode"], pt["actors"], cores)
            err = (pred["env_steps_per_s"] - pt["env_steps_per_s"]) / pt["env_steps_per_s"]
            rows.append({"env": env, "mode": pt["mode"], "actors": pt["actors"], "ranks": pred["ranks"],
                         "cores_available": cores, "measured": pt["env_steps_per_s"],
                         "predicted": pred["env_steps_per_s"], "error": err, "bottleneck": pred["bottleneck"],
                         "calibration": (pt["mode"] == "sampling" and pt["actors"] == 1 and roles.a_source != "actor alone")
                         or (pt["mode"] == "train" and pt["actors"] == roles.overheads_from)})
    return rows


# ----------------------------------------------------------------------------- a cluster

def plan_cluster(roles: Roles, cores: int, gpus: int, gpu_speedup: float, agents: float = 1.0) -> Dict[str, float]:
    """Actors, policy workers and trainers for `cores` CPU cores and `gpus` accelerators.

    Actors get the CPU cores; policy workers and trainers run on the accelerators, each GPU worth
    `gpu_speedup` CPU cores of the measured role (an assumption: no GPU was measured). Without GPUs
    the cores are split so that every stage keeps pace (a : p : t in proportion to their costs).
    """
    k, p = roles.best_p()
    t = roles.t + roles.i
    if gpus == 0:
        total = roles.a + p + t
        actors = cores * roles.a / total
        x = cores / total
        return {"actors": actors, "policy_cores": cores * p / total, "trainer_cores": cores * t / total,
                "env_steps_per_s": x, "bottleneck": "cpu (balanced)", "policy_batch_requests": k}
    actor_rate = cores / roles.a
    gpu_policy, gpu_train = gpu_speedup / p, gpu_speedup / t          # env steps/s per GPU
    # Give the GPUs to policy and training in proportion to their cost so they saturate together.
    gpu_rate = gpus / (1 / gpu_policy + 1 / gpu_train)
    x = min(actor_rate, gpu_rate)
    return {"actors": cores, "policy_gpus": x / gpu_policy, "trainer_gpus": x / gpu_train,
            "env_steps_per_s": x, "bottleneck": "actors (CPU)" if actor_rate <= gpu_rate else "GPUs",
            "gpus_to_keep_up_with_actors": actor_rate * (1 / gpu_policy + 1 / gpu_train),
            "sample_bytes_per_s": x * roles.bytes_per_step}


HNS = {"quadrant": {"agents": 4, "obs_floats": 132}, "full": {"agents": 6, "obs_floats": 294}}
FULL_STEPS_PER_CORE = 1200.0   # docs/hide_and_seek.md: hns/full 960-1,452 env steps/s per core at 16-64 envs


def srl_scale(bench: dict, gpu_speedup: float = 100.0, nic_GBps: float = 12.5, gpus_per_host: int = 8,
              width_factor: float = 4.0, trainer_gpus: int = 32, actors: int = 960, games: int = 20,
              chunks: int = 65536, chunk_len: int = 10) -> Dict[str, dict]:
    """SRL's hide-and-seek run (960 actor workers x 20 games, 64k-chunk batches) in srljax.

    Measured inputs: one core's quadrant simulation (this bench) and full-game simulation
    (docs/hide_and_seek.md), sample bytes per step (srljax's message layout), the CPU cost per
    agent-step of policy inference and of the update for the hns_quadrant preset network
    ([64, 128]). Assumed, and named: `width_factor` (SRL's [128, 256] network costs about 4x per
    agent-step and has about 4x the parameters), `gpu_speedup` (one accelerator = this many CPU
    cores of the same work: no accelerator was measured), `nic_GBps` (100 Gb/s per host).
    """
    q = Roles(bench, "quadrant")
    params = bench["envs"]["quadrant"].get("policy", {}).get("param_count", 100_000) * width_factor
    epochs = bench["envs"]["quadrant"]["trainer"].get("epochs", 2)
    minibatches = bench["envs"]["quadrant"]["trainer"].get("minibatches", 4)
    p_agent = q.best_p()[1] / 4 * width_factor        # CPU s per agent-step
    t_agent = q.t / 4 * width_factor
    out = {}
    for variant, h in HNS.items():
        A, D = h["agents"], h["obs_floats"]
        per_core = 1.0 / q.a_alone if variant == "quadrant" else FULL_STEPS_PER_CORE
        x = actors * per_core                                    # game steps/s, one core per actor worker
        bytes_step = A * (2 * D * 4 + 5 * 4 + 4 + 4) + 8          # obs + final_obs + actions, logp, reward
        agent_steps = x * A
        policy_cores, trainer_cores = agent_steps * p_agent, agent_steps * t_agent
        policy_gpus, train_gpus = policy_cores / gpu_speedup, trainer_cores / gpu_speedup
        updates = agent_steps / (chunks * chunk_len)
        n_trainers = max(trainer_gpus, math.ceil(train_gpus))
        n_policy = max(1, math.ceil(policy_gpus))
        loads = {   # fraction of the resource each needs at this rate
            "sample ingest per trainer host (NIC)": x * bytes_step / (n_trainers / gpus_per_host) / (nic_GBps * 1e9),
            "parameter fan-out from trainer 0 (NIC)": updates * params * 4 * n_policy / (nic_GBps * 1e9),
            "gradient allreduce per trainer host (NIC)": updates * epochs * minibatches * 2 * params * 4
            * gpus_per_host / (nic_GBps * 1e9),
            f"trainer compute ({trainer_gpus} GPUs)": train_gpus / trainer_gpus,
        }
        out[variant] = {
            "actor_workers": actors, "games_per_actor": games, "env_steps_per_core": per_core,
            "env_steps_per_s": x, "agent_steps_per_s": agent_steps, "sample_bytes_per_env_step": bytes_step,
            "sample_GBps": x * bytes_step / 1e9, "sample_MBps_per_actor": per_core * bytes_step / 1e6,
            "policy_cpu_cores": policy_cores, "policy_gpus": policy_gpus,
            "trainer_cpu_cores": trainer_cores, "trainer_gpus": train_gpus,
            "agent_steps_per_update": chunks * chunk_len, "updates_per_s": updates,
            "trainer_gpu_seconds_per_update": chunks * chunk_len * t_agent / gpu_speedup,
            "param_count": params, "loads": loads, "breaks_first": max(loads, key=loads.get),
        }
    return out


# ----------------------------------------------------------------------------- CLI

_CAL = {"sampling": "  (calibration: the actor figure comes from this run)",
        "train": "  (calibration: the roles' in-run overheads come from this run)"}


def _print_check(rows: List[dict]) -> float:
    print(f"{'env':9} {'mode':8} {'actors':>6} {'ranks':>5} {'cores':>5} {'measured':>10} {'predicted':>10} "
          f"{'error':>7}  bottleneck")
    worst = 0.0
    for r in rows:
        if not r.get("calibration"):
            worst = max(worst, abs(r["error"]))
        print(f"{r['env']:9} {r['mode']:8} {r['actors']:>6} {r['ranks']:>5} {r['cores_available']:>5.2f} "
              f"{r['measured']:>10,.0f} {r['predicted']:>10,.0f} {100 * r['error']:>+6.1f}%  {r['bottleneck']}"
              f"{_CAL[r['mode']] if r.get('calibration') else ''}")
    print(f"worst error {100 * worst:.1f}% over {sum(not r.get('calibration') for r in rows)} points "
          "(calibration points excluded)")
    return worst


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench", nargs="?", default="runs/bench_scaling.json")
    ap.add_argument("--cluster", nargs=2, type=int, metavar=("CORES", "GPUS"))
    ap.add_argument("--env", default="quadrant")
    ap.add_argument("--gpu-speedup", type=float, default=100.0,
                    help="one accelerator = this many CPU cores of the measured policy/trainer (assumed)")
    ap.add_argument("--srl", action="store_true", help="SRL's hide-and-seek scale")
    ap.add_argument("--cores-from", choices=("used", "available"), default="used",
                    help="the cores each measured point is predicted for: what the job's processes got "
                         "(default), or the machine's cores less what other jobs used")
    args = ap.parse_args(argv)
    with open(args.bench) as f:
        bench = json.load(f)
    if args.cluster:
        plan = plan_cluster(Roles(bench, args.env), args.cluster[0], args.cluster[1], args.gpu_speedup)
        print(json.dumps(plan, indent=1))
    elif args.srl:
        print(json.dumps(srl_scale(bench, args.gpu_speedup), indent=1))
    else:
        _print_check(check(bench, args.cores_from))
    return 0


if __name__ == "__main__":
    sys.exit(main())
