"""The layout offsets written in cuframes.layout held against the twin spec/cuframes.json."""
import json
import os

import pytest

from cuframes import layout as L

TWIN = os.path.join(os.path.dirname(__file__), "..", "..", "spec", "cuframes.json")
_FMT = {"u16": "H", "u32": "I", "u64": "Q", "i64": "q"}


@pytest.fixture(scope="module")
def twin():
    with open(TWIN) as f:
        return json.load(f)


def fields(twin, name):
    return {f["name"]: f for f in twin["structs"][name]["fields"]}


@pytest.mark.parametrize("struct,table,base", [
    ("SegmentHeader", L.SEG, 0), ("FrameMeta", L.META, 0), ("SubscriberSlot", L.SUB, 0),
    ("PacketRingHeader", L.RING, 0), ("CodecParams", L.PARAMS, 0),
    ("PacketRecordHeader", L.REC, 0),
])
def test_offsets_and_types_match_the_twin(twin, struct, table, base):
    tf = fields(twin, struct)
    for name, (off, fmt) in table.items():
        assert name in tf, f"{struct}.{name} is not in the twin"
        assert tf[name]["offset"] == off + base, f"{struct}.{name} offset"
        assert _FMT[tf[name]["type"]] == fmt, f"{struct}.{name} type"
    # every non-reserved scalar field of the twin is known here (byte arrays are handled apart)
    for name, f in tf.items():
        if not name.startswith("reserved") and f["type"] in _FMT:
            assert name in table, f"{struct}.{name} of the twin is missing in cuframes.layout"


def test_sizes_and_constants(twin):
    c = {k: v["value"] for k, v in twin["constants"].items()}
    assert twin["structs"]["SegmentHeader"]["size"] == L.HEADER_SIZE == c["SEGMENT_HEADER_SIZE"]
    assert twin["structs"]["FrameMeta"]["size"] == L.FRAME_META_SIZE
    assert twin["structs"]["SlotDescriptor"]["size"] == L.SLOT_DESC_SIZE
    assert twin["structs"]["SubscriberSlot"]["size"] == L.SUB_SLOT_SIZE
    assert twin["structs"]["PacketRingHeader"]["size"] == L.RING_HEADER_SIZE
    assert c["SEGMENT_MAGIC"] == L.SEGMENT_MAGIC and c["RING_MAGIC"] == L.RING_MAGIC
    assert c["RING_DATA_OFFSET"] == L.RING_DATA_OFFSET
    assert c["CODEC_PARAMS_OFFSET"] == L.CODEC_PARAMS_OFFSET
    assert c["CODEC_PARAMS_MAX_BYTES"] == L.CODEC_PARAMS_MAX
    for k in ("HANDSHAKE_TIMEOUT_MS", "DEFAULT_ACK_TIMEOUT_MS", "SEQLOCK_SPIN_LIMIT_MS",
              "PEER_DEATH_DETECT_MS", "PONG_DEADLINE_MS"):
        assert c[k] == getattr(L, k)
    sd = fields(twin, "SlotDescriptor")
    assert sd["mem_handle"]["offset"] == L.SLOT_MEM_HANDLE
    assert sd["ready_event"]["offset"] == L.SLOT_READY_EVENT
    assert fields(twin, "SubscriberSlot")["ack_event"]["offset"] == L.SUB_ACK_EVENT
    assert fields(twin, "CodecParams")["data"]["offset"] == L.PARAMS_DATA


def test_enums_match(twin):
    e = twin["enums"]
    assert e["memory_kind"] == {"HOST": L.HOST, "CUDA_IPC": L.CUDA_IPC,
                                "CUDA_VMM_FD": L.CUDA_VMM_FD}
    assert e["subscriber_slot_state"] == {"FREE": 0, "ATTACHING": 1, "ACTIVE": 2, "EVICTED": 3}
    assert e["packet_flags"] == {"KEYFRAME": L.PKT_KEYFRAME, "PAD": L.PKT_PAD}


def test_errors_match(twin):
    from cuframes.errors import Err

    assert {e["name"]: e["value"] for e in twin["errors"]} == {e.name: e.value for e in Err}


def test_host_layout_rule():
    # SHM-LAYOUT-01
    do, ds, size = L.host_layout(4, 8, 4097)
    assert do == L.align_up(256 + 192 * 4 + 128 * 8, 4096) and ds == 8192
    assert size == do + 4 * ds
