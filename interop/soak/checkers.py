"""Invariant checkers of the chaos soak (interop/soak/soak.py), kept free of processes so that unit
tests can feed them synthetic event streams (interop/soak/test_soak_checkers.py).

Each checker takes the adapters' JSON events (spec/ADAPTER.md section 3; the reference adapters'
--diag adds "t_ns", CLOCK_MONOTONIC, and descriptor/mapping counts) and returns violations as
strings that quote the event that broke the rule, so a failed run carries its evidence.

- DeliveryChecker: one subscriber process. Per session (from "attached" to "reconnecting"): every
  frame and packet valid (the adapter verified the bytes against section 4), frames consecutive
  from at least start_seq, packets consecutive except that a session's first packet and the first
  after an overrun are keyframes (PKT-READ-05/06) and never go back, sizes and keyframe flags as
  section 4 says, codec parameters valid; checksums equal to the publisher's (Checksums); a
  reconnect leaves no mapping of the dead publisher and the same descriptors (RES-CRASH-03).
- Checksums: what the publishers printed per seq, compared with what the subscribers printed.
- GapWatch: the delivery deadline of a surviving subscriber, given the disturbances (kills,
  stops, restarts) the driver caused; and the worst gaps, per disturbance kind.
- fd / maps snapshots of /proc/<pid> and their comparison; RSS growth.
"""
from __future__ import annotations

import bisect
import collections
import re
import threading
from dataclasses import dataclass, field

# ----------------------------------------------------------------------------- content (ADAPTER 4)


