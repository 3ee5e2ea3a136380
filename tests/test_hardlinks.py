"""hardlinks: fs.protected_hardlinks re-created, with link/linkat emulated.

Every case runs as uid 1001 (setpriv inside the sandbox) against files of
uid 1002. The kernel's own fs.protected_hardlinks is set to 0 for yama-run
runs (else the kernel is what is tested) and to 1 for the native reference."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import requires_root, yama_run

SYSCTL = "fs.protected_hardlinks"
AS_1001 = ["setpriv", "--reuid=1001", "--regid=1001", "--clear-groups"]

pytestmark = [requires_root,
              pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv")]


@pytest.fixture
def tree():
    """A world-searchable scratch tree: own (1001), other files (1002), d/ for new names."""
    top = Path(tempfile.mkdtemp(prefix="yr-hl-", dir="/tmp"))
    top.chmod(0o777)

    def make(name, mode, uid=1002, gid=1002, kind="file"):
        p = top / name
        if kind == "file":
            p.write_text("x")
        elif kind == "fifo":
            os.mkfifo(p)
        elif kind == "dir":
            p.mkdir()
        os.chown(p, uid, gid)
        p.chmod(mode)
        return p

    make("own", 0o644, 1001, 1001)
    make("own_dir", 0o755, 1001, 1001, "dir")
    make("other", 0o644)
    make("other_rw", 0o666)
    make("other_group_rw", 0o660, 1002, 1001)
    make("other_setuid", 0o4777)
    make("other_setgid_gx", 0o2676)
    make("other_setgid", 0o2666)
    make("other_fifo", 0o666, kind="fifo")
    make("other_dir", 0o777, kind="dir")
    make("d", 0o777, 1001, 1001, "dir")
    make("root_dir", 0o755, 0, 0, "dir")
    make("private", 0o700, 1002, 1002, "dir")
    (top / "private" / "f").write_text("x")
    for name, target in (("other_link", "other_rw"), ("link_to_other", "other"),
                         ("link_to_other_rw", "other_rw"), ("loop", "loop")):
        os.symlink(target, top / name)
        os.lchown(top / name, 1002, 1002)
    yield top
    if os.path.ismount(top / "mnt"):
        subprocess.run(["umount", str(top / "mnt")], check=False)
    shutil.rmtree(top, ignore_errors=True)


def _clean(top: Path) -> None:
    for p in (top / "d").iterdir():
        p.unlink()


def native(probe, top, *args, as_user=True, env=None):
    cmd = (AS_1001 if as_user else []) + [probe, *args]
    out = subprocess.run(cmd, cwd=top, capture_output=True, text=True, timeout=30, env=env)
    _clean(top)
    return out.stdout.strip() or out.stderr.strip()


def sandboxed(probe, top, *args, as_user=True, extra=(), env=None):
    cmd = (AS_1001 if as_user else []) + [probe, *args]
    out = yama_run(*extra, "--", *cmd, cwd=top, env=env)
    _clean(top)
    return out.stdout.strip() or out.stderr.strip()


@pytest.fixture
def probe(helper):
    return helper("link_probe")


RULE_CASES = [
    # (args, expected)
    (("link", "own", "d/n"), "LINKAT 0"),
    (("link", "other", "d/n"), "LINKAT EPERM"),                 # cannot write it
    (("link", "other_rw", "d/n"), "LINKAT 0"),                  # rw-able regular file
    (("link", "other_group_rw", "d/n"), "LINKAT 0"),            # rw through the fsgid
    (("link", "other_setuid", "d/n"), "LINKAT EPERM"),
    (("link", "other_setgid_gx", "d/n"), "LINKAT EPERM"),
    (("link", "other_setgid", "d/n"), "LINKAT 0"),              # setgid without g+x is fine
    (("link", "other_fifo", "d/n"), "LINKAT EPERM"),            # not a regular file
    (("link", "other_dir", "d/n"), "LINKAT EPERM"),
    (("link", "own_dir", "d/n"), "LINKAT EPERM"),               # vfs_link: a directory
    (("link", "other_link", "d/n"), "LINKAT EPERM"),            # someone else's symlink itself
    (("linkat", "CWD", "other_link", "CWD", "d/n", "follow"), "LINKAT 0"),
    (("linkat", "CWD", "link_to_other", "CWD", "d/n", "follow"), "LINKAT EPERM"),
    (("linkat", "CWD", "link_to_other_rw", "CWD", "d/n", "follow"), "LINKAT 0"),
    (("linkat", "CWD", "other", "CWD", "d/n", "0"), "LINKAT EPERM"),
    (("fdsrc", "other", "d/n"), "LINKAT EPERM"),                # /proc/self/fd/N source
    (("fdsrc", "other_rw", "d/n"), "LINKAT 0"),
    (("fdsrc", "own", "d/n"), "LINKAT 0"),
    (("emptysrc", "own", "d/n"), "LINKAT 0"),                   # AT_EMPTY_PATH
    (("emptysrc", "other", "d/n"), "LINKAT EPERM"),
    (("emptysrc", "other_rw", "d/n"), "LINKAT 0"),
    (("link", "other", "root_dir/n"), "LINKAT EPERM"),          # the rule before may_create's EACCES
]


@pytest.mark.parametrize("args,expected", RULE_CASES, ids=[" ".join(a) for a, _ in RULE_CASES])
def test_rule_as_1001(probe, tree, sysctl, args, expected):
    sysctl(SYSCTL, 1)
    assert native(probe, tree, *args) == expected          # the kernel's own answer
    sysctl(SYSCTL, 0)
    assert sandboxed(probe, tree, *args) == expected
    assert sandboxed(probe, tree, *args, env={**os.environ, "YAMA_RUN_NO_FAST_PATH": "1"}) \
        == expected                                          # C and Python agree


def test_protected_0_allows(probe, tree, sysctl):
    sysctl(SYSCTL, 0)
    assert sandboxed(probe, tree, "link", "other", "d/n",
                     extra=("--set", "hardlinks.protected=0")) == "LINKAT 0"


def test_root_is_exempt(probe, tree, sysctl):
    sysctl(SYSCTL, 0)
    for src in ("other", "other_setuid", "other_fifo", "other_link"):
        assert sandboxed(probe, tree, "link", src, "d/n", as_user=False) == "LINKAT 0"


def test_denial_is_audited(probe, tree, sysctl):
    sysctl(SYSCTL, 0)
    log = tree / "audit.jsonl"
    out = yama_run("--audit-log", log, "--", *AS_1001, probe, "link", "other", "d/n", cwd=tree)
    assert out.stdout.strip() == "LINKAT EPERM"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records and records[0]["module"] == "hardlinks"
    assert records[0]["errno"] == "EPERM" and records[0]["syscall"] == "link"
    assert records[0]["source"] == "other"


def test_permissive_records_and_allows(probe, tree, sysctl):
    sysctl(SYSCTL, 0)
    log = tree / "audit.jsonl"
    out = yama_run("--permissive", "--audit-log", log, "--", *AS_1001, probe,
                   "link", "other", "d/n", cwd=tree)
    assert out.stdout.strip() == "LINKAT 0"
    assert json.loads(log.read_text().splitlines()[0])["action"] == "would-deny"


def test_c_and_python_tables_agree():
    """The C side settles exactly the fact combinations the module allows."""
    from sandbox._yama import lib
    from sandbox.modules.hardlinks import Hardlinks
    from sandbox.requests import PathLink
    from sandbox.supervisor import Supervisor
    from sandbox.chain import Chain
    from sandbox.audit import Audit

    module = Hardlinks({"protected": 1})
    mask = Supervisor(Chain([module], Audit()), Audit()).link_table()
    for facts in range(1 << lib.YR_LF_COUNT):
        allowed = module.path_link(PathLink.hypothetical(facts)) is None
        assert bool(lib.yr_link_table_allows(mask, facts)) == allowed, bin(facts)
    off = Supervisor(Chain([Hardlinks({"protected": 0})], Audit()), Audit()).link_table()
    assert off == (1 << 64) - 1


ERROR_CASES = [
    ("link", "missing", "d/n"),                       # ENOENT, old
    ("link", "own", "missing/n"),                     # ENOENT, new parent
    ("link", "own/x", "d/n"),                         # ENOTDIR
    ("link", "own", "own/x"),                         # ENOTDIR, new
    ("link", "own", "other"),                         # EEXIST
    ("link", "own", "d/."),                           # EEXIST, LAST_DOT
    ("link", "own", "missing/."),                     # ENOENT before EEXIST
    ("link", "own", "/"),                             # EEXIST, LAST_ROOT
    ("link", "own", "d/n/"),                          # ENOENT, trailing slash
    ("link", "own", "d/"),                            # EEXIST
    ("link", "private/f", "d/n"),                     # EACCES, search
    ("link", "own", "private/n"),                     # EACCES, search on the new side
    ("link", "own", "root_dir/n"),                    # EACCES, write on the new parent
    ("linkat", "CWD", "loop", "CWD", "d/n", "follow"),  # ELOOP
    ("link", "LONG", "d/n"),                          # ENAMETOOLONG
    ("link", "own", "LONG"),
    ("link", "own_dir", "d/n"),                       # EPERM, a directory
    ("link", "NULL", "d/n"),                          # EFAULT
    ("link", "own", "NULL"),
    ("link", "KERNEL", "d/n"),
    ("link", "NULL", "LONG"),                         # the old side's error first
    ("link", "EDGE:own", "EDGE:d/n"),                 # strings that end at an unmapped page
    ("link", "", "d/n"),                              # ENOENT, empty
    ("link", "own", ""),
    ("linkat", "BAD", "own", "CWD", "d/n", "0"),      # EBADF
    ("linkat", "CWD", "own", "BAD", "d/n", "0"),
    ("linkat", "NEG", "own", "CWD", "d/n", "0"),
    ("linkat", "BAD", "/tmp/nonexistent-yr", "CWD", "d/n", "0"),  # absolute: dirfd unused
    ("linkat", "CWD", "missing", "BAD", "d/n", "0"),  # old ENOENT before new EBADF
    ("linkat", "FILE:own", "x", "CWD", "d/n", "0"),   # ENOTDIR dirfd
    ("linkat", "CWD", "own", "CWD", "d/n", "bogus"),  # EINVAL
    ("linkat", "CWD", "", "CWD", "d/n", "0"),         # ENOENT without AT_EMPTY_PATH
    ("linkat", "d", "../own", "d", "n", "0"),         # dirfds: allowed
    ("linkat", "d", "../other", "CWD", "d/n", "0"),   # dirfds: EPERM
    ("linkat", "FILE:own", "", "d", "n", "empty"),    # AT_EMPTY_PATH on a dirfd
    ("linkat", "FILE:other", "", "d", "n", "empty"),
]


@pytest.mark.parametrize("args", ERROR_CASES, ids=[" ".join(a) for a in ERROR_CASES])
def test_errno_parity(probe, tree, sysctl, args):
    """Natively with the kernel's protection on, and under yama-run with it off."""
    sysctl(SYSCTL, 1)
    want = native(probe, tree, *args)
    sysctl(SYSCTL, 0)
    assert sandboxed(probe, tree, *args) == want


