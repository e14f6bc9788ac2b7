"""Several runs in one program (`seeds`): a population of members vmapped inside each device's program.

With `cfg.seeds = N > 1` a fused trainer's per-device functions run under `jax.vmap` over a leading
member axis (`fused.loop.sharded(..., members=N)`): every state leaf is [devices, N, ...], member i
is initialised from seed `cfg.seed + i` and computes what a single run of that seed computes
(collectives over devices act member by member). Members advance in lockstep, one `chunk` call for
all. On the host, each member's interval metrics are worked out as a single run's are, and a log
row holds their mean over members (what the console shows) with `episode_return_members`, each
member's own return; the summary adds the aggregate over members (`aggregate`): mean, IQM and 95%
stratified-bootstrap confidence intervals, as rliable reports them (`srljax.stats`).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional

import numpy as np


def grid(cfg) -> List[Dict[str, float]]:
    """The settings of `cfg.sweep`: every combination of its values, the first key slowest ([{}]: no sweep)."""
    settings: List[Dict[str, float]] = [{}]
    for key, values in cfg.sweep.items():
        settings = [{**s, key: float(v)} for s in settings for v in values]
    return settings


def members_of(cfg, seed: Optional[int] = None) -> List[Dict]:
    """Each member's label: {"member": m, "seed": seed + k, **its setting}; member m = setting
    m // seeds, seed index k = m % seeds (`seed`: default `cfg.seed`). Empty for a single run."""
    settings, n = grid(cfg), cfg.seeds
    seed = cfg.seed if seed is None else seed
    if len(settings) * n <= 1:
        return []
    return [{"member": s * n + k, "seed": seed + k, **setting}
            for s, setting in enumerate(settings) for k in range(n)]


def population_size(cfg) -> int:
    """N members (settings x seeds), or 0 for a single run."""
    n = len(grid(cfg)) * cfg.seeds
    return n if n > 1 else 0


def programs(trainer, init_fn, chunk_fns: Dict, chunk_specs) -> tuple:
    """The trainer's sharded init and chunk programs (`fused.loop.sharded`), a population's vmapped
    over its members and, with a sweep, traced with each member's settings (`swept`; the swept
    values travel as the last argument, `trainer.sweep_args`); a sweep key the program needs as a
    fixed number is refused here (`check_traceable`), before anything runs."""
    from jax.sharding import PartitionSpec as P

    from srljax.dataflow.fused.loop import AXIS, sharded
    cfg, n = trainer.cfg, population_size(trainer.cfg)
    extra = (P(AXIS),) if cfg.sweep else ()
    wrap = (lambda f: swept(trainer, f)) if cfg.sweep else (lambda f: f)
    init = sharded(trainer.mesh, wrap(init_fn), (P(AXIS),) + extra, n, one_by_one=True)   # see `map_members`
    chunks = {k: sharded(trainer.mesh, wrap(f), tuple(chunk_specs) + extra, n) for k, f in chunk_fns.items()}
    trainer.sweep_args = (sweep_values(cfg, len(trainer.devices)),) if cfg.sweep else ()
    if cfg.sweep:
        import jax
        import jax.numpy as jnp
        seeds = seeds_for(cfg.seed, len(trainer.devices), n, cfg.seeds)

        def trace():
            fs = jax.eval_shape(init, seeds, *trainer.sweep_args)
            for f in chunks.values():
                jax.eval_shape(f, fs, jnp.zeros((), jnp.int32), *trainer.sweep_args)
        check_traceable(cfg, trace)
    return init, chunks


def seeds_for(seed: int, devices: int, members: int, per_setting: int = 0) -> np.ndarray:
    """The `init` argument: [devices] copies of `seed`, or [devices, N]: member m's seed is
    seed + m % per_setting (seed + m without a sweep)."""
    if not members:
        return np.full((devices,), seed, np.uint32)
    offsets = np.arange(members) % (per_setting or members)
    return np.broadcast_to((seed + offsets).astype(np.uint32), (devices, members)).copy()


