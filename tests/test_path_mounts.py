"""Mount rules of the kernel's walk, which the supervisor's walk by hand must
apply itself: links on a `nosymfollow` mount are never followed (ELOOP, magic
/proc links included), and `openat2(RESOLVE_NO_XDEV)` refuses every mount
crossing (EXDEV), the last component's and an absolute link's jump to the
root included. Each case is made as uid 1001 natively and under yama-run
(docs/hostile.md, "Found and closed")."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import requires_root
from helpers.pathcases import MODES, Tree, result_word, run_native, run_sandboxed, with_profile

pytestmark = [requires_root,
              pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv")]

MODULES_ON = with_profile(["--set", "symlinks.protected=1"])


@pytest.fixture(scope="module")
def tree(helper):
    t = Tree("yr-mnt-", helper("path_probe"))
    top = t.top
    mounted = []
    try:
        for name, fstype, opts in (("m", "tmpfs", "mode=777"),
                                   ("n", "tmpfs", "nosymfollow,mode=755"),
                                   ("p", "proc", "nosymfollow")):
            (top / name).mkdir()
            if subprocess.run(["mount", "-t", fstype, "-o", opts, "yr-test", str(top / name)],
                              capture_output=True).returncode:
                pytest.skip(f"cannot mount {fstype} -o {opts}")
            mounted.append(top / name)
        t.file("m/f", 0o644, content="inmount\n")
        t.file("target", 0o644, content="target\n")
        t.dir("tdir", 0o755)
        t.file("tdir/target", 0o644, content="target\n")
        t.dir("d", 0o755)
        t.link("abs", "/etc/hostname")
        t.link("dl", "/etc")
        t.link("tom", "m/f")
        t.link("tomd", "m")
        t.link("n/link", str(top / "target"))
        t.link("n/dirlink", str(top / "tdir"))
        t.link("n/abslink", "/etc/hostname")
        t.file("n/plain", 0o644, content="plain\n")
        t.link("good", "n/plain")              # a link outside the mount, into it
        yield t
    finally:
        for mnt in reversed(mounted):
            subprocess.run(["umount", "-l", str(mnt)])
        t.remove()


XDEV = [   # (id, case, the native answer)
    ("mountpoint last", "openat2 CWD m RDONLY NO_XDEV", "EXDEV"),
    ("trailing link to a mountpoint", "openat2 CWD tomd RDONLY NO_XDEV", "EXDEV"),
    ("trailing link to a mountpoint, BENEATH", "openat2 D:. tomd RDONLY NO_XDEV|BENEATH", "EXDEV"),
    ("absolute trailing link", "openat2 CWD abs RDONLY NO_XDEV", "EXDEV"),
    ("absolute link on the way", "openat2 CWD dl/hostname RDONLY NO_XDEV", "EXDEV"),
    ("O_TMPFILE through a link", "openat2 CWD tomd RDWR|TMPFILE NO_XDEV 0600", "EXDEV"),
    ("link into a mount", "openat2 CWD tom RDONLY NO_XDEV", "EXDEV"),
    ("trailing magic link", "openat2 D:/proc self/cwd RDONLY NO_XDEV", "EXDEV"),
    ("magic link on the way", "openat2 D:/proc self/cwd/target RDONLY NO_XDEV", "EXDEV"),
    ("magic link in a scope", "openat2 D:/proc self/cwd RDONLY BENEATH", "EXDEV"),
    ("magic link on the way in a scope", "openat2 D:/proc self/cwd/target RDONLY IN_ROOT",
     "EXDEV"),
    ("magic link, NO_MAGICLINKS first", "openat2 D:/proc self/cwd RDONLY BENEATH|NO_MAGICLINKS",
     "ELOOP"),
    # controls: the same objects without the flag, or without a crossing
    ("control: mountpoint", "openat2 CWD m RDONLY 0", "ok"),
    ("control: link to a mountpoint", "openat2 CWD tomd RDONLY 0", "ok"),
    ("control: inside the mount", "openat2 D:m f RDONLY NO_XDEV", "ok"),
    ("control: O_TMPFILE", "openat2 CWD tomd RDWR|TMPFILE 0 0600", "ok"),
    ("control: /proc/self", "openat2 D:/proc self/status RDONLY NO_XDEV", "ok"),
    # the root set by '..' or an absolute path: the jump is judged by mount
    ("absolute link after ..", "openat2 CWD d/../abs RDONLY NO_XDEV", None),
    ("absolute link, absolute path", "openat2 CWD {top}/abs RDONLY NO_XDEV", None),
]

NOSYM = [
    ("trailing link", "open n/link RDONLY", "ELOOP"),
    ("link on the way", "open n/dirlink/target RDONLY", "ELOOP"),
    ("absolute link", "open n/abslink RDONLY", "ELOOP"),
    ("stat through it", "stat n/link", "ELOOP"),
    ("chdir through it", "chdir n/dirlink", "ELOOP"),
    ("/proc/self", "open p/self/status RDONLY", "ELOOP"),
    ("/proc/thread-self", "open p/thread-self/status RDONLY", "ELOOP"),
    ("trailing magic link", "open p/1/cwd RDONLY", "ELOOP"),
    ("magic link on the way", "open p/1/root/etc/hostname RDONLY", "ELOOP"),
    ("control: lstat", "lstat n/link", "ok"),
    ("control: readlink", "readlink n/link", "ok"),
    ("control: a link elsewhere into it", "open good RDONLY", "ok"),
    ("control: a file of the mount", "open n/plain RDONLY", "ok"),
    ("control: /proc file", "stat p/uptime", "ok"),  # (opens: only our own /proc is proved)
]


def _cases(table, tree):
    return [(f"c{i}", line.format(top=tree.top)) for i, (_, line, _) in enumerate(table)]


_RUNS: dict = {}


def _results(tree, sysctl, table, how):
    key = (id(table), how)
    if key not in _RUNS:
        sysctl("fs.protected_symlinks", 0)
        if how == "native":
            _RUNS[key] = run_native(tree, _cases(table, tree), "1001")
        else:
            got, proc = run_sandboxed(tree, _cases(table, tree), "1001", MODULES_ON, how)
            assert got, f"no results (rc {proc.returncode}): {proc.stderr[-2000:]}"
            _RUNS[key] = got
    return _RUNS[key]


def _check(tree, sysctl, table, i, mode):
    cid, want = f"c{i}", table[i][2]
    native = result_word(_results(tree, sysctl, table, "native").get(cid, "<none>"))
    if want is not None:
        assert native == want, f"native control: {table[i][1]} gave {native}"
    got = result_word(_results(tree, sysctl, table, mode).get(cid, "<none>"))
    assert got == native, f"{table[i][1]}: native {native}, yama-run {got}"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("i", range(len(XDEV)), ids=[c[0] for c in XDEV])
def test_resolve_no_xdev(tree, sysctl, i, mode):
    _check(tree, sysctl, XDEV, i, mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("i", range(len(NOSYM)), ids=[c[0] for c in NOSYM])
def test_nosymfollow(tree, sysctl, i, mode):
    _check(tree, sysctl, NOSYM, i, mode)
