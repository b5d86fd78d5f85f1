"""Unit tests of the soak's invariant checkers (interop/soak/checkers.py) and schedule
(interop/soak/soak.py) on synthetic event streams: each checker passes a good stream and fails
on each kind of bad one, so a soak that reports PASS has checkers that can fail."""
from __future__ import annotations

import collections
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import checkers as ck  # noqa: E402
import soak  # noqa: E402
from fault_points import fault_points  # noqa: E402

FB, PB, GOP = 4096, 2048, 10
MS = 1_000_000


def frame(seq, valid=True, size=FB, checksum=None, t=None):
    ev = {"event": "frame", "seq": seq, "size": size, "valid": valid,
          "checksum": checksum or f"f{seq:015x}"}
    if t is not None:
        ev["t_ns"] = t
    return ev


def packet(seq, valid=True, size=None, key=None, checksum=None):
    return {"event": "packet", "seq": seq, "size": ck.packet_size(seq, PB) if size is None
            else size, "keyframe": ck.is_key(seq, GOP) if key is None else key,
            "valid": valid, "checksum": checksum or f"p{seq:015x}"}


def attached(start_seq=1, fds=5, shm=2, ring=True):
    return {"event": "attached", "index": 0, "proto": 2, "kind": "host", "start_seq": start_seq,
            "packet_ring": ring, "fds": fds, "shm_maps": shm, "nv_maps": 0}


def reconnecting(fds=3, shm=0):
    return {"event": "reconnecting", "attempt": 1, "fds": fds, "shm_maps": shm, "nv_maps": 0}


def run(events, checksums=None):
    c = ck.DeliveryChecker("sub", FB, PB, GOP, checksums)
    out = []
    for ev in events:
        out += c.feed(ev)
    return out


GOOD = [attached(start_seq=5), {"event": "codec_params", "codec": 1, "generation": 1,
                                "valid": True},
        frame(5), packet(11), frame(6), packet(12), frame(7), {"event": "overrun"}, packet(21),
        {"event": "error", "name": "PEER_CLOSED", "code": 8}, reconnecting(),
        attached(start_seq=1), frame(1), packet(1), frame(2), packet(2)]


def test_good_stream_passes():
    assert run(GOOD) == []


@pytest.mark.parametrize("bad,why", [
    ([attached(), frame(1, valid=False)], "torn"),
    ([attached(), frame(1), frame(3)], "frames lost"),
    ([attached(), frame(1), frame(2), frame(2)], "out of order or repeated"),
    ([attached(), frame(2), frame(1)], "out of order"),
    ([attached(start_seq=7), frame(6)], "below its start_seq"),
    ([frame(1)], "outside a session"),
    ([attached(), frame(1, size=100)], "frame size"),
    ([attached(), packet(2)], "not a keyframe"),
    ([attached(), packet(1), packet(3)], "packets lost"),
    ([attached(), packet(1), {"event": "overrun"}, packet(12)], "not a keyframe"),
    ([attached(), packet(11), {"event": "overrun"}, packet(11)], "repeated"),
    ([attached(), packet(1), packet(2, valid=False)], "torn"),
    ([attached(), packet(1, size=5)], "packet size"),
    ([attached(), packet(1, key=False)], "KEYFRAME flag"),
    ([attached(), packet(1), packet(2, key=True)], "KEYFRAME flag"),
    ([attached(), {"event": "codec_params", "codec": 1, "generation": 1, "valid": False}],
     "codec parameters"),
    ([attached(), {"event": "error", "name": "CORRUPT", "code": 19}], "CORRUPT"),
    ([attached(ring=False)], "without the packet ring"),
    ([attached(), frame(1), reconnecting(shm=2)], "still mapped"),
    ([attached(fds=5), reconnecting(), attached(fds=6)], "leaked"),
    ([attached(), reconnecting(fds=3), attached(), reconnecting(fds=4)], "a leak"),
    ([attached(), {"event": "done", "frames": 1, "packets": 1}], "finished"),
    ([{"event": "unparsed", "line": "garbage"}], "not a JSON object"),
])
def test_bad_stream_fails(bad, why):
    out = run(bad)
    assert out and any(why in v for v in out), out


def test_each_bad_event_spliced_into_the_good_stream_fails():
    # The same rules hold in the middle of a long stream, after a reconnect.
    for bad in (frame(4), frame(3, valid=False), packet(4), packet(3, valid=False)):
        assert run(GOOD + [bad]), bad


def test_evicted_and_timeout_are_left_to_the_driver():
    assert run([attached(), {"event": "error", "name": "EVICTED", "code": 9}]) == []
    assert run([{"event": "error", "name": "TIMEOUT", "code": 2, "where": "connect"}]) == []


def test_last_delivery_time_is_the_adapters_clock():
    c = ck.DeliveryChecker("sub", FB, PB, GOP)
    c.feed(attached())
    c.feed(frame(1, t=123))
    assert c.last_delivery_ns == 123


