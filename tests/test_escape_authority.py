"""What the supervisor does as the caller, with no more authority than it.

Found by a review of the emulated calls (docs/hostile.md):

* The caller's supplementary groups were kept up to 256 and the rest dropped
  without a word, so a permission that refuses a group the caller is in (a
  0604 file of that group) no longer applied once the group fell past the
  256th: the supervisor opened the file. A caller in more groups than the
  supervisor keeps is now refused every call performed for it (EPERM), and
  yama-run says so when it starts in that many (csrc/creds.c).
* pidfd_send_signal, and kill(0) of the group yama-run shares with the
  program, were sent from the supervisor's pid namespace: a program in a pid
  namespace of its own signalled a process it cannot see (the kernel:
  EINVAL) and killed its namespace's init with SIGKILL (ignored from inside).
  A caller in another pid namespace now has the kernel send its pidfd
  signal, and its kill(0) of that group is refused (sandbox/guard.py).

tests/helpers/pidns_signal_probe.c makes the signals; the natively-run
control shows the kernel's answers."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from as_user import AS_USER, as_user  # noqa: F401  (fixture)
from conftest import BACKEND_ARGS, YAMA_RUN, requires_root, tree_env, yama_run
from test_escape import place, placed_probe  # noqa: F401  (fixture)

pytestmark = requires_root


@pytest.fixture(scope="module")
def probe(helper, place):  # noqa: F811
    return placed_probe(helper, place, "pidns_signal_probe")


def _facts(out: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


NATIVE_PIDFD = {"outside": "EINVAL", "init": "0", "init-end": "alive", "sibling": "alive"}


def test_native_control_signals_from_a_pid_namespace(probe):
    r = subprocess.run([*AS_USER, probe, "pidfd"], capture_output=True, text=True, timeout=30)
    assert _facts(r.stdout) == NATIVE_PIDFD, r.stdout + r.stderr


def test_a_pidfd_signal_from_a_pid_namespace_is_the_kernels(probe):
    """yama-run started by root, the program uid 1001 in a user and pid
    namespace of its own: the outsider is not reached (EINVAL), the init
    survives its own namespace's SIGKILL."""
    r = yama_run("--", *AS_USER, probe, "pidfd", timeout=60)
    assert _facts(r.stdout) == NATIVE_PIDFD, r.stdout + r.stderr


def test_the_same_under_a_yama_run_of_an_ordinary_user(probe, as_user):  # noqa: F811
    r = as_user.run("--", probe, "pidfd", timeout=60)
    assert _facts(r.stdout) == NATIVE_PIDFD, r.stdout + r.stderr


def test_kill0_from_a_pid_namespace_of_the_shared_group_is_refused(probe):
    """kill(0, SIGKILL) from inside, where the group is the one yama-run
    shares with the program (its own session here, so that nothing of the
    test's is in it): refused, and the init and the sibling live."""
    r = yama_run("--", *AS_USER, probe, "kill0", timeout=60, start_new_session=True)
    assert _facts(r.stdout) == {"kill0": "EPERM", "init-end": "alive", "sibling": "alive"}, \
        r.stdout + r.stderr


@pytest.fixture
def group_file():
    """A 0604 file of group 2299: refused to a member of that group."""
    d = Path(tempfile.mkdtemp(prefix="yr-groups-", dir="/tmp"))
    d.chmod(0o755)
    f = d / "not-for-2299"
    f.write_text("secret\n")
    os.chown(f, 0, 2299)
    f.chmod(0o604)
    yield f
    shutil.rmtree(d, ignore_errors=True)


def _groups(n: int) -> str:
    """n supplementary groups, 2299 last (the kernel keeps them sorted)."""
    return ",".join([str(g) for g in range(2000, 2000 + n - 1)] + ["2299"])


@pytest.mark.parametrize("n", [256, 257, 300])
def test_a_group_that_refuses_is_never_dropped(group_file, n):
    as_member = ["setpriv", "--reuid=1001", "--regid=1001", f"--groups={_groups(n)}"]
    native = subprocess.run([*as_member, "cat", group_file], capture_output=True, text=True,
                            timeout=30)
    assert native.returncode != 0 and "Permission denied" in native.stderr
    r = yama_run("--", *as_member, "cat", group_file, timeout=60)
    assert "secret" not in r.stdout, r.stdout
    assert r.returncode != 0
    # 256: judged as natively; more: refused before anything is done as it
    want = "Permission denied" if n <= 256 else "Operation not permitted"
    assert want in r.stderr, r.stderr


