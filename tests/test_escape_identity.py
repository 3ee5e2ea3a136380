"""What the supervisor's acting threads keep of the supervisor, and what a
program got from it (found by a review of the calls performed as the
caller, docs/hostile.md):

* A root program that entered a user namespace of its own (a runtime, a
  self-sandbox) lost every capability over the files outside it, natively;
  the supervisor's identity cache still lent its capabilities as the initial
  namespace's when the masks looked the same, and access() lent its
  permitted set once its effective set was empty: a 0600 file of uid 1001
  read (csrc/caller.c, csrc/walk.c).
* /dev/net/tun, opened by a thread of the supervisor, made its devices in
  the supervisor's network namespace: uid 1001 in a network namespace of its
  own (unshare -rn) attached to a tap of the host and sent frames into it;
  root inside created interfaces in the host. It is opened by the helper
  that is the caller, now in the caller's network namespace too
  (csrc/helper.c, csrc/open.c).
* A thread's supplementary groups change with no id or capability mask
  changing (a thread of uid 1001 enters a user namespace of its own, drops
  a group there, gives its capabilities back): the identity cache kept the
  group it had dropped, and the program read a file only that group may
  read; root with CAP_SETGID and CAP_DAC_OVERRIDE gave its file to a group
  it had left. setgroups is now noticed (csrc/caller.c), and so is an
  execve by a thread other than the leader, which takes the leader's tid
  and, before, its cached groups (a thread that had left a group by a
  setgroups of its own ran a program that read that group's file). And access() lent
  root's permitted set to a caller that had asked, with
  SECBIT_NO_SETUID_FIXUP, for its effective one (empty) to be used.
* A message queue made by open(O_CREAT) on an mqueue mount is charged to
  its maker's RLIMIT_MSGQUEUE: made by the supervisor, under the
  supervisor's; a program whose limit was 0 made five. The helper that is
  the caller makes it now, under the caller's limit (csrc/helper.c).
* A yama-run started by an ordinary user acts for its callers as itself,
  right only for callers with its ids and groups: a program given CAP_SETGID
  (ambient) left a group and still opened that group's file through the
  supervisor. Such a caller is now refused (EPERM).
* What the supervisor reads of a caller through its tid (/proc/TID: its
  umask, its root) is another task's once a sibling thread's execve has
  killed the caller and taken its tid: a file was created with the new
  image's umask (0666 where the caller's umask gave 0600). An effect is now
  made only for a caller still waiting, checked after those reads.
* The acting threads kept the supervisor's session keyring, whose keys
  unlock files for whoever opens them: uid 1001 read an fscrypt v1 file
  under a yama-run started by root in the session holding the key. Each
  acting thread of a root supervisor now has an empty session keyring of its
  own (csrc/creds.c).

tests/helpers/identity_probe.c makes the calls; each test runs the natively
run control beside yama-run."""
from __future__ import annotations

import fcntl
import os
import shutil
import socket
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest

from as_user import AS_USER, SYSTEM_PYTHON, as_user  # noqa: F401  (fixture)
from conftest import BACKEND_ARGS, YAMA_RUN, requires_root, tree_env, yama_run
from test_escape import place, placed_probe  # noqa: F401  (fixture)

pytestmark = requires_root


@pytest.fixture(scope="module")
def probe(helper, place):  # noqa: F811
    return placed_probe(helper, place, "identity_probe")


