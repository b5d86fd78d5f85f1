"""cuframes-video's command line (issue 14 item 6): the adapters' CLI11-based parser
(reference/tools/adapter_cli.h), so --help, unknown options, missing or malformed values and
rules between options behave as in cuframes-pub and cuframes-sub: help on stdout with exit 0,
a usage error on stderr with exit 1 (the adapters' kExitUsage), before anything is opened.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("CUFRAMES_BUILD_DIR", ROOT / "build" / "default"))
TOOL = BUILD / "video" / "cuframes-video"

_REASON = None if TOOL.exists() else (
    f"{TOOL} is not built: CMake found no FFmpeg development libraries "
    "(libavformat-dev libavcodec-dev libavutil-dev pkg-config)")
if _REASON is not None:
    print(f"video CLI tests skipped: {_REASON}")
pytestmark = pytest.mark.skipif(_REASON is not None, reason=_REASON or "")


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(TOOL), *args], capture_output=True, text=True, timeout=30,
                          check=False, cwd=cwd)


def test_help_lists_the_subcommands():
    r = _run("--help")
    assert r.returncode == 0, r.stderr
    assert "publish" in r.stdout and "record" in r.stdout and r.stderr == ""


@pytest.mark.parametrize("sub,option", [("publish", "--max-packet-bytes"),
                                        ("record", "--connect-timeout-ms")])
def test_subcommand_help_lists_its_options(sub, option):
    r = _run(sub, "--help")
    assert r.returncode == 0, r.stderr
    assert option in r.stdout and "--key" in r.stdout


@pytest.mark.parametrize("args,says", [
    ((), "subcommand"),
    (("transcode",), "subcommand"),
    (("publish", "in.mp4"), "--key"),
    (("publish", "--key", "k"), "file"),
    (("publish", "--key", "k", "in.mp4", "--frobnicate"), "--frobnicate"),
    (("publish", "--key", "k", "in.mp4", "--ring-bytes"), "--ring-bytes"),
    (("publish", "--key", "k", "in.mp4", "--ring-bytes", "-5"), "-5"),
    (("publish", "--key", "k", "in.mp4", "--ring-bytes", "1024"), "1024"),
    (("publish", "--key", "k", "in.mp4", "--ring-bytes", "12288"), "power of two"),
    (("publish", "--key", "k", "in.mp4", "--ring-bytes", "4096",
      "--max-packet-bytes", "2048"), "--max-packet-bytes"),
    (("publish", "--key", "k", "in.mp4", "--speed", "0"), "'0'"),
    (("publish", "--key", "k", "in.mp4", "--speed", "fast"), "fast"),
    (("publish", "--key", "k", "in.mp4", "--max-subscribers", "65"), "65"),
    (("publish", "--key", "k", "in.mp4", "--gate-at", "3,,5"), "--gate-at"),
    (("record", "--key", "k", "out.h264", "--packets", "5", "--until-eos"), "--until-eos"),
    (("record", "--key", "k", "out.h264", "--timeout-ms", "0"), "'0'"),
    (("record", "--key", "k", "out.h264", "--timeout-ms", "99999999999999999999999"), "range"),
])
def test_usage_errors_exit_1_with_the_reason(args, says, tmp_path):
    r = _run(*args, cwd=tmp_path)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert says in r.stderr and "--help" in r.stderr, r.stderr
    assert r.stdout == ""  # no JSON event: nothing was opened or started
    assert list(tmp_path.iterdir()) == []


def test_valid_arguments_get_past_the_parser(tmp_path):
    # No publisher under this key: the tool runs and fails to connect (a peer/timeout exit,
    # reported as a JSON error event), which only happens once the command line was accepted.
    key = f"cli-test-{os.getpid()}"
    r = _run("record", "--key", key, str(tmp_path / "out.h264"), "--connect-timeout-ms", "200",
             "--timeout-ms", "500", "--progress")
    assert r.returncode in (2, 3), (r.returncode, r.stdout, r.stderr)
    assert '"event":"error"' in r.stdout and '"where":"connect"' in r.stdout
