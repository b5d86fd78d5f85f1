"""The interop matrix's scenarios: one publisher adapter, subscriber adapters, one key.

Each scenario drives implementations only through their adapters (ADAPTER.md): the arguments of
section 2, the JSON event lines of section 3, the exit codes of section 5, and signals (SIGKILL
for a crash, SIGSTOP/SIGCONT for a subscriber that stops releasing, SIGTERM to end an adapter,
ADP-SIG-01). Readiness comes from events (`ready`, `attached`, `frame`, `done`, `evicted`), every
wait is bounded, nothing sleeps to synchronise.

A scenario checks what its CellExpect (expect.derive) says must happen and returns a Result:
"pass" when every check held, "fail" with the broken checks and each process's command line, exit
status, last events and stderr tail as evidence.
"""
from __future__ import annotations

import itertools
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from cuframes_procs import Proc
from matrix.expect import CellExpect, SubExpect, Twin
from matrix.manifests import Impl

FRAMES = 200
BYTES = 4096
PACKETS = 100
PACKET_BYTES = 256
GOP = 10
FOREVER = 100_000_000      # "publish until killed"
EVENT_TIMEOUT = 20.0       # s, any single awaited event (a loaded 2-core machine)
FINISH_TIMEOUT = 60.0      # s, a process's whole run
DEATH_SLACK_MS = 2000      # scheduling slack on top of PEER_DEATH_DETECT_MS

_keys = itertools.count()


@dataclass
class Result:
    status: str                      # "pass" | "fail" | "na"
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    evidence: str = ""
    seconds: float = 0.0
    reason: str = ""                 # "na": why