def _mount(tree, *opts):
    mnt = tree / "mnt"
    mnt.mkdir(exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", *opts, "yr-test", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs")
    mnt.chmod(0o777)
    return mnt


def test_exdev_and_erofs_parity(probe, tree, sysctl):
    _mount(tree)
    sysctl(SYSCTL, 1)
    want = [native(probe, tree, "link", "own", "mnt/n"),
            native(probe, tree, "link", "other", "mnt/n")]
    sysctl(SYSCTL, 0)
    got = [sandboxed(probe, tree, "link", "own", "mnt/n"),
           sandboxed(probe, tree, "link", "other", "mnt/n")]
    assert got == want == ["LINKAT EXDEV", "LINKAT EXDEV"]
    subprocess.run(["mount", "-o", "remount,ro", str(tree / "mnt")], check=True)
    sysctl(SYSCTL, 1)
    want = native(probe, tree, "link", "/etc/passwd", "mnt/n")
    sysctl(SYSCTL, 0)
    assert sandboxed(probe, tree, "link", "/etc/passwd", "mnt/n") == want == "LINKAT EROFS"


# A missing new name where the filesystem's lookup fails rather than leaving a
# negative dentry (procfs: ENOENT from filename_create, before the kernel
# compares the mounts); sysfs leaves one: EXDEV.
ON_ANOTHER_FS = [("other", "/proc/yr-missing", "LINKAT ENOENT"),
                 ("other", "/proc/self/yr-missing", "LINKAT ENOENT"),
                 ("other", "/proc/yr-missing/", "LINKAT ENOENT"),
                 ("own", "/proc/yr-missing", "LINKAT ENOENT"),
                 ("other", "/sys/yr-missing", "LINKAT EXDEV"),
                 ("other", "/sys/yr-missing/", "LINKAT ENOENT"),
                 ("own", "/sys/yr-missing", "LINKAT EXDEV")]


