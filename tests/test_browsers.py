"""Browsers end to end, as a user runs them: `yama-run firefox-esr ...` and
`yama-run chromium ...` pick their bundled profiles by program name, every
protection on, take a headless screenshot of a page, and nothing they need is
denied. Firefox's PR_SET_PTRACER calls (its crash reporter's helpers) are
answered by yama-run (this kernel has no Yama and would say EINVAL)."""
from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from conftest import YAMA_RUN, yama_run
from test_profiles import BUNDLED, needs_path_modules

pytestmark = needs_path_modules
BROWSER_TIMEOUT = 180        # browsers start slowly on a loaded 2-vCPU machine
RED = (0xCC, 0x33, 0x33)

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


@pytest.fixture
def page(tmp_path) -> str:
    html = tmp_path / "page.html"
    html.write_text('<html><body style="margin:0;background:#cc3333">'
                    '<h1>yama-run</h1></body></html>')
    return html.as_uri()


@pytest.fixture
def home(tmp_path) -> dict:
    """A fresh HOME, so the run touches nothing of the machine's user."""
    home = tmp_path / "home"
    home.mkdir()
    return dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"))


def first_row(png: bytes) -> list[tuple[int, ...]]:
    """The pixels of the first row of an 8-bit RGB or RGBA PNG."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, colour = header
    assert width > 0 and height > 0 and depth == 8 and colour in (2, 6)
    channels = 3 if colour == 2 else 4
    raw = zlib.decompressobj().decompress(idat, 1 + width * channels)
    kind, data = raw[0], bytearray(raw[1:1 + width * channels])
    for i in range(len(data)):          # undo the filter; the row above is zeros
        left = data[i - channels] if i >= channels else 0
        data[i] = (data[i] + {0: 0, 1: left, 2: 0, 3: left // 2, 4: left}[kind]) & 0xFF
    return [tuple(data[i:i + 3]) for i in range(0, len(data), channels)]


def assert_screenshot(path: Path) -> None:
    png = path.read_bytes()
    assert len(png) > 0
    row = first_row(png)
    assert row[-1] == RED, f"the page was not rendered: top-right pixel {row[-1]}"


def denials(log: Path) -> list[dict]:
    """The audit log's denials (it also records emulated PR_SET_PTRACER calls)."""
    records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return [r for r in records if r["action"] in ("deny", "would-deny")]


def profile_line(stderr: str) -> str:
    return next(line for line in stderr.splitlines() if line.startswith("yama-run: profile "))


def firefox_args(tmp_path: Path, page: str, shot: Path) -> list[str]:
    profile_dir = tmp_path / "ff-profile"
    profile_dir.mkdir(exist_ok=True)
    return ["--headless", "--no-remote", "--profile", str(profile_dir),
            "--screenshot", str(shot), page]


@pytest.mark.skipif(shutil.which("firefox-esr") is None, reason="needs firefox-esr")
def test_firefox_screenshot_under_its_bundled_profile(tmp_path, page, home):
    shot, log = tmp_path / "out.png", tmp_path / "audit.jsonl"
    r = yama_run("-v", "--audit-log", log, "firefox-esr", *firefox_args(tmp_path, page, shot),
                 env=home, timeout=BROWSER_TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert (f"profile firefox ({BUNDLED / 'firefox.toml'}, bundled; firefox-esr is an alias "
            f"of firefox") in profile_line(r.stderr)
    assert "ptrace(scope=1) -> hardlinks(protected=1) -> symlinks(" in profile_line(r.stderr)
    assert_screenshot(shot)
    assert denials(log) == []


@pytest.mark.skipif(shutil.which("firefox-esr") is None, reason="needs firefox-esr")
@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace to watch prctl")
@pytest.mark.skipif(os.path.exists("/proc/sys/kernel/yama"),
                    reason="the kernel has Yama: PR_SET_PTRACER is not emulated")
def test_firefox_pr_set_ptracer_calls_are_emulated_not_denied(tmp_path, page, home):
    """strace, outside the sandbox, sees what each call returned: 0 from
    yama-run's emulation (the kernel alone says EINVAL here), and no denial
    is recorded for them."""
    shot, log, trace = tmp_path / "out.png", tmp_path / "audit.jsonl", tmp_path / "strace"
    r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=prctl", "-e", "signal=none",
                        "-o", str(trace), *YAMA_RUN, "--audit-log", str(log), "firefox-esr",
                        *firefox_args(tmp_path, page, shot)],
                       capture_output=True, text=True, env=home, timeout=BROWSER_TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert_screenshot(shot)
    results = prctl_results(trace.read_text(), "PR_SET_PTRACER")
    assert len(results) >= 2, "Firefox made no PR_SET_PTRACER call"
    assert set(results) == {"0"}, results
    assert [d for d in denials(log) if d["hook"] == "task_prctl"] == []
    emulated = [r for r in map(json.loads, log.read_text().splitlines())
                if r["action"] == "emulated" and r["hook"] == "task_prctl"]
    assert len(emulated) == len(results), emulated       # the audit log shows each one
    assert {r["comm"] for r in emulated} & {"firefox-esr", "firefox"}, emulated


