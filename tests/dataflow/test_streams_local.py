"""In-process streams, message layouts, and the actor worker's rollouts over them."""
import numpy as np
import pytest

from srljax.dataflow.roles.actor import ActorStreams, ActorWorker
from srljax.dataflow.wire.schema import META, BatchSpec, Header, MessageLayout, hash_text
from srljax.dataflow.wire.streams import LocalControl, LocalInference, LocalParams, LocalSampleStream
from srljax.envs import spaces
from srljax.envs.gymnasium_adapter import GymVectorEnv
from srljax.envs.gymnasium_vector import FromGymnasium


def test_layout_fields_are_aligned_views_of_one_buffer():
    layout = MessageLayout({"a": ((3, 5), np.float32), "b": ((7,), np.int32), "c": ((), np.float64)})
    buf = layout.alloc()
    views = layout.views(buf)
    assert set(views) == {META, "a", "b", "c"}
    for name, v in views.items():
        assert np.shares_memory(v, buf)
        assert layout.offsets[name] % 64 == 0
    views["a"][...] = 1.5
    views["b"][...] = np.arange(7)
    again = layout.views(buf)
    np.testing.assert_array_equal(again["a"], np.full((3, 5), 1.5, np.float32))
    np.testing.assert_array_equal(again["b"], np.arange(7))
    assert layout.nbytes == buf.nbytes and layout.nbytes >= 4 * 15 + 4 * 7 + 8 + 32


def test_layout_signature_is_stable_and_shape_sensitive():
    a = MessageLayout({"x": ((4,), np.float32)}).signature()
    b = MessageLayout({"x": ((4,), np.float32)}).signature()
    c = MessageLayout({"x": ((5,), np.float32)}).signature()
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert hash_text("abc") == hash_text("abc") != hash_text("abd")


def test_local_sample_stream_backpressure_and_release():
    layout = MessageLayout({"x": ((2,), np.float32)})
    stream = LocalSampleStream(layout, slots_per_poster=2)
    poster, consumer = stream.poster(source=7), stream.consumer()
    assert consumer.consume() is None
    ids = [poster.acquire(), poster.acquire()]
    assert None not in ids and poster.acquire() is None          # both buffers taken
    for version, i in enumerate(ids):
        poster.views[i]["x"][...] = version + 1
        poster.post(i, version)
    assert poster.pending() == 2
    first = consumer.consume()
    assert (first.version, first.source) == (0, 7) and first.data["x"].tolist() == [1, 1]
    assert poster.acquire() is None                               # still held by the consumer
    second = consumer.consume()                                   # hands the first buffer back
    assert second.version == 1 and second.data["x"].tolist() == [2, 2]
    assert poster.acquire() is not None
    assert consumer.consume() is None and poster.pending() == 0


def test_local_inference_round_trip():
    replies = BatchSpec(1, 3, (4,), spaces.Discrete(2)).replies()
    hub = LocalInference((4,), replies, envs_per_slot=3)
    client, server = hub.client(5, slots=2), hub.server()
    client.obs(1)[...] = 2.0
    client.request(1)
    assert client.response(1) is None
    (req,) = server.requests()
    assert (req.client, req.slot) == (5, 1) and np.all(req.obs == 2.0)
    server.reply(req, {"action": np.array([1, 0, 1]), "logp": np.full(3, -0.5), "value": np.ones(3)}, version=9)
    got = client.response(1)
    assert got["action"].tolist() == [1, 0, 1] and got[META][Header.VERSION] == 9
    assert client.response(1) is None


def test_local_params_give_each_reader_the_newest_once():
    hub = LocalParams()
    reader = hub.reader()
    assert reader.latest() is None
    hub.publish(np.arange(3, dtype=np.float32), 1)
    hub.publish(np.arange(3, dtype=np.float32) * 2, 2)
    flat, version = reader.latest()
    assert version == 2 and flat.tolist() == [0, 2, 4]
    assert reader.latest() is None


class _RandomServer:
    """Answers inference requests with random actions (no jax), versions counting up."""

    def __init__(self, server, rng):
        self.server, self.rng, self.version = server, rng, 0

    def poll(self):
        for req in self.server.requests():
            n = req.obs.shape[0]
            self.server.reply(req, {"action": self.rng.integers(0, 2, n), "logp": np.full(n, np.log(0.5)),
                                    "value": np.zeros(n)}, self.version)
            self.version += 1


