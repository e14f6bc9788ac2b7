"""Fault soak for distributed mode: a long run with every rank's memory sampled, then rank faults.

    python scripts/soak.py --minutes 30 --tries 10 --ranks 4 --seed 0 --out soak_out

1. Memory: `mpirun -n RANKS python scripts/train.py --config CONFIG` with no return target and a
   budget it cannot reach, for MINUTES; every SAMPLE_S seconds the resident memory (VmRSS from
   /proc/PID/status) of every rank's worker process (RUN_DIR/ranks.json) goes to OUT/rss.csv.
   Then Ctrl-C (SIGINT to mpirun). Per rank: RSS WARMUP_MINUTES after the first metrics row, at
   the end, and the least-squares slope in between; both the growth and the fitted growth must
   stay below MAX_GROWTH_MB.
2. Faults: TRIES fresh runs (distributed.stuck_after_s=STUCK_S, a checkpoint per metrics line).
   Once a run has a checkpoint and has logged a random 0..FAULT_STEPS env steps, a random
   non-lead rank (not rank 0) gets SIGKILL or SIGSTOP (random choice). The job must exit non-zero
   within STUCK_S + 10 s, stderr naming that rank and role (`was killed by signal 9` / `is
   stuck`) and no other rank as failed, killed or stuck. `--resume` of that run directory with
   distributed.stop_at_return=TARGET and RESUME_STEPS more env steps must exit 0 at either.

Prints one line per sample and per try, then summary tables; OUT/soak.json holds every figure.
Exit code 0 when every check passed, 1 when one failed, 2 for bad options (nothing written).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIG_BUDGET = 10 ** 12                  # env steps no run reaches: the run ends by Ctrl-C or by a fault
FAULT_LINE = re.compile(r"srljax: rank (\d+) \(([^,)]+)(?:, pid \d+)?\) "
                        r"(was killed|is stuck|failed|did not|has not)")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=30.0, help="length of the memory run (0: skip it)")
    p.add_argument("--warmup-minutes", type=float, default=5.0,
                   help="growth is measured from the RSS this long after the first metrics row (at most a third "
                   "of --minutes)")
    p.add_argument("--sample-s", type=float, default=10.0, help="seconds between RSS samples")
    p.add_argument("--max-growth-mb", type=float, default=8.0, help="allowed RSS growth per rank after the warm-up")
    p.add_argument("--tries", type=int, default=10, help="fault tries (0: skip them)")
    p.add_argument("--ranks", type=int, default=4, help="mpirun -n")
    p.add_argument("--config", default="gym_cartpole", help="a distributed named config")
    p.add_argument("--seed", type=int, default=0, help="seeds the runs and the fault choices")
    p.add_argument("--out", required=True, help="output directory (must not exist or be empty)")
    p.add_argument("--stuck-after-s", type=float, default=20.0, help="distributed.stuck_after_s of the fault runs")
    p.add_argument("--fault-steps", type=int, default=150_000,
                   help="the fault comes once the run has logged a random 0..this many env steps (after a checkpoint)")
    p.add_argument("--signals", default="kill,stop", choices=["kill,stop", "kill", "stop"],
                   help="the faults drawn from: SIGKILL, SIGSTOP or either")
    p.add_argument("--target-return", type=float, default=475.0, help="the resumed run's stop_at_return")
    p.add_argument("--resume-steps", type=int, default=500_000, help="the resumed run's budget past its checkpoint")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra override for every run")
    args = p.parse_args(argv)
    out = Path(args.out)
    problems = [(args.minutes < 0, "--minutes must be >= 0"), (args.sample_s <= 0, "--sample-s must be > 0"),
                (args.tries < 0, "--tries must be >= 0"), (args.ranks < 3, "--ranks must be >= 3"),
                (args.stuck_after_s <= 0, "--stuck-after-s must be > 0"), (args.fault_steps < 0, "--fault-steps "
                 "must be >= 0"), (args.resume_steps <= 0, "--resume-steps must be > 0"),
                (out.exists() and (not out.is_dir() or any(out.iterdir())), f"--out {out} exists and is not empty")]
    for bad, line in problems:
        if bad:
            p.exit(2, f"soak: error: {line}\n")
    args.warmup_minutes = min(args.warmup_minutes, args.minutes / 3)
    return args


def child_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    env.setdefault("JAX_PLATFORMS", "cpu")
    return env


class Job:
    """`mpirun -n N python scripts/train.py ARGS --run-dir DIR` in its own session, stderr to a file."""

    def __init__(self, n: int, args, run_dir: Path, log: Path):
        self.run_dir, self.log = run_dir, log
        self.cmd = ["mpirun", "-n", str(n), sys.executable, "scripts/train.py"] + list(args) + \
            ["--run-dir", str(run_dir)]
        self.err = open(log, "w")
        self.start = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=self.err, cwd=ROOT,
                                     env=child_env(), start_new_session=True)

    def ranks(self):
        path = self.run_dir / "ranks.json"
        try:
            return json.loads(path.read_text())["ranks"] if path.is_file() else None
        except (ValueError, KeyError):
            return None

    def checkpoint(self):
        return sorted((self.run_dir / "checkpoints").glob("ckpt_*.msgpack")) or None

    def wait_for(self, ready, timeout: float):
        """ready()'s first true value, or None if the job ended or `timeout` passed first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            found = ready()
            if found:
                return found
            time.sleep(0.1)
        return None

    def wait(self, timeout: float):
        """The exit code, or None after killing the whole job if it outlived `timeout`."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait()
            return None
        finally:
            self.err.close()

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def stderr(self) -> str:
        if not self.err.closed:
            self.err.flush()
        return self.log.read_text(errors="replace")

    def command(self) -> str:
        return " ".join(self.cmd[:3] + ["python"] + self.cmd[4:])


def rss_mb(pid: int):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def last_env_steps(run_dir: Path):
    path = run_dir / "metrics.jsonl"
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - 8192))
            lines = [ln for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
        return json.loads(lines[-1])["env_steps"] if lines else 0
    except (OSError, ValueError, KeyError, IndexError):
        return None


def checkpoint_meta(path: Path):
    """(env steps, mean of the last 100 episode returns) from a checkpoint's JSON header (8-byte
    little-endian length, then the JSON)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        meta = json.loads(f.read(n))["meta"]
    last = meta.get("last100") or []
    return int(meta["env_steps"]), (round(sum(last) / len(last), 1) if last else None)


