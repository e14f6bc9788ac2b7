"""The supervisor's liveness page: a torn read never names a healthy rank stuck."""
import mmap
import struct
import time

from srljax.dataflow.launch import supervisor


def test_one_torn_read_is_not_a_stuck_rank_two_stuck_reads_are():
    # CI saw one read between arm()'s stores: the new deadline beside the old, zero, beat.
    uptime = 38803.0
    strikes = supervisor.strikes_after(0, silent=uptime - 0.0, deadline=120.0)
    assert strikes == 1 < supervisor.STRIKES
    strikes = supervisor.strikes_after(strikes, silent=0.2, deadline=120.0)     # the next read: whole
    assert strikes == 0
    for _ in range(supervisor.STRIKES):                                         # really silent
        strikes = supervisor.strikes_after(strikes, silent=121.0, deadline=120.0)
    assert strikes == supervisor.STRIKES
    assert supervisor.strikes_after(5, silent=1e9, deadline=0.0) == 0          # disarmed


def test_arm_and_disarm_write_the_beat_and_the_deadline(monkeypatch):
    page = mmap.mmap(-1, struct.calcsize(supervisor._FMT))
    monkeypatch.setattr(supervisor, "_PAGE", page)
    before = time.monotonic()
    supervisor.arm(120.0, 600.0)
    last, deadline, grace = struct.unpack_from(supervisor._FMT, page, 0)
    assert last >= before and (deadline, grace) == (120.0, 600.0)
    supervisor.beat(grace=True)
    assert struct.unpack_from(supervisor._FMT, page, 0)[0] >= before + 600.0
    supervisor.disarm()
    last, deadline, grace = struct.unpack_from(supervisor._FMT, page, 0)
    assert (deadline, grace) == (0.0, 0.0) and before <= last <= time.monotonic()