# ----------------------------------------------------------------------------- checksums


def test_python_content_matches_the_reference_adapters():
    # Values printed by cuframes-pub (--bytes 4096, --packet-bytes 2048) for seq 1 and 2.
    assert ck.fnv1a64(ck.frame_bytes(1, 4096)) == "4bbfb512e62e6325"
    assert ck.fnv1a64(ck.packet_bytes(1, 2048)) == "9d1bda709e5bb2a5"
    assert ck.fnv1a64(ck.packet_bytes(2, 2048)) == "950d73fa7229c091"


def test_checksums_compare_both_orders():
    cs = ck.Checksums(FB, PB)
    assert cs.publisher("frame", 1, "aa") == []
    assert cs.subscriber("frame", 1, "aa", "s") == []
    assert cs.subscriber("frame", 1, "bb", "s")          # publisher first, then a bad copy
    assert cs.subscriber("frame", 2, "cc", "s") == []    # not printed yet: pending
    assert cs.publisher("frame", 2, "dd")                # the publisher's print resolves it
    assert cs.publisher("frame", 1, "ee")                # publishers disagree on a seq


def test_pending_checksums_resolve_from_section_4():
    cs = ck.Checksums(FB, PB)
    cs.subscriber("frame", 1, "4bbfb512e62e6325", "good")
    cs.subscriber("packet", 2, "950d73fa7229c091", "good")
    assert cs.resolve_pending() == []
    cs.subscriber("frame", 1, "0000000000000000", "bad")
    out = cs.resolve_pending()
    assert out and "bad" in out[0]


def test_delivery_checker_uses_checksums():
    cs = ck.Checksums(FB, PB)
    cs.publisher("frame", 1, "aa")
    assert run([attached(), frame(1, checksum="bb")], cs)


# ----------------------------------------------------------------------------- publisher


def pub_ev(name, fds, key_socks):
    return {"event": name, "index": 0, "fds": fds, "key_socks": key_socks, "reason": "OK"}


def test_publisher_descriptors_balanced():
    p = ck.PublisherChecker("pub")
    assert p.feed({"event": "ready", "fds": 6, "key_socks": 1}) == []
    assert p.feed(pub_ev("subscriber", 7, 2)) == []
    assert p.feed(pub_ev("detached", 6, 1)) == []
    assert p.check_idle() == []
    assert p.feed(pub_ev("subscriber", 8, 2))            # a descriptor that is no connection
    q = ck.PublisherChecker("pub")
    q.feed({"event": "ready", "fds": 6, "key_socks": 1})
    q.feed(pub_ev("detached", 7, 2))
    assert q.check_idle()                                # a connection left open
    assert ck.PublisherChecker("pub").check_idle()       # nothing to judge is no pass
    assert p.feed({"event": "error", "name": "CORRUPT"})


# ----------------------------------------------------------------------------- gaps


def test_gapwatch_steady_and_startup():
    g = ck.GapWatch(steady_ms=100, startup_ms=300)
    assert g.check("s", 0, False, 100 * MS) is None
    assert "nothing delivered" in g.check("s", 0, False, 101 * MS)
    assert g.check("s", 0, True, 250 * MS) is None
    assert g.check("s", 0, True, 301 * MS)


def test_gapwatch_disturbance_extends_then_expires():
    g = ck.GapWatch(steady_ms=100, startup_ms=300)
    g.open("sub_stop", "x", 50 * MS, grace_ms=1000, end_ns=50 * MS)
    assert g.check("s", 0, False, 1000 * MS) is None
    assert g.check("s", 0, False, 1051 * MS)             # beyond the stop's bound


def test_gapwatch_ongoing_excuses_until_closed():
    g = ck.GapWatch(steady_ms=100, startup_ms=300)
    d = g.open("pub_kill", "p", 10 * MS, grace_ms=500)
    assert g.check("s", 0, False, 5000 * MS) is None     # the publisher is down: excused
    g.close(d, 6000 * MS)
    assert g.check("s", 0, False, 6400 * MS) is None
    assert g.check("s", 0, False, 6501 * MS)


def test_gapwatch_old_disturbance_does_not_excuse():
    g = ck.GapWatch(steady_ms=100, startup_ms=300)
    g.open("sub_kill", "x", 0, grace_ms=200, end_ns=0)
    # a delivery at 1 s, then nothing: the kill long before does not extend the deadline
    assert g.check("s", 1000 * MS, False, 1101 * MS)


def test_gapwatch_attributes_gaps_to_overlapping_disturbances():
    g = ck.GapWatch(steady_ms=100, startup_ms=300)
    d = g.open("sub_stop", "x", 100 * MS, grace_ms=1000, end_ns=100 * MS)
    g.delivered("s", 120 * MS, 900 * MS)   # the stall starts after the stop
    g.delivered("s", 5000 * MS, 5050 * MS)  # long after its window: not attributed
    assert d.worst_gap_ms == pytest.approx(780)
    assert g.stats.worst_ms == pytest.approx(780)


