"""Capacity model: throughput of an srljax layout from the per-role figures of bench_scaling.py.

    python scripts/capacity_model.py [runs/bench_scaling.json]            # prediction vs measured
    python scripts/capacity_model.py BENCH --cluster CORES GPUS [--env quadrant] [--gpu-speedup 100]
    python scripts/capacity_model.py BENCH --srl                           # SRL's hide-and-seek scale

Every worker costs CPU time per env step, measured one role at a time (docs/capacity_model.md):
actor `a` (simulation, plus one copy of its sample bytes into the stream), policy worker `p(k)`
(per env step when one call serves k requests), trainer `t` (the update), ingest `i` (receiving a
sample and copying it into the update batch). A job whose ranks get `c` cores between them (the
machine's cores less what other jobs used meanwhile) runs at

    X = min( min(N, c) / a,  P / p(k),  T / (t + i),  c / (a + p(k) + t + i) )

with N actors, P policy workers, T trainers (sampling runs: one ingesting rank, cost i, no policy
or trainer): each stage's own limit (a rank is at most one core busy), and the shared CPU. The
smallest term names the bottleneck.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Dict, List, Optional

RING = 2


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
        self.a = 1.0 / actor["env_steps_per_cpu_s"] + self.copy        # simulate + send
        self.i = 2 * self.copy                                         # receive + copy into the batch
        self.t = 1.0 / r["trainer"]["env_steps_per_cpu_s"] if "env_steps_per_cpu_s" in r.get("trainer", {}) else None
        self.policy_rows = sorted(r.get("policy", {}).get("batches", []), key=lambda x: x["requests_per_call"])

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
        stages = {"actors": (actors, roles.a), "policy": (policy_workers, roles.p(k)),
                  "trainer": (trainers, roles.t + roles.i)}
    # A work-conserving scheduler: any load with every rank at most one core busy and the ranks
    # together within the cores is served (ranks waiting on others leave their share to them).
    limits = {name: min(n, cores) / cost for name, (n, cost) in stages.items()}
    limits["cpu"] = cores / sum(cost for _, cost in stages.values())
    bottleneck = min(limits, key=limits.get)
    return {"env_steps_per_s": limits[bottleneck], "bottleneck": bottleneck, "ranks": ranks, "cores": cores,
            **{f"limit_{k}": v for k, v in limits.items()}}


def check(bench: dict) -> List[dict]:
    """Prediction against every measured scaling point of the bench (cores: what the job could use)."""
    rows = []
    for env, r in bench["envs"].items():
        if "actor" not in r:
            continue
        roles = Roles(bench, env)
        for pt in r.get("scaling", []):
            if pt["mode"] == "train" and roles.t is None:
                continue
            cores = pt.get("cores_available", bench["machine"]["cores"])
            pred = predict(roles, pt["mode"], pt["actors"], cores)
            err = (pred["env_steps_per_s"] - pt["env_steps_per_s"]) / pt["env_steps_per_s"]
            rows.append({"env": env, "mode": pt["mode"], "actors": pt["actors"], "ranks": pred["ranks"],
                         "cores_available": cores, "measured": pt["env_steps_per_s"],
                         "predicted": pred["env_steps_per_s"], "error": err, "bottleneck": pred["bottleneck"]})
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
            "sample_bytes_per_s": x * roles.bytes_per_step, "agents": agents}


def srl_scale(bench: dict, gpu_speedup: float, full_steps_per_core: float = 1200.0) -> Dict[str, dict]:
    """SRL's hide-and-seek run: 960 actor workers x 20 games, trainer batches of 64k chunks."""
    out = {}
    for variant, agents in (("quadrant", 4), ("full", 6)):
        roles = Roles(bench, "quadrant")
        scale = 1.0
        if variant == "full":       # docs/hide_and_seek.md: full game ~1,200 steps/s per core at 16-64 envs
            scale = (1.0 / full_steps_per_core) / (1.0 / bench["envs"]["quadrant"]["actor"]["env_steps_per_cpu_s"])
        a = roles.a * scale
        x = 960 / a                                              # env (game) steps/s, one core per actor
        bytes_step = roles.bytes_per_step * (6 / 4) * (294 / 132 if variant == "full" else 1.0)
        k, p = roles.best_p()
        t = roles.t + roles.i
        chunk_len = 10
        agent_steps_update = 65536 * chunk_len
        updates_per_s = x * agents / agent_steps_update if variant == "full" else x * 4 / agent_steps_update
        out[variant] = {
            "actors": 960, "games_per_actor": 20, "env_steps_per_s": x, "agent_steps_per_s": x * agents,
            "sample_GBps": x * bytes_step / 1e9,
            "sample_MBps_per_actor": bytes_step / a / 1e6,
            "policy_cpu_cores": x * p * (agents / 4) * (scale if variant == "full" else 1.0),
            "policy_gpus": x * p * (agents / 4) / gpu_speedup,
            "trainer_cpu_cores": x * t * (agents / 4),
            "trainer_gpus": x * t * (agents / 4) / gpu_speedup,
            "updates_per_s_at_64k_chunks": updates_per_s,
            "agent_steps_per_update": agent_steps_update,
        }
    return out


# ----------------------------------------------------------------------------- CLI

def _print_check(rows: List[dict]) -> float:
    print(f"{'env':9} {'mode':8} {'actors':>6} {'ranks':>5} {'cores':>5} {'measured':>10} {'predicted':>10} "
          f"{'error':>7}  bottleneck")
    worst = 0.0
    for r in rows:
        worst = max(worst, abs(r["error"]))
        print(f"{r['env']:9} {r['mode']:8} {r['actors']:>6} {r['ranks']:>5} {r['cores_available']:>5.2f} "
              f"{r['measured']:>10,.0f} {r['predicted']:>10,.0f} {100 * r['error']:>+6.1f}%  {r['bottleneck']}")
    print(f"worst error {100 * worst:.1f}% over {len(rows)} points")
    return worst


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bench", nargs="?", default="runs/bench_scaling.json")
    ap.add_argument("--cluster", nargs=2, type=int, metavar=("CORES", "GPUS"))
    ap.add_argument("--env", default="quadrant")
    ap.add_argument("--gpu-speedup", type=float, default=100.0,
                    help="one accelerator = this many CPU cores of the measured policy/trainer (assumed)")
    ap.add_argument("--srl", action="store_true", help="SRL's hide-and-seek scale")
    args = ap.parse_args(argv)
    with open(args.bench) as f:
        bench = json.load(f)
    if args.cluster:
        plan = plan_cluster(Roles(bench, args.env), args.cluster[0], args.cluster[1], args.gpu_speedup)
        print(json.dumps(plan, indent=1))
    elif args.srl:
        print(json.dumps(srl_scale(bench, args.gpu_speedup), indent=1))
    else:
        _print_check(check(bench))
    return 0


if __name__ == "__main__":
    sys.exit(main())