@pytest.mark.parametrize("src,new,expected", ON_ANOTHER_FS,
                         ids=[f"{s} {n}" for s, n, _ in ON_ANOTHER_FS])
def test_link_to_a_missing_name_on_another_filesystem(probe, tree, sysctl, src, new, expected):
    """The kernel's errno, whether the rule would refuse the source (other:
    uid 1002's 0644 file) or not: an unsafe source linked into /proc was
    EXDEV under yama-run."""
    sysctl(SYSCTL, 1)
    assert native(probe, tree, "link", src, new) == expected
    sysctl(SYSCTL, 0)
    assert sandboxed(probe, tree, "link", src, new) == expected


def test_after_chdir(probe, tree, sysctl):
    sysctl(SYSCTL, 0)
    assert sandboxed(probe, tree, "-C", "d", "link", "../own", "n") == "LINKAT 0"
    assert sandboxed(probe, tree, "-C", "d", "link", "../other", "n") == "LINKAT EPERM"


def test_chrooted_caller(probe, tree, sysctl):
    """".." and absolute paths and symlinks stop at the caller's root."""
    sysctl(SYSCTL, 0)
    root = tree / "root_dir"
    (root / "sub").mkdir()
    (root / "own").write_text("inside")
    (root / "sub").chmod(0o777)
    os.symlink("/own", root / "abs_link")
    shutil.copy(probe, root / "probe")
    inside = (root / "own").stat().st_ino
    cases = [("-R", str(root), "-C", "/sub", "link", "../../../own", "/sub/a"),
             ("-R", str(root), "link", "/own", "/sub/b"),
             ("-R", str(root), "-C", "/sub", "linkat", "CWD", "../abs_link", "CWD", "c",
              "follow")]
    for case in cases:
        out = yama_run("--", probe, *case, cwd=tree)
        assert out.stdout.strip() == "LINKAT 0", (case, out.stderr)
    for name in "abc":
        assert (root / "sub" / name).stat().st_ino == inside


