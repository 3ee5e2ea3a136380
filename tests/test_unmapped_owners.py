"""The fs.protected rules where an owner reads as the overflow id (65534).

An id the supervisor cannot map (yama-run started in a user namespace of
its own: the host's ids; an object through an idmapped mount whose map
lacks its owner) reads as 65534 to fstat, so two strangers read equal,
where the kernel's may_follow_link, may_create_in_sticky and may_linkat
match nothing (vfsuid_valid, capable_wrt_inode_uidgid). Each case runs the
same probe natively with the kernel's knobs at 1 and under yama-run (as uid
1001) with them at 0, and compares (review 11-E, findings 1 and 2)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from as_user import AS_USER, SYSTEM_PYTHON, as_user  # noqa: F401  (fixture)
from conftest import public_copy, requires_root

KNOBS = ("fs.protected_symlinks", "fs.protected_hardlinks", "fs.protected_fifos",
         "fs.protected_regular")

pytestmark = [requires_root,
              pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv"),
              pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare")]

# argv: the directory holding sticky/ and own/. Prints "case OK" or "case ERRNO".
PROBE = r"""
import errno, os, sys
d = sys.argv[1]
def t(case, act):
    try:
        act()
        print(case, "OK")
    except OSError as e:
        print(case, errno.errorcode[e.errno])
def create(name, flags):
    os.close(os.open(f"{d}/sticky/{name}", os.O_CREAT | flags, 0o644))
def link(name, new):
    if os.path.lexists(f"{d}/own/{new}"):
        os.unlink(f"{d}/own/{new}")
    os.link(f"{d}/sticky/{name}", f"{d}/own/{new}")
for who in ("stranger", "own"):
    t(f"{who} follow", lambda: open(f"{d}/sticky/{who}_link").read())
    t(f"{who} regular", lambda: create(f"{who}_reg", os.O_RDONLY))
    t(f"{who} fifo", lambda: create(f"{who}_fifo", os.O_RDONLY | os.O_NONBLOCK))
    t(f"{who} link", lambda: link(f"{who}_file", f"{who}_hl"))