def slope_per_hour(points):
    """Least-squares slope of (seconds, MB) points, in MB per hour."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return 0.0 if var == 0 else 3600.0 * sum((t - mt) * (v - mv) for t, v in points) / var


def base_args(args, seed: int):
    extra = [a for kv in args.set for a in ("--set", kv)]
    return ["--config", args.config, "--quiet", "--seed", str(seed), "--set", "distributed.stop_at_return=null",
            "--set", f"total_env_steps={BIG_BUDGET}"] + extra


def memory_run(args, out: Path) -> dict:
    job = Job(args.ranks, base_args(args, args.seed), out / "memory_run", out / "memory_run.log")
    print(f"memory run: {job.command()}", flush=True)
    ranks = job.wait_for(job.ranks, 600)
    if not ranks:
        job.kill()
        return {"ok": False, "error": f"no ranks.json (exit {job.wait(10)}): {job.stderr()[-500:]}"}
    print("ranks: " + ", ".join(f"{r['rank']} {r['role']} (pid {r['pid']})" for r in ranks), flush=True)
    samples, first_row = [], None
    t0 = time.monotonic()
    with open(out / "rss.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t_s", "rank", "role", "pid", "rss_mb", "env_steps"])
        next_at = 0.0
        while True:
            now = time.monotonic() - t0
            if job.proc.poll() is not None:
                break
            steps = last_env_steps(job.run_dir)
            if first_row is None and steps:
                first_row = now                     # the first metrics row: training has started
            row = []
            for r in ranks:
                mb = rss_mb(r["pid"])
                if mb is not None:
                    samples.append((now, r["rank"], mb))
                    w.writerow([f"{now:.1f}", r["rank"], r["role"], r["pid"], f"{mb:.2f}", steps])
                row.append(f"r{r['rank']} {mb:.1f}" if mb is not None else f"r{r['rank']} gone")
            f.flush()
            print(f"t={now:7.0f}s env_steps={steps} RSS MB: " + ", ".join(row), flush=True)
            if now >= args.minutes * 60:
                break
            next_at += args.sample_s
            time.sleep(max(0.0, next_at - (time.monotonic() - t0)))
    alive = job.proc.poll() is None
    if alive:
        job.proc.send_signal(signal.SIGINT)
    rc = job.wait(60)
    err = job.stderr()
    result = {"command": job.command(), "seconds": round(time.monotonic() - t0, 1), "ranks": [],
              "alive_at_end": alive, "exit_code": rc, "env_steps": last_env_steps(job.run_dir),
              "saved_at_end": "checkpoint saved" in err}
    ok = alive and rc == 130
    warm = (first_row if first_row is not None else float("inf")) + args.warmup_minutes * 60
    result["first_metrics_row_s"] = first_row
    for r in ranks:
        mine = [(t, mb) for t, rank, mb in samples if rank == r["rank"]]
        after = [(t, mb) for t, mb in mine if t >= warm]
        if len(after) < 2:
            result["ranks"].append({"rank": r["rank"], "role": r["role"], "ok": False})
            ok = False
            continue
        slope = slope_per_hour(after)
        growth = after[-1][1] - after[0][1]
        fitted = slope * (after[-1][0] - after[0][0]) / 3600.0
        good = max(growth, fitted) < args.max_growth_mb
        ok = ok and good
        result["ranks"].append({"rank": r["rank"], "role": r["role"], "pid": r["pid"],
                                "rss_start_mb": round(mine[0][1], 1), "warmup_t_s": round(after[0][0], 1),
                                "rss_warmup_mb": round(after[0][1], 1), "rss_end_mb": round(after[-1][1], 1),
                                "rss_max_after_warmup_mb": round(max(mb for _, mb in after), 1),
                                "growth_mb": round(growth, 2), "fitted_growth_mb": round(fitted, 2),
                                "slope_mb_per_h": round(slope, 2), "ok": good})
    if not ok and not alive:
        result["error"] = f"the run ended by itself (exit {rc}): {err[-800:]}"
    elif not ok and rc != 130:
        result["error"] = f"Ctrl-C did not end the run with exit 130 (got {rc}): {err[-800:]}"
    result["ok"] = ok
    return result


def fault_try(args, out: Path, i: int, rng: random.Random) -> dict:
    sig = rng.choice([{"kill": signal.SIGKILL, "stop": signal.SIGSTOP}[s] for s in args.signals.split(",")])
    rank = rng.randrange(1, args.ranks)
    fault_at = rng.randrange(0, args.fault_steps + 1)
    run_dir = out / f"try_{i:02d}"
    fault = base_args(args, args.seed + 1 + i) + ["--set", f"distributed.stuck_after_s={args.stuck_after_s:g}",
                                                   "--set", "checkpoint_every_logs=1"]
    job = Job(args.ranks, fault, run_dir, out / f"try_{i:02d}.log")
    res = {"try": i, "signal": sig.name, "rank": rank, "fault_at_steps": fault_at, "command": job.command()}
    ranks = job.wait_for(job.ranks, 600)
    ready = ranks and job.wait_for(lambda: job.checkpoint() and (last_env_steps(run_dir) or 0) >= fault_at, 900)
    if not ready:
        job.kill()
        res.update(ok=False, error=f"no ranks.json, checkpoint or env step {fault_at} (exit {job.wait(10)}): "
                   f"{job.stderr()[-500:]}")
        return res
    res.update(fault_env_steps=last_env_steps(run_dir), fault_run_s=round(time.monotonic() - job.start, 1))
    entry = next(r for r in ranks if r["rank"] == rank)
    res.update(role=entry["role"], pid=entry["pid"])
    if job.proc.poll() is not None:
        res.update(ok=False, error=f"the run ended before the fault (exit {job.proc.returncode})")
        return res
    t0 = time.monotonic()
    os.kill(entry["pid"], sig)
    limit = args.stuck_after_s + 10
    rc = job.wait(limit + 60)
    res["exit_s"] = round(time.monotonic() - t0, 1)
    res["exit_code"] = rc
    err = job.stderr()
    named = [(int(m.group(1)), m.group(2), m.group(3)) for m in FAULT_LINE.finditer(err)]
    want = "was killed" if sig == signal.SIGKILL else "is stuck"
    res["named"] = sorted({f"{r} ({role}) {what}" for r, role, what in named})
    res["right_rank_named"] = (rank, entry["role"], want) in named and all(r == rank for r, _, _ in named)
    if sig == signal.SIGSTOP:                       # a stopped process outlives the job otherwise
        for r in ranks:
            try:
                os.kill(r["pid"], signal.SIGCONT)
            except ProcessLookupError:
                pass
    res["ended_in_time"] = rc is not None and res["exit_s"] <= limit
    if rc is None:
        res["error"] = f"the job was still running {limit + 60:.0f} s after the fault"
    at, res["checkpoint_return"] = checkpoint_meta(job.checkpoint()[-1])
    res["checkpoint_env_steps"] = at
    budget = at + args.resume_steps
    again = Job(args.ranks, ["--resume", "--quiet", "--set", f"distributed.stop_at_return={args.target_return:g}",
                             "--set", f"total_env_steps={budget}"] + [a for kv in args.set for a in ("--set", kv)],
                run_dir, out / f"try_{i:02d}_resume.log")
    res["resume_command"] = again.command()
    r_rc = again.wait(1800)
    res["resume_s"] = round(time.monotonic() - again.start, 1)
    res["resume_exit_code"] = r_rc
    summary = run_dir / "summary.json"
    s = json.loads(summary.read_text()) if summary.is_file() else {}
    res["resume_return"] = s.get("episode_return")
    res["resume_env_steps"] = s.get("env_steps")
    reached = (s.get("resumed_from_env_steps") == at and
               ((s.get("episode_return") or 0) >= args.target_return or (s.get("env_steps") or 0) >= budget))
    res["resume_reached"] = "return" if (s.get("episode_return") or 0) >= args.target_return else \
        ("budget" if reached else "no")
    res["resume_ok"] = r_rc == 0 and reached
    if r_rc != 0:
        res["resume_error"] = again.stderr()[-800:]
    res["ok"] = bool(rc not in (None, 0) and res["ended_in_time"] and res["right_rank_named"] and res["resume_ok"])
    return res


def fmt_try(r: dict) -> str:
    if "exit_s" not in r:
        return f"try {r['try']:2d}: {r['signal']} rank {r['rank']}: FAILED: {r.get('error', '')[:300]}"
    ret = r.get("resume_return")
    return (f"try {r['try']:2d}: {r['signal']:7s} rank {r['rank']} ({r.get('role')}) at env step "
            f"{r['fault_env_steps']:,}: exit {r['exit_code']} after {r['exit_s']:5.1f}s, named {r['named']}; "
            f"resume from {r['checkpoint_env_steps']:,} (return {r['checkpoint_return']}): "
            f"exit {r['resume_exit_code']}, return {'-' if ret is None else f'{ret:.1f}'}, "
            f"{r['resume_env_steps'] or 0:,} env steps, {r['resume_s']}s -> {'ok' if r['ok'] else 'FAILED'}")


def report(mem, tries, args) -> None:
    if mem:
        print(f"\nmemory: {mem['seconds']:.0f} s, {mem['env_steps']} env steps, exit {mem['exit_code']} after Ctrl-C, "
              f"warm-up {args.warmup_minutes:g} min, limit {args.max_growth_mb:g} MB")
        print(f"{'rank':>4} {'role':10} {'start':>8} {'warm-up':>8} {'end':>8} {'max':>8} {'growth':>7} "
              f"{'fitted':>7} {'MB/h':>7}  ok")
        for r in mem["ranks"]:
            if "rss_end_mb" not in r:
                print(f"{r['rank']:>4} {r['role']:10} (too few samples)")
                continue
            print(f"{r['rank']:>4} {r['role']:10} {r['rss_start_mb']:8.1f} {r['rss_warmup_mb']:8.1f} "
                  f"{r['rss_end_mb']:8.1f} {r['rss_max_after_warmup_mb']:8.1f} {r['growth_mb']:7.2f} "
                  f"{r['fitted_growth_mb']:7.2f} {r['slope_mb_per_h']:7.2f}  {'yes' if r['ok'] else 'NO'}")
        if mem.get("error"):
            print("memory run: " + mem["error"])
    if tries:
        print(f"\nfaults (distributed.stuck_after_s={args.stuck_after_s:g}, limit {args.stuck_after_s + 10:g} s):")
        print(f"{'try':>3} {'signal':7} {'rank':>4} {'role':9} {'at step':>9} {'exit':>4} {'secs':>6} {'named':>5} "
              f"{'from':>9} {'ret':>6} {'resume':>6} {'return':>7} {'env steps':>11} {'secs':>6}  ok")
        for r in tries:
            if "exit_s" not in r:
                print(f"{r['try']:>3} {r['signal']:7} {r['rank']:>4} FAILED before the fault")
                continue
            ret = r["resume_return"]
            print(f"{r['try']:>3} {r['signal']:7} {r['rank']:>4} {r['role']:9} {r['fault_env_steps']:>9,} "
                  f"{str(r['exit_code']):>4} {r['exit_s']:6.1f} {'yes' if r['right_rank_named'] else 'NO':>5} "
                  f"{r['checkpoint_env_steps']:>9,} {str(r['checkpoint_return']):>6} {str(r['resume_exit_code']):>6} "
                  f"{'-' if ret is None else f'{ret:.1f}':>7} {r['resume_env_steps'] or 0:>11,} "
                  f"{r['resume_s']:6.1f}  {'yes' if r['ok'] else 'NO'}")


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    result = {"options": vars(args), "load_average_start": os.getloadavg()}
    mem = memory_run(args, out) if args.minutes > 0 else None
    result["memory"] = mem
    tries = []
    for i in range(args.tries):
        tries.append(fault_try(args, out, i, rng))
        print(fmt_try(tries[-1]), flush=True)
        result["tries"] = tries
        (out / "soak.json").write_text(json.dumps(result, indent=1))
    result["load_average_end"] = os.getloadavg()
    result["ok"] = (mem is None or mem["ok"]) and all(t["ok"] for t in tries)
    (out / "soak.json").write_text(json.dumps(result, indent=1))
    report(mem, tries, args)
    print(f"\nsoak: {'all checks passed' if result['ok'] else 'FAILED'}; figures in {out / 'soak.json'}"
          + (f", RSS samples in {out / 'rss.csv'}" if mem else ""))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
