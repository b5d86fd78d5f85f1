"""pytest fixtures of the interop suite: a private socket dir, unique keys, leak checks."""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from cuframes_procs import Proc, adapter

_counter = itertools.count()


class Env:
    def __init__(self, socket_dir: Path):
        self.socket_dir = socket_dir
        self.env = dict(os.environ, CUFRAMES_SOCKET_DIR=str(socket_dir))
        self.env.pop("CUFRAMES_MAX_PROTO", None)
        self.procs: list[Proc] = []
        self.keys: list[str] = []

    def key(self) -> str:
        k = f"it{os.getpid()}-{next(_counter)}"
        self.keys.append(k)
        return k

    def pub(self, key: str, *args: str, env: dict[str, str] | None = None, **kw) -> Proc:
        """Starts cuframes-pub; **kw goes to Proc (stdin=True, prefix=[...])."""
        p = Proc([str(adapter("cuframes-pub")), "--key", key, *args], env or self.env, **kw)
        self.procs.append(p)
        return p

    def sub(self, key: str, *args: str, env: dict[str, str] | None = None, **kw) -> Proc:
        """Starts cuframes-sub; **kw goes to Proc (stdin=True, prefix=[...])."""
        p = Proc([str(adapter("cuframes-sub")), "--key", key, *args], env or self.env, **kw)
        self.procs.append(p)
        return p

    def leftovers(self) -> list[str]:
        found = [str(p) for p in self.socket_dir.iterdir()]
        for k in self.keys:
            for name in (f"cuframes-{k}", f"cuframes-{k}-packets"):
                if (Path("/dev/shm") / name).exists():
                    found.append(f"/dev/shm/{name}")
        return found


@pytest.fixture
def cf(tmp_path: Path):
    try:
        adapter("cuframes-pub")
        adapter("cuframes-sub")
    except FileNotFoundError as e:
        pytest.fail(str(e))
    sock = tmp_path / "sock"
    sock.mkdir()
    e = Env(sock)
    yield e
    for p in e.procs:
        p.kill()
    # Stale files would only be legitimate after a publisher was killed on purpose; such tests
    # clean up through a new publisher (stale reclaim) and check leftovers themselves.


def pytest_configure(config):
    config.addinivalue_line("markers", "cuda: needs the CUDA kind and an NVIDIA GPU (skips otherwise)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the item (item.rep_setup / rep_call), so that fixtures can
    tell at teardown whether the test failed (e.g. to dump the processes' events)."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