def _facts(out: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def as_natively(want: dict[str, str], cmd: list, *yama_args: str) -> None:
    """cmd prints want natively, and the same under yama-run (yama_args
    before its "--")."""
    cmd = [str(c) for c in cmd]
    native = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert _facts(native.stdout) == want, native.stdout + native.stderr
    r = yama_run(*yama_args, "--", *cmd, timeout=60)
    assert _facts(r.stdout) == want, r.stdout + r.stderr


# -- capabilities of a user namespace of the caller's own --------------------------------

@pytest.fixture
def files_of_1001():
    """A 0600 file of uid 1001, and a file below a 0700 directory of its."""
    d = Path(tempfile.mkdtemp(prefix="yr-identity-", dir="/tmp"))
    d.chmod(0o755)
    secret = d / "secret"
    secret.write_text("secret of 1001\n")
    (d / "private").mkdir()
    inner = d / "private" / "inner"
    inner.write_text("x\n")
    for path, mode in ((secret, 0o600), (d / "private", 0o700), (inner, 0o600)):
        os.chown(path, 1001, 1001)
        path.chmod(mode)
    yield secret, inner
    shutil.rmtree(d, ignore_errors=True)


def test_capabilities_held_in_its_own_user_namespace_are_never_lent(probe, files_of_1001):
    """A routed call (the identity cached), then a user namespace of its own
    (0 mapped to 0) and the masks lowered back to what they were: root
    there has no capability over uid 1001's file (EACCES), under yama-run
    as natively."""
    secret, _ = files_of_1001
    as_natively({"open": "EACCES"}, [probe, "userns-open", secret])


def test_capabilities_of_a_namespace_entered_by_setns_are_never_lent(probe, files_of_1001):
    """A routed call (the identity cached), then setns into a user namespace
    a child made (0 mapped to 0: the same ids) and the masks lowered back to
    what they were: the identity cache took the thread as unchanged and lent
    it its capabilities (uid 1001's 0600 file opened) once it stopped asking
    the namespace on every call. setns is noticed now: EACCES, as natively."""
    secret, _ = files_of_1001
    as_natively({"before": "OK", "open": "EACCES"}, [probe, "setns-open", secret])


def test_access_lends_no_permitted_set_of_another_user_namespace(probe, files_of_1001):
    """access() judges root's real ids with its permitted set, in its own
    user namespace: there, none over uid 1001's files."""
    secret, inner = files_of_1001
    want = {f"access:{secret}": "EACCES", f"access:{inner}": "EACCES"}
    as_natively(want, [probe, "userns-access", secret, inner])


# -- /dev/net/tun binds the opener's network namespace -----------------------------------

TUNSETIFF, TUNSETPERSIST, TUNSETOWNER = 0x400454CA, 0x400454CB, 0x400454CC
IFF_TUN, IFF_TAP, IFF_NO_PI, IFF_UP = 0x0001, 0x0002, 0x1000, 0x1
SIOCGIFFLAGS, SIOCSIFFLAGS = 0x8913, 0x8914


def _ifreq(name: str, flags: int) -> bytes:
    return struct.pack("16sH22x", name.encode(), flags)


def _tun_persist(name: str, kind: int, persist: bool, owner: int | None = None) -> None:
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        fcntl.ioctl(fd, TUNSETIFF, _ifreq(name, kind | IFF_NO_PI))
        if owner is not None:
            fcntl.ioctl(fd, TUNSETOWNER, owner)
        fcntl.ioctl(fd, TUNSETPERSIST, int(persist))
    finally:
        os.close(fd)


def _up(name: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, SIOCGIFFLAGS, _ifreq(name, 0)))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, _ifreq(name, flags | IFF_UP))


def _received(name: str) -> int:
    return int(Path(f"/sys/class/net/{name}/statistics/rx_packets").read_text())


@pytest.fixture
def tun_node(place):  # noqa: F811
    """A tun node every uid may open (Debian's /dev/net/tun is 0666; this
    VM's is 0600), and the host's tap yrtapN of uid 1001, up."""
    if not Path("/dev/net/tun").exists():
        pytest.skip("no /dev/net/tun")
    node = place / "tun"
    if not node.exists():
        os.mknod(node, 0o20666, os.makedev(10, 200))
    node.chmod(0o666)
    name = f"yrtap{os.getpid() % 100000}"
    try:
        _tun_persist(name, IFF_TAP, True, owner=1001)
    except OSError as e:
        pytest.skip(f"cannot make a tap: {e}")
    try:
        _up(name)
        yield str(node), name
    finally:
        _tun_persist(name, IFF_TAP, False)


ATTACH_IN_OWN_NETNS = {"attach": "OK", "write": "EIO"}    # a new tap there, down