def test_yama_run_in_too_many_groups_says_so(group_file):
    r = subprocess.run(["setpriv", f"--groups={_groups(257)}", *YAMA_RUN, *BACKEND_ARGS, "--",
                        "true"], capture_output=True, text=True, timeout=60, env=tree_env())
    assert r.returncode != 0
    assert "in 257 supplementary groups, more than the 256" in r.stderr, r.stderr



# -- what a file of /proc judges on its opener, not on its fsuid -----------------------
#
# A thread of the supervisor acting for a caller takes the caller's fsuid,
# fsgid, groups and capabilities, and keeps euid 0 and the supervisor's
# keyrings. The sysctl tree is judged on the opener's euid and egid
# (sysctl_perm): uid 1001 was given a writable descriptor of
# kernel.core_pattern, which a root process it is handed to writes (its own
# writes are refused, the kernel judging each write on the writer). /proc/keys
# lists what the opener's keyrings possess. Both are now opened by a helper
# that is the caller, with a session keyring of its own (csrc/helper.c).

@pytest.mark.parametrize("path", ["/proc/sys/kernel/core_pattern", "/proc/sys/kernel/cad_pid"])
def test_a_root_only_sysctl_is_never_opened_for_writing(path):
    line = f'exec 3>>{path} && echo OPENED'
    native = subprocess.run([*AS_USER, "sh", "-c", line], capture_output=True, text=True,
                            timeout=30)
    assert "OPENED" not in native.stdout and "Permission denied" in native.stderr
    r = yama_run("--", *AS_USER, "sh", "-c", line, timeout=60)
    assert "OPENED" not in r.stdout, r.stdout + r.stderr
    assert "Permission denied" in r.stderr, r.stderr


OTHER_ROUTES = r"""
import os
d = os.open("/proc/sys/kernel", os.O_PATH | os.O_DIRECTORY)
p = os.open("/proc/sys/kernel/core_pattern", os.O_PATH)
for open_it in (lambda: os.open("core_pattern", os.O_WRONLY, dir_fd=d),
                lambda: os.open(f"/proc/self/fd/{p}", os.O_WRONLY)):
    try:
        open_it()
        print("OPENED")
    except PermissionError:
        print("EACCES")
"""


def test_a_root_only_sysctl_by_a_dirfd_or_a_reopened_handle():
    """The same file reached relative to a directory descriptor, and by
    reopening an O_PATH handle through /proc/self/fd: refused alike."""
    native = subprocess.run([*AS_USER, "/usr/bin/python3", "-c", OTHER_ROUTES],
                            capture_output=True, text=True, timeout=30)
    assert native.stdout == "EACCES\nEACCES\n", native
    r = yama_run("--", *AS_USER, "/usr/bin/python3", "-c", OTHER_ROUTES, timeout=60)
    assert r.stdout == native.stdout, r.stdout + r.stderr


def test_a_root_only_sysctl_is_not_read_nor_a_readable_one_refused():
    r = yama_run("--", *AS_USER, "sh", "-c",
                 "cat /proc/sys/kernel/ostype; cat /proc/sys/kernel/cad_pid", timeout=60)
    assert r.stdout == "Linux\n", r.stdout + r.stderr
    assert "cad_pid: Permission denied" in r.stderr, r.stderr


@pytest.fixture(scope="module")
def keys_probe(helper, place):  # noqa: F811
    return placed_probe(helper, place, "keys_probe")


def test_proc_keys_never_lists_what_the_supervisor_possesses(keys_probe):
    """yama-run started in a session keyring holding a key only its
    possessor may view; the program (uid 1001, a session of its own) lists
    /proc/keys: not that key, as natively."""
    native = subprocess.run([keys_probe, "hold", *AS_USER, keys_probe, "list"],
                            capture_output=True, text=True, timeout=30)
    assert native.stdout == "secret=hidden\n", native
    r = subprocess.run([keys_probe, "hold", *YAMA_RUN, *BACKEND_ARGS, "--", *AS_USER,
                        keys_probe, "list"], capture_output=True, text=True, timeout=60,
                       env=tree_env())
    assert r.stdout == "secret=hidden\n", r.stdout + r.stderr


# -- a signal by pid whose number the program gives away -----------------------------------
#
# A kill judged on a pid was continued, and the kernel looked the pid up
# again when the caller ran: the program kept the target (its child) a
# zombie through the check, reaped it, wrapped the pid space (pid_max 32768
# here) and kept the caller off the CPU (SCHED_IDLE beside busy threads), so
# that the number went to a thread the supervisor started for it meanwhile
# (a FIFO open's worker): SIGKILL reached the supervisor (yama-run exit 125).
# The kill family is now sent through a pidfd taken before the target is
# judged (sandbox/guard.py).



