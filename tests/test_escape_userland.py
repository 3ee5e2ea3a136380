"""An attacker's pass over yama-run's own userland surface: what the program
under it (of the same uid as yama-run, or root) can do to the plan cache,
the kept denials, the front process, the exit status and the control socket.
Each test attempts the attack and asserts that its effect never happens: no
untrusted plan believed, no start or listing held forever, no exit status
but the program's, no supervisor stopped, no owner kept out of the control
socket, no line forged. (docs/hostile.md, "yama-run's own files, terminal
and control socket".)"""
from __future__ import annotations

import json
import marshal
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from as_user import UID, UserRun, as_user  # noqa: F401  (fixture)
from as_user import why_not as as_user_why_not
from conftest import ROOT, YAMA_RUN, requires_root, tree_env, yama_run
from sandbox.journal import journald_reachable

BOUND = 30          # s: a bound on a stall (the attacks below would block forever)


# -- the plan cache ---------------------------------------------------------------------

EXIT_3 = ("--", "sh", "-c", "exit 3")


def _kept_plan(run) -> Path:
    """Run EXIT_3 until a plan is kept for it (a plan is not kept when an
    input changed within the second before); its path."""
    for _ in range(3):
        r = run("-v", *EXIT_3)
        assert r.returncode == 3, r.stderr
        for line in r.stderr.splitlines():
            if line.startswith("yama-run: plan:") and "kept in " in line:
                return Path(line.rsplit("kept in ", 1)[1])
            if line.startswith("yama-run: plan: from the cache ("):
                return Path(line.rsplit("(", 1)[1].rstrip(")"))
        time.sleep(1.1)
    pytest.fail(f"no plan kept: {r.stderr}")


def _plan_line(stderr: str) -> str:
    [line] = [ln for ln in stderr.splitlines() if ln.startswith("yama-run: plan:")]
    return line


@pytest.fixture(params=["root", "uid 1001"])
def runner(request, tmp_path):
    """run(*args): yama-run with its plans under a cache of the runner's."""
    if request.param == "root":
        cache = tmp_path / "cache"
        env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
        run = lambda *args, **kw: yama_run(*args, env=env, timeout=BOUND, **kw)  # noqa: E731
        run.uid = os.geteuid()
        return run
    user = request.getfixturevalue("as_user")
    run = lambda *args, **kw: user.run(*args, timeout=BOUND, **kw)  # noqa: E731
    run.uid = UID
    return run


def test_a_fifo_in_place_of_the_plan_never_holds_the_start(runner):
    """A FIFO of the same uid, mode 0600, under the plan's name (the program
    may plant one: it runs as the user): the next start neither waits for a
    writer nor believes it; it starts from the profile and says why."""
    plan = _kept_plan(runner)
    plan.unlink()
    os.mkfifo(plan, 0o600)
    os.chown(plan, runner.uid, runner.uid)
    r = runner("-v", *EXIT_3)
    assert r.returncode == 3, r.stderr
    assert "not a file of uid" in _plan_line(r.stderr), r.stderr


def test_a_plan_file_larger_than_any_plan_is_not_read(runner):
    """A sparse 64 GiB file under the plan's name: not read (it was read
    whole, and yama-run died of MemoryError); the start goes on cold."""
    plan = _kept_plan(runner)
    with open(plan, "r+b") as f:
        f.truncate(64 << 30)
    r = runner("-v", *EXIT_3)
    assert r.returncode == 3, r.stderr
    assert "larger than a plan" in _plan_line(r.stderr), r.stderr
    assert "MemoryError" not in r.stderr and "Traceback" not in r.stderr
    plan.unlink()


@requires_root
def test_a_plan_swapped_by_rename_while_yama_run_starts_is_never_believed(tmp_path):
    """While yama-run starts again and again, another thread renames over the
    plan's name, in turn, the real plan, a link to a plan of uid 1002, and
    that plan itself (a valid plan for this command, saying FOREIGN): no
    start ever believes the foreign one (the file is judged by fstat on the
    descriptor it is read from, opened without following a link)."""
    cache = tmp_path / "cache"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    run = lambda *args: yama_run(*args, env=env, timeout=BOUND)  # noqa: E731
    plan = _kept_plan(run)
    foreign = tmp_path / "foreign.plan"
    content = marshal.loads(plan.read_bytes())
    content["says"] = ["FOREIGN plan believed"]
    foreign.write_bytes(marshal.dumps(content))
    foreign.chmod(0o600)
    os.chown(foreign, 1002, 1002)
    good = tmp_path / "good.plan"
    shutil.copy2(plan, good)
    stop = threading.Event()
    swaps = [0]

    def swap():
        temporary = str(plan) + ".swap"
        while not stop.is_set():
            for make in (lambda: os.link(good, temporary),
                         lambda: os.symlink(foreign, temporary),
                         lambda: os.link(foreign, temporary)):
                make()
                os.rename(temporary, plan)
                swaps[0] += 1

    swapper = threading.Thread(target=swap, daemon=True)
    swapper.start()
    try:
        said, lines = set(), set()
        # at least 20 starts, and on until both ways were taken (which the
        # swaps' timing decides: 20 starts missed one of them once)
        for start in range(200):
            r = run("-v", *EXIT_3)
            assert r.returncode == 3, r.stderr
            assert "FOREIGN" not in r.stderr, r.stderr
            said.add(_plan_line(r.stderr).split(":")[2].split("(")[0].strip())
            lines.add(_plan_line(r.stderr))     # whole: why a plan was not used
            if start >= 19 and "from the cache" in said and len(said) > 1:
                break
    finally:
        stop.set()
        swapper.join()
    assert swaps[0] > 20
    assert said & {"from the cache"} and len(said) > 1, lines    # both ways were taken