def test_tap_natively_from_a_network_namespace_of_its_own(probe, tun_node):
    node, name = tun_node
    before = _received(name)
    r = subprocess.run([*AS_USER, "unshare", "-rn", probe, "tap", node, name],
                       capture_output=True, text=True, timeout=30)
    assert _facts(r.stdout) == ATTACH_IN_OWN_NETNS, r.stdout + r.stderr
    assert _received(name) == before


@pytest.mark.parametrize("profile", [[], ["--profile", "strict"]], ids=["default", "strict"])
def test_a_tap_of_the_host_is_never_reached_from_a_network_namespace_of_its_own(
        probe, tun_node, profile):
    """uid 1001 in a user and network namespace of its own attaches to a tap
    of that name: a new one there, down (EIO), never the host's (up, of
    uid 1001: the frame would be received there)."""
    node, name = tun_node
    before = _received(name)
    r = yama_run(*profile, "--", *AS_USER, "unshare", "-rn", probe, "tap", node, name,
                 timeout=60)
    assert _facts(r.stdout) == ATTACH_IN_OWN_NETNS, r.stdout + r.stderr
    assert _received(name) == before


def test_the_same_under_a_yama_run_of_an_ordinary_user(probe, tun_node, as_user):  # noqa: F811
    node, name = tun_node
    before = _received(name)
    r = as_user.run("--", "unshare", "-rn", probe, "tap", node, name, timeout=60)
    assert _facts(r.stdout) == ATTACH_IN_OWN_NETNS, r.stdout + r.stderr
    assert _received(name) == before


def test_root_in_a_network_namespace_of_its_own_creates_its_tun_there(probe):
    """Root inside, unshare -n: the persistent tun it creates lives in its
    namespace (and ends with it), never in the host's."""
    if not Path("/dev/net/tun").exists():
        pytest.skip("no /dev/net/tun")
    name = f"yrtun{os.getpid() % 100000}"
    host = Path("/sys/class/net") / name
    try:
        for run in (lambda *a: subprocess.run(list(a), capture_output=True, text=True,
                                              timeout=30),
                    lambda *a: yama_run("--", *a, timeout=60)):
            r = run("unshare", "-n", probe, "tun-create", "/dev/net/tun", name)
            assert _facts(r.stdout) == {"create": "OK"}, r.stdout + r.stderr
            assert not host.exists(), "made in the host's network namespace"
    finally:
        if host.exists():
            _tun_persist(name, IFF_TUN, False)


# -- the session keyring: an fscrypt v1 key ----------------------------------------------