def test_a_kill_whose_pid_is_taken_again_never_reaches_the_supervisor(helper, place,  # noqa: F811
                                                                      fifo_without_writer):
    probe = placed_probe(helper, place, "pid_reuse_race")
    r = yama_run("--", *AS_USER, probe, fifo_without_writer, "9", "6", timeout=120)
    assert r.returncode == 0, (r.returncode, r.stdout[-2000:], r.stderr[-2000:])
    assert "hits" in r.stdout, r.stdout      # the program ran every try


# -- group signals that could reach the front ----------------------------------------------

@pytest.fixture(scope="module")
def group_probe(helper, place):  # noqa: F811
    return placed_probe(helper, place, "group_signal_probe")


def _in_a_job(command: list[str], first: str = "") -> subprocess.CompletedProcess:
    """command as a job of an interactive-like shell (its own process group,
    yama-run's front in it), after `first |` when given: the shell's exit
    line says whether the job's last process, the front, was killed."""
    line = " ".join(command)
    script = f"set -m; {first + ' | ' if first else ''}{line}; echo rc=$?"
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120,
                          env=tree_env())


def test_a_group_signal_through_a_pidfd_of_a_gone_leader_spares_the_front(group_probe):
    """The program, second in a pipeline (its group's leader the first),
    keeps a pidfd of that leader; once the leader has exited it leaves the
    group and sends SIGKILL to the group the pidfd names
    (PIDFD_SIGNAL_PROCESS_GROUP): the kernel signals the group numbered by
    the pidfd's pid, which outlives its leader and holds yama-run's front.
    yama-run judged the group only of a live target, and then its current
    one: the front was killed (rc=137). A group whose number it cannot know
    is refused now (EPERM), and the front returns the program's status."""
    r = _in_a_job([*YAMA_RUN, *BACKEND_ARGS, "--", group_probe, "dead-leader"], first="sleep 0.5")
    assert "dead-leader=EPERM" in r.stdout and "rc=0" in r.stdout, r.stdout + r.stderr


def test_kill0_while_moving_between_groups_spares_the_front(group_probe):
    """kill(0, SIGKILL) from a process whose other thread moves it between a
    group of its own and the front's (setpgid, the same session): yama-run
    judged the group it was in, and the kernel, continuing the call, read
    the group again when it sent: the front was killed. A kill(0) by a
    process of the front's session is now sent by the supervisor to the
    group judged; the front survives 20 such races."""
    r = _in_a_job([*YAMA_RUN, *BACKEND_ARGS, "--", group_probe, "kill0-race", "20"])
    assert "kill0-race=survived" in r.stdout and "rc=0" in r.stdout, r.stdout + r.stderr


def test_a_signal_to_the_group_of_one_s_own_number_is_the_kernel_s(group_probe):
    """PIDFD_SELF_THREAD_GROUP with PIDFD_SIGNAL_PROCESS_GROUP names the
    group numbered by the caller's own pid: a caller that leads no group
    names an empty one, ESRCH natively; yama-run judged the group it was in
    (the front's) and refused it (EPERM, and a denial said)."""
    native = subprocess.run([group_probe, "self-group"], capture_output=True, text=True,
                            timeout=30)
    assert "self-group=ESRCH" in native.stdout, native.stdout + native.stderr
    r = yama_run("--", group_probe, "self-group", timeout=60)
    assert "self-group=ESRCH" in r.stdout, r.stdout + r.stderr


@pytest.mark.skipif(shutil.which("script") is None, reason="needs script (util-linux)")
def test_an_exclusive_terminal_is_not_reopened_for_a_user(group_probe):
    """The program sets TIOCEXCL on its terminal, drops to uid 1001 and
    opens /dev/tty: the kernel refuses a new open of an exclusive terminal
    to all but CAP_SYS_ADMIN (EBUSY). yama-run reopens the caller's terminal
    from a file of the caller's, with its own authority: a yama-run started
    by root opened it. The caller's capability is asked now."""
    def in_a_terminal(command: list[str]) -> str:
        return subprocess.run(["script", "-qec", " ".join(command), "/dev/null"],
                              capture_output=True, text=True, timeout=60,
                              env=tree_env()).stdout
    assert "tty-excl=EBUSY" in in_a_terminal([group_probe, "tty-excl"])
    assert "tty-excl=EBUSY" in in_a_terminal([*YAMA_RUN, *BACKEND_ARGS, "--", group_probe,
                                              "tty-excl"])