class Run:
    """The processes of one cell, their checks and their evidence."""

    def __init__(self, twin: Twin, socket_dir: Path, kind: str):
        self.twin = twin
        self.kind = kind
        self.socket_dir = socket_dir
        self.env = dict(os.environ, CUFRAMES_SOCKET_DIR=str(socket_dir))
        self.env.pop("CUFRAMES_MAX_PROTO", None)
        self.key = f"mx{os.getpid()}-{next(_keys)}"
        self.procs: list[tuple[str, Proc]] = []
        self.failures: list[str] = []
        self.notes: list[str] = []

    # --- processes ------------------------------------------------------------------------
    def pub(self, impl: Impl, args: list[str], cell: CellExpect, label: str = "pub") -> Proc:
        cap = ["--max-proto", "1"] if cell.pub_capped else []
        argv = impl.argv("publisher", ["--key", self.key, "--kind", self.kind, *args, *cap])
        p = Proc(argv, impl.env(self.env))
        self.procs.append((f"{label} {impl.name}", p))
        return p

    def sub(self, impl: Impl, se: SubExpect, args: list[str], label: str) -> Proc:
        cap = ["--max-proto", "1"] if se.capped else []
        argv = impl.argv("subscriber", ["--key", self.key, "--kind", self.kind, *args, *cap])
        p = Proc(argv, impl.env(self.env))
        self.procs.append((f"{label} {impl.name}{' (v1-capped)' if se.capped else ''}", p))
        return p

    def kill_all(self) -> None:
        for _, p in self.procs:
            if p.p.poll() is None:
                try:
                    os.kill(p.p.pid, signal.SIGCONT)  # a stopped child must be able to die
                except ProcessLookupError:
                    pass
            p.kill()

    # --- checks ---------------------------------------------------------------------------
    def check(self, ok: bool, what: str) -> bool:
        if not ok:
            self.failures.append(what)
        return ok

    def finish(self, p: Proc, label: str, rc_expected: int, timeout: float = FINISH_TIMEOUT) -> int:
        try:
            rc = p.finish(timeout=timeout)
        except Exception:  # noqa: BLE001 - a hung process is a failure of the cell, with evidence
            self.failures.append(f"{label}: did not exit within {timeout:.0f}s (killed)")
            return -1
        self.check(rc == rc_expected, f"{label}: exit {rc}, expected {rc_expected}; "
                                      f"errors {strip(p.of('error'))}")
        return rc

    def attached(self, p: Proc, se: SubExpect, label: str) -> dict:
        ev = p.wait_event("attached", EVENT_TIMEOUT)
        self.check(ev.get("proto") == se.proto,
                   f"{label}: attached proto {ev.get('proto')}, expected {se.proto} (VER-NEG-01)")
        self.check(bool(ev.get("packet_ring")) == se.ring,
                   f"{label}: packet_ring {ev.get('packet_ring')}, expected {se.ring} "
                   f"(PKT-RING-02, PKT-HELLO-01)")
        self.check(ev.get("kind") == self.kind,
                   f"{label}: attached kind {ev.get('kind')!r}, expected {self.kind!r}")
        return ev

    def ready(self, p: Proc, cell: CellExpect) -> dict:
        ev = p.wait_event("ready", EVENT_TIMEOUT)
        self.check(ev.get("proto") == cell.pub_proto,
                   f"pub: ready proto {ev.get('proto')}, expected {cell.pub_proto}")
        return ev

    def ended_with(self, p: Proc, label: str, name: str) -> None:
        errs = p.of("error")
        want = self.twin.errors[name]
        self.check(bool(errs) and errs[-1].get("name") == name and errs[-1].get("code") == want,
                   f"{label}: last error {strip(errs[-1:])}, expected {name} ({want})")

    def frames(self, p: Proc, label: str, published: dict[int, str], first: int,
               count: int) -> None:
        fr = p.of("frame")
        seqs = [f.get("seq") for f in fr]
        want = list(range(first, first + count))
        if not self.check(seqs == want, f"{label}: frame seqs {summarise(seqs)}, expected "
                                        f"{summarise(want)}"):
            return
        bad = [f["seq"] for f in fr if not f.get("valid")]
        self.check(not bad, f"{label}: frames with valid=false: {summarise(bad)}")
        wrong = [f["seq"] for f in fr if published.get(f["seq"]) != f.get("checksum")]
        self.check(not wrong, f"{label}: checksums differ from the publisher's: {summarise(wrong)}")

    def packets(self, p: Proc, label: str, first: int | None, last: int,
                params_required: bool = False) -> None:
        """Packets valid, seq increasing, ending at `last`; the first one (and each after an
        overrun) a keyframe per section 4; contiguous from `first` when no overrun happened.
        A `codec_params` event, when printed, is valid and comes before the first packet; it is
        required (params_required) of a subscriber that attached after they were published."""
        pk = p.of("packet")
        if not self.check(bool(pk), f"{label}: no packet events"):
            return
        seqs = [k.get("seq") for k in pk]
        self.check(seqs[-1] == last, f"{label}: last packet {seqs[-1]}, expected {last}")
        self.check(all(b > a for a, b in zip(seqs, seqs[1:])),
                   f"{label}: packet seqs not increasing: {summarise(seqs)}")
        bad = [k["seq"] for k in pk if not k.get("valid")]
        self.check(not bad, f"{label}: packets with valid=false: {summarise(bad)}")
        kf = [k["seq"] for k in pk if bool(k.get("keyframe")) != ((k["seq"] - 1) % GOP == 0)]
        self.check(not kf, f"{label}: KEYFRAME flag wrong on {summarise(kf)}")
        self.check(bool(pk[0].get("keyframe")), f"{label}: first packet {seqs[0]} not a keyframe")
        params = p.of("codec_params")
        if params_required:
            self.check(bool(params), f"{label}: no codec_params event, though the parameters "
                                     f"were published before it attached")
        if params:
            self.check(params[0].get("valid") is True and p.events.index(params[0]) <
                       p.events.index(pk[0]),
                       f"{label}: codec_params {strip(params)}: expected valid, before the "
                       f"first packet (ADP-EVENT-02)")
        if not p.of("overrun") and first is not None:
            self.check(seqs == list(range(first, last + 1)),
                       f"{label}: packets {summarise(seqs)}, expected {first}..{last}")
        elif p.of("overrun"):
            after = [next((e for e in p.events[i:] if e.get("event") == "packet"), None)
                     for i, e in enumerate(p.events) if e.get("event") == "overrun"]
            bad = [strip([e]) for e in after if e is not None and not e.get("keyframe")]
            self.check(not bad, f"{label}: resumed after an overrun at a non-keyframe: {bad} "
                                f"(PACKET_OVERRUN resumes at the latest keyframe)")
            self.notes.append(f"{label}: {len(p.of('overrun'))} overrun(s), resumed at keyframes")

    def leftovers(self) -> None:
        left = [str(q) for q in self.socket_dir.iterdir()]
        for name in (f"cuframes-{self.key}", f"cuframes-{self.key}-packets"):
            if (Path("/dev/shm") / name).exists():
                left.append(f"/dev/shm/{name}")
        self.check(not left, f"files left behind (RES-CLOSE-03): {left}")

    def sweep(self) -> None:
        """Removes what a failed cell left in /dev/shm under this cell's key (after it was
        judged), so that one implementation's leak does not pile up across runs."""
        for name in (f"cuframes-{self.key}", f"cuframes-{self.key}-packets"):
            try:
                (Path("/dev/shm") / name).unlink()
                self.notes.append(f"removed /dev/shm/{name} after judging the cell")
            except FileNotFoundError:
                pass

    def evidence(self) -> str:
        out = []
        for label, p in self.procs:
            rc = p.p.poll()
            out.append(f"$ {' '.join(p.argv)}\n  [{label}] exit {rc}; last events: "
                       f"{strip(p.events[-4:])}")
            err = p.stderr.strip()
            if err:
                out.append("  stderr: " + err[-400:].replace("\n", "\n  stderr: "))
        return "\n".join(out)


