"""Numerical guard for CPU envs: non-finite observations or rewards stop the run or reset the env.

An actor checks every step of every env batch (`np.isfinite` on the arrays it is about to post:
microseconds). With `env.on_nonfinite="stop"` (the default) the first bad value ends the run with
an error naming the env id, the env's index and its step; with `"reset"` the env batch holding it
is reset, the bad values never reach the learner, and the event is counted (`env_resets` in the
sample message, `nonfinite_env_resets` in the metrics).
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np

from srljax.errors import RunError

ON_NONFINITE = ("stop", "reset")


class NonFiniteEnvError(RunError):
    """A CPU env returned a NaN or infinite observation or reward."""


class EnvGuard:
    """Checks one actor's env steps. `actor`: the actor's index; `batch`: envs per ring slot."""

    def __init__(self, env_id: str, mode: str, actor: int, batch: int, seeds: List[int]):
        if mode not in ON_NONFINITE:
            raise ValueError(f"env.on_nonfinite must be one of {ON_NONFINITE}, got {mode!r}")
        self.env_id, self.mode, self.actor, self.batch = env_id, mode, actor, batch
        self.seeds = list(seeds)
        self.resets = 0             # envs reset so far (reset mode)
        self.unreported = 0         # of which not yet in a posted sample

    @staticmethod
    def finite(obs: np.ndarray, reward: np.ndarray, final_obs: np.ndarray) -> bool:
        return bool(np.isfinite(reward).all() and np.isfinite(obs).all() and np.isfinite(final_obs).all())

    def handle(self, slot_index: int, step: int, env, prev_obs: np.ndarray, step_out: Tuple,
               ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Dict[str, Any]]:
        """A step that failed `finite`: raise (stop mode), or reset the env batch and return a clean step.

        In reset mode the bad envs' step ends their episode as terminated with reward 0 (nothing is
        bootstrapped from a broken state); the batch's other envs end theirs as truncated at the
        observation they reached; their episode statistics are dropped.
        """
        obs, reward, terminated, truncated, info = step_out
        obs, reward = np.asarray(obs, np.float32), np.asarray(reward, np.float32)
        final_obs = np.asarray(info["final_obs"], np.float32)
        bad = ~(np.isfinite(reward) & _rows_finite(obs) & _rows_finite(final_obs))
        envs = [int(i) for i in np.flatnonzero(bad)]
        if self.mode == "stop":
            raise NonFiniteEnvError(self.describe(envs, slot_index, step, obs, reward, final_obs)
                                    + "; set env.on_nonfinite=reset to reset such envs and go on")
        self.resets += len(envs)
        self.unreported += len(envs)
        terminated = np.asarray(terminated).astype(bool) | bad
        truncated = ~terminated
        final = np.where(_expand(bad, final_obs.ndim), np.asarray(prev_obs, np.float32), final_obs)
        final = np.where(np.isfinite(final), final, 0.0).astype(np.float32)
        fresh = np.asarray(env.reset(self.seeds[slot_index] + 1_000_000 * self.resets), np.float32)
        episodes: List[Dict[str, float]] = [e for e in info.get("episodes", []) if np.isfinite(e["return"])]
        return (fresh, np.where(bad, 0.0, reward).astype(np.float32), terminated, truncated,
                {**info, "final_obs": final, "episodes": episodes})

    def take_unreported(self) -> int:
        n, self.unreported = self.unreported, 0
        return n

    def describe(self, envs: List[int], slot_index: int, step: int, obs, reward, final_obs) -> str:
        i = envs[0]
        what = []
        if not np.isfinite(reward[i]):
            what.append(f"reward {reward[i]}")
        if not np.isfinite(obs[i]).all() or not np.isfinite(final_obs[i]).all():
            what.append("observation with " + ", ".join(sorted({str(v) for v in np.ravel(
                np.concatenate([np.ravel(obs[i]), np.ravel(final_obs[i])])) if not np.isfinite(v)})))
        index = slot_index * self.batch + i
        more = f" (and {len(envs) - 1} more envs of the same batch)" if len(envs) > 1 else ""
        return (f"env {self.env_id} returned a non-finite {' and '.join(what)} at step {step} of env {index} "
                f"of actor {self.actor}{more}")


def _rows_finite(x: np.ndarray) -> np.ndarray:
    return np.isfinite(x).reshape(x.shape[0], -1).all(axis=1)


def _expand(mask: np.ndarray, ndim: int) -> np.ndarray:
    return mask.reshape(mask.shape + (1,) * (ndim - 1))