def fnv1a64(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def frame_bytes(seq: int, size: int) -> bytes:
    return bytes((seq * 31 + i * 7) & 0xFF for i in range(size))


def packet_size(seq: int, max_bytes: int) -> int:
    return 1 + (seq * 7919) % max_bytes


def packet_bytes(seq: int, max_bytes: int) -> bytes:
    return bytes((seq * 13 + i * 5 + 1) & 0xFF for i in range(packet_size(seq, max_bytes)))


def is_key(seq: int, gop: int) -> bool:
    return (seq - 1) % gop == 0


def brief(ev: dict) -> str:
    """The event as evidence: its JSON members without the driver's own (_rx_ns)."""
    return "{" + ", ".join(f"{k}: {v!r}" for k, v in ev.items() if not k.startswith("_")) + "}"


# ----------------------------------------------------------------------------- checksums


class Checksums:
    """The checksum each publisher printed for frame/packet seq (content is a function of seq,
    so every publisher instance must agree), compared with every subscriber's. A subscriber's
    checksum for a seq no publisher printed yet waits in `pending` (a publisher killed between
    its commit and its print leaves one); resolve_pending() computes those from section 4."""

    def __init__(self, frame_size: int, packet_max: int):
        self.frame_size = frame_size
        self.packet_max = packet_max
        self._lock = threading.Lock()
        self._pub: dict[tuple[str, int], str] = {}
        self._pending: dict[tuple[str, int], list[tuple[str, str]]] = collections.defaultdict(list)
        self.compared = 0

    def publisher(self, what: str, seq: int, checksum: str, who: str = "publisher") -> list[str]:
        out = []
        with self._lock:
            known = self._pub.setdefault((what, seq), checksum)
            if known != checksum:
                out.append(f"{who}: {what} {seq} checksum {checksum}, another publisher printed "
                           f"{known} (the content of a seq is fixed by ADAPTER.md section 4)")
            for sub, c in self._pending.pop((what, seq), []):
                self.compared += 1
                if c != known:
                    out.append(f"{sub}: {what} {seq} delivered with checksum {c}, the publisher "
                               f"wrote {known}")
        return out

    def subscriber(self, what: str, seq: int, checksum: str, who: str) -> list[str]:
        with self._lock:
            known = self._pub.get((what, seq))
            if known is None:
                self._pending[(what, seq)].append((who, checksum))
                return []
            self.compared += 1
        if known != checksum:
            return [f"{who}: {what} {seq} delivered with checksum {checksum}, the publisher wrote "
                    f"{known}"]
        return []

    def resolve_pending(self) -> list[str]:
        out = []
        with self._lock:
            pending, self._pending = self._pending, collections.defaultdict(list)
        for (what, seq), subs in sorted(pending.items()):
            data = (frame_bytes(seq, self.frame_size) if what == "frame"
                    else packet_bytes(seq, self.packet_max))
            want = fnv1a64(data)
            for sub, c in subs:
                self.compared += 1
                if c != want:
                    out.append(f"{sub}: {what} {seq} (never printed by a publisher) delivered "
                               f"with checksum {c}, section 4 gives {want}")
        return out

    def pending_count(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._pending.values())


# ----------------------------------------------------------------------------- deliveries

# Errors that end a subscriber session without breaking an invariant: the publisher went away
# (PEER_CLOSED, RES-CRASH-01) or is not up yet (NOT_FOUND); both are followed by "reconnecting".
BENIGN_ERRORS = {"PEER_CLOSED", "NOT_FOUND"}
# Legitimate only in context, which the driver knows: EVICTED for a subscriber that was stopped
# (ACK-EVICT-01); TIMEOUT of a handshake while the publisher was stopped (SM-SUB-02/SM-PUB-02:
# HANDSHAKE_TIMEOUT_MS runs in wall time).
JUDGED_BY_DRIVER = {"EVICTED", "TIMEOUT"}


class DeliveryChecker:
    """The invariants of one subscriber process's event stream. feed() returns violations."""

    def __init__(self, who: str, frame_size: int, packet_max: int, gop: int,
                 checksums: Checksums | None = None, want_packets: bool = True,
                 was_stopped=None):
        """was_stopped: a callable, true once the process has been stopped (SIGSTOP or a
        fault point's stop). Such a process may hold a frame past the ACK timeout: the
        publisher then evicts it and reuses the slot (ACK-EVICT-01, 5.1), so the bytes it checks
        after resuming may be the next frame's. Its invalid frames are kept in `suspect` for
        the driver, which accepts one only if the publisher evicted this subscriber before the
        check (eviction_explains); any other invalid frame is a violation at once."""
        self.who = who
        self.was_stopped = was_stopped
        self.suspect: list[dict] = []
        self.last_attach: dict | None = None
        self.frame_size = frame_size
        self.packet_max = packet_max
        self.gop = gop
        self.checksums = checksums
        self.want_packets = want_packets
        self.frames = 0
        self.packets = 0
        self.overruns = 0
        self.sessions = 0
        self.errors: list[dict] = []
        self.last_delivery_ns: int | None = None
        self.first_attach: dict | None = None
        self.first_reconnect: dict | None = None
        self._in_session = False
        self._start_seq = 0
        self._frame: int | None = None     # last frame seq of the session
        self._packet: int | None = None    # last packet seq of the session
        self._resume = True                # the next packet must be a keyframe (join, overrun)
        self._params = False

    def _v(self, ev: dict, why: str) -> list[str]:
        return [f"{self.who}: {why}: {brief(ev)}"]

    def feed(self, ev: dict) -> list[str]:
        name = ev.get("event")
        if name in ("frame", "packet"):
            t = ev.get("t_ns", ev.get("_rx_ns"))
            if t is not None:
                self.last_delivery_ns = t
            if not self._in_session:
                return self._v(ev, f"{name} outside a session (no attached event before it)")
            return self._frame_ev(ev) if name == "frame" else self._packet_ev(ev)
        if name == "attached":
            return self._attached(ev)
        if name == "codec_params":
            self._params = True
            if ev.get("valid") is not True or not ev.get("generation"):
                return self._v(ev, "codec parameters delivered torn or wrong (PKT-PARAMS-04)")
            return []
        if name == "overrun":
            self.overruns += 1
            self._resume = True
            return []
        if name == "reconnecting":
            return self._reconnecting(ev)
        if name == "error":
            self.errors.append(ev)
            self._in_session = False
            if ev.get("name") in BENIGN_ERRORS or ev.get("name") in JUDGED_BY_DRIVER:
                return []
            return self._v(ev, f"subscriber error {ev.get('name')}")
        if name == "done":
            return self._v(ev, "subscriber finished although its counts cannot be reached")
        if name == "unparsed":
            return self._v(ev, "a stdout line that is not a JSON object (ADP-EVENT-01)")
        return []

    def _attached(self, ev: dict) -> list[str]:
        out = []
        self.sessions += 1
        self.last_attach = ev
        self._in_session = True
        self._start_seq = int(ev.get("start_seq", 0))
        self._frame = None
        self._packet = None
        self._resume = True
        self._params = False
        if self.want_packets and ev.get("packet_ring") is not True:
            out += self._v(ev, "attached without the packet ring (a v2 publisher offers it)")
        if "fds" in ev:
            if self.first_attach is None:
                self.first_attach = ev
            else:
                for k in ("fds", "shm_maps", "nv_maps"):
                    if ev.get(k) != self.first_attach.get(k):
                        out += self._v(ev, f"attached with {k}={ev.get(k)}, its first session had "
                                       f"{self.first_attach.get(k)}: something of an earlier "
                                       "session leaked (RES-CRASH-03)")
        return out

    def _reconnecting(self, ev: dict) -> list[str]:
        out = []
        self._in_session = False
        if "shm_maps" in ev:
            if ev["shm_maps"] != 0:
                out += self._v(ev, "the dead publisher's segment is still mapped after the "
                               "session ended (RES-CRASH-03)")
            if self.first_reconnect is None:
                self.first_reconnect = ev
            else:
                for k in ("fds", "nv_maps"):
                    if ev.get(k) != self.first_reconnect.get(k):
                        out += self._v(ev, f"between sessions {k}={ev.get(k)}, after its first "
                                       f"session {self.first_reconnect.get(k)}: a leak")
        return out

    def _frame_ev(self, ev: dict) -> list[str]:
        out = []
        seq = int(ev["seq"])
        self.frames += 1
        if ev.get("valid") is not True:
            if self.was_stopped is not None and self.was_stopped():
                self.suspect.append(ev)
            else:
                out += self._v(ev, "torn or wrong frame delivered (content does not match its "
                               "seq)")
        if int(ev.get("size", -1)) != self.frame_size:
            out += self._v(ev, f"frame size {ev.get('size')}, every frame is {self.frame_size}")
        if self._frame is None:
            if seq < max(self._start_seq, 1):
                out += self._v(ev, f"first frame {seq} of the session is below its start_seq "
                               f"{self._start_seq}")
        elif seq != self._frame + 1:
            out += self._v(ev, f"frame {seq} after frame {self._frame}: "
                           + ("out of order or repeated" if seq <= self._frame else "frames lost"))
        self._frame = seq
        if self.checksums is not None and not (self.suspect and self.suspect[-1] is ev):
            out += self.checksums.subscriber("frame", seq, ev.get("checksum"), self.who)
        return out

    def _packet_ev(self, ev: dict) -> list[str]:
        out = []
        seq = int(ev["seq"])
        self.packets += 1
        key = bool(ev.get("keyframe"))
        if ev.get("valid") is not True:
            out += self._v(ev, "torn or wrong packet delivered (content does not match its seq)")
        if int(ev.get("size", -1)) != packet_size(seq, self.packet_max):
            out += self._v(ev, f"packet size {ev.get('size')}, section 4 gives "
                           f"{packet_size(seq, self.packet_max)}")
        if key != is_key(seq, self.gop):
            out += self._v(ev, f"KEYFRAME flag {key} on packet {seq} with gop {self.gop}")
        if self._packet is not None and seq <= self._packet:
            out += self._v(ev, f"packet {seq} after packet {self._packet}: out of order or "
                           "repeated")
        elif self._resume:
            if not key:
                out += self._v(ev, "first packet after joining or an overrun is not a keyframe "
                               "(PKT-READ-06)")
        elif seq != self._packet + 1:
            out += self._v(ev, f"packet {seq} after packet {self._packet} without an overrun: "
                           "packets lost")
        self._resume = False
        self._packet = seq
        if self.checksums is not None:
            out += self.checksums.subscriber("packet", seq, ev.get("checksum"), self.who)
        return out


def eviction_explains(frame_ev: dict, attach_ev: dict | None,
                       evictions: list[tuple[int, int]]) -> bool:
    """True when the publisher evicted the subscriber's slot (index, t_ns) between its attach
    and the frame's check: the slot was free for reuse, so the held frame may be overwritten."""
    if attach_ev is None or "t_ns" not in attach_ev or "t_ns" not in frame_ev:
        return False
    return any(index == attach_ev.get("index") and attach_ev["t_ns"] <= t <= frame_ev["t_ns"]
               for index, t in evictions)


class PublisherChecker:
    """One publisher process's events: what it printed feeds Checksums, its descriptors (--diag)
    stay balanced: every "subscriber"/"detached"/"evicted" event has fds - key_socks equal to the
    value at "ready" (a connection's descriptor is always one of key_socks)."""

    def __init__(self, who: str, checksums: Checksums | None = None):
        self.who = who
        self.checksums = checksums
        self.ready: dict | None = None
        self.last_gone: dict | None = None
        self.frames = 0
        self.packets = 0
        self.errors: list[dict] = []

    def feed(self, ev: dict) -> list[str]:
        name = ev.get("event")
        if name == "frame":
            self.frames += 1
            if self.checksums is not None:
                return self.checksums.publisher("frame", int(ev["seq"]), ev["checksum"], self.who)
            return []
        if name == "packet":
            self.packets += 1
            if self.checksums is not None:
                return self.checksums.publisher("packet", int(ev["seq"]), ev["checksum"],
                                                self.who)
            return []
        if name == "ready":
            self.ready = ev
            return []
        if name in ("subscriber", "detached", "evicted"):
            if name != "subscriber":
                self.last_gone = ev
            if self.ready is not None and "fds" in ev and "fds" in self.ready:
                base = self.ready["fds"] - self.ready["key_socks"]
                if ev["fds"] - ev["key_socks"] != base:
                    return [f"{self.who}: {ev['fds'] - ev['key_socks']} descriptors besides the "
                            f"key's sockets, {base} at ready: a descriptor leaked or was lost: "
                            f"{brief(ev)}"]
            return []
        if name == "error":
            self.errors.append(ev)
            return [f"{self.who}: publisher error {ev.get('name')}: {brief(ev)}"]
        if name == "unparsed":
            return [f"{self.who}: a stdout line that is not a JSON object: {brief(ev)}"]
        return []

    def check_idle(self) -> list[str]:
        """After every subscriber left: only the listener is on the key's socket."""
        if self.last_gone is None or "key_socks" not in self.last_gone:
            return [f"{self.who}: no detached/evicted event with --diag counts to check"]
        if self.last_gone["key_socks"] != 1:
            return [f"{self.who}: {self.last_gone['key_socks']} sockets on the key after the last "
                    f"subscriber left (1 = the listener): {brief(self.last_gone)}"]
        return []


# ----------------------------------------------------------------------------- delivery gaps


@dataclass(eq=False)  # identity: two kills at the same instant are two disturbances
class Disturbance:
    """Something the soak did (or a fault point did) that may delay deliveries: survivors must
    deliver again by end_ns + grace_ms (end_ns None: still going on, everyone is excused)."""
    kind: str
    target: str
    start_ns: int
    end_ns: int | None
    grace_ms: float
    worst_gap_ms: float = 0.0   # the longest survivor gap that spans start_ns


@dataclass
class GapStats:
    worst_ms: float = 0.0
    worst_who: str = ""
    deliveries: int = 0
    by_kind: dict = field(default_factory=dict)


class GapWatch:
    """Deadlines of surviving subscribers. A subscriber process that is alive and not stopped
    must deliver a frame or packet by
        max(ref + steady_ms, max over disturbances d since ref of d.end + d.grace)
    where ref is its last delivery (or its start, with startup_ms instead of steady_ms, or its
    last SIGCONT); a disturbance still going on (publisher stopped or down) excuses everyone."""

    LOOKBACK_S = 30.0  # disturbances that started longer before a gap are not searched

    def __init__(self, steady_ms: float, startup_ms: float):
        self.steady_ms = steady_ms
        self.startup_ms = startup_ms
        self._lock = threading.Lock()
        self._d: list[Disturbance] = []
        self._starts: list[int] = []
        self._ongoing: list[Disturbance] = []
        self.stats = GapStats()

    def open(self, kind: str, target: str, start_ns: int, grace_ms: float,
             end_ns: int | None = None) -> Disturbance:
        d = Disturbance(kind, target, start_ns, end_ns, grace_ms)
        with self._lock:
            i = bisect.bisect_right(self._starts, start_ns)
            self._starts.insert(i, start_ns)
            self._d.insert(i, d)
            if end_ns is None:
                self._ongoing.append(d)
        return d

    def close(self, d: Disturbance, end_ns: int, grace_ms: float | None = None) -> None:
        with self._lock:
            d.end_ns = end_ns
            if grace_ms is not None:
                d.grace_ms = grace_ms
            if d in self._ongoing:
                self._ongoing.remove(d)

    def disturbances(self) -> list[Disturbance]:
        with self._lock:
            return list(self._d)

    def deadline(self, ref_ns: int, first: bool, now_ns: int) -> tuple[int | None, str]:
        """(deadline in ns, what set it); None while a disturbance goes on."""
        dl = ref_ns + int((self.startup_ms if first else self.steady_ms) * 1e6)
        why = "startup" if first else "steady"
        with self._lock:
            for d in self._ongoing:
                if d.start_ns <= now_ns:
                    return None, f"{d.kind} {d.target} going on"
            i = bisect.bisect_right(self._starts, now_ns) - 1
            horizon = ref_ns - int(self.LOOKBACK_S * 1e9)
            while i >= 0 and self._d[i].start_ns >= horizon:
                d = self._d[i]
                i -= 1
                if d.end_ns is None:
                    continue
                cand = d.end_ns + int(d.grace_ms * 1e6)
                if cand > dl:
                    dl, why = cand, f"{d.kind} {d.target} + {d.grace_ms:.0f} ms"
        return dl, why

    def check(self, who: str, ref_ns: int, first: bool, now_ns: int) -> str | None:
        dl, why = self.deadline(ref_ns, first, now_ns)
        if dl is None or now_ns <= dl:
            return None
        return (f"{who}: nothing delivered for {(now_ns - ref_ns) / 1e6:.0f} ms (since "
                f"{'its start' if first else 'its last delivery'}); the bound was "
                f"{(dl - ref_ns) / 1e6:.0f} ms ({why})")

    def delivered(self, who: str, prev_ns: int | None, t_ns: int) -> None:
        """Records a delivery gap (prev_ns, t_ns] of a surviving subscriber: the worst overall
        and, for each disturbance whose effect window [start, end + grace] overlaps it, the
        worst gap around it (a stopped subscriber stalls the others only once the publisher
        needs its ACK, slot_count frames after the stop)."""
        with self._lock:
            self.stats.deliveries += 1
            if prev_ns is None:
                return
            gap = (t_ns - prev_ns) / 1e6
            if gap > self.stats.worst_ms:
                self.stats.worst_ms, self.stats.worst_who = gap, who
            if gap < 20:  # shorter than any disturbance's effect: nothing to attribute
                return
            i = bisect.bisect_right(self._starts, t_ns) - 1
            horizon = prev_ns - int(self.LOOKBACK_S * 1e9)
            while i >= 0 and self._d[i].start_ns >= horizon:
                d = self._d[i]
                i -= 1
                if d.end_ns is not None and d.end_ns + int(d.grace_ms * 1e6) < prev_ns:
                    continue
                d.worst_gap_ms = max(d.worst_gap_ms, gap)
                k = self.stats.by_kind.setdefault(d.kind, 0.0)
                self.stats.by_kind[d.kind] = max(k, gap)


# ----------------------------------------------------------------------------- /proc snapshots

_ANON = re.compile(r"^\[(heap|stack|vdso|vvar|vsyscall|anon:[^\]]*)\]$")


def fd_snapshot(pid: int) -> collections.Counter:
    """The kinds of a process's descriptors: "socket", "pipe", "anon_inode:[eventfd]", paths
    (a /dev/shm file that was unlinked keeps its name with " (deleted)"); files under /proc are
    left out (transient: the adapters' --diag reads them while printing an event)."""
    out: collections.Counter = collections.Counter()
    import os
    base = f"/proc/{pid}/fd"
    for fd in os.listdir(base):
        try:
            target = os.readlink(f"{base}/{fd}")
        except OSError:
            continue
        if target.startswith("/proc/"):
            continue  # the --diag counters' own brief reads of /proc/self/{fd,maps,net/unix}
        out[re.sub(r":\[\d+\]$", "", target) if target.startswith(("socket:", "pipe:"))
            else target] += 1
    return out


def maps_snapshot(pid: int) -> dict:
    """File-backed mappings (path -> count), the count of /dev/shm/cuframes-* mappings and of
    anonymous ones, from /proc/<pid>/maps."""
    files: collections.Counter = collections.Counter()
    anon = 0
    shm = 0
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            path = parts[5].strip() if len(parts) > 5 else ""
            if not path or _ANON.match(path):
                anon += 1
                continue
            if path.startswith("/dev/shm/cuframes-"):
                shm += 1
            files[path] += 1
    return {"files": files, "anon": anon, "shm": shm}


def compare_fds(who: str, start: collections.Counter, end: collections.Counter) -> list[str]:
    if start == end:
        return []
    more = end - start
    fewer = start - end
    return [f"{who}: descriptors at the end differ from the start: "
            f"{dict(more) or 'none'} more, {dict(fewer) or 'none'} fewer"]


def compare_maps(who: str, start: dict, end: dict, anon_slack: int) -> list[str]:
    out = []
    if start["files"] != end["files"]:
        out.append(f"{who}: file mappings at the end differ from the start: "
                   f"{dict(end['files'] - start['files']) or 'none'} more, "
                   f"{dict(start['files'] - end['files']) or 'none'} fewer")
    if end["shm"] != start["shm"]:
        out.append(f"{who}: {end['shm']} /dev/shm/cuframes-* mappings at the end, "
                   f"{start['shm']} at the start")
    if end["anon"] > start["anon"] + anon_slack:
        out.append(f"{who}: {end['anon']} anonymous mappings at the end, {start['anon']} at the "
                   f"start (slack {anon_slack})")
    return out


def rss_kib(pid: int) -> int:
    """Resident set size in KiB (/proc/<pid>/statm, resident pages)."""
    import os
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * (os.sysconf("SC_PAGE_SIZE") // 1024)


def rss_growth(who: str, samples: list[tuple[float, int]], warmup_s: float,
               bound_kib: int) -> tuple[dict, list[str]]:
    """samples: (seconds since the party started, RSS KiB). Baseline: the first sample at or
    after warmup_s (allocations of the first sessions are not growth); end: the highest of the
    last tenth of the samples. Returns (figures, violations)."""
    after = [s for s in samples if s[0] >= warmup_s]
    if len(after) < 2:
        return {"samples": len(samples), "judged": False}, []
    base = after[0][1]
    tail = after[-max(1, len(after) // 10):]
    end = max(r for _, r in tail)
    fig = {"samples": len(samples), "judged": True, "start_kib": base, "end_kib": end,
           "max_kib": max(r for _, r in after), "growth_kib": end - base,
           "over_s": round(after[-1][0] - after[0][0], 1)}
    if end - base > bound_kib:
        return fig, [f"{who}: RSS grew {end - base} KiB ({base} -> {end} KiB over "
                     f"{fig['over_s']} s), bound {bound_kib} KiB"]
    return fig, []
