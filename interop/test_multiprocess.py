"""Multi-process scenarios of the reference implementation, through its adapter programs.

Readiness comes from the adapters' JSON lines ("ready", "attached", "subscriber"); no sleeps.
Build first, then: CUFRAMES_BUILD_DIR=<cmake build dir> python3 -m pytest interop
"""
from __future__ import annotations

import os
import signal
import time

import pytest

FRAMES = 10_000


def expect_clean(cf) -> None:
    left = cf.leftovers()
    assert not left, f"files left behind: {left}"


def test_one_publisher_four_subscribers_10k_frames(cf):
    """Lossless, in order, every checksum verified, and no slot reused before all its ACKs:
    each subscriber re-verifies every frame after a random hold, before releasing it; a
    publisher that overwrote a slot early would fail that second check (exit 4)."""
    key = cf.key()
    pub = cf.pub(key, "--frames", str(FRAMES), "--slots", "4", "--bytes", "2048",
                 "--wait-subscribers", "4")
    pub.wait_event("ready")
    subs = [cf.sub(key, "--frames", str(FRAMES), "--verify-hold", "--hold-max-us", "200",
                   "--seed", str(i + 1), "--timeout-ms", "10000") for i in range(4)]
    for s in subs:
        assert s.wait_event("attached")["start_seq"] == 1
    rcs = [s.finish(timeout=60) for s in subs]
    assert pub.finish(timeout=30) == 0, pub.stderr
    assert rcs == [0, 0, 0, 0], [s.of("error") for s in subs]
    published = {e["seq"]: e["checksum"] for e in pub.of("frame")}
    assert sorted(published) == list(range(1, FRAMES + 1))
    for s in subs:
        frames = s.of("frame")
        assert [f["seq"] for f in frames] == list(range(1, FRAMES + 1))
        assert all(f["valid"] for f in frames)
        assert all(published[f["seq"]] == f["checksum"] for f in frames)
    assert len(pub.of("subscriber")) == 4
    expect_clean(cf)


def test_publisher_death_gives_peer_closed(cf):
    """SIGKILL the publisher: every subscriber reports PEER_CLOSED (exit 2) within a bound."""
    key = cf.key()
    pub = cf.pub(key, "--frames", "100000000", "--wait-subscribers", "2")
    pub.wait_event("ready")
    subs = [cf.sub(key, "--frames", "100000000", "--timeout-ms", "30000") for _ in range(2)]
    for s in subs:
        s.wait_event("attached")
    for s in subs:
        s.wait_event("frame")  # frames are flowing
    t0 = time.monotonic()
    os.kill(pub.p.pid, signal.SIGKILL)
    rcs = [s.finish(timeout=10) for s in subs]
    elapsed = time.monotonic() - t0
    assert rcs == [2, 2]
    for s in subs:
        err = s.of("error")[-1]
        assert (err["code"], err["name"]) == (8, "PEER_CLOSED")
    # 250 ms detection (PEER_DEATH_DETECT_MS) plus process exit on a loaded 2-core machine.
    assert elapsed < 1.5, f"subscribers took {elapsed:.3f}s to notice the publisher's death"
    # The dead publisher's files are stale; a new publisher of the key reclaims them.
    pub.finish()
    again = cf.pub(key, "--frames", "1")
    again.wait_event("ready")
    assert again.finish() == 0
    expect_clean(cf)


def test_v1_capped_subscriber_against_v3_publisher(cf):
    """A subscriber capped to proto 1 (flag, or CUFRAMES_MAX_PROTO) negotiates v1 with a v3
    publisher that has a packet ring, and receives every frame; an uncapped one negotiates v3
    (v2 plus wake forwarding) and gets the ring."""
    key = cf.key()
    pub = cf.pub(key, "--frames", "200", "--packets", "200", "--packet-bytes", "512",
                 "--gop", "10", "--wait-subscribers", "3")
    assert pub.wait_event("ready")["proto"] == 3
    v1_flag = cf.sub(key, "--frames", "200", "--max-proto", "1")
    v1_env = cf.sub(key, "--frames", "200", env=dict(cf.env, CUFRAMES_MAX_PROTO="1"))
    v3 = cf.sub(key, "--frames", "200", "--packets", "200", "--wait-params")
    for s, proto, ring in ((v1_flag, 1, False), (v1_env, 1, False), (v3, 3, True)):
        att = s.wait_event("attached")
        assert (att["proto"], att["packet_ring"]) == (proto, ring)
    for s in (v1_flag, v1_env, v3):
        assert s.finish(timeout=30) == 0, s.of("error")
        assert [f["seq"] for f in s.of("frame")] == list(range(1, 201))
        assert all(f["valid"] for f in s.of("frame"))
    packets = v3.of("packet")
    assert packets and all(p["valid"] for p in packets)
    assert packets[-1]["seq"] == 200
    assert v3.of("codec_params")[0]["valid"]
    assert pub.finish() == 0
    expect_clean(cf)


def test_v1_publisher_refuses_packets(cf):
    """A publisher capped to v1 negotiates v1 with a v2 subscriber; asking it for packets
    gives NO_PACKET_RING, and the publisher serves its frames subscriber as before."""
    key = cf.key()
    # --wait-subscribers counts subscribers ACTIVE at the same time (ADP-PUB-01), and the packets
    # subscriber is ACTIVE only for a moment: a frames subscriber is what the publisher waits for,
    # and the gate holds it at frame 2 so that it is still there for the packets subscriber.
    pub = cf.pub(key, "--frames", "5", "--max-proto", "1", "--wait-subscribers", "1",
                 "--gate-at", "3", stdin=True)
    pub.wait_event("ready")
    f = cf.sub(key, "--frames", "5")
    pub.wait_event("gate")
    s = cf.sub(key, "--packets", "1")
    assert s.wait_event("attached")["proto"] == 1
    assert s.finish() == 2
    assert s.of("error")[-1]["name"] == "NO_PACKET_RING"
    pub.send_line("go")
    assert f.finish() == 0
    assert [e["seq"] for e in f.of("frame")] == [1, 2, 3, 4, 5]
    assert pub.finish() == 0
    expect_clean(cf)


