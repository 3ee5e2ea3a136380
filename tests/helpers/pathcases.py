"""Shared by the path tests (symlinks, sticky, hazards): build a scenario tree,
run a batch of path_probe cases once natively and once under yama-run as a
given identity, and compare the result lines.

A batch is a list of (id, "OP ARG...") pairs; path_probe prints "ID RESULT
[DETAIL]" per case (see tests/helpers/path_probe.c). Ids starting with "~" are
clean-up steps whose results are not compared."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from conftest import yama_run

IDENTITIES = {
    "1001": ["setpriv", "--reuid=1001", "--regid=1001", "--clear-groups"],
    "1002": ["setpriv", "--reuid=1002", "--regid=1002", "--clear-groups"],
    "root": [],
}
UIDS = {"1001": 1001, "1002": 1002, "root": 0}
MODES = ("fast", "nofast")      # the C fast path, and YAMA_RUN_NO_FAST_PATH=1 (Python)


def env_for(mode: str) -> dict:
    env = dict(os.environ)
    env.pop("YAMA_RUN_NO_FAST_PATH", None)
    if mode == "nofast":
        env["YAMA_RUN_NO_FAST_PATH"] = "1"
    return env


class Tree:
    """A scratch tree under /tmp (not pytest's 0700 dirs: setpriv'd callers
    must reach it), with the probe copied in."""

    def __init__(self, prefix: str, probe: str):
        self.top = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        self.top.chmod(0o755)
        self.probe = str(self.top / "path_probe")
        shutil.copy(probe, self.probe)
        os.chmod(self.probe, 0o755)

    def dir(self, name, mode, uid=0, gid=0):
        p = self.top / name
        p.mkdir()
        os.chown(p, uid, gid)
        p.chmod(mode)          # after chown: chown clears nothing on dirs, but be explicit
        return p

    def file(self, name, mode=0o666, uid=0, gid=0, content=""):
        p = self.top / name
        p.write_text(content)
        os.chown(p, uid, gid)
        p.chmod(mode)
        return p

    def fifo(self, name, mode=0o666, uid=0, gid=0):
        p = self.top / name
        os.mkfifo(p)
        os.chown(p, uid, gid)
        p.chmod(mode)
        return p

    def link(self, name, target, uid=0, gid=None):
        p = self.top / name
        os.symlink(target, p)
        os.lchown(p, uid, uid if gid is None else gid)
        return p

    def prime_atimes(self):
        """Read every regular file and symlink once, so that relatime leaves
        their atime alone from now on (the stat buffers of two runs are
        compared)."""
        for root, _, files in os.walk(self.top):
            for f in files:
                p = os.path.join(root, f)
                if os.path.islink(p):
                    os.readlink(p)          # a followed or read link's atime too
                elif os.path.isfile(p):
                    with open(p, "rb") as fh:
                        fh.read(1)

    def remove(self):
        shutil.rmtree(self.top, ignore_errors=True)


def batch_text(cases) -> str:
    return "".join(f"{cid} {line}\n" for cid, line in cases)


def parse(stdout: str) -> dict:
    out = {}
    for line in stdout.splitlines():
        cid, _, result = line.partition(" ")
        if cid and not cid.startswith("~"):
            out[cid] = result
    return out


def run_native(tree: Tree, cases, ident: str, umask: str | None = None) -> dict:
    cmd = [*IDENTITIES[ident], tree.probe, *(["-u", umask] if umask else [])]
    proc = subprocess.run(cmd, input=batch_text(cases), cwd=tree.top, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, f"probe failed natively: {proc.stderr}"
    return parse(proc.stdout)


def run_sandboxed(tree: Tree, cases, ident: str, options=(), mode="fast",
                  umask: str | None = None, timeout=180):
    """-> (results, CompletedProcess)"""
    cmd = [*IDENTITIES[ident], tree.probe, *(["-u", umask] if umask else [])]
    proc = yama_run(*with_profile(options), "--", *cmd, input=batch_text(cases), cwd=tree.top,
                    env=env_for(mode), timeout=timeout)
    return parse(proc.stdout), proc


def without_flags(result: str) -> str:
    """A result line without the descriptor's F_GETFL value (compared on its own
    in test_path_hazards.py, so that one flag defect does not hide the rest)."""
    return re.sub(r" fl=\S+", "", result)


def differences(cases, native: dict, sandboxed: dict, flags=True) -> list[str]:
    """Human-readable lines for every case whose results differ (flags=False:
    ignoring F_GETFL)."""
    out = []
    for cid, line in cases:
        if cid.startswith("~"):
            continue
        want, got = native.get(cid, "<none>"), sandboxed.get(cid, "<none>")
        if not flags:
            want, got = without_flags(want), without_flags(got)
        if want != got:
            out.append(f"{line!r}: native {want[:120]!r}, yama-run {got[:120]!r}")
    return out


def result_word(result: str) -> str:
    """"ok" or the errno name."""
    return result.split(" ", 1)[0]


REPO = Path(__file__).resolve().parents[2]
# The repository's own default profile, by path: `sandbox.profiles` of an
# editable install may point at another checkout.
DEFAULT_PROFILE = str(REPO / "profiles" / "default.toml")


def with_profile(options) -> tuple:
    """The repository's default profile unless the options name one."""
    if "--profile" in options or "--no-profile" in options:
        return tuple(options)
    return ("--profile", DEFAULT_PROFILE, *options)