def strip(events: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if not k.startswith("_")} for e in events]


def summarise(seqs: list) -> str:
    if len(seqs) <= 8:
        return str(seqs)
    return f"[{', '.join(map(str, seqs[:4]))}, ... {', '.join(map(str, seqs[-3:]))}] ({len(seqs)})"


def last_keyframe(n: int, gop: int) -> int:
    """The seq of the last keyframe among packets 1..n (section 4: keyframes at (k-1) mod G = 0)."""
    return 1 + gop * ((n - 1) // gop)


def sub_work(se: SubExpect, frames: int, extra: list[str] | None = None) -> list[str]:
    args = ["--frames", str(frames), "--timeout-ms", "30000"]
    if se.asks_packets:
        args += ["--packets", str(frames), "--gop", str(GOP)]
    return args + (extra or [])


def pub_packets(cell: CellExpect, n: int) -> list[str]:
    if not cell.pub_ring:
        return []
    return ["--packets", str(n), "--packet-bytes", str(PACKET_BYTES), "--gop", str(GOP)]


# --- scenarios -----------------------------------------------------------------------------
def refusal(run: Run, pub_impl: Impl, subs: list[Impl], cell: CellExpect) -> None:
    """Cells where a subscriber shares no proto_version with the publisher: it is refused with
    VERSION_MISMATCH (VER-NEG-01), before any `attached`; the publisher is unharmed."""
    pub = run.pub(pub_impl, ["--frames", "0", "--linger-ms", "0"], cell)
    run.ready(pub, cell)
    for i, (impl, se) in enumerate(zip(subs, cell.subs)):
        if se.outcome != "VERSION_MISMATCH":
            continue
        s = run.sub(impl, se, ["--frames", "1"], f"sub{i}")
        run.finish(s, f"sub{i}", 2)
        run.check(not s.of("attached"), f"sub{i}: attached despite no common version")
        run.ended_with(s, f"sub{i}", "VERSION_MISMATCH")
    pub.p.send_signal(signal.SIGTERM)
    run.finish(pub, "pub", 0)


def scenario_F(run: Run, pub_impl: Impl, subs: list[Impl], cell: CellExpect) -> None:
    """Frames: every frame delivered, valid, with the publisher's checksums; a publisher with a
    packet ring (feature packets) serves a subscriber that did not ask for packets."""
    pub = run.pub(pub_impl, ["--frames", str(FRAMES), "--bytes", str(BYTES), "--slots", "4",
                             "--wait-subscribers", "1", *pub_packets(cell, FRAMES)], cell)
    run.ready(pub, cell)
    se = cell.subs[0]
    s = run.sub(subs[0], se, sub_work(se, FRAMES), "sub")
    run.attached(s, se, "sub")
    run.finish(s, "sub", 0)
    run.finish(pub, "pub", 0)
    published = {e["seq"]: e["checksum"] for e in pub.of("frame")}
    run.check(sorted(published) == list(range(1, FRAMES + 1)),
              f"pub: published {summarise(sorted(published))}, expected 1..{FRAMES}")
    run.frames(s, "sub", published, 1, FRAMES)
    run.check(bool(s.of("done")), "sub: no done event")


def scenario_P(run: Run, pub_impl: Impl, subs: list[Impl], cell: CellExpect) -> None:
    """Packets with a late joiner. The early subscriber asks for more packets than are published,
    so it stays ACTIVE (and the publisher lingers, ADP-PUB-02) until it is sent SIGTERM; the late
    joiner attaches after the publisher's `done` and must start at the last keyframe
    (PKT-JOIN-01), read the codec parameters, and every packet to the end. Without a negotiated
    ring both report NO_PACKET_RING after `attached` (ADP-SUB-03)."""
    early_se, late_se = cell.subs
    pub = run.pub(pub_impl, ["--frames", "0", *pub_packets(cell, PACKETS),
                             "--wait-subscribers", "1", "--linger-ms", "60000"], cell)
    run.ready(pub, cell)
    early = run.sub(subs[0], early_se, ["--packets", str(FOREVER), "--gop", str(GOP),
                                        "--timeout-ms", "60000"], "early")
    run.attached(early, early_se, "early")
    if not early_se.ring:
        run.finish(early, "early", 2)
        run.ended_with(early, "early", early_se.outcome)
        # A late joiner of a session without a ring gets the same; started while the publisher
        # is still held by nobody is a race, so it only runs when the ring exists.
        run.notes.append("no ring negotiated: NO_PACKET_RING checked, late join not applicable")
        pub.p.send_signal(signal.SIGTERM)
        run.finish(pub, "pub", 0)
        return
    pub.wait_event("done", FINISH_TIMEOUT)
    early.wait_match(lambda e: e.get("event") == "packet" and e.get("seq") == PACKETS,
                     EVENT_TIMEOUT, f"packet {PACKETS}")
    late = run.sub(subs[1], late_se, ["--packets", str(PACKETS), "--gop", str(GOP),
                                      "--timeout-ms", "30000"], "late")
    run.attached(late, late_se, "late")
    run.finish(late, "late", 0)
    run.packets(late, "late", last_keyframe(PACKETS, GOP), PACKETS, params_required=True)
    first = late.of("packet")[:1]
    run.check(bool(first) and first[0].get("seq") == last_keyframe(PACKETS, GOP),
              f"late: first packet {strip(first)}, expected seq {last_keyframe(PACKETS, GOP)} "
              f"(the last keyframe, PKT-JOIN-01)")
    early.p.send_signal(signal.SIGTERM)
    run.finish(early, "early", 0)  # ADP-SIG-01
    run.check(not early.of("done"), "early: printed done after SIGTERM before finishing")
    run.packets(early, "early", 1, PACKETS)
    run.finish(pub, "pub", 0)
    run.check([e.get("seq") for e in pub.of("packet")] == list(range(1, PACKETS + 1)),
              "pub: packet events are not 1..N")


def scenario_M(run: Run, pub_impl: Impl, subs: list[Impl], cell: CellExpect) -> None:
    """Several subscribers of mixed implementations (and, in v1-sub mode, mixed versions) in one
    session: every one gets every frame; those that negotiated a ring get every packet too."""
    n = len(cell.subs)
    pub = run.pub(pub_impl, ["--frames", str(FRAMES), "--bytes", str(BYTES), "--slots", "4",
                             "--wait-subscribers", str(n), "--max-subscribers", str(max(8, n)),
                             *pub_packets(cell, FRAMES)], cell)
    run.ready(pub, cell)
    procs = [run.sub(impl, se, sub_work(se, FRAMES), f"sub{i}")
             for i, (impl, se) in enumerate(zip(subs, cell.subs))]
    for i, (s, se) in enumerate(zip(procs, cell.subs)):
        run.attached(s, se, f"sub{i}")
    for i, s in enumerate(procs):
        run.finish(s, f"sub{i}", 0)
    run.finish(pub, "pub", 0)
    published = {e["seq"]: e["checksum"] for e in pub.of("frame")}
    for i, (s, se) in enumerate(zip(procs, cell.subs)):
        run.frames(s, f"sub{i}", published, 1, FRAMES)
        if se.asks_packets:
            run.packets(s, f"sub{i}", 1, FRAMES)
    run.check(len(pub.of("subscriber")) == n,
              f"pub: {len(pub.of('subscriber'))} subscriber events, expected {n}")


def scenario_C(run: Run, pub_impl: Impl, subs: list[Impl], cell: CellExpect) -> None:
    """Publisher SIGKILLed while frames flow: every subscriber ends with the error of the
    subscriber state machine's ACTIVE x EOF row (PEER_CLOSED) within PEER_DEATH_DETECT_MS (plus
    slack); then a new publisher of the same implementation reclaims the key and serves."""
    pub = run.pub(pub_impl, ["--frames", str(FOREVER), "--bytes", str(BYTES), "--slots", "4",
                             "--wait-subscribers", str(len(cell.subs))], cell)
    run.ready(pub, cell)
    procs = [run.sub(impl, se, ["--frames", str(FOREVER), "--timeout-ms", "30000"], f"sub{i}")
             for i, (impl, se) in enumerate(zip(subs, cell.subs))]
    for i, (s, se) in enumerate(zip(procs, cell.subs)):
        run.attached(s, se, f"sub{i}")
    for s in procs:
        s.wait_event("frame", EVENT_TIMEOUT)
    t0 = time.monotonic()
    os.kill(pub.p.pid, signal.SIGKILL)
    bound = run.twin.constants["PEER_DEATH_DETECT_MS"] + DEATH_SLACK_MS
    for i, s in enumerate(procs):
        run.finish(s, f"sub{i}", 2, timeout=bound / 1000 + 10)
        run.ended_with(s, f"sub{i}", cell.crash_error)
    took = (time.monotonic() - t0) * 1000
    run.check(took < bound, f"subscribers took {took:.0f} ms to report the death, bound "
                            f"{bound} ms (PEER_DEATH_DETECT_MS + {DEATH_SLACK_MS})")
    run.notes.append(f"death reported in {took:.0f} ms")
    pub.finish(timeout=10)
    again = run.pub(pub_impl, ["--frames", "3", "--bytes", str(BYTES), "--wait-subscribers", "1"],
                    cell, label="pub2")
    run.ready(again, cell)
    se = cell.subs[0]
    s = run.sub(subs[0], se, ["--frames", "3", "--timeout-ms", "30000"], "sub-after")
    run.attached(s, se, "sub-after")
    run.finish(s, "sub-after", 0)
    run.finish(again, "pub2", 0)
    run.frames(s, "sub-after", {e["seq"]: e["checksum"] for e in again.of("frame")}, 1, 3)


def scenario_K(run: Run, pub_impl: Impl, subs: list[Impl], cell: CellExpect) -> None:
    """A subscriber SIGKILLed mid-stream: the publisher sees it leave (the publisher state
    machine's ACTIVE x EOF row: `detached` with its error, OK, as the reason; not an eviction)
    and publishes to the end; the other subscriber gets every frame. The victim holds each frame
    20 ms, so it dies mid-stream."""
    (v_se, s_se), (v_impl, s_impl) = cell.subs, subs
    pub = run.pub(pub_impl, ["--frames", str(FRAMES), "--bytes", str(BYTES), "--slots", "4",
                             "--wait-subscribers", "2"], cell)
    run.ready(pub, cell)
    victim = run.sub(v_impl, v_se, ["--frames", str(FRAMES), "--hold-ms", "20",
                                    "--timeout-ms", "30000"], "victim")
    survivor = run.sub(s_impl, s_se, ["--frames", str(FRAMES), "--timeout-ms", "30000"],
                       "survivor")
    att = run.attached(victim, v_se, "victim")
    run.attached(survivor, s_se, "survivor")
    victim.wait_event("frame", EVENT_TIMEOUT)
    os.kill(victim.p.pid, signal.SIGKILL)
    victim.finish(timeout=10)
    run.finish(survivor, "survivor", 0)
    run.finish(pub, "pub", 0)
    published = {e["seq"]: e["checksum"] for e in pub.of("frame")}
    run.check(sorted(published) == list(range(1, FRAMES + 1)),
              f"pub: published {summarise(sorted(published))}, expected 1..{FRAMES}")
    run.frames(survivor, "survivor", published, 1, FRAMES)
    left = [e for e in pub.events if e.get("event") in ("detached", "evicted")
            and e.get("index") == att.get("index")]
    run.check([(e["event"], e.get("reason")) for e in left] ==
              [(cell.victim_event, cell.victim_reason)],
              f"pub: events for the victim {strip(left)}, expected one {cell.victim_event!r} "
              f"with reason {cell.victim_reason!r} (publisher state machine ACTIVE x EOF; "
              f"ADP-FMT-01)")


def scenario_E(run: Run, pub_impl: Impl, subs: list[Impl], cell: CellExpect) -> None:
    """A subscriber stops releasing (SIGSTOP while it holds a frame, 10 ms holds so it is stopped
    mid-stream): the publisher evicts it after the ACK timeout (ACK-EVICT-01, the state machine's
    ACTIVE x ACK_TIMEOUT row) and carries on; the other subscriber gets every frame; resumed
    (SIGCONT) while the publisher is still up, the evicted subscriber reports EVICTED."""
    (slow_se, good_se), (slow_impl, good_impl) = cell.subs, subs
    ack = ["--ack-timeout-ms", str(cell.ack_timeout_ms)] if cell.ack_timeout_ms != int(
        run.twin.constants["DEFAULT_ACK_TIMEOUT_MS"]) else []
    # The publisher publishes until SIGTERM, so it is still up when the evicted subscriber
    # resumes: its ERROR(EVICTED) is then the only news it can get. (A publisher that had
    # finished and shut down would make PEER_CLOSED an equally legitimate report.)
    pub = run.pub(pub_impl, ["--frames", str(FOREVER), "--bytes", str(BYTES), "--slots", "2",
                             "--wait-subscribers", "2", *ack], cell)
    run.ready(pub, cell)
    slow = run.sub(slow_impl, slow_se, ["--frames", str(FRAMES), "--hold-ms", "10",
                                        "--timeout-ms", "30000"], "slow")
    good = run.sub(good_impl, good_se, ["--frames", str(FRAMES), "--timeout-ms", "30000"], "good")
    att = run.attached(slow, slow_se, "slow")
    run.attached(good, good_se, "good")
    slow.wait_event("frame", EVENT_TIMEOUT)
    os.kill(slow.p.pid, signal.SIGSTOP)
    try:
        ev = pub.wait_match(lambda e: e.get("event") in ("evicted", "detached")
                            and e.get("index") == att.get("index"),
                            cell.ack_timeout_ms / 1000 + EVENT_TIMEOUT, "the slow one's eviction")
    finally:
        os.kill(slow.p.pid, signal.SIGCONT)
    run.check((ev.get("event"), ev.get("reason")) == (cell.victim_event, cell.victim_reason),
              f"pub: {strip([ev])} for the stopped subscriber, expected {cell.victim_event} "
              f"reason {cell.victim_reason}")
    run.finish(slow, "slow", 2)
    run.ended_with(slow, "slow", cell.victim_error)
    # Not too early: the frame it never released is at least the last one it printed before
    # being stopped, and the publisher starts waiting for that frame's ACK only after it
    # printed its own `frame` event for it; the eviction comes an ACK timeout later at least.
    # (rx times of one pipe reader; 20% slack for its latency. slow's events are all read now.)
    early = [e for e in slow.events if e.get("event") == "frame" and e["_rx_ns"] < ev["_rx_ns"]]
    committed = {e.get("seq"): e for e in pub.events if e.get("event") == "frame"}
    if early and early[-1].get("seq") in committed:
        took = (ev["_rx_ns"] - committed[early[-1]["seq"]]["_rx_ns"]) / 1e6
        run.check(took >= cell.ack_timeout_ms * 0.8,
                  f"evicted {took:.0f} ms after frame {early[-1]['seq']} was committed, before "
                  f"the {cell.ack_timeout_ms} ms ACK timeout (ACK-EVICT-01)")
        run.notes.append(f"evicted {took:.0f} ms after committing frame {early[-1]['seq']}, the "
                         f"last it read (ACK timeout {cell.ack_timeout_ms} ms)")
    run.finish(good, "good", 0)
    pub.p.send_signal(signal.SIGTERM)
    run.finish(pub, "pub", 0)  # ADP-SIG-01
    published = {e["seq"]: e["checksum"] for e in pub.of("frame")}
    run.frames(good, "good", published, 1, FRAMES)


SCENARIO_RUNNERS = {"F": scenario_F, "P": scenario_P, "M": scenario_M, "C": scenario_C,
                    "K": scenario_K, "E": scenario_E}


def run_cell(twin: Twin, socket_dir: Path, kind: str, scenario: str, pub_impl: Impl,
             subs: list[Impl], cell: CellExpect) -> Result:
    """Runs one applicable cell and judges it; never raises for an implementation's failure."""
    run = Run(twin, socket_dir, kind)
    t0 = time.monotonic()
    try:
        if any(se.outcome == "VERSION_MISMATCH" for se in cell.subs):
            refusal(run, pub_impl, subs, cell)
        else:
            SCENARIO_RUNNERS[scenario](run, pub_impl, subs, cell)
    except (TimeoutError, EOFError, OSError) as e:
        run.failures.append(f"{type(e).__name__}: {e}")
    finally:
        run.kill_all()
    unsupported = [label for label, p in run.procs if p.p.returncode == 77]
    if unsupported:
        # ADP-KIND-01: an adapter asked for what it does not support exits 77: N/A, not FAIL.
        return Result("na", notes=run.failures, seconds=time.monotonic() - t0,
                      reason=f"{', '.join(unsupported)} reported UNSUPPORTED (exit 77)")
    if not run.failures:
        run.leftovers()
    run.sweep()
    status = "fail" if run.failures else "pass"
    return Result(status, run.failures, run.notes + cell.notes,
                  run.evidence() if run.failures else "", time.monotonic() - t0)
