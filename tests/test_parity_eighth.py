"""Calls answered otherwise than the kernel answers them (hunt-E, round 8,
findings 2, 4, 5 and 6; hunt-D, findings 1 and 2, at the end), each compared with a native run of the same probe
(tests/helpers/parity8_probe.c) in the same kind of namespace:

* file_setattr changing a file's project quota state (FS_XFLAG_PROJINHERIT,
  fa_projid) from a user namespace other than the initial one: the kernel's
  EINVAL (fileattr_set_prepare), where the supervisor, in the initial one,
  made the change;
* file_getattr and file_setattr with a usize above 2^32: E2BIG, where the
  size was cut to 32 bits and the call made;
* futimesat(fd, NULL, times): the times of fd's file set (EBADF for an O_PATH
  descriptor), where it was EFAULT;
* i386 open and openat (int $0x80) without O_LARGEFILE of a regular file over
  2 GiB: EOVERFLOW (generic_file_open), nothing truncated, where the
  supervisor's 64-bit open opened it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import requires_root
from test_escape import (AS_1001, BACKENDS, TIMEOUT, place, placed_probe, profile,  # noqa: F401
                         results, run)

pytestmark = [requires_root,
              pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv"),
              pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare")]

UNSHARE_R = ["unshare", "-r"]


@pytest.fixture(scope="module")
def probe(helper, place):
    return placed_probe(helper, place, "parity8_probe")


def native(prefix, probe, *args) -> dict[str, str]:
    proc = subprocess.run([*prefix, probe, *args], capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return results(proc.stdout)


def sandboxed(launcher, backend, place, program) -> dict[str, str]:
    proc = run(launcher, backend, profile(place, 1), program)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return results(proc.stdout)


@pytest.fixture
def files(place):
    """On the disk (ext4 here: tmpfs has no file attributes): uid 1001's
    directory and file, a file of root's (0644), and two sparse 3 GiB files,
    uid 1001's and root's (0644)."""
    d = place / "parity8"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    made = {"dir": d / "own-dir", "file": d / "own-file", "big": d / "big"}
    made["dir"].mkdir()
    made["file"].write_text("x")
    with open(made["big"], "wb") as f:
        f.truncate(3 << 30)
    for p in (d, *made.values()):
        os.chown(p, 1001, 1001)
    made["root-file"] = d / "root-file"
    made["root-file"].write_text("y")
    made["root-big"] = d / "root-big"
    with open(made["root-big"], "wb") as f:
        f.truncate(3 << 30)
    for p in (made["root-file"], made["root-big"]):
        p.chmod(0o644)
    yield {k: str(v) for k, v in made.items()}
    shutil.rmtree(d, ignore_errors=True)


# -- finding 2: project quota state from another user namespace ------------------------

# (who starts yama-run, what runs the probe inside)
OUTSIDE_THE_INITIAL_NS = [
    pytest.param((AS_1001, []), id="1001-runs-1001"),              # yama-run's user namespace
    pytest.param((AS_1001, UNSHARE_R), id="1001-runs-unshare-r"),
    pytest.param(([], [*AS_1001, *UNSHARE_R]), id="root-runs-1001-in-unshare-r"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("who", OUTSIDE_THE_INITIAL_NS)
def test_project_quota_state_is_not_changed_from_another_user_namespace(probe, place, files,
                                                                        who, backend):
    """Toggling FS_XFLAG_PROJINHERIT, or changing fa_projid, by file_setattr
    from a user namespace other than the initial one: EINVAL, as the kernel
    answers `unshare -r` (under yama-run the flag of a directory really
    changed: the supervisor made the call from the initial namespace); a
    file the caller does not own: EPERM first, as the kernel's; a set as
    read still works. Root in the initial namespace still toggles it."""
    launcher, inside = who
    for what in ("dir", "file", "root-file"):
        want = native([*AS_1001, *UNSHARE_R], probe, "fattr", files[what])
        assert want["setattr-projinherit"] == ("EPERM" if what == "root-file" else "EINVAL"), want
        assert want["projinherit-changed"] == want["projid-changed"] == "0", want
        got = sandboxed(launcher, backend, place, [*inside, probe, "fattr", files[what]])
        assert got == want, what
    want = native([], probe, "fattr", files["dir"])
    assert want["setattr-projinherit"] == "ok" and want["projinherit-changed"] == "1", want
    assert sandboxed([], backend, place, [probe, "fattr", files["dir"]]) == want


# -- finding 4: file_[gs]etattr's usize is a size_t ------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_file_attr_size_above_4_gib_is_too_big(probe, place, files, backend):
    """usize 2^32+24: E2BIG for both calls (the size was cut to 24 and the
    call made: file_setattr wrote zeroed attributes); bad at_flags are
    refused first (EINVAL), as the kernel checks them first."""
    want = native(AS_1001, probe, "usize", files["file"])
    assert want["getattr-2^32+24"] == want["setattr-2^32+24"] == "E2BIG", want
    assert want["getattr-2^32+24-bad-flags"] == "EINVAL", want
    got = sandboxed(AS_1001, backend, place, [probe, "usize", files["file"]])
    assert got == want


# -- finding 5: futimesat with no name acts on its descriptor --------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_futimesat_without_a_name_sets_the_descriptor_s_file(probe, place, backend):
    """futimesat(fd, NULL, times) is do_utimes on fd's file (x86-64 and
    i386): the times set, EBADF for an O_PATH or closed descriptor, EFAULT
    for AT_FDCWD and unreadable times, EINVAL for bad microseconds (all
    EFAULT before)."""
    want = native(AS_1001, probe, "futimesat")
    assert want["futimesat-memfd-null-times"] == "ok" and want["memfd-mtime"] == "2000000", want
    assert want["futimesat-opath-null"] == "EBADF", want
    got = sandboxed(AS_1001, backend, place, [probe, "futimesat"])
    assert got == want


# -- finding 6: i386 opens without O_LARGEFILE -------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("launcher", [pytest.param([], id="root-runs-1001"),
                                      pytest.param(AS_1001, id="1001-runs-1001")])
def test_i386_open_of_a_large_file_without_o_largefile_overflows(probe, place, files,
                                                                  backend, launcher):
    """i386 open and openat without O_LARGEFILE of a 3 GiB file: EOVERFLOW,
    the file not truncated by O_TRUNC; with O_LARGEFILE, O_PATH or from
    x86-64 it opens; a truncation the caller may not make is EACCES first."""
    args = ["lf", files["big"], files["root-big"]]
    want = native(AS_1001, probe, *args)
    assert want["i386-open-rdonly"] == want["i386-openat-rdonly"] == "EOVERFLOW", want
    assert want["i386-open-wronly-trunc"] == "EOVERFLOW", want
    assert want["size-after-trunc"] == str(3 << 30), want
    assert want["i386-open-ro-rdonly-trunc"] == "EACCES", want
    assert want["i386-open-largefile"] == want["x86_64-open-rdonly"] == "ok", want
    inside = [*AS_1001] if not launcher else []
    got = sandboxed(launcher, backend, place, [*inside, probe, *args])
    # The ptrace backend passes no fd into an i386 caller (docs/backends.md):
    # there only the refusals and the sizes are compared.
    keys = [k for k in want if backend == "notify" or want[k] != "ok"]
    assert {k: got.get(k) for k in keys} == {k: want[k] for k in keys}
    assert Path(files["big"]).stat().st_size == 3 << 30


# -- hunt-D, round 8: O_CREAT through a magic link to a directory, open_tree's EPERM --------

CREAT_SCRIPT = """
import ctypes, os, sys
lib = ctypes.CDLL(None, use_errno=True)
d = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
for name in ("/proc/self/cwd", "/proc/self/root", f"/proc/self/fd/{d}"):
    for label, flags in (("creat", os.O_CREAT | os.O_RDONLY),
                         ("excl", os.O_CREAT | os.O_EXCL | os.O_RDONLY)):
        fd = lib.open(name.encode(), flags, 0o644)
        print(name.split("/")[-1] if "fd" not in name else "fd", label,
              "opened" if fd >= 0 else os.strerror(ctypes.get_errno()))
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_o_creat_of_a_magic_link_to_a_directory_is_eisdir(place, backend):
    """open(O_CREAT) of /proc/self/cwd, /proc/self/root or /proc/self/fd/N
    naming a directory: the kernel's do_open says EISDIR (EEXIST with
    O_EXCL); yama-run reopened the held directory without O_CREAT and gave
    it (hunt-D, round 8, finding 1)."""
    argv = [*AS_1001, "/usr/bin/python3", "-c", CREAT_SCRIPT, "/tmp"]
    want = subprocess.run(argv, cwd="/tmp", capture_output=True, text=True, timeout=TIMEOUT)
    assert "Is a directory" in want.stdout, want.stdout + want.stderr
    got = run([], backend, profile(place, 1), argv, cwd="/tmp")
    assert got.stdout == want.stdout, got.stdout + got.stderr


