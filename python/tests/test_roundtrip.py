"""Publisher and subscriber of cuframes for Python in two processes: the other side is the
package's own adapter, started fresh; readiness comes from its `ready`/`attached` event lines,
every wait is bounded, nothing sleeps to synchronise."""
import json
import os
import select
import subprocess
import sys
import time

import pytest

from cuframes import CuframesError, Err, Publisher, Subscriber
from cuframes.adapters._common import frame_payload, packet_payload, params_payload

ADAPTER = os.path.join(os.path.dirname(__file__), "..", "tools", "adapter.py")


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("CUFRAMES_SOCKET_DIR", str(tmp_path))
    return {**os.environ, "CUFRAMES_SOCKET_DIR": str(tmp_path)}


def key(tag):
    return f"pyt-{tag}-{os.getpid()}-{time.monotonic_ns() % 100000}"


def spawn(env, role, *args):
    return subprocess.Popen([sys.executable, ADAPTER, role, *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_event(p, want, timeout=10.0):
    """The next event line named `want` (bounded wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([p.stdout], [], [], deadline - time.monotonic())
        if not r:
            break
        line = p.stdout.readline()
        if not line:
            break
        ev = json.loads(line)
        if ev["event"] == want:
            return ev
        if ev["event"] == "error":
            raise AssertionError(f"adapter error: {ev}")
    raise AssertionError(f"no {want} event within {timeout} s")


def test_adapter_publisher_to_library_subscriber(env):
    k = key("a")
    pub = spawn(env, "pub", "--key", k, "--frames", "12", "--slots", "3", "--packets", "12",
                "--gop", "4", "--wait-subscribers", "1", "--linger-ms", "5000")
    try:
        read_event(pub, "ready")
        with Subscriber(k, want_packets=True) as sub:
            assert sub.proto == 3 and sub.has_packet_ring and sub.start_seq == 1
            cp = sub.wait_codec_params(5000)
            assert cp.generation == 1 and cp.data == params_payload(1)
            for n in range(1, 13):
                with sub.next_frame(5000) as f:
                    assert f.seq == n and f.timestamp_ns == n * 1000 and f.user_data == n
                    assert f.array.tobytes() == frame_payload(n, 4096)
                p = sub.next_packet(5000)
                assert p.seq == n and p.data == packet_payload(n, 1024)
                assert p.keyframe == ((n - 1) % 4 == 0) and p.pts == n * 3000
            with pytest.raises(CuframesError) as e:
                sub.next_frame(0)
            assert e.value.code in (Err.AGAIN, Err.PEER_CLOSED)
        assert pub.wait(timeout=10) == 0
    finally:
        pub.kill()
        pub.wait()


def test_library_publisher_to_adapter_subscriber(env):
    k = key("b")
    with Publisher(k, slot_count=2, slot_bytes=4096) as pub:
        sub = spawn(env, "sub", "--key", k, "--frames", "6", "--max-proto", "1")
        try:
            assert pub.wait_active(1, 10000)
            for n in range(1, 7):
                pub.publish(frame_payload(n, 4096), timestamp_ns=n * 1000, user_data=n)
            out, err = sub.communicate(timeout=15)
        finally:
            sub.kill()
        events = [json.loads(line) for line in out.splitlines()]
        assert events[0]["event"] == "attached" and events[0]["proto"] == 1
        frames = [e for e in events if e["event"] == "frame"]
        assert [f["seq"] for f in frames] == list(range(1, 7))
        assert all(f["valid"] for f in frames), err
        assert events[-1]["event"] == "done" and sub.returncode == 0


def test_a_kept_view_never_shows_the_reused_slot(env):
    k = key("c")
    with Publisher(k, slot_count=2, slot_bytes=4096) as pub:
        with Subscriber(k) as sub:
            pub.publish(b"\x01" * 4096)
            f = sub.next_frame(5000)
            kept = f.array
            f.release()
            with pytest.raises(CuframesError):
                f.array  # noqa: B018  (released: refused)
            for n in range(2, 6):  # laps the two slots: slot 0 is rewritten
                pub.publish(bytes([n]) * 4096)
                with sub.next_frame(5000) as g:
                    assert g.array[0] == n
            assert kept[0] == 1 and kept[-1] == 1  # still frame 1's bytes


def test_slow_subscriber_is_evicted(env):
    k = key("d")
    with Publisher(k, slot_count=2, slot_bytes=4096, ack_timeout_ms=300) as pub:
        with Subscriber(k) as sub:
            held = [sub.next_frame(5000) if pub.publish(b"x" * 10) else None for _ in range(2)]
            t = time.monotonic()
            pub.publish(b"y" * 10)  # needs frame 1's ACK: evicts after 300 ms
            assert 0.25 <= time.monotonic() - t < 3
            with pytest.raises(CuframesError) as e:
                sub.next_frame(2000)
            assert e.value.code == Err.EVICTED
            del held


def test_errors_before_anything_is_touched(env):
    with pytest.raises(CuframesError) as e:
        Publisher("bad/key")
    assert e.value.code == Err.INVALID_ARGUMENT
    with pytest.raises(CuframesError) as e:
        Subscriber(key("none"))
    assert e.value.code == Err.NOT_FOUND
    k = key("e")
    with Publisher(k):
        with pytest.raises(CuframesError) as e:
            Publisher(k)
        assert e.value.code == Err.KEY_IN_USE


def test_publisher_crash_is_seen_within_the_detect_time(env):
    k = key("f")
    pub = spawn(env, "pub", "--key", k, "--frames", "0", "--linger-ms", "60000",
                "--wait-subscribers", "1")
    try:
        read_event(pub, "ready")
        with Subscriber(k) as sub:
            pub.kill()
            t = time.monotonic()
            with pytest.raises(CuframesError) as e:
                sub.next_frame(5000)
            assert e.value.code == Err.PEER_CLOSED
            assert time.monotonic() - t < 1.0
    finally:
        pub.kill()
        pub.wait()
    with Publisher(k):  # the next publisher reclaims the dead one's files
        pass
    assert not os.path.exists(f"/dev/shm/cuframes-{k}")


def test_late_joiner_starts_at_a_keyframe(env):
    k = key("g")
    with Publisher(k, packet_ring=True, ring_bytes=1 << 16, max_packet_bytes=256) as pub:
        pub.set_codec_params(1, b"params")
        for n in range(1, 8):
            pub.publish_packet(bytes([n]) * 100, keyframe=(n - 1) % 5 == 0, pts=n)
        with Subscriber(k, want_packets=True) as sub:
            p = sub.next_packet(2000)
            assert p.seq == 6 and p.keyframe  # the last keyframe, not packet 1
            assert sub.next_packet(2000).seq == 7
            with pytest.raises(CuframesError) as e:
                sub.next_packet(0)
            assert e.value.code == Err.AGAIN


def test_overrun_resumes_at_the_latest_keyframe(env):
    k = key("h")
    with Publisher(k, packet_ring=True, ring_bytes=4096, max_packet_bytes=1000) as pub:
        pub.set_codec_params(1, b"p")
        with Subscriber(k, want_packets=True) as sub:
            pub.publish_packet(b"a" * 900, keyframe=True)
            assert sub.next_packet(1000).seq == 1
            for n in range(2, 12):  # ~10 KB through a 4 KB ring: the reader is lapped
                pub.publish_packet(b"b" * 900, keyframe=n % 3 == 0)
            with pytest.raises(CuframesError) as e:
                sub.next_packet(1000)
            assert e.value.code == Err.PACKET_OVERRUN
            p = sub.next_packet(1000)
            assert p.keyframe and p.seq == 9 and p.data == b"b" * 900


def test_a_dropped_frame_is_released_when_collected(env):
    k = key("i")
    with Publisher(k, slot_count=2, slot_bytes=4096, ack_timeout_ms=5000) as pub:
        with Subscriber(k) as sub:
            pub.publish(b"1")
            f = sub.next_frame(2000)
            del f  # never released explicitly
            pub.publish(b"2")
            t = time.monotonic()
            pub.publish(b"3")  # reuses frame 1's slot: needs its ACK
            assert time.monotonic() - t < 2.0
            assert sub.next_frame(2000).seq == 2


def test_wait_released_returns_once_the_subscriber_released(env):
    k = key("w")
    with Publisher(k, slot_count=2, slot_bytes=64) as pub:
        with pytest.raises(CuframesError) as e:
            pub.wait_released(1)  # nothing published yet
        assert e.value.code == Err.INVALID_ARGUMENT
        sub = spawn(env, "sub", "--key", k, "--frames", "3", "--hold-ms", "200")
        try:
            assert pub.wait_active(1, 10000)
            for n in range(1, 4):
                seq = pub.publish(frame_payload(n, 64))
                t0 = time.monotonic()
                pub.wait_released(seq)
                # the adapter holds each frame 200 ms before releasing it
                assert time.monotonic() - t0 >= 0.15
                ack = pub.seg.load64(pub._slot_off(0, "ack_seq"))
                assert ack >= seq
            assert read_event(sub, "done")["frames"] == 3
        finally:
            sub.kill()
            sub.wait()


def test_frame_writes_in_place_and_publishes_on_exit(env):
    import numpy as np

    k = key("f")
    with Publisher(k, slot_count=2, slot_bytes=256) as pub:
        sub = spawn(env, "sub", "--key", k, "--frames", "4")
        try:
            assert pub.wait_active(1, 10000)
            with pytest.raises(RuntimeError):
                with pub.frame() as buf:
                    buf[:] = 0xee
                    raise RuntimeError("the producer failed half-way")
            assert pub.write_seq == 0  # nothing was published
            for n in range(1, 5):
                with pub.frame(200, user_data=n) as buf:
                    assert isinstance(buf, np.ndarray) and buf.nbytes == 200
                    buf[:] = np.frombuffer(frame_payload(n, 200), dtype=np.uint8)
                    assert pub.write_seq == n - 1  # committed only when the block ends
                assert pub.write_seq == n
            frames = [read_event(sub, "frame") for _ in range(4)]
            assert [f["seq"] for f in frames] == [1, 2, 3, 4]
            assert all(f["valid"] and f["size"] == 200 for f in frames)
            assert read_event(sub, "done")["frames"] == 4
        finally:
            sub.kill()
            sub.wait()
        with pytest.raises(CuframesError) as e:
            with pub.frame(257):
                pass
        assert e.value.code == Err.INVALID_ARGUMENT