def test_second_publisher_gets_key_in_use(cf):
    key = cf.key()
    first = cf.pub(key, "--frames", "3", "--wait-subscribers", "1")
    first.wait_event("ready")
    second = cf.pub(key, "--frames", "1")
    assert second.finish() == 2
    assert second.of("error")[-1]["name"] == "KEY_IN_USE"
    s = cf.sub(key, "--frames", "3")  # the first publisher's files were not touched
    assert s.finish() == 0
    assert first.finish() == 0
    expect_clean(cf)


def test_stalled_subscriber_is_evicted_others_continue(cf):
    key = cf.key()
    pub = cf.pub(key, "--frames", "50", "--slots", "2", "--ack-timeout-ms", "300",
                 "--wait-subscribers", "2")
    pub.wait_event("ready")
    stalled = cf.sub(key, "--frames", "50", "--no-release-after", "1")
    good = cf.sub(key, "--frames", "50")
    stalled.wait_event("attached")
    good.wait_event("attached")
    assert good.finish(timeout=30) == 0
    assert stalled.finish(timeout=30) == 2
    assert stalled.of("error")[-1]["name"] == "EVICTED"
    assert pub.finish() == 0
    assert pub.of("evicted")
    expect_clean(cf)


def test_subscriber_without_publisher_is_not_found(cf):
    s = cf.sub(cf.key(), "--frames", "1")
    assert s.finish() == 2
    assert s.of("error")[-1]["name"] == "NOT_FOUND"


def _start_cuda_pub(cf, key, *args, kind="cuda"):
    """Starts a publisher of a CUDA kind (`cuda`: CUDA_IPC, `cuda_vmm_fd`: CUDA_VMM_FD) and waits
    for its ready event; skips, with the reason, where the build, device or driver lacks it."""
    if not any(os.path.exists(p) for p in ("/dev/nvidia0", "/dev/nvidiactl")):
        pytest.skip("no NVIDIA GPU device on this machine")
    pub = cf.pub(key, "--kind", kind, *args)
    try:
        pub.wait_event("ready")
    except EOFError:
        rc = pub.finish()
        if rc == 77:
            pytest.skip(f"--kind {kind} unsupported here (ADP-KIND-01): {pub.of('error')}")
        pytest.fail(f"CUDA publisher failed: rc={rc} {pub.of('error')} {pub.stderr[-300:]}")
    return pub


# Both CUDA kinds run the same scenarios: CUDA_IPC (handles in the segment) and CUDA_VMM_FD
# (buffer descriptors passed with HELLO_RESP, spec 7.1).
CUDA_KINDS = ["cuda", "cuda_vmm_fd"]


@pytest.mark.cuda
@pytest.mark.parametrize("kind", CUDA_KINDS)
def test_cuda_kind_one_publisher_two_subscribers(cf, kind):
    """CUDA kinds: device buffers shared by IPC handles (CUDA_IPC) or file descriptors
    (CUDA_VMM_FD), ready/ack IPC events; every frame copied back to the host and verified, with
    a hold before release to catch early reuse."""
    key = cf.key()
    pub = _start_cuda_pub(cf, key, "--frames", "300", "--slots", "3", "--bytes", str(1 << 20),
                          "--wait-subscribers", "2", kind=kind)
    subs = [cf.sub(key, "--kind", kind, "--frames", "300", "--verify-hold",
                   "--hold-max-us", "300", "--timeout-ms", "10000") for _ in range(2)]
    for s in subs:
        assert s.wait_event("attached", timeout=20)["kind"] == kind
    rcs = [s.finish(timeout=60) for s in subs]
    assert pub.finish(timeout=30) == 0, pub.stderr
    assert rcs == [0, 0], [(s.of("error"), s.stderr[-300:]) for s in subs]
    published = {e["seq"]: e["checksum"] for e in pub.of("frame")}
    for s in subs:
        frames = s.of("frame")
        assert [f["seq"] for f in frames] == list(range(1, 301))
        assert all(f["valid"] and published[f["seq"]] == f["checksum"] for f in frames)
    expect_clean(cf)


@pytest.mark.cuda
@pytest.mark.parametrize("kind", CUDA_KINDS)
def test_cuda_publisher_death_gives_peer_closed(cf, kind):
    key = cf.key()
    pub = _start_cuda_pub(cf, key, "--frames", "100000000", "--wait-subscribers", "1", kind=kind)
    s = cf.sub(key, "--kind", kind, "--frames", "100000000", "--timeout-ms", "30000")
    s.wait_event("attached", timeout=20)
    s.wait_event("frame", timeout=20)
    t0 = time.monotonic()
    os.kill(pub.p.pid, signal.SIGKILL)
    assert s.finish(timeout=10) == 2
    assert time.monotonic() - t0 < 2.0
    assert s.of("error")[-1]["name"] == "PEER_CLOSED"
    pub.finish()
    again = cf.pub(key, "--frames", "1")  # stale reclaim
    again.wait_event("ready")
    assert again.finish() == 0
    expect_clean(cf)
