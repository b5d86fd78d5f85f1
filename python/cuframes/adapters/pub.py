"""Publisher adapter of spec/ADAPTER.md: `python -m cuframes.adapters.pub --key K ...`."""
from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any, Optional

from ..errors import CuframesError, Err
from ..layout import HOST, CUDA_IPC
from ..publisher import PROTO_MAX
from . import _common as C


class _Terminate(BaseException):
    """SIGTERM's exit path. A BaseException, so that no `except Exception` on the way (the
    library's CUDA calls turn exceptions into CuframesError(CUDA)) mistakes it for a failure."""


def _parse(argv: list[str]) -> Any:
    p = C.Parser(prog="cuframes-pub (python)", allow_abbrev=False, add_help=False)
    p.add_argument("--key", required=True)
    p.add_argument("--frames", type=C.uint(), default=0)
    p.add_argument("--slots", type=C.uint(2, 256), default=4)
    p.add_argument("--max-subscribers", type=C.uint(1, 64), default=8)
    p.add_argument("--bytes", type=C.uint(1, 1 << 40), default=None)
    p.add_argument("--width", type=C.uint(0, 1 << 20), default=0)
    p.add_argument("--height", type=C.uint(0, 1 << 20), default=0)
    # cuda_vmm_fd is a kind of the contract this implementation does not offer: accepted here,
    # refused as unsupported in main (ADP-KIND-01), never a usage error.
    p.add_argument("--kind", choices=["host", "cuda", "cuda_vmm_fd"], default="host")
    p.add_argument("--wait-subscribers", type=C.uint(0, 64), default=0)
    p.add_argument("--wait-timeout-ms", type=C.uint(), default=10000)
    p.add_argument("--ack-timeout-ms", type=C.uint(), default=2000)
    p.add_argument("--max-proto", type=C.uint(1, 65535), default=PROTO_MAX)
    p.add_argument("--packets", type=C.uint(), default=0)
    p.add_argument("--packet-bytes", type=C.uint(1, 1 << 31), default=1024)
    p.add_argument("--gop", type=C.uint(0, 1 << 31), default=30)  # 0: no keyframe
    p.add_argument("--codec", type=C.uint(0, 3), default=1)
    p.add_argument("--ring-bytes", type=C.uint(), default=None)
    p.add_argument("--linger-ms", type=C.uint(), default=10000)
    p.add_argument("--file-mode", choices=["0600", "0660"], default="0600")
    p.add_argument("--allow-other-uids", action="store_true")
    a = p.parse_args(argv)
    if a.ring_bytes is not None:
        r = a.ring_bytes
        if r < 4096 or r & (r - 1) or r < 2 * (a.packet_bytes + 32):
            p.error(f"--ring-bytes {r}: a power of two >= 4096 and >= 2 x (--packet-bytes + 32)")
    if a.bytes is None:
        a.bytes = a.width * a.height * 3 // 2 if a.width and a.height else 4096
    return a


def main(argv: Optional[list[str]] = None) -> int:
    a = _parse(sys.argv[1:] if argv is None else argv)

    def on_term(_sig: int, _frm: Any) -> None:
        raise _Terminate()

    def closing(p: Any) -> None:
        # Once the shut-down has begun, a SIGTERM must neither interrupt it (a half-done close
        # leaves the segment behind, RES-CLOSE-03) nor kill the adapter (ADP-SIG-01: exit 0):
        # it is ignored from here on.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        p.close()

    if a.kind == "cuda_vmm_fd":
        C.fail(Err.UNSUPPORTED, "--kind cuda_vmm_fd: CUDA_VMM_FD is not implemented here")
    kind = HOST if a.kind == "host" else CUDA_IPC
    if kind != HOST:
        try:
            from .. import cuda

            cuda.require_device()
        except CuframesError as e:
            C.fail(Err.UNSUPPORTED, f"--kind cuda: {e}")
    if a.packets and a.max_proto < 2:
        C.fail(Err.INVALID_ARGUMENT, "create: --packets needs proto_version 2")
    from ..publisher import Publisher

    pub: Optional[Publisher] = None
    signal.signal(signal.SIGTERM, on_term)
    try:
        pub = Publisher(a.key, slot_count=a.slots, max_subscribers=a.max_subscribers,
                        slot_bytes=a.bytes, width=a.width, height=a.height, memory_kind=kind,
                        max_proto=a.max_proto, ack_timeout_ms=a.ack_timeout_ms,
                        packet_ring=bool(a.packets) or a.ring_bytes is not None,
                        ring_bytes=a.ring_bytes, max_packet_bytes=a.packet_bytes,
                        codec=a.codec, gop_hint=a.gop,
                        mode=0o660 if a.file_mode == "0660" else 0o600,
                        allow_other_uids=a.allow_other_uids,
                        on_event=lambda name, f: C.emit(name, **f))
        C.emit("ready", key=a.key, pid=os.getpid(), proto=pub.proto, kind=a.kind)
        if a.wait_subscribers and not pub.wait_active(a.wait_subscribers, a.wait_timeout_ms):
            C.emit("error", code=int(Err.TIMEOUT), name="TIMEOUT", where="wait-subscribers")
            closing(pub)
            return 3
        if a.packets:
            pub.set_codec_params(a.codec, C.params_payload(a.codec))
        for i in range(1, max(a.frames, a.packets) + 1):
            if i <= a.frames:
                data = C.frame_payload(i, a.bytes)
                seq = pub.publish(data, timestamp_ns=i * 1000, user_data=i)
                C.emit("frame", seq=seq, size=a.bytes, checksum=C.checksum(data))
            if i <= a.packets:
                payload = C.packet_payload(i, a.packet_bytes)
                key = C.is_keyframe(i, a.gop)
                seq = pub.publish_packet(payload, keyframe=key, pts=i * 3000)
                C.emit("packet", seq=seq, size=len(payload), keyframe=key,
                       checksum=C.checksum(payload))
        C.emit("done", frames=a.frames, packets=a.packets)
        # ADP-PUB-02: linger while any subscriber is ACTIVE, at most --linger-ms
        pub.wait_active(0, a.linger_ms, zero=True)
        closing(pub)
        return 0
    except _Terminate:
        if pub is not None:
            closing(pub)
        return 0
    except CuframesError as e:
        C.emit("error", code=int(e.code), name=e.code.name, where=str(e))
        if pub is not None:
            try:
                closing(pub)
            except CuframesError:
                pass
        return C.exit_code_for(e.code)


if __name__ == "__main__":
    sys.exit(main())
