"""Population-based training of a fused population (`pbt.interval`), on the host between chunks.

A population with a sweep (`fused.population`) trains every member with its own swept settings,
traced: the values travel into the programs as an argument ([devices, N] arrays, `trainer.sweep_args`),
so new values need no new compile. With `pbt.interval = K`, after every K log intervals (one
`chunk` call each, `fused.loop.train`) the host ranks the members by the mean return of their last
100 episodes (`loop.ring_mean`; a member with no episode since its last copy is not ranked), and:

- exploit: each of the bottom `pbt.fraction` (at least one) takes the learner state (parameters,
  optimiser state, normaliser, counters: `fs.learner`) of a member of the top fraction, drawn at
  random, if that one's return is higher (members tied at the top copy nothing); its episode ring
  starts empty, so it is ranked next on what it does from there. Its env states, keys and (replay
  algorithms) buffer stay its own;
- explore: its swept settings become its donor's, each times a factor of `pbt.perturb` drawn at
  random (rounded to 6 significant digits).

The draws come from `numpy.random.default_rng([seed, step index])`: a run and its resume draw the
same. The current settings are host state (float64; float32 in the program) that checkpoints carry
in their header (`meta()`, `PBT(..., state=...)`), as the rows' `members` and the summary do.
"""
from __future__ import annotations

from typing import Dict, List, Optional

import jax
import numpy as np


class PBT:
    """The exploit/explore steps of one run of `trainer` (a fused trainer with a sweep: `cfg`,
    `labels`, `sweep_args`, `devices`, `unit_env_steps`); `state`: a checkpoint's `meta()["pbt"]`."""

    def __init__(self, trainer, state: Optional[Dict] = None):
        cfg = trainer.cfg
        self.trainer, self.seed, self.pbt = trainer, cfg.seed, cfg.pbt
        self.keys, self.members = list(cfg.sweep), len(trainer.labels)
        self.values = {k: np.array([m[k] for m in trainer.labels], np.float64) for k in self.keys}
        self.period = cfg.pbt.interval * max(1, cfg.log_every_env_steps // trainer.unit_env_steps)   # in units
        self.steps = self.copies = self.last = 0       # last: the index of the latest step (done // period)
        if state:
            self.values = {k: np.array(state["values"][k], np.float64) for k in self.keys}
            self.steps, self.copies, self.last = int(state["steps"]), int(state["copies"]), int(state["last"])
        self._install()

    def _install(self) -> None:
        """The current values into the members' labels (their rows) and the programs' argument."""
        n_dev = len(self.trainer.devices)
        for i, label in enumerate(self.trainer.labels):
            label.update({k: float(v[i]) for k, v in self.values.items()})
        self.trainer.sweep_args = ({k: np.broadcast_to(v.astype(np.float32), (n_dev, v.size)).copy()
                                    for k, v in self.values.items()},)

    def due(self, done: int, total: int) -> bool:
        """Whether a step is due at unit `done`: a multiple of the period passed since the latest
        step, and more to train (a run that ends on one leaves it to its resume, before its first call)."""
        return done < total and done // self.period > self.last

    def step(self, fs, returns: List[Optional[float]], index: int):
        """Exploit and explore, step `index` of the run (units // period), from each member's recent
        mean return; returns (state, the row's record of what happened)."""
        rng = np.random.default_rng([self.seed, index])
        ranked = sorted((i for i, r in enumerate(returns) if r is not None), key=lambda i: (returns[i], i))
        n = min(max(1, int(len(returns) * self.pbt.fraction)), len(ranked) // 2)
        worst, best = ranked[:n], ranked[len(ranked) - n:]
        donors = [int(rng.choice(best)) for _ in worst]
        pairs = [(w, b) for w, b in zip(worst, donors) if returns[b] > returns[w]]    # ties (all at 500): no copy
        worst, donors = [w for w, _ in pairs], [b for _, b in pairs]
        record = {"step": index, "copies": []}
        for w, b in zip(worst, donors):
            factors = {k: float(rng.choice(self.pbt.perturb)) for k in self.keys}
            for k in self.keys:
                self.values[k][w] = float(f"{self.values[k][b] * factors[k]:.6g}")     # 1e-3 * 1.25: 0.00125
            record["copies"].append({"member": w, "from": b, "return": returns[w], "from_return": returns[b],
                                     **{k: float(self.values[k][w]) for k in self.keys},
                                     "factors": factors})
        if worst:
            fs = copy_members(fs, worst, donors)
        self.steps, self.last = self.steps + 1, index
        self.copies += len(worst)
        self._install()
        return fs, record

    def meta(self) -> Dict:
        """What a checkpoint carries to resume the same run: {"pbt": ...} for its header."""
        return {"pbt": {"values": {k: v.tolist() for k, v in self.values.items()}, "steps": self.steps,
                        "copies": self.copies, "last": self.last}}

    def summary(self, best_member: Optional[int]) -> Dict:
        """summary.json's `pbt`: the step and copy counts, each member's final settings, the best's."""
        settings = [{k: float(v[i]) for k, v in self.values.items()} for i in range(self.members)]
        out = {"interval": self.pbt.interval, "steps": self.steps, "copies": self.copies, "settings": settings}
        if best_member is not None:
            out["best_member"], out["best_member_setting"] = best_member, settings[best_member]
        return out


def copy_members(fs, worst: List[int], donors: List[int]):
    """`fs` with member worst[j]'s learner state that of donors[j] (leaves [devices, N, ...]), and
    its episode ring emptied; each array put back where it was (its sharding: no new compile)."""
    def put(x, new):
        return jax.device_put(new, x.sharding) if isinstance(x, jax.Array) else new

    def copy(x):
        a = np.array(x)
        a[:, worst] = a[:, donors]
        return put(x, a)

    def empty(x):
        a = np.array(x)
        a[:, worst] = 0
        return put(x, a)

    return fs.replace(learner=jax.tree.map(copy, fs.learner), ring_ptr=empty(fs.ring_ptr),
                      ring_count=empty(fs.ring_count))