def sweep_values(cfg, devices: int) -> Dict[str, np.ndarray]:
    """The swept settings as arrays [devices, N], member by member (the swept functions' last argument)."""
    labels = members_of(cfg)
    return {key: np.broadcast_to(np.array([m[key] for m in labels], np.float32), (devices, len(labels))).copy()
            for key in cfg.sweep}


class MemberAlgorithm:
    """The fused trainers' algorithm, built from a config, and swapped for a member's while its
    swept program is traced (`swept`). The trainer has `env`, `axis`, `_loss` and `algo`."""

    def _make_algo(self, cfg):
        from srljax.learners import registry
        return registry.for_config(cfg).build(cfg, self.env.observation_space, self.env.action_space,
                                              axis_name=self.axis, loss=self._loss)

    def _swap(self, cfg):
        """Install the algorithm of `cfg` (a member's swept settings) for a trace; returns the old one."""
        saved, self.algo = self.algo, self._make_algo(cfg)
        return saved

    def _restore(self, saved) -> None:
        self.algo = saved


def swept(trainer, fn):
    """`fn` traced with the trainer's algorithm rebuilt from its config with the member's swept
    values (the call's last argument, {key: traced scalar}): `trainer._swap(cfg)` installs it and
    returns what `trainer._restore` puts back. A float setting that the program reads as a Python
    number (a branch, a shape) fails the trace: `check_traceable` says which."""
    from srljax import config as C

    def call(*args):
        *rest, values = args
        saved = trainer._swap(C.with_values(trainer.cfg, values))
        try:
            return fn(*rest)
        finally:
            trainer._restore(saved)

    return call


def check_traceable(cfg, trace: Callable) -> None:
    """Run `trace()` (the swept programs' shapes, `jax.eval_shape`); a sweep key the program needs
    as a concrete number is one line naming the keys."""
    import jax
    if not cfg.sweep:
        trace()
        return
    try:
        trace()
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerBoolConversionError,
            jax.errors.TracerIntegerConversionError, jax.errors.TracerArrayConversionError) as exc:
        from srljax.errors import UserError
        keys = ", ".join(cfg.sweep)
        raise UserError(f"sweep: {keys}: the program needs {'it' if len(cfg.sweep) == 1 else 'one of them'} as a "
                        f"fixed number (a branch or a shape depends on it: {type(exc).__name__}); run one value "
                        "per program instead") from None


def member_rows(acc: Dict[str, np.ndarray], labels: List[Dict], interval: Callable, per_member) -> Dict:
    """The host row of a chunk: `interval(acc, per_member)` of a single run, or for a population
    each member's (acc leaves [N]; `labels`: `members_of`; `per_member`: [N] values, or one for all,
    the second argument of `interval`: the rollout trainer's update count, the replay trainer's
    buffer size) combined by `combine`."""
    if not labels:
        return interval(acc, per_member)
    per_member = np.broadcast_to(np.asarray(per_member), (len(labels),))
    rows = [{**label, **interval({k: v[i] for k, v in acc.items()}, per_member[i])} for i, label in enumerate(labels)]
    return combine(rows, [k for k in labels[0] if k not in ("member", "seed")])


def combine(rows: List[Dict], swept: List[str] = ()) -> Dict:
    """One row for a population: numbers averaged over the members that have them (counts such as
    `episodes` and `updates` summed or taken from the slowest), each member's return
    (`episode_return_members`) and each member's whole row (`members`: with its index and seed)."""
    out: Dict = {}
    for k in rows[0]:
        if k in ("member", "seed") or k in swept:
            continue
        vals = [r[k] for r in rows if isinstance(r.get(k), (int, float)) and not isinstance(r.get(k), bool)]
        if k in ("episodes", "gradient_steps", "skipped_steps"):
            out[k] = int(sum(vals))
        elif k == "updates":
            out[k] = int(min(vals))
        else:
            out[k] = float(np.mean(vals)) if vals else None
    out["episode_return_members"] = [r.get("episode_return") for r in rows]
    out["members"] = rows
    return out
