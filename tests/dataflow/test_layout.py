"""Rank layout from the config: roles, routes, and clear errors for layouts that do not fit."""
import pytest

from srljax.config import DistributedConfig
from srljax.dataflow.launch.layout import make_layout
from srljax.errors import UserError


def test_default_layout_for_four_ranks():
    L = make_layout(DistributedConfig(trainers=1, policy_workers=1), 4)
    assert (L.trainers, L.policies, L.buffers, L.actors) == ([0], [1], [], [2, 3])
    assert [str(L.role(r)) for r in range(4)] == ["trainer 0", "policy 0", "actor 0", "actor 1"]
    assert L.policy_of(2) == L.policy_of(3) == 1 and L.sink_of(2) == 0
    assert L.sources_of(0) == [2, 3] and L.clients_of(1) == [2, 3] and L.param_readers() == [1]


def test_routes_with_several_trainers_and_buffers():
    L = make_layout(DistributedConfig(trainers=2, policy_workers=1, buffers=2), 8)
    assert L.buffers == [3, 4] and L.actors == [5, 6, 7]
    assert [L.sink_of(a) for a in L.actors] == [3, 4, 3]
    assert [L.sink_of(b) for b in L.buffers] == [0, 1]
    assert L.sources_of(3) == [5, 7] and L.sources_of(0) == [3] and L.sources_of(1) == [4]


def test_inline_inference_reads_parameters_in_every_actor():
    L = make_layout(DistributedConfig(trainers=2, policy_workers=0, inline_inference=True), 4)
    assert L.param_readers() == [2, 3] and L.policy_of(2) is None
    assert L.sources_of(0) == [2] and L.sources_of(1) == [3]


@pytest.mark.parametrize("cfg, n, words", [
    (DistributedConfig(trainers=1, policy_workers=1), 2, "does not fit -n 2"),
    (DistributedConfig(trainers=2, policy_workers=1), 4, "does not fit -n 4"),
    (DistributedConfig(policy_workers=0), 4, "inline_inference"),
    (DistributedConfig(policy_workers=1, inline_inference=True), 4, "policy_workers=0"),
    (DistributedConfig(trainers=2, buffers=1, policy_workers=1), 6, "every trainer needs a buffer"),
    (DistributedConfig(actor_nice=20), 4, "actor_nice must be in 0..19"),
    (DistributedConfig(actor_nice=-1), 4, "actor_nice must be in 0..19"),
])
def test_bad_layouts_are_user_errors(cfg, n, words):
    with pytest.raises(UserError, match=words):
        make_layout(cfg, n)


def test_policy_worker_batch_buckets():
    """A policy worker compiles its call for 1, 2, 4, ... requests and for all of its clients' slots."""
    from srljax.dataflow.roles.policy import batch_buckets
    assert batch_buckets(1) == (1,)
    assert batch_buckets(4) == (1, 2, 4)
    assert batch_buckets(6) == (1, 2, 4, 6)
    for most in range(1, 40):
        b = batch_buckets(most)
        assert b[-1] == most and list(b) == sorted(set(b))
        assert all(next(x for x in b if x >= n) < 2 * n for n in range(1, most + 1))   # padding < 2x