@pytest.fixture
def encrypted(probe):
    """An ext4 image with encryption, mounted; enc/ under the v1 policy of
    identity_probe's key, holding plain.txt; remount() forgets what was
    unlocked (v1 keeps an unlocked inode's key for everyone)."""
    for tool in ("mkfs.ext4", "losetup"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    where = Path(tempfile.mkdtemp(prefix="yr-fscrypt-", dir="/tmp"))   # uid 1001 may search it
    where.chmod(0o755)
    img, mnt = where / "fs.img", where / "mnt"
    with open(img, "wb") as f:
        f.truncate(64 << 20)
    made = subprocess.run(["mkfs.ext4", "-q", "-F", "-O", "encrypt", str(img)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"mkfs.ext4 -O encrypt: {made.stderr.strip()}")
    mnt.mkdir()

    def mount():
        r = subprocess.run(["mount", "-o", "loop", str(img), str(mnt)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a loop image: {r.stderr.strip()}")

    def remount():
        subprocess.run(["umount", str(mnt)], check=True)
        mount()

    mount()
    try:
        mnt.chmod(0o755)
        enc = mnt / "enc"
        enc.mkdir()
        enc.chmod(0o777)
        made = subprocess.run([probe, "fscrypt-key", "sh", "-c",
                               f'"$0" fscrypt-policy {enc} && echo plaintext > {enc}/plain.txt '
                               f'&& chmod 644 {enc}/plain.txt', probe],
                              capture_output=True, text=True, timeout=30)
        if made.returncode != 0:
            pytest.skip(f"no fscrypt v1 here: {made.stderr.strip()}")
        remount()
        yield enc / "plain.txt", remount
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
        shutil.rmtree(where, ignore_errors=True)


def test_a_key_of_the_supervisors_session_unlocks_nothing_for_another_uid(probe, encrypted):
    """Root holds the v1 key in its session and runs yama-run there; the
    program, uid 1001 in a session keyring of its own, cannot read the file
    (natively its name is not even found); root in the session can."""
    plain, remount = encrypted
    cat = [probe, "newsess", *AS_USER, "cat", str(plain)]
    native = subprocess.run([probe, "fscrypt-key", *cat], capture_output=True, text=True,
                            timeout=30)
    assert "No such file" in native.stderr and "plaintext" not in native.stdout, native.stderr
    remount()
    r = subprocess.run([probe, "fscrypt-key", *YAMA_RUN, *BACKEND_ARGS, "--", *cat],
                       capture_output=True, text=True, timeout=60, env=tree_env())
    assert "plaintext" not in r.stdout, r.stdout + r.stderr
    assert r.returncode != 0 and "No such file" in r.stderr, r.stderr
    remount()
    control = subprocess.run([probe, "fscrypt-key", "cat", str(plain)], capture_output=True,
                             text=True, timeout=30)
    assert control.stdout == "plaintext\n", control.stdout + control.stderr


# -- ids as a caller in a user namespace of its own sees them ----------------------------

STAT_IDS = ('import os, sys\n'
            'for p in sys.argv[1:]:\n'
            '    s, l = os.stat(p), os.lstat(p)\n'
            '    print(f"py:{p}={s.st_uid}:{s.st_gid}:{l.st_uid}:{l.st_gid}")\n')


def test_a_stat_reports_the_ids_its_caller_sees(files_of_1001):
    """uid 1001 in `unshare -r` (its 0 is uid 1001): its own file is 0:0,
    root's is the overflow id, as the kernel's stat says (from_kuid_munged);
    stat(1) asks statx. yama-run reported the ids of its own namespace (1001
    and 0): a program checking that it owns its files (git's safe.directory)
    was refused."""
    secret, _ = files_of_1001
    cmd = [*AS_USER, "unshare", "-r", "sh", "-c",
           'python3 -c "$0" "$@" && stat -c "statx:%n=%u:%g" "$1" "$2"', STAT_IDS,
           str(secret), "/etc/passwd"]
    native = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    want = {f"py:{secret}": "0:0:0:0", "py:/etc/passwd": "65534:65534:65534:65534",
            f"statx:{secret}": "0:0", "statx:/etc/passwd": "65534:65534"}
    assert _facts(native.stdout) == want, native.stdout + native.stderr
    r = yama_run("--", *cmd, timeout=60)
    assert _facts(r.stdout) == want, r.stdout + r.stderr


# -- supplementary groups and access()'s capabilities -----------------------------------

GROUP = 1234       # a group uid 1001 is not in


@pytest.fixture
def group_file():
    """root:GROUP, mode 0040 (only GROUP may read it), in a directory
    everyone may search; and a file of root's, group root, for chown."""
    d = Path(tempfile.mkdtemp(prefix="yr-groups-", dir="/tmp"))
    d.chmod(0o755)
    secret = d / "group-secret"
    secret.write_text("secret of group 1234\n")
    os.chown(secret, 0, GROUP)
    secret.chmod(0o040)
    given = d / "given"
    given.write_text("")
    yield secret, given
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("profile", [[], ["--profile", "strict"], ["--backend", "ptrace"]],
                         ids=["default", "strict", "ptrace-backend"])
def test_a_dropped_group_is_never_lent(probe, group_file, profile):
    """uid 1001 in groups 1001 and 1234 reads root:1234's 0040 file (the
    identity cached), drops 1234 in a user namespace of its own and gives
    its capabilities back: refused (EACCES), under yama-run as natively;
    it read the file before."""
    secret, _ = group_file
    want = {"before": "OK", "open": "EACCES"}
    as_natively(want, [probe, "dropped-group", secret, str(GROUP)], *profile)


@pytest.mark.parametrize("backend", [[], ["--backend", "ptrace"]], ids=["notify", "ptrace"])
def test_an_exec_takes_no_group_of_the_leader_whose_tid_it_takes(probe, group_file, backend):
    """root without capabilities (SECBIT_NOROOT), in group 1234: one thread
    leaves 1234 by a setgroups of its own and execs a program that opens
    1234's 0040 file (owned by another uid) once the leader, still in 1234,
    has made routed opens: refused (EACCES) under yama-run as natively."""
    secret, _ = group_file
    os.chown(secret, 1234, GROUP)
    as_natively({"open": "EACCES"}, [probe, "exec-groups", secret, str(GROUP)], *backend)


def test_a_group_left_is_not_given_a_file(probe, group_file):
    """root keeping only CAP_DAC_OVERRIDE and CAP_SETGID, in group 1234,
    stats its file (the identity cached), leaves 1234 and gives the file to
    it: EPERM (no CAP_CHOWN, not a member), under yama-run as natively, and
    the file's group stays root's."""
    _, given = group_file
    as_natively({"chown": "EPERM"}, [probe, "groups-chown", given, str(GROUP)],
                "--profile", "strict")
    assert given.stat().st_gid == 0


def test_access_lends_no_permitted_set_the_caller_set_aside(probe, files_of_1001):
    """root with SECBIT_NO_SETUID_FIXUP and an empty effective set: access()
    judges that empty set, not the permitted one (the kernel's
    access_override_creds): uid 1001's 0600 file is not readable."""
    secret, _ = files_of_1001
    as_natively({"access": "EACCES"}, [probe, "nofixup-access", secret])


# -- a message queue's maker's limit -----------------------------------------------------

MQUEUES = r"""
import os, resource, sys
where, tries, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
resource.setrlimit(resource.RLIMIT_MSGQUEUE, (limit, limit))
os.umask(0o027)
made = 0
for i in range(tries):
    try:
        os.close(os.open(f"{where}/q{i}", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o666))
        made += 1
    except OSError as e:
        print(f"refused={e.errno}")
        break
print(f"made={made}")
if made:
    st = os.stat(f"{where}/q0")
    print(f"q0={st.st_mode & 0o777:o}:{st.st_uid}:{st.st_gid}")
"""


@pytest.mark.parametrize("limit", [0, 300000])
def test_a_message_queue_is_made_under_its_makers_limit(limit):
    """uid 1001 in namespaces of its own (user, mount, IPC) mounts an mqueue
    filesystem, lowers its RLIMIT_MSGQUEUE and creates queues with open():
    as many as natively (none under 0: EMFILE), with the mode its umask
    leaves and its own ids."""
    where = Path(tempfile.mkdtemp(prefix="yr-mqueue-", dir="/tmp"))
    where.chmod(0o755)
    try:
        cmd = [*AS_USER, "unshare", "-Urmi", "sh", "-c",
               'mount -t mqueue yr-test "$1" && exec python3 -c "$0" "$1" 12 "$2"',
               MQUEUES, str(where), str(limit)]
        native = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        facts = _facts(native.stdout)
        assert facts.get("refused") == "24", native.stdout + native.stderr
        assert int(facts["made"]) < 12 and (int(facts["made"]) == 0) == (limit == 0)
        for profile in ([], ["--profile", "strict"]):
            r = yama_run(*profile, "--", *cmd, timeout=60)
            assert _facts(r.stdout) == facts, r.stdout + r.stderr
    finally:
        shutil.rmtree(where, ignore_errors=True)


# -- what is read of a caller by its tid, once another task holds it ---------------------

@pytest.mark.parametrize("backend", [[], ["--backend", "ptrace"]], ids=["notify", "ptrace"])
def test_a_file_is_made_with_its_callers_umask_not_the_next_images(probe, tmp_path, backend):
    """Hundreds of times: a process with umask 077 creates files deep in a tree
    while a thread of its own with umask 0 execs (taking its tid): every
    file made is 0600, under yama-run as natively. Three such processes at
    once: under ptrace a caller's queued seccomp stop went stale when the
    exec took its tid, and the tracer killed the program for it (10 runs in
    10; 3 in 45 with one process on a loaded machine)."""
    places = [tmp_path / "native"] + [tmp_path / f"sandboxed{i}" for i in range(3)]
    for place in places:
        place.mkdir()
    native = subprocess.run([probe, "umask-exec", places[0], "100"],
                            capture_output=True, text=True, timeout=60)
    facts = _facts(native.stdout)
    assert int(facts.get("made", 0)) > 0 and facts["loose"] == "0", native.stdout + native.stderr
    three = " & ".join(f'"$0" umask-exec "${i}" 500' for i in (1, 2, 3))
    r = yama_run(*backend, "--", "sh", "-c", f"{three}; wait", probe, *places[1:], timeout=120)
    assert r.returncode == 0 and "internal error" not in r.stderr, r.stderr
    made = [line for line in r.stdout.splitlines() if line.startswith("made=")]
    assert len(made) == 3 and "made=0" not in made, r.stdout
    assert r.stdout.count("loose=0") == 3, r.stdout


def test_an_ordinary_users_yama_run_keeps_no_group_its_caller_left(probe, group_file, as_user):
    """uid 1001 in group 1234 with CAP_SETGID ambient starts yama-run
    (--userns never) and its program leaves every group: its open of
    1234's 0040 file is refused (natively EACCES; EPERM, the supervisor
    cannot take the caller's groups), where it was allowed before."""
    secret, _ = group_file
    as_1001 = ["setpriv", "--reuid=1001", "--regid=1001", "--groups=1234",
               "--inh-caps=+setgid", "--ambient-caps=+setgid"]
    native = subprocess.run([*as_1001, probe, "setgroups-open", secret], capture_output=True,
                            text=True, timeout=30)
    assert _facts(native.stdout) == {"before": "OK", "open": "EACCES"}, native.stdout
    cmd = [*as_1001, "/usr/bin/python3", "-m", "sandbox.cli", "--userns", "never", "--",
           probe, "setgroups-open", secret]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=as_user.env(),
                       cwd=str(as_user.home))
    facts = _facts(r.stdout)
    assert facts.get("before") == "OK" and facts.get("open") in ("EACCES", "EPERM"), \
        r.stdout + r.stderr


def test_an_ordinary_users_yama_run_signals_with_no_capability_its_caller_left(probe, as_user):
    """uid 1001 with CAP_KILL ambient starts yama-run; its program gives up
    every capability, then signals a root process (kill and a pidfd):
    EPERM, as natively, where the supervisor's CAP_KILL signalled it."""
    victim = subprocess.Popen(["sleep", "60"])
    try:
        as_1001 = ["setpriv", "--reuid=1001", "--regid=1001", "--clear-groups",
                   "--inh-caps=+kill", "--ambient-caps=+kill"]
        args = [probe, "dropcaps-kill", str(victim.pid)]
        want = {"kill": "EPERM", "pidfd": "EPERM"}
        native = subprocess.run([*as_1001, *args], capture_output=True, text=True, timeout=30)
        assert _facts(native.stdout) == want, native.stdout + native.stderr
        for userns in ("never", "auto"):
            cmd = [*as_1001, "/usr/bin/python3", "-m", "sandbox.cli", "--userns", userns, "--",
                   *args]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                               env=as_user.env(), cwd=str(as_user.home))
            assert _facts(r.stdout) == want, (userns, r.stdout + r.stderr)
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


MADVISE = """
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
pidfd = os.pidfd_open(int(sys.argv[1]))
iov = (ctypes.c_uint64 * 2)(0x10000, 4096)
r = libc.syscall(440, pidfd, iov, 1, 20, 0)          # process_madvise(MADV_COLD)
print("madvise=" + ("OK" if r >= 0 else errno.errorcode[ctypes.get_errno()]))
"""


def test_process_madvise_of_a_process_not_its_own_is_the_kernels_eacces():
    """uid 1001 asks process_madvise of a root process: the kernel's mm_access
    refuses it with EACCES (EPERM is for a missing CAP_SYS_NICE, later)."""
    victim = subprocess.Popen(["sleep", "60"])
    try:
        as_natively({"madvise": "EACCES"},
                    [*AS_USER, SYSTEM_PYTHON, "-c", MADVISE, str(victim.pid)])
    finally:
        victim.kill()
        victim.wait()