CAPLESS_LOOP = ("import os, time\n"
                "end = time.time() + 3\n"
                "while time.time() < end:\n"
                "    os.close(os.open('/etc/hostname', os.O_RDONLY))\n")


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv")
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop capabilities with setpriv")
def test_reopen_through_proc_self_fd_while_a_capability_less_process_runs(tmp_path, home):
    """What Firefox does with its IPC memfds, in fresh processes, while a
    content-process-like caller without capabilities keeps the supervisor busy.
    Natively every reopen works."""
    loop = tmp_path / "capless.py"
    loop.write_text(CAPLESS_LOOP)
    shell = (f"setpriv --inh-caps=-all --bounding-set=-all {sys.executable} {loop} & "
             "sleep 0.3; bad=0; for i in $(seq 50); do "
             "cat /proc/self/fd/3 3</etc/hostname >/dev/null 2>&1 || bad=$((bad+1)); done; "
             "echo failed $bad; wait")
    assert subprocess.run(["sh", "-c", shell], capture_output=True, text=True,
                          env=home).stdout == "failed 0\n"
    r = yama_run("--profile", "firefox", "--", "sh", "-c", shell, env=home)
    assert r.stdout == "failed 0\n", r.stderr


def prctl_results(strace_out: str, option: str) -> list[str]:
    """Return values of the prctl(option, ...) calls in strace -f output,
    joining calls that strace printed as unfinished and resumed."""
    pending, results = set(), []
    for line in strace_out.splitlines():
        pid = line.split(None, 1)[0]
        if f"prctl({option}" in line:
            if "<unfinished ...>" in line:
                pending.add(pid)
                continue
            results.append(re.search(r"= (-?\d+)", line).group(1))
        elif "<... prctl resumed>" in line and pid in pending:
            pending.discard(pid)
            results.append(re.search(r"= (-?\d+)", line).group(1))
    return results


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs chromium")
def test_chromium_screenshot_under_its_bundled_profile(tmp_path, page, home):
    shot, log = tmp_path / "out.png", tmp_path / "audit.jsonl"
    r = yama_run("-v", "--audit-log", log, "chromium", *CHROMIUM_FLAGS,
                 f"--user-data-dir={tmp_path / 'chromium-data'}", f"--screenshot={shot}", page,
                 env=home, timeout=BROWSER_TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert (f"profile chromium ({BUNDLED / 'chromium.toml'}, bundled; named chromium; "
            f"includes {BUNDLED / 'strict.toml'})") in profile_line(r.stderr)
    assert_screenshot(shot)
    assert denials(log) == []


@pytest.mark.skipif(shutil.which("firefox-esr") is None, reason="needs firefox-esr")
def test_firefox_crash_reporter_writes_its_minidump_under_scope_1(tmp_path, home):
    """about:crashparent crashes Firefox's parent on purpose. Its crash handler
    (Breakpad) names a helper it clones with PR_SET_PTRACER, and the helper
    reads the crashed process: the exception scope 1 keeps. Under scope 3 the
    same crash leaves no minidump."""
    home = dict(home, MOZ_CRASHREPORTER_NO_REPORT="1")      # no report dialog
    dumps = {}
    for scope in (1, 3):
        profile_dir = tmp_path / f"ff-profile-{scope}"
        profile_dir.mkdir()
        yama_run("--set", f"ptrace.scope={scope}", "firefox-esr", "--headless", "--no-remote",
                 "--profile", profile_dir, "--screenshot", tmp_path / "crash.png",
                 "about:crashparent", env=home, timeout=BROWSER_TIMEOUT)
        dumps[scope] = sorted(p.suffix for p in (profile_dir / "minidumps").glob("*"))
    assert dumps[1] == [".dmp", ".extra"], dumps
    assert dumps[3] == [".extra"], dumps