def test_link_made_as_the_caller(probe, tree, sysctl):
    """Search and write permissions on the new parent are the setpriv'd caller's."""
    sysctl(SYSCTL, 0)
    mine = tree / "mine"
    mine.mkdir(mode=0o700)
    os.chown(mine, 1001, 1001)
    assert sandboxed(probe, tree, "link", "own", "mine/n") == "LINKAT 0"
    assert sandboxed(probe, tree, "link", "own", "root_dir/n") == "LINKAT EACCES"
    group = tree / "group"
    group.mkdir(mode=0o770)
    os.chown(group, 0, 1001)
    group.chmod(0o770)
    assert sandboxed(probe, tree, "link", "own", "group/n") == "LINKAT 0"     # via fsgid
    # The supervisor (root) could have done these: the caller cannot.
    assert sandboxed(probe, tree, "link", "private/f", "d/n") == "LINKAT EACCES"
    before = (tree / "own").stat().st_nlink
    out = yama_run("--", *AS_1001, probe, "link", "own", "mine/kept", cwd=tree)
    assert out.stdout.strip() == "LINKAT 0"
    st = (mine / "kept").stat()
    assert (st.st_uid, st.st_nlink, st.st_ino) == (1001, before + 1,
                                                   (tree / "own").stat().st_ino)


def test_racing_path_rewrite_never_links_forbidden(helper, tree, sysctl):
    sysctl(SYSCTL, 0)
    race = helper("link_race")
    (tree / "own_a").write_text("a")
    os.chown(tree / "own_a", 1001, 1001)
    (tree / "other").rename(tree / "oth_a")      # same length as own_a
    out = yama_run("--", *AS_1001, race, "d", "own_a", "oth_a", "3000", cwd=tree, timeout=120)
    line = out.stdout.strip()
    assert line.startswith("RACE "), out.stderr
    fields = dict(kv.split("=") for kv in line.split()[1:])
    assert int(fields["links"]) > 0
    assert fields["forbidden"] == "0"


NO_FOWNER = ["setpriv", "--bounding-set=-fowner", "--inh-caps=-fowner"]


@pytest.mark.parametrize("src,expected", [
    ("other", "LINKAT 0"),             # CAP_DAC_OVERRIDE still makes it read-write for root
    ("other_setuid", "LINKAT EPERM"),
    ("other_setgid_gx", "LINKAT EPERM"),
    ("other_fifo", "LINKAT EPERM"),
    ("other_link", "LINKAT EPERM"),
])
def test_root_without_cap_fowner(probe, tree, sysctl, src, expected):
    """Root is exempt through CAP_FOWNER only: without it the rule applies.
    The exec after dropping fowner from the bounding set leaves it out of
    root's effective set too."""
    sysctl(SYSCTL, 1)
    cmd = [*NO_FOWNER, probe, "link", src, "d/n"]
    out = subprocess.run(cmd, cwd=tree, capture_output=True, text=True, timeout=30)
    _clean(tree)
    assert out.stdout.strip() == expected                   # the kernel's own answer
    sysctl(SYSCTL, 0)
    for env in (None, {**os.environ, "YAMA_RUN_NO_FAST_PATH": "1"}):
        got = yama_run("--", *cmd, cwd=tree, env=env)
        _clean(tree)
        assert got.stdout.strip() == expected, got.stderr