# -- the kept denials -------------------------------------------------------------------

@pytest.fixture
def sticky_dir():
    """A sticky world-writable directory and a readable target: a symlink of
    uid 1002 in it to the target is a symlinks denial for anyone else."""
    base = Path(tempfile.mkdtemp(prefix="yama-run-userland-"))
    base.chmod(0o755)
    (base / "sticky").mkdir()
    (base / "sticky").chmod(0o1777)
    (base / "target").write_text("x\n")
    yield base
    subprocess.run(["rm", "-rf", str(base)])


def _foreign_link(base: Path, name: bytes) -> bytes:
    link = os.path.join(os.fsencode(base / "sticky"), name)
    os.symlink(base / "target", link)
    os.lchown(link, 1002, 1002)
    return link


@requires_root
def test_program_controlled_names_never_forge_or_break_a_record(tmp_path, sticky_dir):
    """A link named with invalid UTF-8, a newline, a terminal escape, a JSON
    end, a line separator, and a look-alike of yama-run's own line, followed
    under -v and --audit-log: one JSON record per denial in the log, every
    stderr line yama-run's (escaped: no ESC reaches the terminal), the kept
    record readable and listed on one escaped line."""
    name = b'l\xff\n\x1b[31m"}\xe2\x80\xa8\nyama-run: forged'
    link = _foreign_link(sticky_dir, name)
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    log = tmp_path / "audit.jsonl"
    r = subprocess.run([*YAMA_RUN, "-v", "--audit-log", str(log), "sh", "-c",
                        'cat "$0" 2>/dev/null; cat "$0" 2>/dev/null; exit 0', link],
                       env=tree_env(env), capture_output=True, timeout=BOUND)
    assert r.returncode == 0
    assert b"\x1b" not in r.stderr and b"\xff" not in r.stderr
    assert all(line.startswith(b"yama-run: ") for line in r.stderr.splitlines()), r.stderr
    assert b"\nyama-run: forged" not in r.stderr and b"forged" in r.stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    denials = [rec for rec in records if rec["action"] == "deny"]
    assert len(denials) == 2 and all(os.fsencode(rec["path"]) == link for rec in denials)
    if journald_reachable():
        return                                  # kept in the journal, field by field
    kept = (tmp_path / "state" / "yama-run" / "denials.jsonl").read_text().splitlines()
    assert [json.loads(line)["action"] for line in kept] == ["deny", "deny"]
    listed = yama_run("--list-denials", env=env, timeout=BOUND)
    assert listed.returncode == 0
    shown = [ln for ln in listed.stdout.splitlines() if "symlinks: denied" in ln]
    assert len(shown) == 2 and "\x1b" not in listed.stdout
    assert not any(ln.startswith("yama-run: forged") for ln in listed.stdout.splitlines())


@requires_root
def test_a_fifo_in_place_of_the_denials_file_stalls_nothing(tmp_path, sticky_dir):
    """The program (same uid) puts a FIFO where the denials are kept: the
    next run's records are lost, its status is the program's, and
    --list-denials returns (it waited forever for a writer)."""
    if journald_reachable():
        pytest.skip("denials go to systemd-journald here, not to a file")
    link = _foreign_link(sticky_dir, b"link")
    kept = tmp_path / "state" / "yama-run" / "denials.jsonl"
    kept.parent.mkdir(parents=True, mode=0o700)
    os.mkfifo(kept, 0o600)
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    r = yama_run("-q", "sh", "-c", 'cat "$0" 2>/dev/null || exit 4', os.fsdecode(link), env=env,
                 timeout=BOUND)
    assert r.returncode == 4, r.stderr          # denied, and the status is the program's
    listed = yama_run("--list-denials", env=env, timeout=BOUND)
    assert listed.returncode == 0
    assert "no denials recorded" in listed.stdout
    assert kept.is_fifo()


HOLD_LOCK = r'''
import fcntl, os, sys, time
path, ready = sys.argv[1:3]
fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
if os.fork():
    os._exit(0)                 # the front returns; the daemon keeps the lock
os.setsid()
with open(ready + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(ready + ".tmp", ready)
time.sleep(60)
'''

DENIED_5 = r'''
import ctypes
for _ in range(5):
    ctypes.CDLL(None).ptrace(16, 1, 0, 0)     # PTRACE_ATTACH, denied at scope 3
raise SystemExit(3)
'''


