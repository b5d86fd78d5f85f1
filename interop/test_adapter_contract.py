"""The reference adapters against the rules of spec/ADAPTER.md that the conformance harness
cannot arrange on every machine: --kind cuda or cuda_vmm_fd without a usable GPU (ADP-KIND-01),
SIGTERM on both adapters (ADP-SIG-01), invalid option values (ADP-ARGS-01, ADP-PUB-03).

Readiness comes from the adapters' JSON lines; no sleeps.
"""
from __future__ import annotations

import signal

import pytest


@pytest.mark.parametrize("kind", ["cuda", "cuda_vmm_fd"])
def test_kind_cuda_without_usable_gpu_is_unsupported(cf, kind):
    """ADP-KIND-01: both adapters answer --kind cuda (and the optional --kind cuda_vmm_fd) with
    code 25 (UNSUPPORTED) and exit 77 when the build has no CUDA kind or the machine no usable
    device (for cuda_vmm_fd also: a device that cannot export POSIX file descriptors)."""
    key = cf.key()
    pub = cf.pub(key, "--kind", kind, "--frames", "0", "--linger-ms", "0")
    rc = pub.finish(timeout=30)
    if pub.of("ready"):
        pytest.skip(f"a usable CUDA device is present: --kind {kind} is supported here")
    assert rc == 77, (rc, pub.stderr)
    (err,) = pub.of("error")
    assert err["code"] == 25 and err["name"] == "UNSUPPORTED"
    sub = cf.sub(key, "--kind", kind, "--frames", "1")
    assert sub.finish(timeout=30) == 77, sub.stderr
    (err,) = sub.of("error")
    assert err["code"] == 25
    assert not sub.of("attached")


def test_sigterm_publisher_shuts_down_cleanly(cf):
    """ADP-SIG-01: SIGTERM while a subscriber is attached and the publisher lingers: DETACH(OK)
    reaches the subscriber (PEER_CLOSED), the publisher exits 0 and leaves no file."""
    key = cf.key()
    pub = cf.pub(key, "--frames", "2", "--wait-subscribers", "1", "--linger-ms", "60000")
    pub.wait_event("ready")
    sub = cf.sub(key, "--frames", "3", "--timeout-ms", "20000")
    sub.wait_event("attached")
    pub.wait_event("done")
    pub.p.send_signal(signal.SIGTERM)
    assert pub.finish(timeout=10) == 0, pub.stderr
    assert sub.finish(timeout=10) == 2
    assert sub.of("error")[0]["name"] == "PEER_CLOSED"
    assert not cf.leftovers()


def test_sigterm_subscriber_detaches_and_exits_0(cf):
    """ADP-SIG-01: a subscriber waiting for a frame closes with DETACH(OK) on SIGTERM and exits
    0 without "done"; the publisher sees a detached event with reason "OK" (ADP-FMT-01)."""
    key = cf.key()
    pub = cf.pub(key, "--frames", "0", "--wait-subscribers", "1", "--linger-ms", "60000")
    pub.wait_event("ready")
    sub = cf.sub(key, "--frames", "5", "--timeout-ms", "20000")
    sub.wait_event("attached")
    pub.wait_event("subscriber")
    sub.p.send_signal(signal.SIGTERM)
    assert sub.finish(timeout=10) == 0, sub.stderr
    assert not sub.of("done") and not sub.of("error")
    detached = pub.wait_event("detached")
    assert detached["reason"] == "OK"
    assert pub.finish(timeout=10) == 0, pub.stderr
    assert not cf.leftovers()


@pytest.mark.parametrize("args", [
    ["--frames", "x"],
    ["--frames", "-1"],
    ["--slots"],
    ["--packets", "2", "--ring-bytes", "5000"],
    ["--packets", "2", "--packet-bytes", "3000", "--ring-bytes", "4096"],
    ["--no-such-option", "1"],
])
def test_publisher_invalid_option_is_usage_error(cf, args):
    """ADP-ARGS-01 / ADP-PUB-03: exit 1, nothing created."""
    pub = cf.pub(cf.key(), *args)
    assert pub.finish(timeout=10) == 1, pub.stderr
    assert not pub.of("ready")
    assert not cf.leftovers()


@pytest.mark.parametrize("args", [["--timeout-ms", "-5"], ["--gop", "0"], ["--gop", "x"]])
def test_subscriber_invalid_option_is_usage_error(cf, args):
    """ADP-ARGS-01: exit 1, no connection attempted (no publisher runs, so an attempt would be
    NOT_FOUND, exit 2)."""
    sub = cf.sub(cf.key(), "--frames", "1", *args)
    assert sub.finish(timeout=10) == 1, sub.stderr
