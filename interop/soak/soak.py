#!/usr/bin/env python3
"""Chaos soak of the reference under load (issue 14 item 5); run by ci/soak.sh.

    python3 interop/soak/soak.py [MINUTES] [--seed S] [--subscribers N] [--kind host|cuda]
                                 [--report reports/soak.json] [--schedule-only]

One publisher (cuframes-pub) publishes frames and packets (proto v2, packet ring) to N
subscribers (cuframes-sub, frames and packets alternating, --reconnect). A schedule drawn from
the seed (random.Random(seed), nothing else) SIGKILLs, SIGSTOPs/SIGCONTs, restarts (SIGTERM and
a new process) random subscribers and the publisher, and replaces parties by ones armed with a
fault point of reference/src/fault.h (CUFRAMES_FAULT=<point>:<nth>:<kill|stop>): a publisher
dying mid-frame or mid-packet, mid-handshake, mid-close, mid-reclaim; a subscriber dying while
it holds a frame or between its ACK store and its wake-up. A replacement publisher reclaims the
dead one's key. The same seed gives the same schedule; every event is logged with what happened.

Invariants, checked while the run goes (the first violation ends it, with its evidence):
- no torn, wrong, lost, repeated or out-of-order frame or packet is delivered (checkers.py:
  the adapters' byte-by-byte "valid", seq order per session, keyframe resume, sizes, checksums
  equal to the publisher's);
- every subscriber that is alive and not stopped delivers again within a bound after each event
  (BOUNDS below, and checkers.GapWatch);
- no party exits unexpectedly: a subscriber is evicted only if it was stopped, nobody times out;
- descriptors balanced: a publisher's non-connection descriptors never change (--diag counts at
  every attach/detach), a subscriber's attach and reconnect counts stay those of its first session;
- at the end nothing is left: no /dev/shm file of the key, no socket file, the long-lived parties
  (2 sentinel subscribers that live through the whole run and the last publisher, which lives
  through the final quarter: no publisher event is scheduled there) have the descriptors and
  mappings they had at the start, and their RSS grew at most RSS_BOUND_KIB.
Pacing: subscribers hold each frame --hold-ms before releasing it (ADAPTER.md section 2), and the
publisher waits for ACKs, so the rate is about 1000 / hold-ms frames (and as many packets) per
second. Output: a summary table, and JSON (default reports/soak.json).
"""
from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import platform
import queue
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # interop/: the shared spawn helpers
sys.path.insert(0, str(HERE))

from checkers import (Checksums, DeliveryChecker, GapWatch, PublisherChecker,  # noqa: E402
                      compare_fds, compare_maps, eviction_explains, fd_snapshot, maps_snapshot,
                      rss_growth, rss_kib)
from cuframes_procs import Proc, adapter, build_dir  # noqa: E402
from fault_points import ROOT, fault_points  # noqa: E402

# ----------------------------------------------------------------------------- bounds

PEER_DEATH_DETECT_MS = 250   # spec/PROTOCOL.md constants
HANDSHAKE_TIMEOUT_MS = 2000
# The publisher's --ack-timeout-ms. Above MARGIN_MS + PEER_DEATH_DETECT_MS, so that the bound
# after a subscriber's death ("sub_gone") still tells an EOF seen at once (RES-CRASH-02) from a
# dead subscriber waited for until its ACK timeout.
ACK_TIMEOUT_MS = 3000
# Scheduling on the 2-core machine that runs this under nice beside builds and other jobs (load
# average 20 measured during the runs): a runnable process can wait over a second for a core,
# and a subscriber starved that long stalls the publisher's ACK wait. Every bound adds MARGIN_MS.
MARGIN_MS = 2000
BOUNDS = {
    # no event: a surviving subscriber delivers a frame or packet every hold-ms; allow a stall
    "steady": MARGIN_MS,
    # a new subscriber process: exec, connect, handshake, first frame
    "startup": 2 * MARGIN_MS,
    # a subscriber killed or closing: the publisher sees EOF and stops counting it (RES-CRASH-02)
    "sub_gone": PEER_DEATH_DETECT_MS + MARGIN_MS,
    # a subscriber stopped: the publisher waits for its ACK at most the ACK timeout, then evicts
    # it (ACK-EVICT-01, -03), from the moment it is stopped
    "sub_stopped": ACK_TIMEOUT_MS + PEER_DEATH_DETECT_MS + MARGIN_MS,
    # after a publisher is back (ready, or SIGCONT): subscribers see the death within
    # PEER_DEATH_DETECT_MS (RES-CRASH-01), reconnect (2 ms retry), handshake, first frame
    "pub_back": PEER_DEATH_DETECT_MS + 2 * MARGIN_MS,
}
RSS_BOUND_KIB = 1024  # growth of a long-lived party after its warm-up (see rss_growth)
ANON_MAPS_SLACK = 2   # anonymous mappings: glibc may keep one more arena or cached stack
# A publisher stopped longer than HANDSHAKE_TIMEOUT_MS times out the handshakes in progress
# (SM-PUB-02 / SM-SUB-02 run in wall time): the subscriber then exits with TIMEOUT, which is right
# but ends a sentinel. Publisher stops stay below it with room for scheduling.
PUB_STOP_MAX_S = 1.2
# Subscriber stops run past the ACK timeout about a third of the time: those end in eviction.
SUB_STOP_MAX_S = 4.5
DEFER_LIMIT_S = 30.0  # an event whose target never becomes ready fails the run
ARMED_WAIT_S = 20.0   # an armed fault point not reached by then is given up (logged)