def test_actor_ring_posts_consistent_time_major_rollouts():
    T, B, ring = 16, 3, 2
    spec = BatchSpec(T, B, (4,), spaces.Discrete(2))
    layout = spec.samples()
    stream = LocalSampleStream(layout, slots_per_poster=ring + 1)
    hub = LocalInference((4,), spec.replies(), envs_per_slot=B)
    server = _RandomServer(hub.server(), np.random.default_rng(0))
    envs = [FromGymnasium(GymVectorEnv("gym/CartPole-v1", B, seed=10 * k)) for k in range(ring)]
    control = LocalControl({}, rank=3)
    actor = ActorWorker(envs, [0, 100], ActorStreams(hub.client(3, ring), stream.poster(3), control, [0]), spec)
    consumer = stream.consumer()
    samples = []
    for _ in range(400):
        actor.poll()
        server.poll()
        s = consumer.consume()
        if s is not None:
            samples.append(({k: v.copy() for k, v in s.data.items()}, s.version))
        if len(samples) >= 4:
            break
    assert len(samples) >= 4
    for data, version in samples:
        done = np.maximum(data["terminated"], data["truncated"])
        # Inside an episode, the next observation is the one the action led to.
        for t in range(T - 1):
            keep = done[t] == 0
            np.testing.assert_array_equal(data["obs"][t + 1][keep], data["final_obs"][t][keep])
        assert set(np.unique(data["action"])) <= {0, 1}
        np.testing.assert_allclose(data["reward"], 1.0)
        assert version == data[META][Header.VERSION] <= data[META][Header.NEWEST]
        n_eps = int(data[META][Header.EPISODES])
        assert n_eps == int(data["terminated"].sum() + data["truncated"].sum())
        assert np.all(data["episodes"][:n_eps, 0] == data["episodes"][:n_eps, 1])   # CartPole: return = length
    # Stop: the actor collects what it is owed, then says FIN to its trainer.
    control.send_stop([3])
    for _ in range(50):
        actor.poll()
        server.poll()
        consumer.consume()
        if actor.done:
            break
    assert actor.done and control.hub["fins"] == {0: [3]}


class _ZeroServer:
    """Answers every request with action 0 for every agent: the policy's moves are recognisable."""

    def __init__(self, server):
        self.server = server

    def poll(self):
        for req in self.server.requests():
            B, A = req.obs.shape[:2]
            self.server.reply(req, {"action": np.zeros((B, A, 5), np.int32), "logp": np.zeros((B, A)),
                                    "value": np.zeros((B, A))}, 0)


@pytest.mark.parametrize("frac", [0.0, 1.0])
def test_random_opponents_play_one_team_and_are_not_learned_from(frac):
    """distributed.random_opponents: in that fraction of episodes one whole team (drawn per episode)
    plays uniformly random actions, and the sample's `learn` is 0 exactly for its agents."""
    from srljax.dataflow.roles.multiagent import PackedObsEnv
    from srljax.envs.hide_and_seek import make_vec_env
    T, B, ring, horizon = 12, 2, 2, 4
    envs = [PackedObsEnv(make_vec_env("quadrant", num_envs=B, seed=k, horizon=horizon)) for k in range(ring)]
    A, D = envs[0].num_agents, envs[0].packer.size
    spec = BatchSpec(T, B, (A, D), envs[0].action_space, agents=A)
    layout = spec.samples()
    assert "learn" in layout.spec
    stream = LocalSampleStream(layout, slots_per_poster=ring + 1)
    hub = LocalInference((A, D), spec.replies(), envs_per_slot=B)
    server = _ZeroServer(hub.server())
    streams = ActorStreams(hub.client(3, ring), stream.poster(3), LocalControl({}, rank=3), [0])
    actor = ActorWorker(envs, [0, 100], streams, spec, random_opponents=frac)
    hider = envs[0].teams()[0] == 1                        # quadrant: the same teams in every game
    consumer, samples = stream.consumer(), []
    for _ in range(2000):
        actor.poll()
        server.poll()
        s = consumer.consume()
        if s is not None:
            samples.append({k: v.copy() for k, v in s.data.items()})
        if len(samples) >= 4:
            break
    assert len(samples) >= 4
    teams_seen = set()
    for data in samples:
        learn, moved = data["learn"], data["action"].any(axis=-1)          # [T, B, A]
        if frac == 0.0:
            assert learn.all() and not moved.any()
            continue
        assert not moved[learn == 1].any()                 # the policy's agents played its (zero) actions
        assert moved[learn == 0].mean() > 0.9              # the others random ones (all-zero: 1/5324)
        for t0 in range(0, T, horizon):                    # one episode: a whole team, the same throughout
            ep = learn[t0:t0 + horizon]
            assert (ep == ep[0]).all()
            for b in range(B):
                off = ep[0, b] == 0
                assert (off == hider).all() or (off == ~hider).all()
                teams_seen.add("hiders" if (off == hider).all() else "seekers")
    if frac == 1.0:
        assert teams_seen == {"hiders", "seekers"}