"""

OWN_ALLOWED = {"own follow": "OK", "own regular": "OK", "own fifo": "OK", "own link": "OK"}


def populate(sticky: Path, stranger: int, own: int) -> None:
    """The stranger's and the caller's link (to ../target), 0666 file, 0666
    FIFO and 0644 file in sticky."""
    for who, uid in (("stranger", stranger), ("own", own)):
        os.symlink("../target", sticky / f"{who}_link")
        (sticky / f"{who}_reg").write_text("r")
        os.mkfifo(sticky / f"{who}_fifo")
        (sticky / f"{who}_file").write_text("f")
        for name, mode in (("reg", 0o666), ("fifo", 0o666), ("file", 0o644)):
            os.chmod(sticky / f"{who}_{name}", mode)
        for name in ("link", "reg", "fifo", "file"):
            os.lchown(sticky / f"{who}_{name}", uid, uid)


def make_tree(top: Path, dir_uid: int, stranger: int, own: int) -> None:
    (top / "target").write_text("SECRET\n")
    (top / "sticky").mkdir()
    os.chown(top / "sticky", dir_uid, dir_uid)
    (top / "sticky").chmod(0o1777)
    (top / "own").mkdir()
    os.chown(top / "own", own, own)
    populate(top / "sticky", stranger, own)


def results(out: subprocess.CompletedProcess) -> dict[str, str]:
    lines = [line.rsplit(" ", 1) for line in out.stdout.splitlines() if line]
    return {case: verdict for case, verdict in lines}


@pytest.fixture
def probe():
    where = tempfile.mkdtemp(prefix="yr-unmapped-probe-")
    os.chmod(where, 0o755)
    path = Path(where) / "probe.py"
    path.write_text(PROBE)
    path.chmod(0o644)
    yield str(path)
    shutil.rmtree(where, ignore_errors=True)


@pytest.fixture
def scratch():
    top = Path(tempfile.mkdtemp(prefix="yr-unmapped-", dir="/tmp"))
    top.chmod(0o755)
    yield top
    for mnt in ("idm", "src"):
        if os.path.ismount(top / mnt):
            subprocess.run(["umount", str(top / mnt)], check=False)
    shutil.rmtree(top, ignore_errors=True)


def knobs(sysctl, value: int) -> None:
    for knob in KNOBS:
        sysctl(knob, value)


@pytest.mark.parametrize("profile", ["default", "strict"])
def test_yama_run_in_a_user_namespace_refuses_strangers_that_read_alike(
        as_user, sysctl, probe, scratch, profile):
    """yama-run started by uid 1001 in `unshare -Ur`: root's sticky directory
    and uid 1002's objects in it all read as 65534 there. Natively (knobs at
    1): EACCES to follow, to O_CREAT the file and the FIFO, EPERM to link
    (CAP_FOWNER of the namespace's root does not cover unmapped ids); the
    caller's own objects there are followed, opened and linked. The same
    under yama-run with the knobs at 0 (before: all four allowed)."""
    make_tree(scratch, 0, 1002, 1001)
    knobs(sysctl, 1)
    native = results(subprocess.run([*AS_USER, "unshare", "-Ur", SYSTEM_PYTHON, probe,
                                     str(scratch)], capture_output=True, text=True, timeout=30))
    assert native == {"stranger follow": "EACCES", "stranger regular": "EACCES",
                      "stranger fifo": "EACCES", "stranger link": "EPERM", **OWN_ALLOWED}
    knobs(sysctl, 0)
    out = subprocess.run([*AS_USER, "unshare", "-Ur", SYSTEM_PYTHON, "-m", "sandbox.cli", "-q",
                          "--profile", profile, "--", SYSTEM_PYTHON, probe, str(scratch)],
                         env=as_user.env(), cwd=str(as_user.home), capture_output=True,
                         text=True, timeout=60)
    assert results(out) == native, out.stderr


def idmapped_tree(top: Path, idmount: str) -> None:
    """top/src: a tmpfs with uid 2000's sticky directory of uid 3000's objects
    (and the caller's), and nobody's sticky directory of nobody's link;
    top/idm: it through an idmapped mount whose map has 0 and 1001 only."""
    (top / "src").mkdir()
    (top / "idm").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=755", "yr-unmapped", str(top / "src")],
                   check=True)
    make_tree(top / "src", 2000, 3000, 1001)
    nobody = top / "src" / "nobody"
    (nobody / "sticky").mkdir(parents=True)
    os.chown(nobody / "sticky", 65534, 65534)
    (nobody / "sticky").chmod(0o1777)
    os.symlink("../../target", nobody / "sticky" / "lnk")
    os.lchown(nobody / "sticky" / "lnk", 65534, 65534)
    made = subprocess.run([idmount, str(top / "src"), str(top / "idm"), "0 0 1\n1001 1001 1"],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"no idmapped mount of a tmpfs here: {made.stderr.strip()}")


NOBODY_PROBE = ["-c", "import sys; print(open(sys.argv[1]).read().strip())"]


def test_idmapped_mount_owners_outside_its_map_match_nothing(
        as_user, sysctl, helper, probe, scratch):
    """Through an idmapped mount (yama-run in the initial namespace), uid
    2000's sticky directory and uid 3000's objects all read as 65534: the
    kernel refuses the follow and the O_CREATs (EACCES) and the link
    (EOVERFLOW, before the sysctl: the ids are invalid there); the caller's
    own objects are allowed. nobody's link in nobody's sticky directory is
    followed by the plain mount (65534 proved real: no idmap) and refused
    through the idmapped one. Before: follow and O_CREAT allowed, the link
    EPERM, nobody's link followed through the idmapped mount."""
    idmount, where = public_copy(helper("idmount"), "idmount")
    try:
        idmapped_tree(scratch, idmount)
    finally:
        shutil.rmtree(where, ignore_errors=True)
    nobody = [str(scratch / m / "nobody" / "sticky" / "lnk") for m in ("src", "idm")]

    def run(prefix):
        out = subprocess.run([*prefix, SYSTEM_PYTHON, probe, str(scratch / "idm")],
                             capture_output=True, text=True, timeout=60,
                             env=as_user.env(), cwd=str(as_user.home))
        seen = [subprocess.run([*prefix, SYSTEM_PYTHON, *NOBODY_PROBE, lnk], capture_output=True,
                               text=True, timeout=60, env=as_user.env(),
                               cwd=str(as_user.home)).stdout.strip() or "refused"
                for lnk in nobody]
        return results(out), seen, out.stderr

    knobs(sysctl, 1)
    native, native_nobody, _ = run(AS_USER)
    assert native == {"stranger follow": "EACCES", "stranger regular": "EACCES",
                      "stranger fifo": "EACCES", "stranger link": "EOVERFLOW", **OWN_ALLOWED}
    assert native_nobody == ["SECRET", "refused"]
    knobs(sysctl, 0)
    got, got_nobody, err = run([*AS_USER, SYSTEM_PYTHON, "-m", "sandbox.cli", "-q", "--"])
    assert got == native, err
    assert got_nobody == native_nobody
