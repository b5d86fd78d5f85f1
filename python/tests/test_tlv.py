"""TLV codec (PROTOCOL.md section 3): round trips, header fault order, reassembly."""
import struct

import pytest

from cuframes import tlv
from cuframes.errors import Err


def hdr(t, length, rsv=0):
    return struct.pack("<HHI", t, rsv, length)


def test_round_trips():
    req = tlv.HelloReq(0x52465543, 1, 2, 1, 7, 1)
    p = req.encode()
    assert len(p) == 64 and tlv.HelloReq.decode(p) == req
    assert tlv.HelloReq.decode(p + b"\xff" * 10) == req  # MSG-HELLO-03
    resp = tlv.HelloResp(0, 2, 1, 3, 9, 5, 1, 42, 4096)
    assert len(resp.encode()) == 64 and tlv.HelloResp.decode(resp.encode()) == resp
    a = tlv.AttachReq(3, 9, 1)
    assert len(a.encode()) == 16 and tlv.AttachReq.decode(a.encode()) == a
    r = tlv.AttachResp(0, 77)
    assert len(r.encode()) == 16 and tlv.AttachResp.decode(r.encode()) == r
    assert tlv.encode_detach(15) == hdr(5, 8) + struct.pack("<II", 15, 0)
    assert tlv.decode_error(tlv.encode_error(9, "why")[8:]) == (9, b"why")
    assert tlv.decode_nonce(tlv.encode_ping(7, 0xDEADBEEF)[8:]) == 0xDEADBEEF


def test_reserved_bytes_written_zero():
    p = tlv.HelloResp(0, 1, 1, 0, 1).encode()
    assert p[40:] == bytes(24)
    assert tlv.AttachResp(0, 1).encode()[4:8] == bytes(4)


@pytest.mark.parametrize("header,code,send", [
    (hdr(99, 5000, 1), Err.MESSAGE_TOO_LARGE, True),   # length first (TLV-ERR-07)
    (hdr(6, 0xFFFFFFFF), Err.PROTOCOL, False),  # an ERROR is never answered (TLV-ERR-06)
    (hdr(1, 0xFFFFFFFF), Err.MESSAGE_TOO_LARGE, True),
    (hdr(99, 8, 1), Err.UNKNOWN_MESSAGE, True),        # then type
    (hdr(0, 8), Err.UNKNOWN_MESSAGE, True),
    (hdr(7, 9, 1), Err.PROTOCOL, True),                # then reserved bytes
    (hdr(7, 9), Err.PROTOCOL, True),                   # then the length range
    (hdr(1, 63), Err.PROTOCOL, True),
    (hdr(6, 4), Err.PROTOCOL, False),                  # an ERROR is never answered
])
def test_header_fault_order(header, code, send):
    with pytest.raises(tlv.FramingError) as e:
        list(tlv.Decoder().feed(header))
    assert e.value.code == code and e.value.send == send


def test_error_length_must_match_text_len():
    bad = hdr(6, 12) + struct.pack("<II", 9, 5) + b"abcd"
    with pytest.raises(tlv.FramingError) as e:
        list(tlv.Decoder().feed(bad))
    assert e.value.code == Err.PROTOCOL and not e.value.send


def test_reassembly_one_byte_at_a_time_and_many_per_read():
    stream = (tlv.encode_ping(tlv.PING, 1) + tlv.encode(tlv.HELLO_REQ,
              tlv.HelloReq(0x52465543, 1, 2, 1, 0).encode()) + tlv.encode_detach(0))
    d = tlv.Decoder()
    got = []
    for i in range(len(stream)):
        got += list(d.feed(stream[i:i + 1]))
        if i < 7:
            assert d.partial
    assert [t for t, _ in got] == [tlv.PING, tlv.HELLO_REQ, tlv.DETACH]
    assert not d.partial
    assert [t for t, _ in tlv.Decoder().feed(stream)] == [tlv.PING, tlv.HELLO_REQ, tlv.DETACH]


def test_header_checked_before_payload_arrives():
    # TLV-FRAME-03: the header alone is enough to refuse
    with pytest.raises(tlv.FramingError):
        list(tlv.Decoder().feed(hdr(1, 4097)))
