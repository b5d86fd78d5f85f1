"""Helpers for the multi-process interop tests: run the adapter programs, read their JSON lines.

Readiness is never guessed with sleeps: a reader thread parses every stdout line of a child into
a queue, and tests wait (with a bounded timeout) for the event they need, e.g. the publisher's
{"event":"ready"} before starting subscribers.

Every event gets "_rx_ns", the CLOCK_MONOTONIC time (time.monotonic_ns) at which the test read it.
Lines on stderr that are fault-point markers of reference/src/fault.h ({"event":"fault",...})
join the same event stream, so a test can wait for a process to reach its fault point.

A long run (the chaos soak) passes sink=callable instead: each event goes to sink(proc, ev) on the
reader thread as it is read, and sink(proc, None) once both streams ended; nothing is queued or
kept, so memory stays flat however many events a child prints.
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path


def build_dir() -> Path:
    return Path(os.environ.get("CUFRAMES_BUILD_DIR", "build/default")).resolve()


def adapter(name: str) -> Path:
    """Path of an adapter program (cuframes-pub / cuframes-sub) in the build tree."""
    for candidate in (build_dir() / "reference" / name, build_dir() / name):
        if candidate.exists():
            return candidate
    raise FileNotFoundError(
        f"{name} not found under {build_dir()} (set CUFRAMES_BUILD_DIR to the CMake build dir)")


class Proc:
    """A child process whose stdout JSON lines are collected as they arrive."""

    def __init__(self, argv: list[str], env: dict[str, str], stdin: bool = False,
                 prefix: list[str] | None = None, sink=None):
        """stdin=True gives the child a pipe on stdin (see send_line); prefix runs the program
        through a wrapper (e.g. setpriv to change uid); sink: see the module comment (the
        wait_* and finish methods then see no events)."""
        self.argv = argv
        self._sink = sink
        self.p = subprocess.Popen([*(prefix or []), *argv], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE,
                                  stdin=subprocess.PIPE if stdin else None,
                                  env=env, text=True, bufsize=1)
        self.events: list[dict] = []
        self._q: queue.Queue = queue.Queue()
        self._open_streams = 2
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._stderr = ""
        self._err_lines: list[str] = []
        self._err_reader = threading.Thread(target=self._read_err, daemon=True)
        self._err_reader.start()

    def _stream_done(self) -> None:
        with self._lock:
            self._open_streams -= 1
            last = self._open_streams == 0
        if last:
            if self._sink is not None:
                self._sink(self, None)
            else:
                self._q.put(None)  # EOF of both streams

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                ev = {"event": "unparsed", "line": line}
            if isinstance(ev, dict):
                ev["_rx_ns"] = time.monotonic_ns()
            self._put(ev)
        self._stream_done()

    def _put(self, ev) -> None:
        if self._sink is not None:
            self._sink(self, ev)
        else:
            self._q.put(ev)

    def _read_err(self) -> None:
        assert self.p.stderr is not None
        for line in self.p.stderr:
            self._err_lines.append(line)
            if line.startswith('{"event":"fault"'):
                try:
                    ev = json.loads(line)
                except json.JSONDecodeError:
                    continue
                ev["_rx_ns"] = time.monotonic_ns()
                self._put(ev)
        self._stderr = "".join(self._err_lines)
        self._stream_done()

    def wait_event(self, name: str, timeout: float = 10.0) -> dict:
        """Returns the next event called `name`; fails after `timeout` s or at EOF."""
        return self._read_until(lambda ev: ev.get("event") == name, timeout, repr(name))

    def wait_match(self, pred, timeout: float = 10.0, what: str = "a matching event") -> dict:
        """Returns the first event, already read or still to come, for which pred(ev) is true;
        fails after `timeout` s or at EOF."""
        for ev in self.events:
            if pred(ev):
                return ev
        return self._read_until(pred, timeout, what)

    def _read_until(self, pred, timeout: float, what: str) -> dict:
        """Reads new events (recording each) until one satisfies pred; a bounded wait, never a
        sleep: TimeoutError after `timeout` s, EOFError when the process's output ends first."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {what} event from {self.argv[0]} within {timeout}s; "
                                   f"last events: {self.events[-3:]}")
            try:
                ev = self._q.get(timeout=left)
            except queue.Empty:
                continue
            if ev is None:
                self._q.put(None)
                raise EOFError(f"{self.argv[0]} exited (rc={self.p.poll()}) before {what}; "
                               f"last events: {self.events[-3:]}; stderr: {self.stderr[-500:]}")
            self.events.append(ev)
            if pred(ev):
                return ev
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {what} from {self.argv[0]} within {timeout}s; "
                                   f"last events: {self.events[-3:]}")
            try:
                ev = self._q.get(timeout=left)
            except queue.Empty:
                continue
            if ev is None:
                self._q.put(None)
                raise EOFError(f"{self.argv[0]} exited (rc={self.p.poll()}) before {what}; "
                               f"last events: {self.events[-3:]}; stderr: {self.stderr[-500:]}")
            self.events.append(ev)
            if pred(ev):
                return ev

    def finish(self, timeout: float = 30.0) -> int:
        """Waits for exit, drains every remaining event; returns the exit code."""
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise
        self._reader.join(timeout=5)
        while self._sink is None:
            ev = self._q.get()
            if ev is None:
                self._q.put(None)
                break
            self.events.append(ev)
        self._err_reader.join(timeout=5)
        return rc

    def of(self, name: str) -> list[dict]:
        return [e for e in self.events if e.get("event") == name]

    @property
    def stderr(self) -> str:
        return self._stderr or "".join(self._err_lines)

    def send_line(self, line: str = "") -> None:
        """Writes one line to the child's stdin (Proc(..., stdin=True))."""
        assert self.p.stdin is not None, "started without stdin=True"
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()  # SIGKILL also ends a process stopped by a "stop" fault point
        self.p.wait()
        if self.p.stdin is not None and not self.p.stdin.closed:
            try:
                self.p.stdin.close()
            except OSError:
                pass
