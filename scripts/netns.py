"""A cluster of network-isolated "hosts" on one Linux machine, for multi-host MPI runs and tests.

    with VirtualCluster(3) as cluster:          # 3 network namespaces behind one bridge
        proc = cluster.mpirun([1, 1, 2], ["python", "-m", "srljax", "--no-run-dir", ...], timeout=60)
        cluster.counters()                       # bytes through each host's interface

Each host is a network namespace with one interface `eth1` (a veth whose peer sits on a bridge in
a switch namespace) and a private address 10.213.0.(i+1)/24. Nothing touches the machine's own
interfaces: every address and link lives inside namespaces this object makes and deletes.

`mpirun` (MPICH's hydra) runs inside host 0 and starts its proxies on the other hosts with a
launcher script in place of ssh: it enters the namespace named by the host's address. The ranks
are made to talk over TCP (libfabric's tcp provider on `eth1`, `MPIR_CVAR_NOLOCAL=1` so that no
pair of ranks uses shared memory), so every message between hosts crosses a veth.
Needs root (CAP_SYS_ADMIN) and the `ip` tool; `available()` says why not otherwise.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

SUBNET = "10.213.0"
IFACE = "eth1"
MPI_ENV = {
    "MPIR_CVAR_CH4_NETMOD": "ofi",     # libfabric ...
    "FI_PROVIDER": "tcp",              # ... over plain TCP sockets
    "FI_TCP_IFACE": IFACE,             # on the veth, whatever else the namespace has
    "MPIR_CVAR_NOLOCAL": "1",          # no shared memory between ranks, even ranks of one host
}

LAUNCHER = """#!/bin/sh
# hydra calls this in place of ssh: [-x] HOST COMMAND...; run COMMAND inside HOST's namespace.
[ "$1" = "-x" ] && shift
host=$1; shift
case "$host" in
{cases}
  *) echo "netns launcher: unknown host $host" >&2; exit 1;;