def _denied_5(env: dict) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    r = yama_run("--set", "ptrace.scope=3", sys.executable, "-c", DENIED_5, env=env,
                 timeout=BOUND)
    return r, time.monotonic() - start


@requires_root
@pytest.mark.parametrize("full", [False, True], ids=["room", "full"])
def test_a_lock_held_on_the_denials_file_neither_stalls_nor_silences_a_run(tmp_path, full):
    """A program leaves a daemon holding flock(LOCK_EX) on the user's
    denials.jsonl (the file is its uid's): another run's writer waited for
    the lock for ever, its records were lost without a word, and its front
    returned 1 s late. The run now ends as quickly as with no lock held
    (status 3, the program's); its 5 denials are appended without the lock;
    with the file full (no rotation without the lock) they are not, and
    stderr says so."""
    if journald_reachable():
        pytest.skip("denials go to systemd-journald here, not to a file")
    from sandbox.journal import MAX_BYTES
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path / "state")}
    kept = tmp_path / "state" / "yama-run" / "denials.jsonl"
    kept.parent.mkdir(parents=True, mode=0o700)
    control, took_unlocked = _denied_5(env)             # the same run, with no lock held
    assert control.returncode == 3, control.stderr
    assert len(kept.read_text().splitlines()) == 5
    if full:
        filler = json.dumps({"action": "filler", "message": "x" * 100}) + "\n"
        kept.write_text(filler * (MAX_BYTES // len(filler)))
    before = kept.stat().st_size
    ready = tmp_path / "holder"
    yama_run(sys.executable, "-c", HOLD_LOCK, kept, ready, env=env, timeout=BOUND,
             capture_output=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + BOUND
    while not ready.exists():
        assert time.monotonic() < deadline, "the holder never took the lock"
        time.sleep(0.02)
    holder = int(ready.read_text())
    try:
        r, took = _denied_5(env)
        assert r.returncode == 3, r.stderr
        assert took < took_unlocked + 0.5, (took, took_unlocked)
        lines = kept.read_bytes()[before:].decode().splitlines()
        if full:
            assert lines == []
            assert f"yama-run: 5 records not kept in {kept}: locked by another process, " \
                   "and full" in r.stderr, r.stderr
        else:
            assert [json.loads(line)["action"] for line in lines] == ["deny"] * 5
            assert "not kept" not in r.stderr, r.stderr
    finally:
        os.kill(holder, signal.SIGKILL)


@requires_root
@pytest.mark.parametrize("planted", ["link", "directory"])
def test_root_with_a_users_home_neither_writes_nor_believes_its_denials_dir(tmp_path,
                                                                            sticky_dir,
                                                                            planted):
    """Root's yama-run run with uid 1001's HOME (sudo keeps it on some
    systems): uid 1001 made ~/.local/state/yama-run a link to a directory of
    root's (where a file named denials.jsonl would be read: apt.conf.d), or a
    directory of its own holding a forged record. Root's denial is not
    written there, and root's --list-denials shows nothing of uid 1001's."""
    if journald_reachable():
        pytest.skip("denials go to systemd-journald here, not to a file")
    home, victim = tmp_path / "home", tmp_path / "victim"
    tmp_path.chmod(0o755)
    victim.mkdir()
    state = home / ".local" / "state"
    state.mkdir(parents=True)
    if planted == "link":
        (state / "yama-run").symlink_to(victim)
    else:
        (state / "yama-run").mkdir(mode=0o700)
        (state / "yama-run" / "denials.jsonl").write_text(json.dumps(
            {"action": "deny", "time": 0, "program": "forged", "message": "FORGED"}) + "\n")
    subprocess.run(["chown", "-hR", f"{UID}:{UID}", str(home)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env["HOME"] = str(home)
    link = os.fsdecode(_foreign_link(sticky_dir, b"link"))
    r = yama_run("-v", "cat", link, env=env, timeout=BOUND)
    assert r.returncode == 1 and "symlinks: denied" in r.stderr, r.stderr
    assert list(victim.iterdir()) == []
    if planted == "directory":
        assert [p.name for p in (state / "yama-run").iterdir()] == ["denials.jsonl"]
    listed = yama_run("--list-denials", env=env, timeout=BOUND)
    assert listed.returncode == 0
    assert "FORGED" not in listed.stdout and "no denials recorded" in listed.stdout


# -- the front process and the exit status ----------------------------------------------

REUSE = r'''
import os, sys, time
main = os.getpid()
marker = sys.argv[1]
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:                      # the daemon left behind
        while os.path.exists(f"/proc/{main}"):
            time.sleep(0.01)                # until the supervisor reaped the program
        daemon = os.getpid()
        for _ in range(200):
            with open("/proc/sys/kernel/ns_last_pid", "w") as f:
                f.write(str(main - 1))
            pid = os.fork()
            if pid == 0:
                if os.getpid() != main:
                    os._exit(0)
                while os.getppid() == daemon:
                    time.sleep(0.01)        # re-parented to the supervisor
                os._exit(42)                # "the program's status"
            if pid == main:
                open(marker, "w").close()
                os._exit(0)
            os.waitpid(pid, 0)
        os._exit(1)
    os._exit(0)
os.wait()
os._exit(7)
'''


@requires_root
@pytest.mark.parametrize("backend", ["notify", "ptrace"])
def test_wait_reports_the_program_status_not_that_of_a_process_given_its_pid(tmp_path,
                                                                             backend):
    """--wait: the program exits 7; a daemon it left behind makes a process
    that is given the program's pid once it is free (root writes
    ns_last_pid; anyone can wrap pid_max by forking) and exits 42 as the
    supervisor's child. yama-run exits 7."""
    marker = tmp_path / "reused"
    r = yama_run("--backend", backend, "--wait", sys.executable, "-c", REUSE, marker,
                 timeout=BOUND)
    if not marker.exists():
        pytest.skip("the program's pid was taken by another process of the machine first")
    assert r.returncode == 7, r.stderr


def test_death_by_signal_with_a_core_and_codes_past_255_are_as_natively(tmp_path):
    native = subprocess.run(["sh", "-c", "exit 300"]).returncode
    assert yama_run("sh", "-c", "exit 300").returncode == native == 300 % 256
    script = "ulimit -c unlimited 2>/dev/null; kill -SEGV $$"
    native = subprocess.run(["sh", "-c", script], cwd=tmp_path).returncode
    assert yama_run("sh", "-c", script, cwd=tmp_path).returncode == native == -signal.SIGSEGV


def _in_a_terminal_job(argv: list[str], marker: Path | None = None,
                       env: dict | None = None) -> tuple[list[str], str]:
    """Run argv as a shell with job control runs a foreground job, on a pty
    of its own. Returns (what befell the job: "stopped by N", "continued:
    marker" or "continued: late", "exit N", "hung", then "input: TEXT" if
    the shell would have read TEXT next; what the terminal showed). A
    stopped job is killed, or with marker, let go (SIGCONT, as fg) once
    marker exists, or after BOUND. The user types Ctrl-Z once the job
    prints READY."""
    pid, master = pty.fork()
    if pid == 0:                            # the "shell": session leader
        try:
            signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            job = os.fork()
            if job == 0:
                os.setpgid(0, 0)
                os.tcsetpgrp(0, os.getpgrp())
                signal.signal(signal.SIGTTOU, signal.SIG_DFL)
                os.execvpe(argv[0], argv, env or tree_env())
            try:
                os.setpgid(job, job)            # as a shell does, in both
            except PermissionError:
                pass                            # the job has exec'd: it did it itself
            deadline, events = time.monotonic() + BOUND, []
            while True:
                done, st = os.waitpid(job, os.WUNTRACED | os.WNOHANG)
                if done and os.WIFSTOPPED(st):
                    events.append(f"stopped by {os.WSTOPSIG(st)}")
                    if marker is None:
                        break
                    while not marker.exists() and time.monotonic() < deadline:
                        time.sleep(0.02)
                    events.append("continued: " + ("marker" if marker.exists() else "late"))
                    os.killpg(job, signal.SIGCONT)
                elif done:
                    events.append(f"exit {os.waitstatus_to_exitcode(st)}")
                    break
                elif time.monotonic() > deadline + BOUND:
                    events.append("hung")
                    break
                time.sleep(0.02)
            if not events[-1].startswith("exit"):
                os.killpg(job, signal.SIGKILL)
            os.tcsetpgrp(0, os.getpgrp())           # the terminal back, as a shell takes it
            if select.select([0], [], [], 0.5)[0]:     # what the shell reads next
                events.append("input: " + os.read(0, 4096).decode(errors="replace").strip())
            os.write(1, f"\nJOB: {'; '.join(events)}\n".encode())
        finally:
            os._exit(0)
    shown, typed = b"", False
    while True:
        if not typed and b"READY" in shown:
            os.write(master, b"\x1a")             # Ctrl-Z, typed by the user
            typed = True
        ready, _, _ = select.select([master], [], [], 3 * BOUND)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:                     # EIO: the pty's last user is gone
            break
        if not chunk:
            break
        shown += chunk
    os.waitpid(pid, 0)
    os.close(master)
    text = shown.decode(errors="replace")
    return (text.rsplit("JOB: ", 1)[1].strip().split("; ") if "JOB: " in text else []), text


TOSTOP = r'''
import ctypes, os, signal, termios
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTTOU})
attrs = termios.tcgetattr(2)
attrs[3] |= termios.TOSTOP                  # background writers stop (SIGTTOU)
termios.tcsetattr(2, termios.TCSANOW, attrs)
os.setpgid(0, 0)
os.tcsetpgrp(2, os.getpgrp())               # yama-run's group is now in the background
ctypes.CDLL(None).ptrace(16, 1, 0, 0)       # denied: yama-run writes its line
os._exit(5)
'''


def test_the_program_cannot_stop_its_supervisor_through_the_terminal():
    """The program sets TOSTOP, takes the terminal for a group of its own and
    causes a denial: yama-run's line is written anyway (the supervisor was
    stopped by SIGTTOU with every routed call of the sandbox waiting, and the
    job with it), and the status is the program's."""
    events, shown = _in_a_terminal_job([*YAMA_RUN, "--set", "ptrace.scope=3", sys.executable,
                                        "-c", TOSTOP])
    assert events == ["exit 5"], shown
    assert "yama-run: ptrace: denied PTRACE_ATTACH" in shown


CTRL_Z = r'''
import ctypes, errno, os, signal, sys, time
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTSTP})
print("READY", flush=True)
while signal.SIGTSTP not in signal.sigpending():
    time.sleep(0.01)                        # until the user's Ctrl-Z arrived
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace(16, 1, 0, 0)                    # a routed call, answered by the supervisor
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(errno.errorcode[ctypes.get_errno()])
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
os._exit(3)
'''


def test_ctrl_z_stops_the_job_but_not_its_supervisor(tmp_path):
    """The user types Ctrl-Z: the job stops (the front, which the shell waits
    for), the supervisor does not: the program (which blocks SIGTSTP, as a
    daemon left behind need not even see it) has its next routed call
    answered while the job is stopped; fg (SIGCONT) then ends the run with
    the program's status."""
    marker = tmp_path / "answered"
    events, shown = _in_a_terminal_job([*YAMA_RUN, "-q", "--set", "ptrace.scope=3",
                                        sys.executable, "-c", CTRL_Z, str(marker)], marker)
    assert events == [f"stopped by {signal.SIGTSTP}", "continued: marker", "exit 3"], shown
    assert marker.read_text() == "EPERM"


STOPPED_OUTPUT = r'''
import ctypes, errno, os, sys, termios, threading, time
termios.tcflow(2, termios.TCOOFF)           # the terminal takes no more output
resumed = threading.Event()
def resume():                               # a bound: the terminal's output back after 5 s
    time.sleep(5)
    resumed.set()
    termios.tcflow(2, termios.TCOON)
threading.Thread(target=resume, daemon=True).start()
libc = ctypes.CDLL(None, use_errno=True)
answers = []
for _ in range(3):                          # denied: yama-run has a line to write each time
    libc.ptrace(16, 1, 0, 0)
    answers.append(errno.errorcode[ctypes.get_errno()] + ("-late" if resumed.is_set() else ""))
with open(sys.argv[1], "w") as f:
    f.write(" ".join(answers))
resumed.wait()
time.sleep(0.5)
os._exit(4)
'''


def test_a_terminal_that_takes_no_output_never_holds_a_decision(tmp_path):
    """The program stops the terminal's output (tcflow TCOOFF, as ^S does)
    and causes denials: each is answered at once, while the terminal still
    takes nothing (the supervisor waited in its write of the denial line,
    holding every call the chain decides, until the output came back), and
    the lines are shown once it does."""
    answers = tmp_path / "answers"
    events, shown = _in_a_terminal_job([*YAMA_RUN, "-v", "--set", "ptrace.scope=3",
                                        sys.executable, "-c", STOPPED_OUTPUT, str(answers)])
    assert events == ["exit 4"], shown
    assert answers.read_text() == "EPERM EPERM EPERM", shown
    assert shown.count("yama-run: ptrace: denied PTRACE_ATTACH") == 3, shown


TIOCSTI = r'''
import errno, fcntl, os, sys, termios
said = []
for command in (termios.TIOCSTI, termios.TIOCSTI | 1 << 32):    # the kernel reads 32 bits
    try:
        for byte in b"echo INJECTED\n":
            fcntl.ioctl(0, command, bytes([byte]))
        said.append("pushed")
    except OSError as exc:
        said.append(errno.errorcode[exc.errno])
print(" ".join(said), flush=True)
os._exit(0)
'''


@pytest.mark.parametrize("who", ["root", "uid 1001"])
def test_the_program_cannot_push_a_command_into_the_users_shell(request, who):
    """TIOCSTI on the terminal the program shares with the user's shell: the
    shell would run the line outside the sandbox once yama-run returns (a
    `yama-run --change-running` loosening it among them). Refused with EIO,
    as the kernel refuses it under dev.tty.legacy_tiocsti=0, root included;
    the shell reads nothing. (yama-run run by root, and by uid 1001.)"""
    if who == "root":
        events, shown = _in_a_terminal_job([*YAMA_RUN, sys.executable, "-c", TIOCSTI])
    else:
        user = request.getfixturevalue("as_user")
        events, shown = _in_a_terminal_job(user.command("/usr/bin/python3", "-c", TIOCSTI),
                                           env=user.env())
    assert events == ["exit 0"], shown
    assert "EIO EIO" in shown


# -- the control socket -----------------------------------------------------------------

PROGRAM = os.path.basename(sys.executable)      # as --list-running shows the sandbox


def _wait_for_socket(where: Path) -> str:
    """The name of the one control socket in where, once it is there."""
    deadline = time.monotonic() + BOUND
    while True:
        names = [n for n in os.listdir(where) if n.endswith(".sock")] if where.is_dir() else []
        if names:
            [name] = names
            return name
        assert time.monotonic() < deadline, "no control socket"
        time.sleep(0.05)


FLOOD = r'''
import os, socket, sys, threading, time
where, seconds = sys.argv[1], float(sys.argv[2])
held, lock, made = [], threading.Lock(), [0]


def names():
    try:
        return os.listdir(where)
    except FileNotFoundError:       # the supervisor makes the directory after we start
        return []


def flood(n):
    while True:
        for name in names():
            if not name.endswith(".sock"):
                continue
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(os.path.join(where, name))
                if n % 2:                   # half send a giant request, half nothing
                    s.setblocking(False)
                    try:
                        s.send(b"{" * (1 << 20))
                    except OSError:
                        pass
                with lock:
                    made[0] += 1
                    held.append(s)          # held open, never read
                    if len(held) > 2000:
                        held.pop(0).close()
            except OSError:
                s.close()


for n in range(32):
    threading.Thread(target=flood, args=(n,), daemon=True).start()
time.sleep(seconds)
print(made[0])
os._exit(0)
'''


@requires_root
def test_a_flood_of_connections_from_inside_never_keeps_the_owner_out(tmp_path):
    """The program floods every control socket with connections it holds
    open, half of them sending a megabyte, half nothing: the owner lists the
    sandbox every time and tightens it meanwhile (the client waited for no
    place in the full listen queue: EAGAIN, "cannot connect"); the flood's
    refusals are audited within their rate limit; nothing is loosened."""
    from sandbox.control import REFUSALS_BURST, REFUSALS_RATE
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = tree_env({**os.environ, "XDG_RUNTIME_DIR": str(runtime)})
    log = tmp_path / "audit.jsonl"
    seconds = 8.0
    program = subprocess.Popen([*YAMA_RUN, "--audit-log", str(log), sys.executable, "-c",
                                FLOOD, str(runtime / "yama-run"), str(seconds)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    try:
        _wait_for_socket(runtime / "yama-run")
        for attempt in range(6):
            r = yama_run("--list-running", env=env, timeout=BOUND)
            assert r.returncode == 0 and "1 running sandbox" in r.stdout, (attempt, r.stdout,
                                                                             r.stderr)
        r = yama_run("--change-running", PROGRAM, "--set", "ptrace.scope=2",
                     env=env, timeout=BOUND)
        still = time.monotonic() < started + seconds
        assert r.returncode == 0, r.stderr
        out, err = program.communicate(timeout=BOUND)
    finally:
        program.kill()
        program.wait()
    took = time.monotonic() - started
    assert still, "the flood ended before the checks: the test proved nothing"
    assert program.returncode == 0, err
    assert int(out) > 1000, out                  # it did flood
    records = [json.loads(line) for line in log.read_text().splitlines()]
    refused = [rec for rec in records if rec["action"] == "control-refused"]
    assert 0 < len(refused) <= REFUSALS_BURST + REFUSALS_RATE * took + 1
    changed = [rec for rec in records if rec["action"] == "setting-changed"]
    assert [(rec["setting"], rec["new"]) for rec in changed] == [("ptrace.scope", 2)]


PLANT = r'''
import os, socket, sys
where, how, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
if how == "socket links":          # one socket (nobody listens), many names for it
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(os.path.join(where, "1.0.sock"))
    for i in range(1, count):
        os.link(os.path.join(where, "1.0.sock"), os.path.join(where, f"1.{i:06d}.sock"))
else:                               # regular files
    for i in range(count):
        os.close(os.open(os.path.join(where, f"1.{i:06d}.sock"), os.O_CREAT | os.O_WRONLY,
                         0o600))
'''
PLANTED = 10_000
CLIENT_FILES = (1024, 8192)         # (soft, hard): a common RLIMIT_NOFILE, below PLANTED


def _client_limits():
    import resource
    resource.setrlimit(resource.RLIMIT_NOFILE, CLIENT_FILES)


@requires_root
@pytest.mark.parametrize("how", ["regular files", "socket links"])
def test_names_planted_by_the_thousand_never_hide_the_owners_sandboxes(tmp_path, how):
    """The program plants 10,000 names of the form PID.*.sock in the
    control directory, sorting before its supervisor's: regular files, or
    hard links to one socket of its own. The client took one descriptor per
    name before connecting any (its soft limit raised to the hard one, 8192
    here): "Too many open files", 0 running sandboxes, and --change-running
    exited 125, for every sandbox of the user, for as long as the files
    stayed. The owner's sandbox is now listed and tightened: names that are
    not sockets of the user are skipped (and said), the socket's names
    removed as stale."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = tree_env({**os.environ, "XDG_RUNTIME_DIR": str(runtime)})
    where = runtime / "yama-run"
    victim = subprocess.Popen([*YAMA_RUN, sys.executable, "-c", "import time; time.sleep(60)"],
                              env=env)
    try:
        supervisor = _wait_for_socket(where).split(".")[0]
        planted = yama_run(sys.executable, "-c", PLANT, where, how, PLANTED, env=env,
                           timeout=BOUND)
        assert planted.returncode == 0, planted.stderr
        assert len(os.listdir(where)) == PLANTED + 1
        listed = yama_run("--list-running", env=env, timeout=BOUND,
                          preexec_fn=_client_limits)
        assert listed.returncode == 0, listed.stderr
        assert "(1 running sandbox;" in listed.stdout, listed.stdout[-2000:]
        assert "Too many open files" not in listed.stdout
        if how == "regular files":
            assert f"ignored {PLANTED} names of the form PID.*.sock that are not a socket " \
                   f"of uid 0 (planted?)" in listed.stdout
        else:
            assert listed.stdout.count(": stale (its supervisor 1 is gone)") == PLANTED
        changed = yama_run("--change-running", supervisor, "--set", "ptrace.scope=3",
                           env=env, timeout=BOUND, preexec_fn=_client_limits)
        assert changed.returncode == 0, changed.stderr
        assert "ptrace.scope 1 -> 3" in changed.stderr + changed.stdout
    finally:
        victim.kill()
        victim.wait()


PEER_REUSE = r'''
import json, os, socket, sys, time
where, go, told = sys.argv[1:4]
while not os.path.exists(go):
    time.sleep(0.01)
[name] = [n for n in os.listdir(where) if n.startswith(f"{os.getppid()}.")]
child = os.fork()
if child == 0:          # connects, asks to loosen, and is gone before it is judged
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(os.path.join(where, name))
    s.sendall(json.dumps({"v": 1, "op": "set",
                          "changes": [["ptrace.scope", "0"]]}).encode() + b"\n")
    os._exit(0)
os.waitpid(child, 0)
with open(told + ".tmp", "w") as f:
    f.write(str(child))
os.rename(told + ".tmp", told)
time.sleep(8)
'''


@requires_root
def test_a_peer_gone_and_its_pid_given_to_a_process_outside_is_refused(tmp_path):
    """The program's child connects and asks to loosen while the supervisor
    is busy (an idle connection of the owner holds it), then exits and is
    reaped; its pid is given to a process outside the sandbox before the
    supervisor reads /proc. The request is refused (the peer's pidfd says it
    exited) and ptrace.scope stays 1."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = tree_env({**os.environ, "XDG_RUNTIME_DIR": str(runtime)})
    where = runtime / "yama-run"
    go, told = tmp_path / "go", tmp_path / "told"
    log = tmp_path / "audit.jsonl"
    program = subprocess.Popen([*YAMA_RUN, "--audit-log", str(log), sys.executable, "-c",
                                PEER_REUSE, str(where), str(go), str(told)], env=env)
    outside = None
    try:
        name = _wait_for_socket(where)
        deadline = time.monotonic() + BOUND
        idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        idle.connect(str(where / name))     # admitted; sends nothing: the server waits
        go.touch()
        while not told.exists():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        gone = int(told.read_text())
        for _ in range(200):
            Path("/proc/sys/kernel/ns_last_pid").write_text(str(gone - 1))
            candidate = subprocess.Popen(["sleep", "30"])
            if candidate.pid == gone:
                outside = candidate
                break
            candidate.kill()
            candidate.wait()
        idle.close()
        if outside is None:
            pytest.skip("the peer's pid was taken by another process of the machine first")
        deadline = time.monotonic() + BOUND
        while True:
            records = [json.loads(ln) for ln in log.read_text().splitlines()]
            refused = [rec for rec in records if rec["action"] == "control-refused"
                       and rec["pid"] == gone]
            if refused or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert refused and "exited" in refused[0]["reason"], records
        assert not [rec for rec in records if rec["action"] == "setting-changed"]
        shown = yama_run("--show-running", PROGRAM, env=env, timeout=BOUND)
        assert "ptrace.scope = 1" in shown.stdout, shown.stdout
    finally:
        if outside is not None:
            outside.kill()
            outside.wait()
        program.kill()
        program.wait()


BIG_TREE = r'''
import os, sys, time
pids = []
for _ in range(int(sys.argv[1])):
    pid = os.fork()
    if pid == 0:                # a command line of 4000 DELs: 24,000 bytes of JSON each
        os.execv("/bin/sleep", ["\x7f" * 4000, "60"])
    pids.append(str(pid))
with open(sys.argv[2], "w") as f:
    f.write(" ".join(pids))
time.sleep(60)
'''


@requires_root
def test_command_lines_written_by_the_program_never_make_the_detail_too_big(tmp_path):
    """250 processes with 4 KiB command lines of control characters: the
    detail answer was 6 MB, past what a client reads (4 MiB), and
    --show-running failed ("no valid answer"); each command line is now
    shown cut, on one escaped line."""
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    env = tree_env({**os.environ, "XDG_RUNTIME_DIR": str(runtime)})
    count = 250
    (tmp_path / "pids").write_text("")
    program = subprocess.Popen([*YAMA_RUN, sys.executable, "-c", BIG_TREE, str(count),
                                str(tmp_path / "pids")], env=env)
    try:
        _wait_for_socket(runtime / "yama-run")
        deadline = time.monotonic() + BOUND
        while True:
            listed = yama_run("--list-running", env=env, timeout=BOUND)
            rows = [line.split() for line in listed.stdout.splitlines()[1:2]]
            if rows and int(rows[0][5]) > count or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert rows and int(rows[0][5]) > count, listed.stdout
        shown = yama_run("--show-running", rows[0][0], env=env, timeout=BOUND)
        assert shown.returncode == 0, shown.stderr
        assert f"processes:  {count + 1}" in shown.stdout
        cut = [line for line in shown.stdout.splitlines() if line.endswith("\\x7f...")]
        assert len(cut) >= count and "\x7f" not in shown.stdout
    finally:
        program.kill()
        program.wait()
        for pid in (tmp_path / "pids").read_text().split():
            try:
                os.kill(int(pid), signal.SIGKILL)   # the sleepers it started, left supervised
            except ProcessLookupError:
                pass


# -- yama-run's own code ----------------------------------------------------------------

PAYLOAD = ('\nimport os as _o\n'
           '_o.close(_o.open(_o.environ.get("MARKS", "/nonexistent") + "/" + __name__, '
           '_o.O_WRONLY | _o.O_CREAT, 0o644))\n')


def _writable_install(who: str, base: Path):
    """(run(*args, env=...), the package's directory, the run's cwd): a copy
    of yama-run whose files the program may write, run by root (python -m,
    the .pyc kept) or by uid 1001 (the system's python3, its own copy,
    sources only)."""
    if who == "root":
        package = base / "install" / "sandbox"
        shutil.copytree(Path(ROOT) / "sandbox", package, symlinks=True)
        environ = {**os.environ, "PYTHONPATH": str(package.parent),
                "XDG_CACHE_HOME": str(base / "cache")}
        return (lambda *args, env: subprocess.run(
            [sys.executable, "-m", "sandbox.cli", *args], env={**environ, **env}, cwd=base,
            capture_output=True, text=True, timeout=BOUND)), package, base
    reason = as_user_why_not()
    if reason:
        pytest.skip(reason)
    user = UserRun(base / "user")
    user.prepare()
    subprocess.run(["chown", "-R", f"{UID}:{UID}", str(user.path)], check=True)
    return (lambda *args, env: user.run(*args, env=env, timeout=BOUND)), user.path / "sandbox", \
        user.home


@pytest.mark.parametrize("who", ["root", "uid 1001"])
def test_the_program_cannot_put_code_into_its_running_supervisor(who, open_dir):
    """yama-run installed where the program may write (a user's install is
    the user's, and the program runs as that user). The program appends a
    line to every module of the package the moment it starts, while the
    supervisor of the cached start is still loading them, and plants
    modules the standard library tries and lacks here (nt, msvcrt, _winapi,
    org) in every directory on the supervisor's path (the package's, the
    cwd of python -m): no line ever runs in the supervisor (it did, in 24
    modules: the supervisor imported them from the files after the program
    started; then in msvcrt, once the package was read first). The run goes
    on, served (a denial made, said), and exits as the program does. The
    next run reads the changed files: the program's own doing, as a line in
    ~/.bashrc would be (docs/hostile.md)."""
    run, package, cwd = _writable_install(who, open_dir)
    marks = open_dir / "marks"
    marks.mkdir()
    marks.chmod(0o777)
    command = ("-v", "--set", "ptrace.scope=3", "--", "sh", "-c")
    attack = ("for f in $PKG/*.py $PKG/modules/*.py; do printf %s \"$PAYLOAD\" >> \"$f\"; done; "
              "for d in $PLANT; do for n in nt msvcrt _winapi; do printf %s \"$PAYLOAD\" > $d/$n.py; "
              "done; mkdir -p $d/org; printf %s \"$PAYLOAD\" > $d/org/__init__.py; done; "
              "strace -o /dev/null true 2>/dev/null; exit 3")
    time.sleep(1.1)             # a plan is kept only when no input changed in the last second
    for _ in range(2):          # the second run starts from the plan the first kept
        r = run(*command, "exit 3", env={})
        assert r.returncode == 3, r.stderr
    assert "plan: from the cache" in r.stderr, r.stderr
    r = run(*command, attack, env={"PKG": str(package), "PAYLOAD": PAYLOAD, "MARKS": str(marks),
                                   "PLANT": f"{package.parent} {cwd}"})
    assert sorted(os.listdir(marks)) == [], r.stderr      # no line of the program's ran
    assert r.returncode == 3, r.stderr
    assert "plan: from the cache" in r.stderr, r.stderr
    assert PAYLOAD in (package / "supervisor.py").read_text()     # the program did write
    assert (cwd / "msvcrt.py").read_text() == PAYLOAD
    assert "ptrace: denied PTRACE_" in r.stderr, r.stderr              # served all along