OPEN_TREE_SCRIPT = """
import ctypes, os, sys
lib = ctypes.CDLL(None, use_errno=True)
L = ctypes.c_long
r = lib.syscall(L(428), L(-100), sys.argv[1].encode(), L(1 | 0o2000000))   # OPEN_TREE_CLONE
print("opened" if r >= 0 else os.strerror(ctypes.get_errno()))
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_open_tree_clone_without_cap_sys_admin_is_eperm_before_any_look_up(
        place, backend, sysctl):
    """open_tree(OPEN_TREE_CLONE) by a caller that may not mount: the kernel
    says EPERM before it looks the path up (vfs_open_tree, may_mount); yama-run
    walked it first, said EACCES for a stranger's link in a sticky directory
    and recorded a symlinks denial of a follow the kernel never makes
    (hunt-D, round 8, finding 2)."""
    sysctl("fs.protected_symlinks", 0)
    d = Path(place) / "ot-sticky"
    d.mkdir(exist_ok=True)
    d.chmod(0o1777)
    link = d / "theirs"
    if not link.is_symlink():
        os.symlink("/tmp", link)
        os.lchown(link, 1002, 1002)
    argv = [*AS_1001, "/usr/bin/python3", "-c", OPEN_TREE_SCRIPT, str(link)]
    want = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)
    assert want.stdout.strip() == "Operation not permitted", want.stdout + want.stderr
    got = run([], backend, profile(place, 1), argv)
    assert got.stdout.strip() == "Operation not permitted", got.stdout + got.stderr
    assert "denied" not in got.stderr, got.stderr
