"""Expected results of the interop matrix, derived from the twin (spec/cuframes.json).

Nothing here is written per cell. What a cell must show follows from:
  - the manifests' claims (proto_versions, kinds, features; ADAPTER.md section 1),
  - the negotiation rule of VER-NEG-01 (V = min(max_proto, P), VERSION_MISMATCH below min_proto),
  - the version that introduced the packet ring (the `since` of HELLO_RESP's caps field that carries
    PACKET_RING_PRESENT, and of PacketRingHeader; PKT-RING-02 / PKT-HELLO-01),
  - the state machines (what a subscriber reports when its publisher dies, what a publisher does
    with a subscriber that stops ACKing or disappears),
  - the error table (codes and names) and the timing constants.

Twin.check_rules() refuses a twin whose rule texts no longer say what this module implements, so
a spec change to negotiation shows up as a failing unit test, not as a silently wrong matrix.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TWIN_PATH = ROOT / "spec" / "cuframes.json"

# Scenario letters, in the order the matrix prints them (the QUIC interop runner's style).
SCENARIOS = {
    "F": "frames",
    "P": "packets with a late joiner",
    "M": "several subscribers of mixed implementations",
    "C": "publisher crash (SIGKILL): PEER_CLOSED, then a new publisher reclaims the key",
    "K": "subscriber crash (SIGKILL): the publisher and the other subscribers carry on",
    "E": "slow subscriber (SIGSTOP) evicted; the others continue",
}

# Version modes: which side, if any, runs with --max-proto 1 (feature max-proto, VER-NEG-05).
MODES = {
    "v2": "neither side capped",
    "v1-pub": "publisher run with --max-proto 1",
    "v1-sub": "subscriber(s) of the column's implementation run with --max-proto 1",
}


class TwinRuleChanged(RuntimeError):
    """The twin no longer states a rule the derivation implements."""


class Twin:
    def __init__(self, data: dict):
        self.data = data
        self.req = {r["id"]: r for r in data["requirements"]}
        self.errors = {e["name"]: e["value"] for e in data["errors"]}
        self.versions: list[int] = sorted(data["proto_versions"])
        self.constants = {k: v["value"] for k, v in data["constants"].items()}

    @classmethod
    def load(cls, path: Path = TWIN_PATH) -> "Twin":
        return cls(json.loads(path.read_text()))

    def check_rules(self) -> None:
        """Raises TwinRuleChanged when a rule text this module encodes has changed meaning."""
        neg = self.req.get("VER-NEG-01", {}).get("text", "")
        if not re.search(r"V\s*=\s*min\(\s*max_proto\s*,\s*P\s*\)", neg) or \
                "VERSION_MISMATCH" not in neg or "min_proto" not in neg:
            raise TwinRuleChanged(f"VER-NEG-01 no longer reads 'V = min(max_proto, P), "
                                  f"VERSION_MISMATCH below min_proto': {neg!r}")
        accept = self.req.get("VER-NEG-04", {}).get("text", "")
        if "accepts proto_version 1 subscribers" not in accept:
            raise TwinRuleChanged(f"VER-NEG-04 changed: {accept!r}")
        ring = self.req.get("PKT-RING-02", {}).get("text", "")
        if "negotiated version" not in ring or "NO_PACKET_RING" not in ring:
            raise TwinRuleChanged(f"PKT-RING-02 changed: {ring!r}")
        if "ADP-SUB-03" not in self.req:
            raise TwinRuleChanged("ADP-SUB-03 (NO_PACKET_RING from a subscriber adapter) is gone")

    def ring_since(self) -> int:
        """The lowest negotiated version with a packet ring: the `since` of the HELLO_RESP field
        whose flags hold PACKET_RING_PRESENT, and no lower than PacketRingHeader's `since`."""
        structs = self.data["structs"]
        caps_enums = {name for name, values in self.data["enums"].items()
                      if isinstance(values, dict) and "PACKET_RING_PRESENT" in values}
        since = None
        for f in structs["HelloResp"]["fields"]:
            v = f.get("values")
            if isinstance(v, str) and v.startswith("flags:") and v.split(":", 1)[1] in caps_enums:
                since = f["since"]
        if since is None:
            raise TwinRuleChanged("HelloResp has no field carrying PACKET_RING_PRESENT")
        return max(since, structs["PacketRingHeader"].get("since", since))

    def negotiate(self, pub_max: int, sub_min: int, sub_max: int) -> int | None:
        """VER-NEG-01: the publisher speaks 1..pub_max; returns V = min(sub_max, pub_max), or None
        (VERSION_MISMATCH) when V < sub_min."""
        v = min(sub_max, pub_max)
        return None if v < sub_min else v

    def sub_error_on(self, state: str, event: str) -> str:
        """The error the subscriber state machine reports for `event` in `state`."""
        return self._row("subscriber", state, event)["error"]

    def pub_row(self, state: str, event: str) -> dict:
        return self._row("publisher", state, event)

    def _row(self, machine: str, state: str, event: str) -> dict:
        for r in self.data["state_machines"][machine]["transitions"]:
            if r["from"] == state and r["event"] == event:
                return r
        raise TwinRuleChanged(f"{machine} state machine has no row {state} x {event}")


@dataclass
class Side:
    """One adapter's claims, as far as the matrix needs them."""
    name: str
    proto_versions: list[int]
    kinds: list[str]
    features: list[str]
    has_publisher: bool = True
    has_subscriber: bool = True


