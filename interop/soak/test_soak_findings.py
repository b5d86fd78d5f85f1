"""Minimal reproductions of what the chaos soak (interop/soak/soak.py) found in the reference.

Evicted ACK into a reused slot (soak seed 20261201, 10 min, events #121-#122 at 321 s): a
subscriber stopped while it held a frame was evicted after the ACK timeout (ACK-EVICT-01) and its
slot given to a new subscriber; resumed, it released the frame and stored its `ack_seq` into
the slot it no longer owned. The publisher read that as the new occupant's ACK going backwards
and evicted the innocent subscriber with PROTOCOL (ACK-EVICT-02). A subscriber must check that
its slot is still its own (SHM-SUB-04: `state` ACTIVE and the same `generation`) before it writes
it (SHM-SUB-01: only the slot it was assigned), and one evicted subscriber must never affect
another (SHM-SUB-03).
"""
from __future__ import annotations

import signal

from cuframes_procs import Proc, adapter


def test_evicted_subscriber_resumed_does_not_ack_into_its_reused_slot(cf):
    key = cf.key()
    # One subscriber slot: the second subscriber can only attach into the first one's slot.
    pub = cf.pub(key, "--frames", "1000000", "--max-subscribers", "1", "--ack-timeout-ms", "300",
                 "--wait-subscribers", "1", "--linger-ms", "0", "--diag")
    pub.wait_event("ready")
    # Stopped inside its release of frame 3, before the ack_seq store (the soak's SIGSTOP landed
    # in the adapter's hold, just before the release: the same store follows on SIGCONT).
    env = dict(cf.env, CUFRAMES_FAULT="sub.ack.before_store:3:stop")
    a = Proc([str(adapter("cuframes-sub")), "--key", key, "--frames", "1000000",
              "--timeout-ms", "20000", "--diag"], env)
    cf.procs.append(a)
    stop = a.wait_match(lambda e: e.get("event") == "fault", 15, "the stop at frame 3")
    assert stop["point"] == "sub.ack.before_store"
    # Frame 3 not ACKed: the publisher evicts it after 300 ms and frees its slot.
    evicted = pub.wait_match(lambda e: e.get("event") == "evicted", 15, "the eviction")
    assert evicted["reason"] == "EVICTED", evicted
    # B holds each frame 100 ms: the publisher is nearly always waiting for B's ACK, and looks
    # at B's slot as soon as A's store wakes it.
    b = cf.sub(key, "--frames", "1000000", "--timeout-ms", "20000", "--hold-ms", "100", "--diag")
    b.wait_event("attached", 15)  # into the only slot there is: A's
    b.wait_match(lambda e: e.get("event") == "frame" and len(b.of("frame")) >= 3, 15,
                 "B's third frame")
    a.p.send_signal(signal.SIGCONT)  # A resumes in its release of frame 3
    rc_a = a.finish(20)
    a_errors = [e for e in a.events if e.get("event") == "error"]
    assert a_errors and a_errors[-1]["name"] == "EVICTED", (rc_a, a.events[-3:])
    # B keeps receiving: 20 more frames, and the publisher evicts nobody else.
    first = b.of("frame")[-1]["seq"] if b.of("frame") else 0
    b.wait_match(lambda e: e.get("event") == "frame" and e["seq"] >= first + 10, 20,
                 "B's frames after A resumed")
    b_errors = [e for e in b.events if e.get("event") == "error"]
    assert not b_errors, b_errors
    pub_evictions = [e for e in pub.events if e.get("event") == "evicted"]
    assert pub_evictions == [evicted], pub_evictions


def test_codec_params_poll_sees_the_publishers_death(cf):
    """Publisher dead before it published codec parameters (soak seed 20261201, 10 min, 389 s:
    a subscriber that reconnected to a publisher killed right after waited out its whole
    --timeout-ms polling get_codec_params, which answered NO_CODEC_PARAMS for ever). The poll
    must end with PEER_CLOSED within the death-detection bound, like every blocking call
    (RES-CRASH-01)."""
    key = cf.key()
    # Waits for two subscribers before it publishes anything, parameters included.
    pub = cf.pub(key, "--frames", "0", "--packets", "100", "--wait-subscribers", "2",
                 "--wait-timeout-ms", "20000", "--linger-ms", "0", "--diag")
    pub.wait_event("ready")
    sub = cf.sub(key, "--packets", "100", "--wait-params", "--timeout-ms", "20000", "--diag")
    sub.wait_event("attached", 15)
    pub.p.send_signal(signal.SIGKILL)
    pub.p.wait()
    t_kill = __import__("time").monotonic_ns()
    err = sub.wait_match(lambda e: e.get("event") == "error", 10, "the subscriber's error")
    assert err["name"] == "PEER_CLOSED", err
    assert err["where"] == "get_codec_params", err
    assert (err["t_ns"] - t_kill) / 1e6 < 1500, (err["t_ns"] - t_kill) / 1e6
    for name in (f"cuframes-{key}", f"cuframes-{key}-packets"):  # the dead publisher's files
        try:
            __import__("os").unlink(f"/dev/shm/{name}")
        except FileNotFoundError:
            pass
