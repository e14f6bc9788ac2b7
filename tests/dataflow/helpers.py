"""Shared bits for the dataflow tests: running mpirun as a subprocess with a hard timeout."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def subprocess_env(**extra) -> dict:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE), env.get("PYTHONPATH", "")])
    env.update({k: str(v) for k, v in extra.items()})
    return env


def mpirun(n: int, args, timeout: float, **env_extra):
    """Run `mpirun -n N python ARGS...`; a hang past `timeout` kills the whole job and fails the test.

    Returns (returncode, stdout, stderr, seconds).
    """
    cmd = ["mpirun", "-n", str(n), sys.executable] + [str(a) for a in args]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env=subprocess_env(**env_extra), start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"mpirun -n {n} {' '.join(map(str, args))} hung past {timeout} s\n"
                             f"stdout:\n{out[-3000:]}\nstderr:\n{err[-3000:]}")
    return proc.returncode, out, err, time.monotonic() - start


def on_four_devices(script: str, env) -> dict:
    """Run a check script of this folder on 4 forced host devices; its last line as JSON."""
    import json
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4 --xla_cpu_multi_thread_eigen=false"
    out = subprocess.run([sys.executable, str(Path(__file__).with_name(script))], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])