@dataclass
class SubExpect:
    impl: str
    capped: bool
    proto: int | None          # None: VERSION_MISMATCH expected
    ring: bool                 # packet_ring in `attached` (only when it asked for packets)
    asks_packets: bool
    outcome: str               # "ok", or an error name the subscriber must end with


@dataclass
class CellExpect:
    applicable: bool
    reason: str = ""           # why N/A
    pub_proto: int | None = None
    pub_capped: bool = False
    pub_ring: bool = False     # the publisher is asked for packets (it then has a ring)
    subs: list[SubExpect] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # scenario-specific expectations derived from the state machines / error table
    crash_error: str = ""      # C: what survivors report
    victim_event: str = ""     # K/E: the publisher's event for the victim
    victim_reason: str = ""    # E: its reason; K: the state machine's error for EOF (info)
    victim_error: str = ""     # E: what the evicted subscriber reports once resumed
    ack_timeout_ms: int = 0    # E


KIND_CLAIMS = {"host": ("host",), "cuda": ("cuda_ipc", "cuda_vmm_fd")}


def kind_claimed(side: Side, kind: str) -> bool:
    return any(k in side.kinds for k in KIND_CLAIMS[kind])


def sub_roster(scenario: str, col: Side, others: list[Side], kind: str) -> list[Side]:
    """The subscribers a scenario starts: the column's implementation, plus (scenario M) one of
    every other selected implementation that has a subscriber adapter and claims the kind."""
    if scenario == "M":
        return [col, col, *[o for o in others if o.has_subscriber and o.name != col.name
                            and kind_claimed(o, kind)]]
    if scenario in ("C", "K", "E", "P"):
        return [col, col]   # P: early joiner + late joiner; C/K/E: victim + survivor
    return [col]


def derive(twin: Twin, pub: Side, col: Side, others: list[Side], mode: str, kind: str,
           scenario: str) -> CellExpect:
    """The expected result of one cell: publisher `pub`, column subscriber `col` (and, for M,
    the `others`), version mode, memory kind, scenario letter."""
    if not pub.has_publisher:
        return CellExpect(False, f"{pub.name} has no publisher adapter")
    if not col.has_subscriber:
        return CellExpect(False, f"{col.name} has no subscriber adapter")
    roster = sub_roster(scenario, col, others, kind)
    for side in (pub, *roster):
        if not kind_claimed(side, kind):
            return CellExpect(False, f"{side.name} does not claim kind {kind} "
                                     f"(manifest kinds {side.kinds})")
    pub_capped = mode == "v1-pub"
    if pub_capped and "max-proto" not in pub.features:
        return CellExpect(False, f"{pub.name} lacks feature max-proto (--max-proto 1)")
    if mode == "v1-sub" and "max-proto" not in col.features:
        return CellExpect(False, f"{col.name} lacks feature max-proto (--max-proto 1)")
    if scenario == "P":
        for side in (pub, col):
            if "packets" not in side.features:
                return CellExpect(False, f"{side.name} lacks feature packets")
    pub_max = max(pub.proto_versions)
    if pub_capped:
        pub_max = min(pub_max, 1)
    ring_v = twin.ring_since()
    # A ring is a version-2 structure: a publisher speaking only versions below ring_since has
    # none (the reference refuses --packets under --max-proto 1 with INVALID_ARGUMENT).
    pub_ring = ("packets" in pub.features and pub_max >= ring_v
                and scenario in ("F", "P", "M"))
    cell = CellExpect(True, pub_proto=pub_max, pub_capped=pub_capped, pub_ring=pub_ring)
    for i, side in enumerate(roster):
        capped = mode == "v1-sub" and side.name == col.name
        sub_max = max(side.proto_versions)
        if capped:
            sub_max = min(sub_max, 1)
        v = twin.negotiate(pub_max, min(side.proto_versions), sub_max)
        can_ring = (v is not None and v >= ring_v and pub_ring and "packets" in side.features)
        if scenario == "P":
            asks = True          # the point of P: asking for packets, with or without a ring
        elif scenario == "M":
            asks = can_ring      # mixed session: packets for those who negotiated a ring
        else:
            asks = False
        ring = asks and can_ring
        if v is None:
            outcome = "VERSION_MISMATCH"
        elif asks and not ring:
            outcome = "NO_PACKET_RING"  # ADP-SUB-03 / PKT-RING-02
        else:
            outcome = "ok"
        cell.subs.append(SubExpect(side.name, capped, v, ring, asks, outcome))
    if scenario == "C":
        cell.crash_error = twin.sub_error_on("ACTIVE", "EOF")
    elif scenario == "K":
        row = twin.pub_row("ACTIVE", "EOF")
        cell.victim_event = "evicted" if row["error"] not in ("OK", "PEER_CLOSED") else "detached"
        cell.victim_reason = row["error"]
    elif scenario == "E":
        row = twin.pub_row("ACTIVE", "ACK_TIMEOUT")
        cell.victim_event = "evicted"
        cell.victim_reason = row["error"]
        cell.victim_error = row["error"]  # ERROR(EVICTED) received: the subscriber reports it
        cell.ack_timeout_ms = (300 if "ack-timeout" in pub.features
                               else int(twin.constants["DEFAULT_ACK_TIMEOUT_MS"]))
    if any(s.proto is None for s in cell.subs):
        cell.notes.append("no common proto_version: VERSION_MISMATCH expected")
    return cell
