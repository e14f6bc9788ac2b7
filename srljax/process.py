"""Process set-up shared by every layer: thread pools, the compile cache, MPI rank detection.

Numpy and the standard library only: call these before jax is imported.
"""
from __future__ import annotations

import os
import sys

THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}


def single_threaded(cpu_only: bool = True) -> None:
    """Keep this process's BLAS and XLA CPU pools to one thread (several ranks share the cores); call
    before jax starts. `cpu_only`: jax on the CPU too, unless JAX_PLATFORMS says otherwise."""
    for key, value in THREAD_ENV.items():
        if key == "XLA_FLAGS" and value not in os.environ.get(key, ""):
            os.environ[key] = (os.environ.get(key, "") + " " + value).strip()
        else:
            os.environ.setdefault(key, value)
    if cpu_only:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")


def under_mpirun() -> bool:
    """True when this process was started by mpirun/mpiexec (MPICH's hydra or Open MPI)."""
    return any(k in os.environ for k in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK"))


def mpi_rank() -> int:
    """This process's MPI rank from mpirun's environment (0 outside mpirun), without importing mpi4py."""
    for key in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK"):
        if key in os.environ:
            return int(os.environ[key])
    return 0


def is_lead() -> bool:
    """True in the process that writes the run directory and prints (rank 0, or the only process)."""
    return mpi_rank() == 0


def start_jax_on_one_core() -> None:
    """Start jax's CPU runtime with a one-thread pool, then give the process its cores back.

    XLA sizes its CPU thread pool from the process's CPU affinity when the backend starts, and
    `XLA_FLAGS` cannot shrink it: independent parts of a program (the policy and the critic of the
    hide-and-seek network) then run on pool threads at once, and ranks sharing the cores pay for
    it (measured: 1.3x the CPU time for the same update). Pinning the process to one core while
    the backend starts gives a pool of one; the affinity of every thread is restored right after,
    so the OS still places the rank's threads on any core. Does nothing once jax's backend has started, or without affinity
    support.
    """
    start_jax_on_cores(1)


def start_jax_on_cores(n: int) -> bool:
    """Start jax's CPU runtime with a pool of `n` threads (see `start_jax_on_one_core`); every
    allowed core is given back right after. False (nothing done) once the backend has started,
    without affinity support, or when `n` is not below the allowed core count."""
    if not hasattr(os, "sched_getaffinity"):
        return False
    import jax
    from jax._src import xla_bridge
    if getattr(xla_bridge, "_backends", None):
        return False                 # already started: too late to size its pool
    allowed = os.sched_getaffinity(0)
    if n >= len(allowed):
        return False
    try:
        os.sched_setaffinity(0, set(sorted(allowed)[:max(1, n)]))
        jax.devices()
    finally:
        # Every thread started meanwhile (XLA's compute thread, the runtime's helpers) inherited the
        # narrow mask: give each of them, and this thread, every allowed core again.
        tasks = os.listdir("/proc/self/task") if os.path.isdir("/proc/self/task") else []
        for tid in [0] + [int(t) for t in tasks]:
            try:
                os.sched_setaffinity(tid, allowed)
            except OSError:
                pass                 # a thread that has ended since
    return True


SMALL_FUSED_ENVS = 32
"""`cpu_threads=0` (auto) gives a fused run with at most this many envs a one-thread pool."""


def fused_cpu_threads(cfg) -> int:
    """The XLA CPU pool size for a fused-mode config: `cfg.cpu_threads`, or for 0 (auto) one
    thread when `env.num_envs <= SMALL_FUSED_ENVS`, else 0 (XLA's own: every core).

    A small fused program is a long chain of small ops; XLA runs independent ones on its pool at
    once, and handing them between threads costs more than it gains (measured on 2 cores, fused
    PPO CartPole, rollout 128: 4 envs 1.25x faster on one thread, 16 envs 1.25x, 64 envs even,
    256 envs 0.9x). A population (`seeds`, `sweep`) gets one thread too (its members' programs are
    as small; `cpu_threads` overrides). It runs on a multi-thread pool as well (a notebook's): the
    stall of 8+ members there was jaxlib's batched QR waiting on its own pool, avoided by the
    init program's `fused.loop.map_members`."""
    if cfg.mode != "fused":
        return 0
    if cfg.cpu_threads:
        return cfg.cpu_threads
    if cfg.seeds > 1 or cfg.sweep:   # a population: one thread (see the docstring)
        return 1
    return 1 if cfg.env.num_envs <= SMALL_FUSED_ENVS else 0


def fused_cpu_devices(cfg) -> int:
    """How many XLA CPU devices a fused-mode config asks for: `cfg.cpu_devices`, or for 0 the
    largest count up to the allowed cores that divides `env.num_envs`.

    XLA runs one device's program on one thread at a time, apart from the few large ops it splits
    over its pool, so a fused program of many small ops keeps about one core busy however large
    the batch. Split over one device per core, the batch's halves step and learn at once, their
    gradients averaged as over GPUs (measured on 2 cores, the hide-and-seek JAX game, 128 games:
    3,690 against 2,050 env steps/s)."""
    if cfg.mode != "fused":
        return 1
    if cfg.cpu_devices:
        return cfg.cpu_devices
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(d for d in range(1, cores + 1) if cfg.env.num_envs % d == 0)


def ask_cpu_devices(n: int) -> bool:
    """Ask jax for `n` CPU devices (before its backend starts; False, nothing done, once it has, or
    when XLA_FLAGS sets the count itself)."""
    if n <= 1 or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return False
    import jax
    from jax._src import xla_bridge
    if getattr(xla_bridge, "_backends", None):
        return False
    jax.config.update("jax_num_cpu_devices", int(n))
    return True


def prepare_fused_backend(cfg) -> None:
    """Before jax's backend starts: its CPU devices (`fused_cpu_devices`) and the size of its CPU
    pool (`fused_cpu_threads`) for a fused-mode config. Does nothing under mpirun (ranks size their
    own), or once the backend has started."""
    if under_mpirun():
        return
    ask_cpu_devices(fused_cpu_devices(cfg))
    n = fused_cpu_threads(cfg)
    if n > 0:
        start_jax_on_cores(n)


def enable_compile_cache() -> None:
    """Cache compiled XLA programs across runs (cold: seconds of compile per process; warm: ~0.1 s).

    `SRLJAX_COMPILE_CACHE=0` turns it off.
    """
    if os.environ.get("SRLJAX_COMPILE_CACHE", "1") != "0":
        cache = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "srljax", "jax")
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", cache)
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
        if "jax" in sys.modules:     # jax reads these variables when imported: tell it directly
            import jax
            if not jax.config.jax_compilation_cache_dir:
                jax.config.update("jax_compilation_cache_dir", os.environ["JAX_COMPILATION_CACHE_DIR"])
                jax.config.update("jax_persistent_cache_min_compile_time_secs",
                                  float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))
