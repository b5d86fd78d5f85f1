"""Subscriber adapter of spec/ADAPTER.md: `python -m cuframes.adapters.sub --key K ...`."""
from __future__ import annotations

import signal
import sys
import time
from typing import Any, Optional

from ..errors import CuframesError, Err
from ..subscriber import PROTO_MAX
from . import _common as C


class _Terminate(BaseException):
    """SIGTERM's exit path. A BaseException, so that no `except Exception` on the way (the
    library's CUDA calls turn exceptions into CuframesError(CUDA)) mistakes it for a failure."""


def _parse(argv: list[str]) -> Any:
    p = C.Parser(prog="cuframes-sub (python)", allow_abbrev=False, add_help=False)
    p.add_argument("--key", required=True)
    p.add_argument("--frames", type=C.uint(), default=0)
    p.add_argument("--packets", type=C.uint(), default=0)
    p.add_argument("--gop", type=C.uint(0, 1 << 31), default=None)  # 0: no check
    p.add_argument("--timeout-ms", type=C.uint(), default=5000)
    # cuda_vmm_fd: accepted, then refused as unsupported in main (ADP-KIND-01).
    p.add_argument("--kind", choices=["host", "cuda", "cuda_vmm_fd", "any"], default="any")
    p.add_argument("--max-proto", type=C.uint(1, 65535), default=PROTO_MAX)
    p.add_argument("--hold-ms", type=C.uint(), default=0)
    return p.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    a = _parse(sys.argv[1:] if argv is None else argv)

    def on_term(_sig: int, _frm: Any) -> None:
        raise _Terminate()

    if a.kind == "cuda_vmm_fd":
        C.fail(Err.UNSUPPORTED, "--kind cuda_vmm_fd: CUDA_VMM_FD is not implemented here")
    kinds: tuple[str, ...] = ("host",)
    if a.kind in ("cuda", "any"):
        try:
            from .. import cuda

            cuda.require_device()
            kinds = ("cuda",) if a.kind == "cuda" else ("host", "cuda")
        except CuframesError as e:
            if a.kind == "cuda":
                C.fail(Err.UNSUPPORTED, f"--kind cuda: {e}")
    from ..subscriber import Subscriber

    sub: Optional[Subscriber] = None
    signal.signal(signal.SIGTERM, on_term)
    invalid = False
    frames = packets = 0
    try:
        sub = Subscriber(a.key, kinds=kinds, max_proto=a.max_proto, want_packets=a.packets > 0)
        C.emit("attached", key=a.key, index=sub.index, proto=sub.proto,
               kind="host" if sub.kind == 1 else "cuda", start_seq=sub.start_seq,
               packet_ring=sub.has_packet_ring)
        if a.packets and not sub.has_packet_ring:
            C.emit("error", code=int(Err.NO_PACKET_RING), name="NO_PACKET_RING",
                   where="--packets without a packet ring")
            sub.close()
            return 2
        params_gen = 0
        last_seq = 0
        if a.packets:
            cp = sub.wait_codec_params(a.timeout_ms)
            params_gen = cp.generation
            cok = cp.data == C.params_payload(cp.codec)
            invalid |= not cok
            C.emit("codec_params", codec=cp.codec, generation=cp.generation, valid=cok)
        while frames < a.frames or (a.packets and last_seq < a.packets):
            if frames < a.frames:
                with sub.next_frame(a.timeout_ms) as f:
                    buf = f.buffer if sub.kind == 1 else memoryview(f.tobytes())
                    expect = C.frame_payload(f.seq, f.payload_bytes)
                    ok = buf == expect and f.seq == frames + sub.start_seq
                    invalid |= not ok
                    C.emit("frame", seq=f.seq, size=f.payload_bytes, checksum=C.checksum(buf),
                           valid=ok)
                    buf.release()
                    if a.hold_ms:
                        time.sleep(a.hold_ms / 1000.0)  # the contract's hold, not a sync
                frames += 1
            if a.packets and last_seq < a.packets:
                try:
                    pkt = sub.next_packet(a.timeout_ms)
                except CuframesError as e:
                    if e.code == Err.PACKET_OVERRUN:
                        C.emit("overrun")
                        continue
                    raise
                if pkt.params_generation != params_gen:
                    cp = sub.codec_params()
                    params_gen = cp.generation
                    cok = cp.data == C.params_payload(cp.codec)
                    invalid |= not cok
                    C.emit("codec_params", codec=cp.codec, generation=cp.generation, valid=cok)
                mpb = sub.reader.max if sub.reader is not None else 1
                ok = pkt.data == C.packet_payload(pkt.seq, mpb) and pkt.seq > last_seq
                if a.gop:  # None or 0: the KEYFRAME flag is not checked
                    ok = ok and pkt.keyframe == C.is_keyframe(pkt.seq, a.gop)
                invalid |= not ok
                last_seq = pkt.seq
                packets += 1
                C.emit("packet", seq=pkt.seq, size=len(pkt.data), keyframe=pkt.keyframe,
                       generation=pkt.params_generation, checksum=C.checksum(pkt.data), valid=ok)
        C.emit("done", frames=frames, packets=packets)
        sub.close()
        return 4 if invalid else 0
    except _Terminate:
        if sub is not None:
            sub.close()
        return 0
    except CuframesError as e:
        C.emit("error", code=int(e.code), name=e.code.name, where=str(e))
        if sub is not None:
            sub.close()
        return C.exit_code_for(e.code)
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main())
