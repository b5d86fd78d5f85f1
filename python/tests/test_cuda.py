"""CUDA_IPC kind of cuframes for Python, for GPU machines: an adapter publisher (--kind cuda) in
a fresh process and a library subscriber here, and the reverse; frames checked on the host and,
where PyTorch is present, through torch.from_dlpack. Skips, saying why, without CuPy or a
device. CUDA is initialised in this process only after the children are started (never fork
after CUDA initialisation)."""
import json
import os
import subprocess
import sys
import time

import pytest

ADAPTER = os.path.join(os.path.dirname(__file__), "..", "tools", "adapter.py")


def _probe():
    # In a child, so this process does not initialise CUDA before it spawns peers.
    code = ("import sys; sys.path[:0] = %r\nfrom cuframes import cuda\n"
            "try:\n    cuda.require_device()\nexcept Exception as e:\n    print(e)\n"
            "    sys.exit(77)\n") % (sys.path,)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


_OK, _WHY = _probe()
pytestmark = pytest.mark.skipif(not _OK, reason=f"CUDA kind unavailable: {_WHY}")
if not _OK:
    print(f"test_cuda.py: skipping: {_WHY}", file=sys.stderr)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("CUFRAMES_SOCKET_DIR", str(tmp_path))
    return {**os.environ, "CUFRAMES_SOCKET_DIR": str(tmp_path)}


def _key(tag):
    return f"pycuda-{tag}-{os.getpid()}-{time.monotonic_ns() % 100000}"


def test_adapter_publisher_to_library_subscriber(env):
    from cuframes import Subscriber
    from cuframes.adapters._common import frame_payload

    k = _key("a")
    pub = subprocess.Popen([sys.executable, ADAPTER, "pub", "--key", k, "--kind", "cuda",
                            "--frames", "10", "--slots", "3", "--bytes", "65536",
                            "--wait-subscribers", "1", "--linger-ms", "5000",
                            # first CUDA use by PyTorch (context, kernels) may take seconds
                            "--ack-timeout-ms", "30000"], env=env,
                           stdout=subprocess.PIPE, text=True)
    try:
        ready = json.loads(pub.stdout.readline())
        assert ready["event"] == "ready" and ready["kind"] == "cuda"
        # Imported before attaching: importing PyTorch takes seconds, longer than the
        # publisher's ACK timeout for the frames it publishes meanwhile.
        try:
            import torch
        except ImportError:
            torch = None
        with Subscriber(k, kinds=("cuda",)) as sub:
            assert sub.kind == 2
            for n in range(1, 11):
                with sub.next_frame(5000) as f:
                    assert f.tobytes() == frame_payload(n, 65536)
                    arr = f.array
                    assert hasattr(arr, "__cuda_array_interface__")
                    if torch is not None:
                        sub._cuda.stream.synchronize()
                        t = torch.from_dlpack(arr)
                        assert t.is_cuda and int(t[1].item()) == (n * 31 + 7) % 256
        assert pub.wait(timeout=15) == 0
    finally:
        pub.kill()
        pub.wait()


@pytest.mark.parametrize("in_place", [False, True], ids=["publish-copy", "frame-in-place"])
def test_library_publisher_to_adapter_subscriber(env, in_place):
    """publish() of a CuPy array (a device-to-device copy), or Publisher.frame() written in
    place by a kernel on CuPy's current stream, before the ready event."""
    from cuframes import CUDA_IPC, Publisher
    from cuframes.adapters._common import frame_payload

    k = _key("c" if in_place else "b")
    # CUDA is initialised here (Publisher) before the adapter starts: subprocess starts it with
    # vfork + exec on Linux, never a bare fork of an initialised process (RES-CUDA-04)
    sub = None
    with Publisher(k, memory_kind=CUDA_IPC, slot_count=2, slot_bytes=8192) as pub:
        sub = subprocess.Popen([sys.executable, ADAPTER, "sub", "--key", k, "--kind", "cuda",
                                "--frames", "6"], env=env, stdout=subprocess.PIPE, text=True)
        try:
            assert pub.wait_active(1, 15000)
            import cupy
            import numpy

            for n in range(1, 7):
                src = cupy.asarray(numpy.frombuffer(frame_payload(n, 8192), dtype=numpy.uint8))
                if not in_place:
                    pub.publish(src, user_data=n)
                    continue
                with pub.frame(user_data=n) as buf:
                    assert hasattr(buf, "__cuda_array_interface__") and buf.nbytes == 8192
                    buf[:] = src
            out, _ = sub.communicate(timeout=20)
        finally:
            sub.kill()
    events = [json.loads(line) for line in out.splitlines()]
    frames = [e for e in events if e["event"] == "frame"]
    assert [f["seq"] for f in frames] == list(range(1, 7)) and all(f["valid"] for f in frames)
    assert sub.returncode == 0