# ----------------------------------------------------------------------------- /proc, RSS


def test_compare_fds_and_maps():
    a = collections.Counter({"socket": 1, "pipe": 2, "/dev/shm/cuframes-k": 1})
    assert ck.compare_fds("p", a, collections.Counter(a)) == []
    assert ck.compare_fds("p", a, a + collections.Counter({"anon_inode:[eventfd]": 1}))
    assert ck.compare_fds("p", a, a - collections.Counter({"pipe": 1}))
    m = {"files": collections.Counter({"/lib/x.so": 4, "/dev/shm/cuframes-k": 1}), "anon": 10,
         "shm": 1}
    assert ck.compare_maps("p", m, m, 2) == []
    assert ck.compare_maps("p", m, dict(m, anon=12), 2) == []
    assert ck.compare_maps("p", m, dict(m, anon=13), 2)
    assert ck.compare_maps("p", m, dict(m, shm=2), 2)
    assert ck.compare_maps("p", m, dict(m, files=m["files"] + collections.Counter({"/y": 1})), 2)


def test_snapshots_of_this_process():
    import os
    assert sum(ck.fd_snapshot(os.getpid()).values()) >= 3
    with open(f"/proc/{os.getpid()}/status"):  # a transient /proc read is no descriptor leak
        assert not any(k.startswith("/proc/") for k in ck.fd_snapshot(os.getpid()))
    assert ck.maps_snapshot(os.getpid())["files"]
    assert ck.rss_kib(os.getpid()) > 0


def test_rss_growth():
    flat = [(float(t), 4000 + (t % 3)) for t in range(100)]
    fig, v = ck.rss_growth("p", flat, 10, 1024)
    assert v == [] and fig["judged"] and fig["growth_kib"] <= 2
    leak = [(float(t), 4000 + 40 * t) for t in range(100)]
    fig, v = ck.rss_growth("p", leak, 10, 1024)
    assert v and fig["growth_kib"] > 1024
    fig, v = ck.rss_growth("p", [(1.0, 4000)], 10, 1024)
    assert v == [] and not fig["judged"]


# ----------------------------------------------------------------------------- the schedule


def points():
    return [p for p, _ in fault_points()]


def test_schedule_is_a_function_of_the_seed():
    a = soak.make_schedule(7, 600, 16, 2, 2.5, points())
    assert a == soak.make_schedule(7, 600, 16, 2, 2.5, points())
    assert a != soak.make_schedule(8, 600, 16, 2, 2.5, points())
    assert len(a) > 150
    assert {e["type"] for e in a} == {t for t, _ in soak.EVENT_WEIGHTS}


def test_schedule_spares_sentinels_and_the_final_quarter():
    s = soak.make_schedule(3, 600, 16, 2, 2.5, points())
    assert all(e["seat"] >= 2 for e in s if "seat" in e)
    assert all(e["at_s"] <= 450 for e in s if e["type"].startswith("pub_"))
    assert all(e["stop_s"] <= soak.PUB_STOP_MAX_S for e in s
               if e["type"].startswith("pub_") and "stop_s" in e)
    assert not any(e["point"] == "pub.params.lock_odd" and e["action"] == "stop"
                   for e in s if "point" in e)


def test_every_fault_point_has_a_plan():
    pts = points()
    assert pts
    for p in pts:
        soak.point_plan(p, 16)
    with pytest.raises(KeyError):
        soak.point_plan("pub.unknown.step", 16)
    reached = {e["point"] for e in soak.make_schedule(1, 3600, 16, 2, 2.5, pts) if "point" in e}
    assert reached == set(pts)


def test_invalid_frame_of_a_stopped_subscriber_waits_for_the_eviction_check():
    stopped = [False]
    cs = ck.Checksums(FB, PB)
    cs.publisher("frame", 1, "aa")
    c = ck.DeliveryChecker("sub", FB, PB, GOP, cs, was_stopped=lambda: stopped[0])
    att = dict(attached(), index=3, t_ns=100)
    assert c.feed(att) == []
    stopped[0] = True
    bad = dict(frame(1, valid=False), t_ns=500)
    assert c.feed(bad) == [] and c.suspect == [bad]   # its checksum is not compared either
    assert ck.eviction_explains(bad, c.last_attach, [(3, 300)])
    assert not ck.eviction_explains(bad, c.last_attach, [(2, 300)])   # another slot
    assert not ck.eviction_explains(bad, c.last_attach, [(3, 50)])    # before this session
    assert not ck.eviction_explains(bad, c.last_attach, [(3, 600)])   # after the check
    assert not ck.eviction_explains(bad, c.last_attach, [])
    # never stopped: an invalid frame is a violation at once
    d = ck.DeliveryChecker("sub", FB, PB, GOP, was_stopped=lambda: False)
    d.feed(att)
    assert d.feed(bad) and d.suspect == []
