"""Unit tests of the interop matrix's expectation derivation (matrix/expect.py) and manifests."""
from __future__ import annotations

import copy
import json

import pytest

from matrix.expect import Side, Twin, TwinRuleChanged, derive
from matrix.manifests import MANIFEST_DIR, discover, load, merge_same_adapters

TWIN = Twin.load()
V12 = Side("a", [1, 2], ["host"], ["packets", "max-proto", "ack-timeout"])
V12B = Side("b", [1, 2], ["host", "cuda_ipc"], ["packets", "max-proto"])
V1 = Side("old", [1], ["host"], [])
V2ONLY = Side("new", [2], ["host"], ["packets"])


def test_twin_states_the_rules_the_derivation_implements():
    TWIN.check_rules()
    assert TWIN.ring_since() == 2
    assert TWIN.versions == [1, 2, 3]


def test_a_changed_negotiation_rule_is_refused():
    data = copy.deepcopy(TWIN.data)
    for r in data["requirements"]:
        if r["id"] == "VER-NEG-01":
            r["text"] = r["text"].replace("min(max_proto, P)", "max(max_proto, P)")
    with pytest.raises(TwinRuleChanged, match="VER-NEG-01"):
        Twin(data).check_rules()


def test_ring_since_follows_the_twin():
    data = copy.deepcopy(TWIN.data)
    for f in data["structs"]["HelloResp"]["fields"]:
        if f["name"] == "caps":
            f["since"] = 3
    assert Twin(data).ring_since() == 3


def test_negotiated_version_is_min_of_both_maxima():
    assert TWIN.negotiate(2, 1, 2) == 2
    assert TWIN.negotiate(1, 1, 2) == 1
    assert TWIN.negotiate(2, 1, 1) == 1
    assert TWIN.negotiate(2, 1, 5) == 2      # a future max_proto is served (VER-NEG-02)
    assert TWIN.negotiate(1, 2, 2) is None   # V < min_proto: VERSION_MISMATCH


def test_v2_pair_gets_packets():
    c = derive(TWIN, V12, V12B, [], "v2", "host", "P")
    assert c.applicable and c.pub_proto == 2 and c.pub_ring
    assert [(s.proto, s.ring, s.outcome) for s in c.subs] == [(2, True, "ok")] * 2


def test_v1_subscriber_of_v2_publisher_gets_frames_and_no_ring():
    f = derive(TWIN, V12, V12B, [], "v1-sub", "host", "F")
    assert f.pub_ring and f.pub_proto == 2       # the publisher does have a ring
    assert [(s.proto, s.ring, s.capped, s.outcome) for s in f.subs] == [(1, False, True, "ok")]
    p = derive(TWIN, V12, V12B, [], "v1-sub", "host", "P")
    assert [(s.proto, s.ring, s.outcome) for s in p.subs] == [(1, False, "NO_PACKET_RING")] * 2


def test_v1_capped_publisher_has_no_ring_and_refuses_packets():
    p = derive(TWIN, V12, V12B, [], "v1-pub", "host", "P")
    assert p.pub_capped and p.pub_proto == 1 and not p.pub_ring
    assert {(s.proto, s.ring, s.outcome) for s in p.subs} == {(1, False, "NO_PACKET_RING")}


def test_mixed_session_asks_packets_only_where_a_ring_is_negotiated():
    c = derive(TWIN, V12, V12B, [V12, V1], "v1-sub", "host", "M")
    got = [(s.impl, s.capped, s.proto, s.asks_packets, s.ring) for s in c.subs]
    assert got == [("b", True, 1, False, False), ("b", True, 1, False, False),
                   ("a", False, 2, True, True), ("old", False, 1, False, False)]


def test_mixed_roster_leaves_out_implementations_without_the_kind():
    c = derive(TWIN, V12B, V12B, [V12, V1], "v2", "cuda", "M")
    assert c.applicable and [s.impl for s in c.subs] == ["b", "b"]
    assert [s.impl for s in derive(TWIN, V12B, V12B, [V12], "v2", "host", "M").subs] == \
        ["b", "b", "a"]


def test_no_common_version_expects_version_mismatch():
    c = derive(TWIN, V12, V2ONLY, [], "v1-pub", "host", "F")
    assert c.applicable and [(s.proto, s.outcome) for s in c.subs] == [(None, "VERSION_MISMATCH")]
    assert derive(TWIN, V1, V2ONLY, [], "v2", "host", "F").subs[0].outcome == "VERSION_MISMATCH"


