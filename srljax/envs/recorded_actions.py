"""The simulator alone: CPU vector envs replaying recorded actions, several processes at once.

A training run's throughput is judged against what its simulators do with nothing else running
on the same cores. Random actions are not a fair yardstick for a trained policy (in hide-and-seek,
trained agents push boxes and collide more, and the physics costs more per step), so
`simulator_alone` replays a recorded action sequence: every process resets with the same seed
and steps through the same actions, so (the envs being deterministic) each replays exactly the
recorded games, and only the simulation is timed.
"""
from __future__ import annotations

import time

import numpy as np


def _replay(env_id: str, kwargs: dict, seed: int, actions: np.ndarray, barrier, results) -> None:
    """One simulator process: reset with `seed`, wait for the others, step through `actions`."""
    from srljax.process import single_threaded
    single_threaded()
    from srljax.envs.registry import make

    env = make(env_id, num_envs=actions.shape[1], seed=seed, **kwargs)
    env.reset(seed)
    barrier.wait()
    t0 = time.perf_counter()
    for a in actions:
        env.step(a)
    results.put(actions.shape[0] * actions.shape[1] / (time.perf_counter() - t0))
    env.close()


def simulator_alone(env_id: str, kwargs: dict, actions: np.ndarray, processes: int, seed: int,
                    timeout: float = 600.0) -> float:
    """Env steps/s of `processes` processes at once, each replaying `actions` [steps, E, ...] from
    `reset(seed)` (they start together, behind a barrier)."""
    import multiprocessing as mp

    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_replay, args=(env_id, dict(kwargs), seed, actions, barrier, results))
             for _ in range(processes)]
    for pr in procs:
        pr.start()
    try:
        rates = [results.get(timeout=timeout) for _ in procs]
    finally:
        for pr in procs:
            pr.join(timeout=10)
            if pr.is_alive():
                pr.kill()
    return float(sum(rates))