esac
exec ip netns exec "$ns" sh -c "$*"
"""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def find_mpirun(path: Optional[str] = None) -> Optional[str]:
    """mpirun on `path` (default PATH), else the one beside this Python (a venv's MPICH)."""
    return shutil.which("mpirun", path=path) or shutil.which("mpirun", path=os.path.dirname(sys.executable))


def available() -> Tuple[bool, str]:
    """(True, "") when namespaces can be made here, else (False, the reason)."""
    if sys.platform != "linux":
        return False, f"network namespaces need Linux (this is {sys.platform})"
    if shutil.which("ip") is None:
        return False, "the `ip` tool (iproute2) is not installed"
    if find_mpirun() is None:
        return False, "mpirun is neither on PATH nor beside this Python"
    name = f"srljprobe{uuid.uuid4().hex[:6]}"
    made = _ip("netns", "add", name, check=False)
    if made.returncode != 0:
        return False, f"cannot create a network namespace: {made.stderr.strip() or 'ip netns add failed'}"
    try:
        link = _ip("-n", name, "link", "add", "p0", "type", "veth", "peer", "name", "p1", check=False)
        if link.returncode != 0:
            return False, f"cannot create a veth pair: {link.stderr.strip()}"
    finally:
        _ip("netns", "delete", name, check=False)
    return True, ""


class VirtualCluster:
    """`hosts` namespaces joined by veths to a bridge; `close()` (or leaving `with`) deletes them."""

    def __init__(self, hosts: int = 2, prefix: Optional[str] = None):
        if not 1 <= hosts <= 200:
            raise ValueError(f"hosts must be 1..200, got {hosts}")
        self.tag = prefix or f"sj{uuid.uuid4().hex[:6]}"      # unique per run: parallel runs never clash
        self.hosts = [f"{self.tag}h{i}" for i in range(hosts)]
        self.switch = f"{self.tag}sw"
        self.addresses = [f"{SUBNET}.{i + 1}" for i in range(hosts)]
        self.made: List[str] = []
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.tag}-"))
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        self.launcher = self.dir / "netns-ssh"
        cases = "\n".join(f"  {a}) ns={h};;" for a, h in zip(self.addresses, self.hosts))
        self.launcher.write_text(LAUNCHER.format(cases=cases))
        self.launcher.chmod(0o755)

    def _build(self) -> None:
        _ip("netns", "add", self.switch)
        self.made.append(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        for i, (ns, addr) in enumerate(zip(self.hosts, self.addresses)):
            _ip("netns", "add", ns)
            self.made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            # Made inside the host's namespace (never in the machine's own), the peer moved to the switch.
            _ip("-n", ns, "link", "add", IFACE, "type", "veth", "peer", "name", f"port{i}")
            _ip("-n", ns, "link", "set", f"port{i}", "netns", self.switch)
            _ip("-n", ns, "addr", "add", f"{addr}/24", "dev", IFACE)
            _ip("-n", ns, "link", "set", IFACE, "up")
            _ip("-n", self.switch, "link", "set", f"port{i}", "master", "br0")
            _ip("-n", self.switch, "link", "set", f"port{i}", "up")

    # -- use -----------------------------------------------------------------------------------
    def counters(self) -> Dict[str, Tuple[int, int]]:
        """{host address: (rx bytes, tx bytes)} of each host's `eth1`, read from its own sysfs."""
        out = {}
        for ns, addr in zip(self.hosts, self.addresses):
            text = subprocess.run(["ip", "netns", "exec", ns, "cat", f"/sys/class/net/{IFACE}/statistics/rx_bytes",
                                   f"/sys/class/net/{IFACE}/statistics/tx_bytes"],
                                  capture_output=True, text=True, check=True, timeout=30).stdout.split()
            out[addr] = (int(text[0]), int(text[1]))
        return out

    def mpirun_argv(self, ranks_per_host: Sequence[int], command: Sequence[str],
                    mpirun: str = "mpirun") -> List[str]:
        """The command line that runs `command` with ranks_per_host[i] ranks on host i (ranks in host order)."""
        if len(ranks_per_host) > len(self.hosts):
            raise ValueError(f"{len(ranks_per_host)} hosts asked for, the cluster has {len(self.hosts)}")
        hosts = ",".join(f"{a}:{k}" for a, k in zip(self.addresses, ranks_per_host) if k > 0)
        env = [f"{k}={v}" for k, v in MPI_ENV.items()]
        return (["ip", "netns", "exec", self.hosts[0], "env", *env, mpirun, "-launcher", "ssh",
                 "-launcher-exec", str(self.launcher), "-iface", IFACE, "-hosts", hosts,
                 "-n", str(sum(ranks_per_host))] + [str(c) for c in command])

    def mpirun(self, ranks_per_host: Sequence[int], command: Sequence[str], timeout: float,
               env: Optional[dict] = None, cwd: Optional[str] = None) -> Tuple[int, str, str, float]:
        """Run the job to completion; past `timeout` the whole job is killed and TimeoutError raised.

        Returns (returncode, stdout, stderr, seconds).
        """
        argv = self.mpirun_argv(ranks_per_host, command, find_mpirun((env or os.environ).get("PATH")) or "mpirun")
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
                                start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise TimeoutError(f"multi-host mpirun hung past {timeout} s\nstdout:\n{out[-3000:]}\n"
                               f"stderr:\n{err[-3000:]}") from None
        return proc.returncode, out, err, time.monotonic() - start

    def close(self) -> None:
        """Delete the namespaces (their veths and bridge go with them) and the launcher script."""
        for ns in reversed(self.made):
            _ip("netns", "delete", ns, check=False)
        self.made = []
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "VirtualCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def leftover_namespaces(prefix: str = "sj") -> List[str]:
    """Namespaces named like ours (a test can check that it left none behind)."""
    listing = _ip("netns", "list", check=False).stdout.split("\n")
    return [line.split()[0] for line in listing if line.strip() and line.split()[0].startswith(prefix)]