def test_not_applicable_cells_say_why():
    assert "max-proto" in derive(TWIN, V1, V12, [], "v1-pub", "host", "F").reason
    assert "max-proto" in derive(TWIN, V12, V1, [], "v1-sub", "host", "F").reason
    assert "packets" in derive(TWIN, V12, V1, [], "v2", "host", "P").reason
    assert "cuda" in derive(TWIN, V12, V12B, [], "v2", "cuda", "F").reason
    assert derive(TWIN, V12B, V12B, [], "v2", "cuda", "F").applicable
    nopub = Side("s", [1, 2], ["host"], [], has_publisher=False)
    assert "publisher" in derive(TWIN, nopub, V12, [], "v2", "host", "F").reason


def test_scenario_expectations_come_from_the_state_machines():
    assert derive(TWIN, V12, V12, [], "v2", "host", "C").crash_error == "PEER_CLOSED"
    k = derive(TWIN, V12, V12, [], "v2", "host", "K")
    assert k.victim_event == "detached"
    e = derive(TWIN, V12, V12, [], "v2", "host", "E")
    assert (e.victim_event, e.victim_reason, e.victim_error) == ("evicted", "EVICTED", "EVICTED")
    assert e.ack_timeout_ms == 300
    slow = derive(TWIN, V12B, V12, [], "v2", "host", "E")  # no ack-timeout feature: the default
    assert slow.ack_timeout_ms == TWIN.constants["DEFAULT_ACK_TIMEOUT_MS"]


def test_manifest_argv_templates(tmp_path, monkeypatch):
    monkeypatch.delenv("CUFRAMES_BUILD_DIR", raising=False)
    m = tmp_path / "x.json"
    m.write_text(json.dumps({"name": "X", "publisher": ["{build_dir}/pub", "{args}", "--tail"],
                             "subscriber": ["python3", "{manifest_dir}/sub.py"],
                             "build_dir": "/opt/x", "env": {"A": 1}}))
    impl = load(m)
    assert impl.argv("publisher", ["--key", "k"]) == ["/opt/x/pub", "--key", "k", "--tail"]
    assert impl.argv("subscriber", ["--key", "k"]) == ["python3", f"{tmp_path}/sub.py",
                                                         "--key", "k"]
    assert impl.env({"B": "2"}) == {"A": "1", "B": "2"}
    monkeypatch.setenv("CUFRAMES_BUILD_DIR", "/elsewhere")
    assert impl.argv("publisher", [])[0] == "/elsewhere/pub"
    side = impl.side()
    assert (side.proto_versions, side.kinds, side.has_publisher) == ([1], ["host"], True)


def test_every_manifest_is_an_implementation():
    names = [i.name for i in discover()]
    assert names[0] == "reference"
    with pytest.raises(FileNotFoundError, match="no manifest"):
        discover(["no-such-impl"])


def test_manifests_of_the_same_adapters_are_one_implementation(tmp_path):
    base = {"publisher": ["python3", "{manifest_dir}/a.py", "pub", "{args}"],
            "subscriber": ["python3", "{manifest_dir}/a.py", "sub", "{args}"],
            "proto_versions": [1, 2], "features": ["packets"]}
    for name, extra in (("py", {"kinds": ["host"]}),
                        ("py-cuda", {"kinds": ["host", "cuda_ipc"]}),
                        ("py-v1", {"kinds": ["host"], "proto_versions": [1]})):
        (tmp_path / f"{name}.json").write_text(json.dumps({**base, **extra}))
    impls = {i.name: i for i in discover(directory=tmp_path)}
    assert sorted(impls) == ["py", "py-v1"]  # other claims: another configuration, kept apart
    assert impls["py"].merged == ["py-cuda"]
    assert impls["py"].side().kinds == ["host", "cuda_ipc"]
    assert impls["py-v1"].side().kinds == ["host"]
    assert [i.name for i in merge_same_adapters([load(tmp_path / "py-cuda.json")])] == ["py-cuda"]
    named = discover(["py-cuda"], directory=tmp_path)  # a folded name brings its group
    assert [(i.name, i.side().kinds) for i in named] == [("py", ["host", "cuda_ipc"])]


def test_a_manifest_given_by_path_folds_into_the_default_folders_one(tmp_path, monkeypatch):
    monkeypatch.setenv("CUFRAMES_BUILD_DIR", "/any/build")
    ref = json.loads((MANIFEST_DIR / "reference.json").read_text())
    extra = tmp_path / "refcuda.json"
    extra.write_text(json.dumps({**ref, "kinds": ["host", "cuda_ipc"]}))
    impls = discover(["reference", str(extra)])
    # The folder's own reference-cuda.json is the same implementation: its claims join too.
    folder_cuda = json.loads((MANIFEST_DIR / "reference-cuda.json").read_text())["kinds"]
    want = list(dict.fromkeys(["host", "cuda_ipc", *folder_cuda]))
    assert [(i.name, i.merged, i.side().kinds) for i in impls] == \
        [("reference", ["refcuda"], want)]
