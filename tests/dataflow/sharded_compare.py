"""What the 4-device check scripts share (run under --xla_force_host_platform_device_count=4): one
learner update on the same global batch on 1 device and sharded over 4, and the spread of a
fused run's replicas."""
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from srljax.dataflow.fused.loop import AXIS, sharded
from srljax.learners import make_algorithm

D = 4


def max_diff(a, b) -> float:
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(jax.tree.leaves(a),
                                                                                      jax.tree.leaves(b)))


def update_on_one_and_four(cfg, env, batch):
    """(state before, state after on 1 device, metrics, state after on 4 devices (device 0's), metrics)
    of one update on `batch` (env columns on axis 1, split evenly over the devices)."""
    one = make_algorithm(cfg, env.observation_space, env.action_space)
    state = one.init(jax.random.PRNGKey(0), batch)
    s1, m1 = jax.jit(one.update)(state, batch)
    many = make_algorithm(cfg, env.observation_space, env.action_space, axis_name=AXIS)
    rep = jax.tree.map(lambda x: jnp.stack([x] * D), state)
    shard = jax.tree.map(lambda x: np.stack(np.split(x, D, axis=1)), batch)       # [D, T, B/D, ...]
    B = batch["reward"].shape[1]
    mesh = Mesh(np.array(jax.devices()), (AXIS,))
    s4, m4 = sharded(mesh, many.update, (P(AXIS),) * 3)(rep, shard, np.arange(B).reshape(D, B // D))
    first = lambda tree: jax.tree.map(lambda x: np.asarray(x)[0], tree)      # noqa: E731
    return state, s1, m1, first(s4), first(m4)


def replica_spread(fs) -> float:
    """The largest difference between any device's learner state and device 0's."""
    return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(x, np.float64)[:1])))
               for x in jax.tree.leaves((fs.learner.params, fs.learner.opt_state, fs.learner.obs_norm)))