FRAME_BYTES = 4096
SLOTS = 4
PACKET_BYTES = 2048
GOP = 10
BIG = str(10**12)  # frames/packets "forever"

# ----------------------------------------------------------------------------- the schedule

EVENT_WEIGHTS = [  # (type, weight)
    ("sub_kill", 18), ("sub_stop", 14), ("sub_restart", 10), ("sub_fault", 22),
    ("pub_kill", 8), ("pub_stop", 7), ("pub_restart", 6), ("pub_fault", 15),
]


def point_plan(point: str, seats: int) -> dict:
    """How the soak reaches a fault point: nth range, whether a stop there is allowed, and
    whether the driver must SIGTERM the armed party to get there (close points) or kill the
    previous publisher first (reclaim). KeyError for a point it does not know: a new fault point
    must be given a plan (test_soak_checkers checks every point of fault.h has one)."""
    prefix = point.rsplit(".", 1)[0]
    plans = {
        "pub.init": {"nth": (1, 1), "stop": True},
        "pub.reclaim": {"nth": (1, 1), "stop": True, "old": "kill"},
        "pub.hs": {"nth": (1, max(1, seats // 2)), "stop": True},
        "pub.frame": {"nth": (10, 300), "stop": True},
        "pub.packet": {"nth": (10, 300), "stop": True},
        # a live writer holding the parameters' lock odd is reported CORRUPT by design
        # (PKT-PARAMS-02): only its death is a scenario with an invariant to check
        "pub.params": {"nth": (1, 1), "stop": False},
        "pub.close": {"nth": (1, 1), "stop": True, "term": True},
        "sub.hs": {"nth": (1, 1), "stop": True},
        "sub.frame": {"nth": (1, 60), "stop": True},
        "sub.packet": {"nth": (1, 60), "stop": True},
        "sub.ack": {"nth": (5, 200), "stop": True},
        "sub.close": {"nth": (1, 1), "stop": True, "term": True},
    }
    return plans[prefix]


def make_schedule(seed: int, seconds: float, seats: int, sentinels: int, every_s: float,
                  points: list[str]) -> list[dict]:
    """The events of a run: a pure function of its arguments. Publisher events only in the
    first three quarters (the last publisher is a long-lived party)."""
    rng = random.Random(seed)
    types = [t for t, _ in EVENT_WEIGHTS]
    weights = [w for _, w in EVENT_WEIGHTS]
    sub_points = [p for p in points if p.startswith("sub.")]
    pub_points = [p for p in points if p.startswith("pub.")]
    targets = list(range(sentinels, seats))
    out = []
    t = 2.0
    while True:
        t += rng.uniform(0.4, 1.6) * every_s
        if t > seconds - 2.0:
            break
        typ = rng.choices(types, weights)[0]
        if typ.startswith("pub_") and t > 0.75 * seconds:
            typ = "sub_" + typ[4:]
        ev: dict = {"i": len(out), "at_s": round(t, 3), "type": typ}
        if typ.startswith("sub_"):
            ev["seat"] = rng.choice(targets)
        if typ in ("sub_stop", "pub_stop"):
            ev["stop_s"] = round(rng.uniform(0.1, SUB_STOP_MAX_S if typ == "sub_stop"
                                             else PUB_STOP_MAX_S), 3)
        if typ in ("sub_fault", "pub_fault"):
            point = rng.choice(sub_points if typ == "sub_fault" else pub_points)
            plan = point_plan(point, seats)
            ev["point"] = point
            ev["nth"] = rng.randint(*plan["nth"])
            ev["action"] = "stop" if plan["stop"] and rng.random() < 0.3 else "kill"
            if ev["action"] == "stop":
                ev["stop_s"] = round(rng.uniform(0.1, SUB_STOP_MAX_S if typ == "sub_fault"
                                                 else PUB_STOP_MAX_S), 3)
            if plan.get("term"):
                ev["term_after_s"] = round(rng.uniform(0.5, 2.5), 3)
            if typ == "pub_fault":
                ev["old"] = plan.get("old") or rng.choice(["kill", "term"])
        out.append(ev)
    return out


# ----------------------------------------------------------------------------- parties


@dataclass
class Party:
    role: str                  # "pub" or "sub"
    name: str
    proc: Proc
    spawn_ns: int
    seat: int | None = None
    armed: dict | None = None  # the schedule event whose fault point this process carries
    expect: str | None = None  # "sigkill" | "term": how the driver ended it
    stopped: bool = False
    was_stopped: bool = False
    cont_ns: int = 0
    marker: dict | None = None
    ready_ns: int | None = None
    checker: object = None
    exited: bool = False
    eof: bool = False          # both output streams ended: every event and marker is in
    exit_seen_ns: int | None = None
    rc: int | None = None
    last: collections.deque = field(default_factory=lambda: collections.deque(maxlen=8))
    rss: list = field(default_factory=list)
    start_snap: dict | None = None

    @property
    def pid(self) -> int:
        return self.proc.p.pid

    def alive(self) -> bool:
        return not self.exited and self.proc.p.poll() is None


class Violation(Exception):
    pass


class Soak:
    def __init__(self, args):
        self.a = args
        self.seconds = args.minutes * 60.0
        self.key = f"soak{os.getpid()}"
        self.sockdir = Path(tempfile.mkdtemp(prefix="cuframes-soak-"))
        self.env = dict(os.environ, CUFRAMES_SOCKET_DIR=str(self.sockdir))
        for k in ("CUFRAMES_FAULT", "CUFRAMES_MAX_PROTO"):
            self.env.pop(k, None)
        self.hold_ms = args.hold_ms or max(10, round(args.subscribers * 10 / 16))
        self.points = [p for p, _ in fault_points()]
        self.schedule = make_schedule(args.seed, self.seconds, args.subscribers, args.sentinels,
                                      args.event_every, self.points)
        self.checksums = Checksums(FRAME_BYTES, PACKET_BYTES)
        self.gaps = GapWatch(BOUNDS["steady"], BOUNDS["startup"])
        self.ctl: queue.Queue = queue.Queue()
        self.wake = threading.Event()
        self.violations: list[str] = []
        self._vlock = threading.Lock()
        self.pub: Party | None = None
        self.pubs: list[Party] = []
        self.seats: list[Party | None] = [None] * args.subscribers
        self.seat_gen = [0] * args.subscribers
        self.seat_next: list[dict | None] = [None] * args.subscribers
        self.pub_next: dict | None = None
        self.pub_gen = 0
        self.pub_down = None      # the disturbance while no publisher serves
        self.timers: list[tuple[int, str, object]] = []
        self.log: list[dict] = []
        self.retired: list[Party] = []
        self.ending = False
        self.t0 = time.monotonic_ns()
        self.counts = collections.Counter()       # events survived, by type
        self.outcomes = collections.Counter()     # what happened to targets
        self.fault_fired = collections.Counter()
        self.frames_pub = 0
        self.packets_pub = 0
        self.startup_ms: list[float] = []
        self.sentinels = list(range(args.sentinels))
        self.snap: dict = {}
        self.evictions: list[tuple[int, int]] = []
        self.long_gaps: collections.deque = collections.deque(maxlen=300)  # > half "steady"  # (subscriber index, t_ns) by any publisher
        self.final_pub_life_s = None

    # -------------------------------------------------------------------------- helpers

    def now(self) -> int:
        return time.monotonic_ns()

    def rel(self, t_ns: int) -> float:
        return round((t_ns - self.t0) / 1e9, 3)

    def say(self, msg: str) -> None:
        print(f"[{(self.now() - self.t0) / 1e9:7.2f}s] {msg}", flush=True)

    def violate(self, msgs: list[str]) -> None:
        if not msgs:
            return
        with self._vlock:
            self.violations.extend(msgs)
        self.wake.set()

    def record(self, **kw) -> dict:
        kw.setdefault("t_s", self.rel(self.now()))
        self.log.append(kw)
        return kw

    # -------------------------------------------------------------------------- spawning

    def kind_args(self) -> list[str]:
        return ["--kind", self.a.kind]

    def spawn_pub(self) -> Party:
        self.pub_gen += 1
        armed, self.pub_next = self.pub_next, None
        env = dict(self.env)
        if armed:
            env["CUFRAMES_FAULT"] = f"{armed['point']}:{armed['nth']}:{armed['action']}"
        argv = [str(adapter("cuframes-pub")), "--key", self.key, "--frames", BIG, "--packets",
                BIG, "--packet-bytes", str(PACKET_BYTES), "--gop", str(GOP), "--bytes",
                str(FRAME_BYTES), "--slots", str(SLOTS), "--max-subscribers",
                str(min(64, self.a.subscribers + 8)), "--ack-timeout-ms", str(ACK_TIMEOUT_MS),
                "--wait-subscribers", "1", "--wait-timeout-ms", "120000", "--linger-ms", "0",
                *self.kind_args(), "--diag"]
        name = f"pub#{self.pub_gen}"
        party = Party("pub", name, None, self.now(), armed=armed)  # type: ignore[arg-type]
        party.checker = PublisherChecker(name, self.checksums)
        party.proc = Proc(argv, env, sink=lambda p, ev, party=party: self.sink(party, ev))
        self.pub = party
        self.pubs.append(party)
        self.record(what="spawn", party=name, pid=party.pid,
                    fault=env.get("CUFRAMES_FAULT"))
        if armed:
            self.say(f"{name} pid {party.pid} armed {env['CUFRAMES_FAULT']}")
        return party

    def spawn_sub(self, seat: int) -> Party:
        self.seat_gen[seat] += 1
        armed, self.seat_next[seat] = self.seat_next[seat], None
        env = dict(self.env)
        if armed:
            env["CUFRAMES_FAULT"] = f"{armed['point']}:{armed['nth']}:{armed['action']}"
        argv = [str(adapter("cuframes-sub")), "--key", self.key, "--frames", BIG, "--packets",
                BIG, "--gop", str(GOP), "--hold-ms", str(self.hold_ms), "--timeout-ms", "60000",
                "--connect-timeout-ms", "30000", "--reconnect", str(10**9),
                "--reconnect-timeout-ms", "120000", "--wait-params", *self.kind_args(), "--diag"]
        name = f"seat{seat}#{self.seat_gen[seat]}"
        party = Party("sub", name, None, self.now(), seat=seat, armed=armed)  # type: ignore
        party.checker = DeliveryChecker(name, FRAME_BYTES, PACKET_BYTES, GOP, self.checksums,
                                        was_stopped=lambda party=party: party.was_stopped)
        party.proc = Proc(argv, env, sink=lambda p, ev, party=party: self.sink(party, ev))
        self.seats[seat] = party
        self.record(what="spawn", party=name, pid=party.pid, fault=env.get("CUFRAMES_FAULT"))
        if armed and armed.get("term_after_s"):
            self.timer(self.now() + int((armed["term_after_s"] + 1.0) * 1e9), "term_armed", party)
        return party

    # -------------------------------------------------------------------------- events in

    def sink(self, party: Party, ev: dict | None) -> None:
        """Reader threads: hot events are checked here; the rest goes to the main loop."""
        if ev is None:
            self.ctl.put(("eof", party, None))
            self.wake.set()
            return
        name = ev.get("event")
        if name in ("frame", "packet"):
            if party.role == "sub":
                prev = party.checker.last_delivery_ns
                self.violate(party.checker.feed(ev))
                t = party.checker.last_delivery_ns
                if not party.stopped and (prev is None or party.cont_ns < prev):
                    # a gap that holds the party's own stop is not a survivor's gap
                    self.gaps.delivered(party.name, prev, t)
                    if prev is not None and t - prev > BOUNDS["steady"] * 5e5:
                        self.long_gaps.append({"party": party.name, "from_s": self.rel(prev),
                                               "gap_ms": round((t - prev) / 1e6)})
            else:
                self.violate(party.checker.feed(ev))
            return
        party.last.append(ev)
        self.violate(party.checker.feed(ev) if name != "fault" else [])
        if name in ("fault", "ready", "attached", "error", "evicted"):
            self.ctl.put((name, party, ev))
            self.wake.set()

    def on_control(self, name: str, party: Party, ev: dict | None) -> None:
        if name == "evicted":
            self.evictions.append((ev.get("index"), ev.get("t_ns", self.now())))
            self.record(what="evicted", party=party.name, index=ev.get("index"),
                        reason=ev.get("reason"))
        elif name == "ready":
            party.ready_ns = ev.get("t_ns", self.now())
            if self.pub_down is not None:
                self.gaps.close(self.pub_down, party.ready_ns, BOUNDS["pub_back"])
                self.pub_down = None
            self.record(what="ready", party=party.name, pid=party.pid)
            armed = party.armed
            if armed and armed.get("term_after_s") and party is self.pub:
                self.timer(party.ready_ns + int(armed["term_after_s"] * 1e9), "term_armed", party)
        elif name == "fault":
            party.marker = ev
            self.fault_fired[ev.get("point")] += 1
            t = ev.get("t_ns", self.now())
            self.record(what="fault", party=party.name, pid=party.pid, point=ev.get("point"),
                        nth=ev.get("nth"), action=ev.get("action"), at_s=self.rel(t))
            self.say(f"{party.name} reached {ev.get('point')}:{ev.get('nth')} -> "
                     f"{ev.get('action')}")
            stop_s = (party.armed or {}).get("stop_s", 1.0)
            if party.role == "pub":
                if ev.get("action") == "stop":
                    party.stopped = party.was_stopped = True
                    d = self.gaps.open("pub_fault_stop", party.name, t, BOUNDS["steady"], None)
                    self.timer(t + int(stop_s * 1e9), "cont", (party, d))
                elif self.pub_down is None:
                    self.pub_down = self.gaps.open("pub_fault_kill", party.name, t,
                                                   BOUNDS["pub_back"], None)
            else:
                if ev.get("action") == "stop":
                    party.stopped = party.was_stopped = True
                    self.gaps.open("sub_fault_stop", party.name, t, BOUNDS["sub_stopped"], t)
                    self.timer(t + int(stop_s * 1e9), "cont", (party, None))
                else:
                    self.gaps.open("sub_fault_kill", party.name, t, BOUNDS["sub_gone"], t)

    # -------------------------------------------------------------------------- timers

    def timer(self, at_ns: int, what: str, obj) -> None:
        self.timers.append((at_ns, what, obj))

    def run_timers(self) -> None:
        now = self.now()
        due = [t for t in self.timers if t[0] <= now]
        self.timers = [t for t in self.timers if t[0] > now]
        for _, what, obj in sorted(due, key=lambda t: t[0]):
            if what == "cont":
                party, d = obj
                if party.alive():
                    os.kill(party.pid, signal.SIGCONT)
                party.stopped = False
                party.cont_ns = self.now()
                if d is not None:
                    self.gaps.close(d, party.cont_ns)
                self.record(what="SIGCONT", party=party.name, pid=party.pid)
            elif what == "term_armed":
                party = obj
                if party.alive() and party.expect is None and not party.stopped:
                    self.say(f"SIGTERM {party.name} (armed {party.armed['point']})")
                    self.end_party(party, "term", "armed_close")

    def end_party(self, party: Party, how: str, kind: str) -> None:
        """SIGKILL (how="sigkill") or SIGTERM (how="term") a party, opening its disturbance."""
        now = self.now()
        party.expect = how
        if party.role == "pub":
            if self.pub_down is None:
                self.pub_down = self.gaps.open(kind, party.name, now, BOUNDS["pub_back"], None)
        else:
            self.gaps.open(kind, party.name, now, BOUNDS["sub_gone"], now)
        sig = signal.SIGKILL if how == "sigkill" else signal.SIGTERM
        os.kill(party.pid, sig)
        if party.stopped and how == "term":
            os.kill(party.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        self.record(what="SIGKILL" if how == "sigkill" else "SIGTERM", party=party.name,
                    pid=party.pid)

    # -------------------------------------------------------------------------- exits

    def reap(self) -> None:
        parties = [p for p in [self.pub, *self.seats] if p is not None and not p.exited]
        for p in parties:
            rc = p.proc.p.poll()
            if rc is None:
                continue
            if not p.eof:  # judge it with all its events and markers read (bounded)
                if p.exit_seen_ns is None:
                    p.exit_seen_ns = self.now()
                if self.now() - p.exit_seen_ns < 5e9:
                    continue
            p.exited, p.rc = True, rc
            self.retired.append(p)
            ok, why = self.judge_exit(p, rc)
            self.record(what="exit", party=p.name, pid=p.pid, rc=rc, expected=ok, why=why)
            if p.role == "sub":
                self.outcomes[why] += 1
            else:
                self.outcomes["publisher " + why] += 1
            if p.role == "sub" and p.seat in self.sentinels and not self.ending:
                ok, why = False, f"a sentinel (long-lived) subscriber ended: {why}"
            if not ok:
                last = [json.dumps({k: v for k, v in e.items() if not k.startswith("_")})
                        for e in p.last]
                self.violate([f"{p.name} (pid {p.pid}) exited with {rc}: {why}; last events: "
                              f"{last}; stderr: {p.proc.stderr[-400:]!r}"])
            if p.role == "pub":
                if self.pub_down is None and not self.ending:
                    self.pub_down = self.gaps.open("pub_died", p.name, self.now(),
                                                   BOUNDS["pub_back"], None)
                self.pub = None
            else:
                self.seats[p.seat] = None

    def judge_exit(self, p: Party, rc: int) -> tuple[bool, str]:
        marker = p.marker
        if rc == -signal.SIGKILL and marker is not None and marker.get("action") == "kill":
            return True, f"died at {marker.get('point')}"
        if rc == -signal.SIGKILL and p.expect == "sigkill":
            return True, "SIGKILLed"
        if rc == 0 and p.expect == "term":
            return True, "closed on SIGTERM"
        if p.role == "sub" and rc == 4 and p.checker.suspect:
            bad = [f for f in p.checker.suspect
                   if not eviction_explains(f, p.checker.last_attach, self.evictions)]
            if bad:
                return False, f"torn or wrong frame delivered: {bad[0]}"
            return True, "evicted while stopped holding a frame, which was then reused"
        errors = [e for e in p.last if e.get("event") == "error"]
        if p.role == "sub" and rc == 2 and errors and errors[-1].get("name") == "EVICTED":
            if p.was_stopped:
                return True, "evicted after a stop"
            return False, "evicted although it was never stopped"
        if (p.role == "sub" and rc == 3 and errors and errors[-1].get("name") == "TIMEOUT"
                and errors[-1].get("where") == "connect"):
            t = errors[-1].get("t_ns", self.now())
            window = int((HANDSHAKE_TIMEOUT_MS + MARGIN_MS) * 1e6)
            for d in self.gaps.disturbances():
                if (d.kind in ("pub_stop", "pub_fault_stop") and d.start_ns <= t
                        and (d.end_ns is None or d.end_ns >= t - window)):
                    return True, "handshake timed out while the publisher was stopped"
            if p.was_stopped:
                return True, "handshake timed out while it was stopped"
            return False, "handshake timed out with the publisher running"
        return False, "unexpected exit"

    # -------------------------------------------------------------------------- the schedule

    def target_ready(self, ev: dict) -> bool:
        if ev["type"].startswith("sub_"):
            p = self.seats[ev["seat"]]
            return (p is not None and p.alive() and not p.stopped and p.expect is None
                    and p.checker.frames > 0
                    and (p.armed is None or p.marker is not None
                         or self.now() - p.spawn_ns > ARMED_WAIT_S * 1e9))
        p = self.pub
        if p is None or not p.alive() or p.ready_ns is None or p.stopped or p.expect:
            return False
        if p.armed is not None and p.marker is None:
            return self.now() - p.spawn_ns > ARMED_WAIT_S * 1e9  # give the armed point a chance
        return any(s is not None and s.checker.frames > 0 for s in self.seats)

    def execute(self, ev: dict, deferred_ms: float) -> None:
        typ = ev["type"]
        now = self.now()
        entry = self.record(what="event", i=ev["i"], type=typ, at_s=self.rel(now),
                            scheduled_s=ev["at_s"], deferred_ms=round(deferred_ms))
        self.counts[typ] += 1
        if typ.startswith("sub_"):
            p = self.seats[ev["seat"]]
            entry.update(party=p.name, pid=p.pid)
            desc = f"#{ev['i']} {typ} {p.name} pid {p.pid}"
            if typ == "sub_kill":
                self.end_party(p, "sigkill", "sub_kill")
            elif typ == "sub_stop":
                os.kill(p.pid, signal.SIGSTOP)
                p.stopped = p.was_stopped = True
                self.gaps.open("sub_stop", p.name, now, BOUNDS["sub_stopped"], now)
                self.timer(now + int(ev["stop_s"] * 1e9), "cont", (p, None))
                desc += f" for {ev['stop_s']} s"
            elif typ == "sub_restart":
                self.end_party(p, "term", "sub_restart")
            elif typ == "sub_fault":
                self.seat_next[ev["seat"]] = ev
                self.end_party(p, "term", "sub_restart")
                desc += f" -> next armed {ev['point']}:{ev['nth']}:{ev['action']}"
        else:
            p = self.pub
            entry.update(party=p.name, pid=p.pid)
            desc = f"#{ev['i']} {typ} {p.name} pid {p.pid}"
            if typ == "pub_kill":
                self.end_party(p, "sigkill", "pub_kill")
            elif typ == "pub_stop":
                os.kill(p.pid, signal.SIGSTOP)
                p.stopped = p.was_stopped = True
                d = self.gaps.open("pub_stop", p.name, now, BOUNDS["steady"], None)
                self.timer(now + int(ev["stop_s"] * 1e9), "cont", (p, d))
                desc += f" for {ev['stop_s']} s"
            elif typ == "pub_restart":
                self.end_party(p, "term", "pub_restart")
            elif typ == "pub_fault":
                self.pub_next = ev
                self.end_party(p, "sigkill" if ev["old"] == "kill" else "term",
                               "pub_kill" if ev["old"] == "kill" else "pub_restart")
                desc += (f" ({ev['old']}) -> next armed {ev['point']}:{ev['nth']}:"
                         f"{ev['action']}")
        if deferred_ms > 100:
            desc += f" (deferred {deferred_ms:.0f} ms)"
        self.say(desc)

    # -------------------------------------------------------------------------- checks

    def watchdog(self) -> None:
        now = self.now()
        for p in self.seats:
            if p is None or not p.alive() or p.stopped or p.expect:
                continue
            last = p.checker.last_delivery_ns
            first = last is None
            ref = max(last or 0, p.spawn_ns, p.cont_ns)
            msg = self.gaps.check(p.name, ref, first and p.cont_ns < p.spawn_ns, now)
            if msg:
                last = [{k: v for k, v in e.items() if not k.startswith("_")} for e in p.last]
                self.violate([msg + f"; last events: {last}; stderr: {p.proc.stderr[-300:]!r}"])

    def sample_rss(self) -> None:
        now = self.now()
        for p in [self.pub, *[self.seats[s] for s in self.sentinels]]:
            if p is not None and p.alive():
                try:
                    p.rss.append(((now - p.spawn_ns) / 1e9, rss_kib(p.pid)))
                except OSError:
                    pass

    def snapshot(self, p: Party) -> dict:
        return {"fds": fd_snapshot(p.pid), "maps": maps_snapshot(p.pid)}

    def raise_if_violated(self) -> None:
        with self._vlock:
            if self.violations:
                raise Violation(self.violations[0])

    # -------------------------------------------------------------------------- the run

    def pump(self, until_ns: int | None = None, cond=None, what: str = "") -> None:
        """Runs the main loop (controls, timers, reaping, respawning, watchdog, RSS) until
        until_ns or until cond() is true (a bounded wait: Violation if until_ns passes first
        while cond is given)."""
        next_rss = 0
        while True:
            self.wake.wait(0.05)
            self.wake.clear()
            while True:
                try:
                    name, party, ev = self.ctl.get_nowait()
                except queue.Empty:
                    break
                if name == "eof":
                    party.eof = True
                else:
                    self.on_control(name, party, ev)
            self.run_timers()
            self.reap()
            if not self.ending:
                if self.pub is None:
                    self.spawn_pub()
                for s in range(len(self.seats)):
                    if self.seats[s] is None:
                        self.spawn_sub(s)
            self.watchdog()
            if not self.ending:
                self.snapshot_publisher()
            if self.now() >= next_rss:
                self.sample_rss()
                next_rss = self.now() + 1_000_000_000
            self.raise_if_violated()
            if cond is not None and cond():
                return
            if until_ns is not None and self.now() >= until_ns:
                if cond is not None:
                    raise Violation(f"timed out waiting for {what}")
                return

    def snapshot_publisher(self) -> None:
        """A publisher's start snapshot: the first moment it serves every seat."""
        p = self.pub
        if p is not None and p.start_snap is None and self.everyone_delivering():
            try:
                p.start_snap = self.snapshot(p)
            except OSError:
                pass

    def everyone_delivering(self) -> bool:
        p = self.pub
        if p is None or not p.alive() or p.ready_ns is None or p.stopped:
            return False
        since = self.now() - 500_000_000
        return all(s is not None and s.alive() and not s.stopped and s.checker.last_delivery_ns
                   is not None and s.checker.last_delivery_ns > since for s in self.seats)

    def run(self) -> int:
        adapter("cuframes-pub")
        adapter("cuframes-sub")
        a = self.a
        self.say(f"soak: {a.minutes} min, seed {a.seed}, {a.subscribers} subscribers "
                 f"({a.sentinels} sentinels), kind {a.kind}, hold {self.hold_ms} ms, "
                 f"{len(self.schedule)} events scheduled, key {self.key}")
        verdict = "PASS"
        err = None
        try:
            self.t0 = self.now()
            self.spawn_pub()
            for s in range(a.subscribers):
                self.spawn_sub(s)
            self.pump(self.now() + int(60e9), self.everyone_delivering,
                      "every subscriber attached and delivering")
            warm_ns = self.now()
            self.say("all subscribers delivering; chaos starts")
            for s in self.sentinels:
                self.seats[s].start_snap = self.snapshot(self.seats[s])
            self.t0 = warm_ns  # the schedule's times count from here
            for ev in self.schedule:
                at = self.t0 + int(ev["at_s"] * 1e9)
                self.pump(at, None)
                start = self.now()
                self.pump(start + int(DEFER_LIMIT_S * 1e9), lambda ev=ev: self.target_ready(ev),
                          f"the target of event #{ev['i']} ({ev['type']})")
                self.execute(ev, (self.now() - at) / 1e6)
            self.pump(self.t0 + int(self.seconds * 1e9), None)
            self.finish()
        except Violation as e:
            verdict = "FAIL"
            err = str(e)
            self.say(f"VIOLATION: {err}")
        except BaseException as e:  # noqa: BLE001 - report, then clean up, then re-raise
            verdict = "FAIL"
            err = f"driver error: {e!r}"
            self.say(err)
            self.teardown()
            self.write_report(verdict, err)
            raise
        self.teardown()
        self.write_report(verdict, err)
        return 0 if verdict == "PASS" else 1

    def finish(self) -> None:
        """The end: wait for quiet, compare the long-lived parties, close everything cleanly,
        check that nothing is left behind."""
        self.say("schedule done; waiting for every stopped party to resume and all to deliver")
        self.pump(self.now() + int(60e9),
                  lambda: not self.timers and self.everyone_delivering(), "a quiet end state")
        self.pump(self.now() + int(2e9), None)  # two quiet seconds, still watched
        out = []
        snaps = {}
        for s in self.sentinels:
            p = self.seats[s]
            end = self.snapshot(p)
            snaps[p.name] = {"start": p.start_snap, "end": end}
            out += compare_fds(p.name, p.start_snap["fds"], end["fds"])
            out += compare_maps(p.name, p.start_snap["maps"], end["maps"], ANON_MAPS_SLACK)
        pub = self.pub
        pub_end = self.snapshot(pub)
        if pub.start_snap is not None:
            snaps[pub.name] = {"start": pub.start_snap, "end": pub_end}
        self.snap = {k: {w: {"fds": dict(v["fds"]), "maps": {"files": len(v["maps"]["files"]),
                                                           "anon": v["maps"]["anon"],
                                                           "shm": v["maps"]["shm"]}}
                         for w, v in d.items()} for k, d in snaps.items()}
        self.final_pub_life_s = round((self.now() - pub.spawn_ns) / 1e9, 1)
        self.violate(out)
        self.raise_if_violated()
        self.ending = True
        self.say("closing: SIGTERM to every subscriber, then to the publisher")
        for p in self.seats:
            self.end_party(p, "term", "end")
        self.pump(self.now() + int(30e9), lambda: all(s is None for s in self.seats),
                  "every subscriber closed")
        self.pump(self.now() + int(10e9),
                  lambda: pub.checker.last_gone is not None
                  and pub.checker.last_gone.get("key_socks") == 1,
                  "the publisher's last subscriber gone")
        out = pub.checker.check_idle()
        fds_end = pub_end["fds"]
        start = pub.start_snap
        if start is None:
            out.append(f"{pub.name}: never served every seat at once: no start snapshot")
        else:
            out += compare_fds(pub.name, +_no_sockets(start["fds"]), +_no_sockets(fds_end))
            out += compare_maps(pub.name, start["maps"], pub_end["maps"], ANON_MAPS_SLACK)
        self.violate(out)
        self.end_party(pub, "term", "end")
        self.pump(self.now() + int(15e9), lambda: pub.exited, "the publisher closed")
        left = [str(p) for p in self.sockdir.iterdir()]
        for n in (f"cuframes-{self.key}", f"cuframes-{self.key}-packets"):
            if (Path("/dev/shm") / n).exists():
                left.append(f"/dev/shm/{n}")
        if left:
            self.violate([f"left behind after the last publisher closed: {left}"])
        self.violate(self.checksums.resolve_pending())
        self.raise_if_violated()

    def teardown(self) -> None:
        for p in [self.pub, *self.seats]:
            if p is not None and p.proc.p.poll() is None:
                p.proc.kill()
        for n in (f"cuframes-{self.key}", f"cuframes-{self.key}-packets"):
            try:
                os.unlink(f"/dev/shm/{n}")
            except FileNotFoundError:
                pass
        shutil.rmtree(self.sockdir, ignore_errors=True)

    # -------------------------------------------------------------------------- report

    def write_report(self, verdict: str, err: str | None) -> None:
        every = self.retired + [p for p in [self.pub, *self.seats] if p is not None
                                and p not in self.retired]
        subs = [p for p in every if p.role == "sub"]
        frames = sum(p.checker.frames for p in subs)
        packets = sum(p.checker.packets for p in subs)
        overruns = sum(p.checker.overruns for p in subs)
        pubs = [p for p in every if p.role == "pub"]
        rss = {}
        rss_viol = []
        long_lived = [self.seats_by_name(s) for s in self.sentinels] + [self.pubs[-1]]
        for p in long_lived:
            if p is None:
                continue
            fig, v = rss_growth(p.name, p.rss, min(10.0, 0.1 * self.seconds), RSS_BOUND_KIB)
            rss[p.name] = fig
            rss_viol += v
        if verdict == "PASS" and rss_viol:
            verdict, err = "FAIL", rss_viol[0]
            self.say(f"VIOLATION: {err}")
        st = self.gaps.stats
        by_kind = {}
        for d in self.gaps.disturbances():
            k = by_kind.setdefault(d.kind, {"count": 0, "worst_gap_ms": 0.0, "grace_ms": 0})
            k["count"] += 1
            k["worst_gap_ms"] = round(max(k["worst_gap_ms"], d.worst_gap_ms), 1)
            k["grace_ms"] = max(k["grace_ms"], d.grace_ms)
        report = {
            "verdict": verdict,
            "violation": err,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
                       f"{platform.platform()}",
            "build_dir": str(build_dir()),
            "config": {"minutes": self.a.minutes, "seed": self.a.seed,
                       "subscribers": self.a.subscribers, "sentinels": self.a.sentinels,
                       "kind": self.a.kind, "hold_ms": self.hold_ms, "frame_bytes": FRAME_BYTES,
                       "slots": SLOTS, "packet_bytes": PACKET_BYTES, "gop": GOP,
                       "ack_timeout_ms": ACK_TIMEOUT_MS, "event_every_s": self.a.event_every},
            "bounds_ms": BOUNDS, "rss_bound_kib": RSS_BOUND_KIB,
            "events_scheduled": len(self.schedule),
            "events_survived": dict(self.counts) if verdict == "PASS" else {},
            "events_executed": dict(self.counts),
            "fault_points_reached": dict(self.fault_fired),
            "exits": dict(self.outcomes),
            "frames_verified": frames, "packets_verified": packets,
            "checksums_compared": self.checksums.compared,
            "overruns": overruns,
            "frames_published": sum(p.checker.frames for p in pubs),
            "packets_published": sum(p.checker.packets for p in pubs),
            "publishers": len(pubs), "subscriber_processes": len(subs),
            "worst_gap_ms": round(st.worst_ms, 1), "worst_gap_who": st.worst_who,
            "worst_gap_by_disturbance_ms": by_kind,
            "rss": rss,
            "long_gaps": list(self.long_gaps),
            "long_lived_snapshots": self.snap,
            "final_publisher_life_s": self.final_pub_life_s,
            "schedule": self.schedule,
            "log": self.log,
        }
        path = Path(self.a.report)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=1, default=str) + "\n")
        self.print_summary(report)
        print(f"report: {path}")

    def seats_by_name(self, seat: int) -> Party | None:
        for p in [*self.retired, *[s for s in self.seats if s is not None]]:
            if p.seat == seat and p.name.endswith("#1"):
                return p
        return None

    def print_summary(self, r: dict) -> None:
        print()
        print(f"soak {r['verdict']}: seed {r['config']['seed']}, "
              f"{r['config']['minutes']} min, {r['config']['subscribers']} subscribers, "
              f"kind {r['config']['kind']}")
        if r["violation"]:
            print(f"  first violation: {r['violation']}")
        ex = r["events_executed"]
        print("  scheduled events executed: " + ", ".join(f"{t} {ex.get(t, 0)}"
                                                        for t, _ in EVENT_WEIGHTS))
        print(f"  {'disturbance':<18}{'count':>6}{'worst survivor gap ms':>23}"
              f"{'bound after it ms':>19}")
        for kind, v in sorted(r["worst_gap_by_disturbance_ms"].items()):
            print(f"  {kind:<18}{v['count']:>6}{v['worst_gap_ms']:>23.0f}{v['grace_ms']:>19.0f}")
        print(f"  fault points reached: {sum(r['fault_points_reached'].values())} "
              f"({len(r['fault_points_reached'])} distinct)")
        print(f"  frames verified {r['frames_verified']}, packets verified "
              f"{r['packets_verified']} (overruns {r['overruns']}), checksums compared "
              f"{r['checksums_compared']}")
        print(f"  publishers {r['publishers']}, subscriber processes "
              f"{r['subscriber_processes']}")
        print(f"  worst delivery gap {r['worst_gap_ms']:.0f} ms ({r['worst_gap_who']})")
        for name, fig in r["rss"].items():
            if fig.get("judged"):
                print(f"  RSS {name}: {fig['start_kib']} -> {fig['end_kib']} KiB "
                      f"(growth {fig['growth_kib']} KiB over {fig['over_s']} s)")


def _no_sockets(c: collections.Counter) -> collections.Counter:
    return collections.Counter({k: v for k, v in c.items() if k != "socket"})


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("minutes", nargs="?", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=20261201)
    ap.add_argument("--subscribers", type=int, default=16)
    ap.add_argument("--kind", choices=["host", "cuda"], default="host")
    ap.add_argument("--sentinels", type=int, default=2,
                    help="subscribers no event targets (long-lived parties)")
    ap.add_argument("--hold-ms", type=int, default=0,
                    help="pacing: each subscriber holds each frame (default 10 ms per 16 "
                         "subscribers)")
    ap.add_argument("--event-every", type=float, default=2.5,
                    help="mean seconds between events")
    ap.add_argument("--report", default=str(ROOT / "reports" / "soak.json"))
    ap.add_argument("--schedule-only", action="store_true",
                    help="print the seed's schedule as JSON and exit")
    a = ap.parse_args(argv)
    if not 16 <= a.subscribers <= 64 and not a.schedule_only:
        print(f"note: {a.subscribers} subscribers is outside the 16-64 the soak is meant for",
              file=sys.stderr)
    if a.sentinels >= a.subscribers:
        ap.error("--sentinels must leave subscribers for the events to target")
    return a


def main(argv=None) -> int:
    a = parse_args(argv)
    if a.schedule_only:
        pts = [p for p, _ in fault_points()]
        print(json.dumps(make_schedule(a.seed, a.minutes * 60, a.subscribers, a.sentinels,
                                       a.event_every, pts), indent=1))
        return 0
    return Soak(a).run()


if __name__ == "__main__":
    sys.exit(main())
